/* bench_calls (heavy): call-heavy integer code: naive recursive Fibonacci, Ackermann(2, n) and a
 * function-pointer dispatch loop, so most time goes to calls, returns and short functions.
 * argv[1]: the Fibonacci argument (default 27).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static long fib(long n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static long ackermann(long m, long n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

typedef uint64_t (*step_fn)(uint64_t);

static __attribute__((noinline)) uint64_t step_add(uint64_t x) { return x + 0x9E3779B97F4A7C15ull; }
static __attribute__((noinline)) uint64_t step_xor(uint64_t x) { return x ^ (x >> 29); }
static __attribute__((noinline)) uint64_t step_mul(uint64_t x) { return x * 0xBF58476D1CE4E5B9ull; }
static __attribute__((noinline)) uint64_t step_rot(uint64_t x) { return (x << 17) | (x >> 47); }

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 27;
    if (n < 1 || n > 40) {
        fprintf(stderr, "usage: bench_calls [N in 1..40]\n");
        return 2;
    }
    static const step_fn steps[4] = {step_add, step_xor, step_mul, step_rot};
    uint64_t x = 1;
    for (long i = 0; i < n * 2000; i++)
        x = steps[(x >> 7) & 3](x);
    printf("fib(%ld)=%ld ackermann(2,%ld)=%ld dispatch=%016llx\n", n, fib(n), n * 10, ackermann(2, n * 10),
           (unsigned long long)x);
    return 0;
}
