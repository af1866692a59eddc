/* bench_matmul (heavy): naive double-precision matrix multiply C = A * B of size N (argv[1],
 * default 120), repeated REPEAT times (argv[2], default 1); prints the trace and a checksum.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 120;
    long repeat = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    if (n < 1 || n > 2000 || repeat < 1) {
        fprintf(stderr, "usage: bench_matmul [N in 1..2000] [REPEAT>=1]\n");
        return 2;
    }
    double *a = malloc(sizeof(double) * (size_t)(n * n));
    double *b = malloc(sizeof(double) * (size_t)(n * n));
    double *c = malloc(sizeof(double) * (size_t)(n * n));
    if (!a || !b || !c) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++) {
        for (long j = 0; j < n; j++) {
            a[i * n + j] = (double)((i * 7 + j * 3) % 17) / 8.0 - 1.0;
            b[i * n + j] = (double)((i * 5 + j * 11) % 13) / 4.0 - 1.5;
        }
    }
    double checksum = 0.0;
    for (long r = 0; r < repeat; r++) {
        for (long i = 0; i < n; i++) {
            for (long j = 0; j < n; j++)
                c[i * n + j] = 0.0;
            for (long k = 0; k < n; k++) {
                double aik = a[i * n + k];
                for (long j = 0; j < n; j++)
                    c[i * n + j] += aik * b[k * n + j];
            }
        }
        for (long i = 0; i < n * n; i++)
            checksum += c[i] * (double)((i % 7) + 1);
        a[r % (n * n)] += 0.5;
    }
    double trace = 0.0;
    for (long i = 0; i < n; i++)
        trace += c[i * n + i];
    printf("n=%ld repeat=%ld trace=%.17g checksum=%.17g c[last]=%.17g\n", n, repeat, trace, checksum,
           c[n * n - 1]);
    free(a);
    free(b);
    free(c);
    return 0;
}
