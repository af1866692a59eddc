/* A tiny JIT: keeps generating new machine code into an RWX mapping and running it.
 *
 * Each round writes one fresh page of small RISC-V functions (different
 * immediates and lengths every time), makes them visible to instruction
 * fetch with fence.i, then calls each function three times. Pages are
 * reused only after the whole buffer has been written (then the old code
 * on them is overwritten: self-modifying code). Prints a checksum per 16
 * rounds and at the end; usage: jit_codegen ROUNDS [BUFFER_PAGES].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PAGE 4096u
#define SLOT 128u /* bytes per generated function: 32 instruction words */
#define FUNCS_PER_PAGE (PAGE / SLOT)

typedef uint64_t (*fn_t)(uint64_t);

static uint32_t i_type(uint32_t op, uint32_t f3, uint32_t rd, uint32_t rs1, int32_t imm) {
    return ((uint32_t)(imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}

static uint32_t r_type(uint32_t f7, uint32_t rs2, uint32_t rs1, uint32_t f3, uint32_t rd, uint32_t op) {
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}

/* f(x): repeat n times { x += c; x ^= d; x += x << s }, return x */
static void emit_function(uint32_t *code, uint32_t seed) {
    uint32_t n = 1 + seed % 7, k = 0;
    for (uint32_t r = 0; r < n; r++) {
        int32_t c = (int32_t)((seed * 2654435761u + r * 40503u) % 4096u) - 2048;
        int32_t d = (int32_t)((seed * 97u + r * 31u) % 2048u);
        uint32_t s = 1 + (seed + r) % 13;
        code[k++] = i_type(0x13, 0, 10, 10, c);        /* addi a0, a0, c */
        code[k++] = i_type(0x13, 4, 10, 10, d);        /* xori a0, a0, d */
        code[k++] = i_type(0x13, 1, 11, 10, (int32_t)s); /* slli a1, a0, s */
        code[k++] = r_type(0, 11, 10, 0, 10, 0x33);    /* add a0, a0, a1 */
    }
    code[k++] = 0x00008067; /* ret */
}

static uint64_t reference(uint32_t seed, uint64_t x) {
    uint32_t n = 1 + seed % 7;
    for (uint32_t r = 0; r < n; r++) {
        int64_t c = (int64_t)((seed * 2654435761u + r * 40503u) % 4096u) - 2048;
        uint64_t d = (seed * 97u + r * 31u) % 2048u;
        uint32_t s = 1 + (seed + r) % 13;
        x += (uint64_t)c;
        x ^= d;
        x += x << s;
    }
    return x;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 64;
    long pages = argc > 2 ? atol(argv[2]) : 64;
    if (rounds < 1 || pages < 1) {
        fprintf(stderr, "usage: jit_codegen ROUNDS [BUFFER_PAGES]\n");
        return 2;
    }
    uint8_t *buffer = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint64_t checksum = 0, mismatches = 0;
    for (long round = 0; round < rounds; round++) {
        uint8_t *page = buffer + (size_t)(round % pages) * PAGE;
        for (uint32_t f = 0; f < FUNCS_PER_PAGE; f++)
            emit_function((uint32_t *)(page + f * SLOT), (uint32_t)(round * FUNCS_PER_PAGE + f));
        __asm__ volatile("fence.i" ::: "memory");
        for (uint32_t f = 0; f < FUNCS_PER_PAGE; f++) {
            fn_t fn = (fn_t)(uintptr_t)(page + f * SLOT);
            uint32_t seed = (uint32_t)(round * FUNCS_PER_PAGE + f);
            for (uint64_t call = 0; call < 3; call++) {
                uint64_t x = checksum + call * 0x9e3779b97f4a7c15ull;
                uint64_t y = fn(x);
                mismatches += y != reference(seed, x);
                checksum = checksum * 31 + y;
            }
        }
        if (round % 16 == 15)
            printf("round %ld checksum %016llx\n", round + 1, (unsigned long long)checksum);
    }
    printf("rounds %ld functions %ld checksum %016llx mismatches %llu\n", rounds, rounds * (long)FUNCS_PER_PAGE,
           (unsigned long long)checksum, (unsigned long long)mismatches);
    return mismatches != 0;
}
