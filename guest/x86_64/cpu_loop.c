/* A CPU-bound loop (no system calls inside): xorshift and multiply-add over argv[1] million rounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long rounds = (argc > 1 ? atol(argv[1]) : 20) * 1000000L;
    uint64_t s = 0x9E3779B97F4A7C15ull, acc = 0;
    for (long i = 0; i < rounds; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        acc = acc * 6364136223846793005ull + (s >> 11);
    }
    printf("%ld rounds: %llu\n", rounds, (unsigned long long)acc);
    return 0;
}
