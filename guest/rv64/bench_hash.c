/* bench_hash (heavy): integer hashing throughput: xorshift64* generation, FNV-1a and a
 * multiply-rotate mix over a buffer, repeated ROUNDS times (argv[1], default 40).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define BUFFER_BYTES 65536

static uint64_t xorshift64star(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 40;
    if (rounds < 1) {
        fprintf(stderr, "usage: bench_hash [ROUNDS>=1]\n");
        return 2;
    }
    static unsigned char buffer[BUFFER_BYTES];
    uint64_t state = 0x853C49E6748FEA9Bull;
    uint64_t fnv = 0xCBF29CE484222325ull;
    uint64_t mix = 0;
    uint32_t fnv32 = 2166136261u;
    for (long round = 0; round < rounds; round++) {
        for (size_t i = 0; i < BUFFER_BYTES; i += 8) {
            uint64_t v = xorshift64star(&state);
            for (int b = 0; b < 8; b++)
                buffer[i + (size_t)b] = (unsigned char)(v >> (8 * b));
        }
        for (size_t i = 0; i < BUFFER_BYTES; i++) {
            fnv = (fnv ^ buffer[i]) * 0x100000001B3ull;
            fnv32 = (fnv32 ^ buffer[i]) * 16777619u;
        }
        for (size_t i = 0; i < BUFFER_BYTES; i += 8) {
            uint64_t word = 0;
            for (int b = 0; b < 8; b++)
                word |= (uint64_t)buffer[i + (size_t)b] << (8 * b);
            mix = rotl(mix ^ word, 27) * 0x9E3779B97F4A7C15ull + (uint64_t)round;
        }
    }
    printf("rounds=%ld fnv64=%016llx fnv32=%08x mix=%016llx state=%016llx\n", rounds, (unsigned long long)fnv,
           fnv32, (unsigned long long)mix, (unsigned long long)state);
    return 0;
}
