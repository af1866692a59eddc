/* fenv_rounding: dynamic rounding modes and accrued exception flags through <fenv.h>.
 *
 * Every C rounding mode is set with fesetround and read back through
 * arithmetic, conversions and rint/lrint; fetestexcept reports the flags
 * raised by operations chosen to raise each one. Saturating conversions
 * (fcvt.w.d and friends, including NaN inputs) and instructions with a
 * static rounding mode (rne, rtz, rdn, rup, rmm) are issued via inline asm.
 * Compiled with -frounding-math so nothing is folded at compile time.
 */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

static void print_flags(const char *label)
{
    int raised = fetestexcept(FE_ALL_EXCEPT);
    printf("%-28s flags:%s%s%s%s%s%s\n", label, raised & FE_INVALID ? " invalid" : "",
           raised & FE_DIVBYZERO ? " divbyzero" : "", raised & FE_OVERFLOW ? " overflow" : "",
           raised & FE_UNDERFLOW ? " underflow" : "", raised & FE_INEXACT ? " inexact" : "",
           raised ? "" : " none");
}

/* A conversion instruction with the dynamic rounding mode (frm) or the static mode `rm`. */
#define FCVT(name, insn, rm, out_t, in_t)                                                                \
    static out_t name(in_t x)                                                                            \
    {                                                                                                    \
        out_t r;                                                                                         \
        __asm__ volatile(insn " %0, %1" rm : "=r"(r) : "f"(x));                                          \
        return r;                                                                                        \
    }

FCVT(fcvt_w_d, "fcvt.w.d", "", int64_t, double)
FCVT(fcvt_wu_d, "fcvt.wu.d", "", int64_t, double)
FCVT(fcvt_l_d, "fcvt.l.d", "", int64_t, double)
FCVT(fcvt_lu_d, "fcvt.lu.d", "", uint64_t, double)
FCVT(fcvt_w_s, "fcvt.w.s", "", int64_t, float)
FCVT(fcvt_l_s, "fcvt.l.s", "", int64_t, float)
FCVT(fcvt_w_d_rtz, "fcvt.w.d", ", rtz", int64_t, double)

#define FCVT_RM(name, rm)                                                                                \
    static int64_t name(double x)                                                                        \
    {                                                                                                    \
        int64_t r;                                                                                       \
        __asm__ volatile("fcvt.l.d %0, %1, " rm : "=r"(r) : "f"(x));                                     \
        return r;                                                                                        \
    }

FCVT_RM(fcvt_rne, "rne")
FCVT_RM(fcvt_rtz, "rtz")
FCVT_RM(fcvt_rdn, "rdn")
FCVT_RM(fcvt_rup, "rup")
FCVT_RM(fcvt_rmm, "rmm")

static double fadd_rmm(double a, double b)
{
    double r;
    __asm__ volatile("fadd.d %0, %1, %2, rmm" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

int main(void)
{
    static const struct {
        int mode;
        const char *name;
    } modes[] = {
        {FE_TONEAREST, "to-nearest"},
        {FE_DOWNWARD, "downward"},
        {FE_UPWARD, "upward"},
        {FE_TOWARDZERO, "toward-zero"},
    };
    volatile double one = 1.0, three = 3.0, two = 2.0, big = 1e308, tiny = 1e-300;
    volatile float onef = 1.0f, threef = 3.0f;
    static const double halves[] = {2.5, -2.5, 3.5, 0.5, -0.5, 1.4999999999999998, -7.5};

    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        if (fesetround(modes[m].mode) != 0) {
            printf("fesetround(%s) failed\n", modes[m].name);
            return 1;
        }
        printf("mode %s (fegetround ok=%d)\n", modes[m].name, fegetround() == modes[m].mode);
        printf("  1/3=%a -1/3=%a 1f/3f=%a sqrt2=%a\n", one / three, -one / three, (double)(onef / threef),
               sqrt(two));
        printf("  big*10=%a -big*10=%a tiny*tiny=%a (float)(1/3)=%a\n", big * 10.0, -big * 10.0, tiny * tiny,
               (double)(float)(one / three));
        printf("  rint:");
        for (size_t i = 0; i < sizeof halves / sizeof halves[0]; i++)
            printf(" %g->%g/%ld/%lld", halves[i], rint(halves[i]), lrint(halves[i]),
                   (long long)fcvt_w_d(halves[i]));
        printf("\n  nearbyint(-0.4)=%g exp(1)=%.17g\n", nearbyint(-0.4), exp(one));
    }
    fesetround(FE_TONEAREST);

    printf("static rounding modes on fcvt.l.d:\n");
    for (size_t i = 0; i < sizeof halves / sizeof halves[0]; i++)
        printf("  %g: rne=%lld rtz=%lld rdn=%lld rup=%lld rmm=%lld\n", halves[i], (long long)fcvt_rne(halves[i]),
               (long long)fcvt_rtz(halves[i]), (long long)fcvt_rdn(halves[i]), (long long)fcvt_rup(halves[i]),
               (long long)fcvt_rmm(halves[i]));
    printf("fadd rmm: %a %a\n", fadd_rmm(1.0, 0x1p-53), fadd_rmm(-1.0, -0x1p-53));

    volatile double result;
    volatile double zero = 0.0;
    feclearexcept(FE_ALL_EXCEPT);
    print_flags("cleared");
    result = one + one;
    print_flags("1+1");
    feclearexcept(FE_ALL_EXCEPT);
    result = one / three;
    print_flags("1/3");
    feclearexcept(FE_ALL_EXCEPT);
    result = big * big;
    print_flags("1e308*1e308");
    feclearexcept(FE_ALL_EXCEPT);
    result = tiny * tiny;
    print_flags("1e-300*1e-300");
    feclearexcept(FE_ALL_EXCEPT);
    result = DBL_MIN / 4.0 * one;
    print_flags("DBL_MIN/4 (exact denormal)");
    feclearexcept(FE_ALL_EXCEPT);
    result = zero / zero;
    print_flags("0/0");
    feclearexcept(FE_ALL_EXCEPT);
    result = one / zero;
    print_flags("1/0");
    feclearexcept(FE_ALL_EXCEPT);
    result = sqrt(-one);
    print_flags("sqrt(-1)");
    feclearexcept(FE_ALL_EXCEPT);
    volatile float narrowed = (float)(big * 1e-268);
    print_flags("(float)1e40");
    (void)narrowed;
    (void)result;

    static const double conversions[] = {1e20, -1e20, 2147483647.5, -2147483648.9, 4294967296.0, -1.0, -0.5,
                                         1e19, 2e19, -9.3e18, INFINITY, -INFINITY, NAN, 123.75};
    for (size_t i = 0; i < sizeof conversions / sizeof conversions[0]; i++) {
        double x = conversions[i];
        feclearexcept(FE_ALL_EXCEPT);
        int64_t w = fcvt_w_d(x);
        int raised_w = fetestexcept(FE_ALL_EXCEPT);
        printf("%-14g w=%lld(%s%s) wu=%lld l=%lld lu=%llu w.s=%lld l.s=%lld rtz=%lld\n", x, (long long)w,
               raised_w & FE_INVALID ? "NV" : "", raised_w & FE_INEXACT ? "NX" : "", (long long)fcvt_wu_d(x),
               (long long)fcvt_l_d(x), (unsigned long long)fcvt_lu_d(x), (long long)fcvt_w_s((float)x),
               (long long)fcvt_l_s((float)x), (long long)fcvt_w_d_rtz(x));
    }
    feclearexcept(FE_ALL_EXCEPT);
    feraiseexcept(FE_OVERFLOW | FE_DIVBYZERO);
    print_flags("feraiseexcept(OF|DZ)");
    fexcept_t saved;
    fegetexceptflag(&saved, FE_ALL_EXCEPT);
    feclearexcept(FE_ALL_EXCEPT);
    fesetexceptflag(&saved, FE_DIVBYZERO);
    print_flags("restored DZ only");
    return 0;
}
