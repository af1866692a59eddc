/* bench_sieve (heavy): sieve of Eratosthenes up to LIMIT (argv[1], default 2000000); prints the
 * prime count, the largest prime and a checksum of all primes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    long limit = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    if (limit < 2) {
        fprintf(stderr, "usage: bench_sieve [LIMIT>=2]\n");
        return 2;
    }
    unsigned char *composite = malloc((size_t)limit + 1);
    if (!composite) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(composite, 0, (size_t)limit + 1);
    for (long p = 2; p * p <= limit; p++)
        if (!composite[p])
            for (long m = p * p; m <= limit; m += p)
                composite[m] = 1;
    long count = 0;
    long largest = 0;
    uint64_t checksum = 0;
    for (long i = 2; i <= limit; i++) {
        if (!composite[i]) {
            count++;
            largest = i;
            checksum = checksum * 1000003u + (uint64_t)i;
        }
    }
    printf("limit=%ld primes=%ld largest=%ld checksum=%016llx\n", limit, count, largest,
           (unsigned long long)checksum);
    free(composite);
    return 0;
}
