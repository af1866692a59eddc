/* printf of floats and doubles, libm values and the SSE/AVX code glibc picks for them. */
#include <math.h>
#include <stdio.h>

int main(void) {
    double values[] = {0.0, -0.0, 1.0, -1.5, 3.141592653589793, 1e-300, 1e300, 2.5e-310, 123456789.125};
    for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++) {
        double v = values[i];
        printf("%g %e %.17g %a %f\n", v, v, v, v, v);
    }
    float f = 1.0f / 3.0f;
    printf("%.9g %a\n", f, (double)f);
    printf("sqrt %.17g sin %.17g exp %.17g log %.17g pow %.17g\n", sqrt(2.0), sin(1.0), exp(1.0), log(10.0),
           pow(2.0, 0.5));
    printf("inf %f nan %f\n", INFINITY, NAN);
    long double x = 1.0L / 3.0L;
    printf("long double %.21Lg\n", x);
    return 0;
}
