/* divide_edges: RISC-V integer division corner cases via inline asm.
 *
 * The ISA defines division by zero (quotient all ones, remainder the
 * dividend) and signed overflow (INT_MIN / -1 = INT_MIN, remainder 0)
 * without trapping; the W forms sign-extend their 32-bit results.
 */
#include <stdint.h>
#include <stdio.h>

#define OP64(name)                                                                                       \
    static uint64_t op_##name(uint64_t a, uint64_t b)                                                   \
    {                                                                                                    \
        uint64_t r;                                                                                      \
        __asm__ volatile(#name " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));                               \
        return r;                                                                                        \
    }

OP64(div)
OP64(divu)
OP64(rem)
OP64(remu)
OP64(divw)
OP64(divuw)
OP64(remw)
OP64(remuw)
OP64(mul)
OP64(mulw)

struct op {
    const char *name;
    uint64_t (*fn)(uint64_t, uint64_t);
};

int main(void)
{
    static const struct op ops[] = {
        {"div", op_div},     {"divu", op_divu},   {"rem", op_rem},   {"remu", op_remu}, {"divw", op_divw},
        {"divuw", op_divuw}, {"remw", op_remw},   {"remuw", op_remuw}, {"mul", op_mul}, {"mulw", op_mulw},
    };
    static const uint64_t pairs[][2] = {
        {7, 0},
        {0xFFFFFFFFFFFFFFF9ull, 0}, /* -7 / 0 */
        {0, 0},
        {0x8000000000000000ull, 0xFFFFFFFFFFFFFFFFull}, /* INT64_MIN / -1 */
        {0x0000000080000000ull, 0x00000000FFFFFFFFull}, /* INT32_MIN / -1 in the W forms */
        {0xFFFFFFFF80000000ull, 0xFFFFFFFFFFFFFFFFull},
        {100, 7},
        {0xFFFFFFFFFFFFFF9Cull, 7},   /* -100 / 7 */
        {100, 0xFFFFFFFFFFFFFFF9ull}, /* 100 / -7 */
        {0xFFFFFFFFFFFFFF9Cull, 0xFFFFFFFFFFFFFFF9ull},
        {0x123456789ABCDEF0ull, 0x0000000100000000ull}, /* W forms see divisor 0 */
        {0xDEADBEEF12345678ull, 0x00000000FFFF0000ull},
        {0x00000000FFFFFFFFull, 2},
        {0x7FFFFFFFFFFFFFFFull, 0x7FFFFFFFFFFFFFFFull},
    };
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        uint64_t a = pairs[p][0];
        uint64_t b = pairs[p][1];
        printf("a=%016llx b=%016llx\n", (unsigned long long)a, (unsigned long long)b);
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
            printf("  %-5s = %016llx (%lld)\n", ops[o].name, (unsigned long long)ops[o].fn(a, b),
                   (long long)ops[o].fn(a, b));
    }
    return 0;
}
