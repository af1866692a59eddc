/* libm_values: glibc libm on a fixed set of inputs, printed with %.17g (round-trip precision). */
#include <math.h>
#include <stdio.h>

typedef double (*unary_fn)(double);
typedef double (*binary_fn)(double, double);

int main(void)
{
    static const struct {
        const char *name;
        unary_fn fn;
    } unary[] = {
        {"sin", sin},     {"cos", cos},     {"tan", tan},     {"asin", asin},   {"acos", acos},
        {"atan", atan},   {"sinh", sinh},   {"cosh", cosh},   {"tanh", tanh},   {"exp", exp},
        {"exp2", exp2},   {"expm1", expm1}, {"log", log},     {"log2", log2},   {"log10", log10},
        {"log1p", log1p}, {"cbrt", cbrt},   {"erf", erf},     {"erfc", erfc},   {"tgamma", tgamma},
        {"lgamma", lgamma}, {"floor", floor}, {"ceil", ceil}, {"round", round}, {"trunc", trunc},
    };
    static const double inputs[] = {
        0.0, -0.0, 0.5, -0.5, 1.0, 2.0, 3.141592653589793, 1e-8, 10.0, -7.25, 100.0, 1e22, 710.0, -745.5,
        0.7853981633974483, 1e-310, INFINITY, -INFINITY, NAN,
    };
    for (size_t f = 0; f < sizeof unary / sizeof unary[0]; f++) {
        printf("%s:", unary[f].name);
        for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
            printf(" %.17g", unary[f].fn(inputs[i]));
        printf("\n");
    }

    static const struct {
        const char *name;
        binary_fn fn;
    } binary[] = {
        {"pow", pow}, {"atan2", atan2}, {"hypot", hypot}, {"fmod", fmod}, {"remainder", remainder},
        {"copysign", copysign}, {"fdim", fdim}, {"nextafter", nextafter},
    };
    static const double pairs[][2] = {
        {2.0, 10.0}, {2.0, 0.5}, {-8.0, 1.0 / 3.0}, {-2.0, 3.0}, {10.0, -3.0}, {0.0, -1.0}, {-0.0, -3.0},
        {1.0, NAN}, {NAN, 0.0}, {1.0000001, 1e9}, {0.0, 0.0}, {-0.0, -0.0}, {1.0, -1.0}, {-1.0, -1.0},
        {3.0, 4.0}, {1e300, 1e300}, {INFINITY, -INFINITY}, {5.5, 2.0}, {-5.5, 2.0},
    };
    for (size_t f = 0; f < sizeof binary / sizeof binary[0]; f++) {
        printf("%s:", binary[f].name);
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
            printf(" %.17g", binary[f].fn(pairs[i][0], pairs[i][1]));
        printf("\n");
    }

    int exponent;
    double mantissa = frexp(1234.5678, &exponent);
    double integral;
    double fraction = modf(-3.75, &integral);
    printf("frexp(1234.5678) = %.17g * 2^%d, modf(-3.75) = %.17g + %.17g, ldexp(0.75, -1074) = %.17g\n",
           mantissa, exponent, integral, fraction, ldexp(0.75, -1074));
    printf("sinf(1)=%.9g expf(10)=%.9g logf(3)=%.9g powf(1.5,20)=%.9g\n", (double)sinf(1.0f),
           (double)expf(10.0f), (double)logf(3.0f), (double)powf(1.5f, 20.0f));
    return 0;
}
