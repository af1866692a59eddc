/* int128: __int128 arithmetic (libgcc multiword helpers) and the MULH family via inline asm.
 *
 * mulh, mulhu and mulhsu results are checked against the upper half of the
 * full 128-bit product computed with __int128; both are printed.
 */
#include <stdint.h>
#include <stdio.h>

typedef __int128 i128;
typedef unsigned __int128 u128;

static void print_u128(const char *label, u128 value)
{
    char digits[48];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(value % 10));
        value /= 10;
    } while (value);
    printf("%s", label);
    while (n)
        putchar(digits[--n]);
    putchar('\n');
}

static void print_i128(const char *label, i128 value)
{
    if (value < 0) {
        printf("%s-", label);
        print_u128("", -(u128)value);
    } else {
        print_u128(label, (u128)value);
    }
}

static int64_t mulh(int64_t a, int64_t b)
{
    int64_t r;
    __asm__ volatile("mulh %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static uint64_t mulhu(uint64_t a, uint64_t b)
{
    uint64_t r;
    __asm__ volatile("mulhu %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static int64_t mulhsu(int64_t a, uint64_t b)
{
    int64_t r;
    __asm__ volatile("mulhsu %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

int main(void)
{
    static const uint64_t operands[] = {
        0, 1, 2, 3, 7, 0x7FFFFFFFFFFFFFFFull, 0x8000000000000000ull, 0xFFFFFFFFFFFFFFFFull,
        0xFFFFFFFFFFFFFFFEull, 0x123456789ABCDEF0ull, 0xDEADBEEFCAFEBABEull, 0x00000000FFFFFFFFull,
        0x0000000100000000ull, 0x8000000000000001ull,
    };
    size_t n = sizeof operands / sizeof operands[0];
    int mismatches = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            uint64_t a = operands[i];
            uint64_t b = operands[j];
            int64_t h = mulh((int64_t)a, (int64_t)b);
            uint64_t hu = mulhu(a, b);
            int64_t hsu = mulhsu((int64_t)a, b);
            int64_t ref_h = (int64_t)(((i128)(int64_t)a * (i128)(int64_t)b) >> 64);
            uint64_t ref_hu = (uint64_t)(((u128)a * (u128)b) >> 64);
            int64_t ref_hsu = (int64_t)(((i128)(int64_t)a * (i128)(u128)b) >> 64);
            mismatches += (h != ref_h) + (hu != ref_hu) + (hsu != ref_hsu);
            if ((i + j) % 5 == 0)
                printf("%016llx * %016llx: mulh=%016llx mulhu=%016llx mulhsu=%016llx lo=%016llx\n",
                       (unsigned long long)a, (unsigned long long)b, (unsigned long long)h,
                       (unsigned long long)hu, (unsigned long long)hsu, (unsigned long long)(a * b));
        }
    }
    printf("mulh family mismatches against __int128: %d\n", mismatches);

    volatile u128 big = ((u128)0xFEDCBA9876543210ull << 64) | 0x0123456789ABCDEFull;
    volatile u128 divisor = 1000000007;
    volatile i128 negative = -(i128)(big >> 1) / 3;
    print_u128("big = ", big);
    print_u128("big / 1000000007 = ", big / divisor);
    print_u128("big % 1000000007 = ", big % divisor);
    print_i128("-(big >> 1) / 3 = ", negative);
    print_i128("negative % 1000 = ", negative % 1000);
    print_i128("negative / -(2^70 + 1) = ", negative / -(((i128)1 << 70) + 1));
    print_u128("big * big (wrapped) = ", big * big);
    print_u128("big >> 67 = ", big >> 67);
    print_i128("negative >> 100 = ", negative >> 100);
    u128 factorial = 1;
    for (unsigned k = 1; k <= 34; k++)
        factorial *= k;
    print_u128("34! = ", factorial);
    return mismatches != 0;
}
