/* setjmp_longjmp: non-local exits through recursion, value 0 turned into 1, callee-saved state. */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf outer;
static jmp_buf inner;
static int depth_reached;

static void recurse(int depth, int target)
{
    volatile char pad[64];
    if (depth > 1000)
        return;
    pad[depth % 64] = (char)depth;
    depth_reached = depth;
    if (depth == target)
        longjmp(outer, depth + pad[depth % 64]);
    recurse(depth + 1, target);
}

static void jump_with_zero(void)
{
    longjmp(inner, 0);
}

static double __attribute__((noinline)) scale(double x)
{
    return x * 1.5;
}

int main(void)
{
    volatile int counter = 0;
    volatile double accumulator = 1.0;
    register double kept = 3.25;

    int value = setjmp(outer);
    counter++;
    printf("setjmp returned %d (counter=%d, depth=%d)\n", value, counter, depth_reached);
    if (value == 0)
        recurse(0, 10);
    else if (value < 100)
        recurse(0, value * 2);

    int zero_value = setjmp(inner);
    printf("longjmp(.., 0) arrives as %d\n", zero_value);
    if (zero_value == 0)
        jump_with_zero();

    for (int i = 0; i < 5; i++) {
        jmp_buf loop;
        accumulator = scale(accumulator);
        if (setjmp(loop) == 0)
            longjmp(loop, i + 1);
    }
    printf("accumulator=%.17g kept=%.17g\n", accumulator, kept);
    return 0;
}
