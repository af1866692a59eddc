/* printf_float: glibc's float and double formatting (%f %e %g %a and friends).
 *
 * Covers rounding to nearest-even in decimal output, denormals, infinities,
 * NaNs of both signs (RISC-V arithmetic produces the canonical positive NaN),
 * floats promoted to double, and long double (IEEE quad, soft-float on RV64).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>

static const char *const formats[] = {
    "%f", "%.0f", "%.3f", "%+.2f", "%e", "%.0e", "%.10e", "%E", "%g", "%.3g", "%.17g", "%#g", "%G",
    "%a", "%.3a", "%A", "%12.4f|", "%-12.4e|", "%012.3f", "% .5g",
};

int main(void)
{
    volatile double zero = 0.0;
    volatile double one = 1.0;
    volatile double minus_one = -1.0;
    double values[] = {
        0.0, -0.0, 1.0, -1.5, 0.1, 1.0 / 3.0, 0.5, 1.5, 2.5, 3.5, -2.5, 2.675, 0.125, 1e-5, 123456789.125,
        9.999999999, 1e15 + 0.3, 1e22, DBL_MAX, DBL_MIN, DBL_TRUE_MIN, 5e-320, 2.2250738585072009e-308,
        M_PI, -M_E, 1099511627776.0, INFINITY, -INFINITY, NAN, -NAN,
        zero / zero,             /* RISC-V: canonical NaN, positive */
        sqrt(minus_one),         /* canonical NaN as well */
        one / zero, -one / zero,
    };
    size_t nvalues = sizeof values / sizeof values[0];
    for (size_t i = 0; i < nvalues; i++) {
        printf("value %zu:", i);
        for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
            printf(" ");
            printf(formats[f], values[i]);
        }
        printf("\n");
    }

    float floats[] = {0.1f, 1.0f / 3.0f, FLT_MAX, FLT_MIN, FLT_TRUE_MIN, 16777217.0f, -0.0f, 3.4e38f * 10.0f};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        printf("float %zu: %.9g %a %e %f\n", i, floats[i], floats[i], floats[i], floats[i]);

    long double quads[] = {1.0L / 3.0L, 0.1L, -2.5L, 1e300L * 1e300L, LDBL_EPSILON};
    for (size_t i = 0; i < sizeof quads / sizeof quads[0]; i++)
        printf("quad %zu: %.36Lg %La %.6Le\n", i, quads[i], quads[i], quads[i]);

    /* Precision and width from arguments, and the digits of powers of two. */
    for (int p = 0; p <= 20; p += 4)
        printf("pi to %d: [%*.*f]\n", p, p + 6, p, M_PI);
    double power = 1.0;
    for (int e = 0; e < 70; e += 7) {
        printf("2^-%d = %.*f\n", e, e, power);
        power = ldexp(power, -7);
    }
    printf("%.60f\n", 0.1);
    printf("%.0f\n", 1e300);
    return 0;
}
