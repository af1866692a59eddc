/* malloc/realloc/free from a few bytes to many megabytes (brk, mmap, mremap, munmap). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    uint64_t sum = 0;
    unsigned char *block = NULL;
    size_t size = 1;
    for (int round = 0; round < 26; round++) {
        size_t old = size;
        size = size * 2 + 3;
        block = realloc(block, size);
        if (!block) { puts("realloc failed"); return 1; }
        memset(block + (round ? old : 0), round + 1, size - (round ? old : 0));
        for (size_t i = 0; i < size; i += 4093) sum = sum * 31 + block[i];
    }
    printf("grew to %zu bytes, checksum %llu\n", size, (unsigned long long)sum);
    free(block);
    void *small[1000];
    for (int i = 0; i < 1000; i++) { small[i] = malloc((size_t)(i * 37 % 500) + 1); memset(small[i], i, 1); }
    for (int i = 0; i < 1000; i += 2) free(small[i]);
    for (int i = 1; i < 1000; i += 2) sum += *(unsigned char *)small[i];
    for (int i = 1; i < 1000; i += 2) free(small[i]);
    char *big = calloc(64, 1 << 20);
    if (!big) { puts("calloc failed"); return 1; }
    for (size_t i = 0; i < (size_t)64 << 20; i += 1 << 16) sum += (unsigned char)big[i];
    free(big);
    printf("final checksum %llu\n", (unsigned long long)sum);
    return 0;
}
