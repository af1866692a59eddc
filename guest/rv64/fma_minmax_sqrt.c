/* fma_minmax_sqrt: fused multiply-add (one rounding), fmin/fmax with NaNs and signed zeros, sqrt, fclass.
 *
 * Built with -ffp-contract=off so the "unfused" reference really rounds
 * twice. Signalling NaNs go through fmin.d/fmax.d, which quiet them and set
 * the invalid flag; every NaN result an operation produces is the
 * canonical NaN, printed with its bits.
 */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t bits_of(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static uint32_t bits_of_float(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static double from_bits(uint64_t b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

#define FMA3(name, insn)                                                                                 \
    static double name(double a, double b, double c)                                                     \
    {                                                                                                    \
        double r;                                                                                        \
        __asm__ volatile(insn " %0, %1, %2, %3" : "=f"(r) : "f"(a), "f"(b), "f"(c));                     \
        return r;                                                                                        \
    }

FMA3(fmadd_d, "fmadd.d")
FMA3(fmsub_d, "fmsub.d")
FMA3(fnmadd_d, "fnmadd.d")
FMA3(fnmsub_d, "fnmsub.d")

#define BINOP(name, insn)                                                                                \
    static double name(double a, double b)                                                               \
    {                                                                                                    \
        double r;                                                                                        \
        __asm__ volatile(insn " %0, %1, %2" : "=f"(r) : "f"(a), "f"(b));                                 \
        return r;                                                                                        \
    }

BINOP(fmin_d, "fmin.d")
BINOP(fmax_d, "fmax.d")

static unsigned long fclass_d(double x)
{
    unsigned long r;
    __asm__ volatile("fclass.d %0, %1" : "=r"(r) : "f"(x));
    return r;
}

static unsigned long fclass_s(float x)
{
    unsigned long r;
    __asm__ volatile("fclass.s %0, %1" : "=r"(r) : "f"(x));
    return r;
}

static void print_flags(void)
{
    int raised = fetestexcept(FE_ALL_EXCEPT);
    printf(" [%s%s%s%s%s]\n", raised & FE_INVALID ? "NV" : "", raised & FE_DIVBYZERO ? "DZ" : "",
           raised & FE_OVERFLOW ? "OF" : "", raised & FE_UNDERFLOW ? "UF" : "", raised & FE_INEXACT ? "NX" : "");
    feclearexcept(FE_ALL_EXCEPT);
}

int main(void)
{
    volatile double a = 1.0 + 0x1p-52, b = 1.0 - 0x1p-52, c = -1.0;
    printf("fma(1+e, 1-e, -1) = %a, unfused = %a\n", fma(a, b, c), a * b + c);
    volatile double third = 1.0 / 3.0;
    printf("fma(1/3, 3, -1) = %a, unfused = %a\n", fma(third, 3.0, -1.0), third * 3.0 - 1.0);
    volatile float af = 1.0f + 0x1p-23f, bf = 1.0f - 0x1p-23f;
    printf("fmaf(1+e, 1-e, -1) = %a, unfused = %a\n", (double)fmaf(af, bf, -1.0f), (double)(af * bf - 1.0f));
    printf("fma(DBL_MAX, 2, -DBL_MAX) = %a\n", fma(DBL_MAX, 2.0, -DBL_MAX));
    printf("fma(0x1p-1074, 0.5, 0) = %a, fma(-0.0, 1, 0) = %a, fma(0, 1, -0.0) = %a\n",
           fma(DBL_TRUE_MIN, 0.5, 0.0), fma(-0.0, 1.0, 0.0), fma(0.0, 1.0, -0.0));

    static const double triples[][3] = {
        {2.0, 3.0, 1.0}, {-2.0, 3.0, 1.0}, {0.1, 10.0, -1.0}, {1e308, 10.0, -1e308}, {0.0, INFINITY, 1.0},
        {INFINITY, 1.0, -INFINITY}, {-0.0, 0.0, -0.0}, {1.0, 1.0, NAN}, {0x1p-1022, 0x1p-52, 0.0},
    };
    feclearexcept(FE_ALL_EXCEPT);
    for (size_t i = 0; i < sizeof triples / sizeof triples[0]; i++) {
        double x = triples[i][0], y = triples[i][1], z = triples[i][2];
        printf("(%g,%g,%g): fmadd=%a fmsub=%a fnmadd=%a fnmsub=%a bits=%016llx", x, y, z, fmadd_d(x, y, z),
               fmsub_d(x, y, z), fnmadd_d(x, y, z), fnmsub_d(x, y, z), (unsigned long long)bits_of(fmadd_d(x, y, z)));
        print_flags();
    }

    double quiet_negative = -NAN;
    double signalling = from_bits(0x7FF4000000000000ull);
    static const char *const names[] = {"1", "-0", "+0", "qnan", "-qnan", "snan", "-inf"};
    double values[] = {1.0, -0.0, 0.0, NAN, quiet_negative, signalling, -INFINITY};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        for (size_t j = 0; j < sizeof values / sizeof values[0]; j++) {
            feclearexcept(FE_ALL_EXCEPT);
            double lo = fmin(values[i], values[j]);
            double hi = fmax(values[i], values[j]);
            printf("fmin/fmax(%s,%s) = %016llx %016llx", names[i], names[j], (unsigned long long)bits_of(lo),
                   (unsigned long long)bits_of(hi));
            print_flags();
            lo = fmin_d(values[i], values[j]);
            hi = fmax_d(values[i], values[j]);
            printf("  fmin.d/fmax.d = %016llx %016llx", (unsigned long long)bits_of(lo),
                   (unsigned long long)bits_of(hi));
            print_flags();
        }
    }
    printf("fminf(-0,+0)=%08x fmaxf(-0,+0)=%08x fminf(nan,2)=%g\n", bits_of_float(fminf(-0.0f, 0.0f)),
           bits_of_float(fmaxf(-0.0f, 0.0f)), (double)fminf(NAN, 2.0f));

    static const double roots[] = {2.0, 0.25, -0.0, 0.0, 1e-310, DBL_MAX, INFINITY, -1.0, -INFINITY, 1e16 + 2};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        feclearexcept(FE_ALL_EXCEPT);
        double r = sqrt(roots[i]);
        printf("sqrt(%g) = %a bits=%016llx sqrtf=%a", roots[i], r, (unsigned long long)bits_of(r),
               (double)sqrtf((float)roots[i]));
        print_flags();
    }

    double classify[] = {-INFINITY, -1.5, -0x1p-1074, -0.0, 0.0, 0x1p-1074, 2.0, INFINITY, signalling, NAN};
    printf("fclass.d:");
    for (size_t i = 0; i < sizeof classify / sizeof classify[0]; i++)
        printf(" %#lx", fclass_d(classify[i]));
    printf("\nfclass.s:");
    for (size_t i = 0; i < sizeof classify / sizeof classify[0]; i++)
        printf(" %#lx", fclass_s((float)classify[i]));
    printf("\n");
    return 0;
}
