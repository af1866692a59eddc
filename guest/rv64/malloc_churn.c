/* malloc_churn: malloc/realloc/calloc/free churn with content checks and a checksum.
 *
 * Small blocks exercise brk-backed arenas; one large block (above glibc's
 * mmap threshold) goes through mmap, is grown with realloc (mremap) and
 * freed (munmap). Only contents are printed, never addresses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 256
#define ROUNDS 4000

static uint64_t rng_state = 88172645463325252ull;

static uint64_t xorshift64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct slot {
    unsigned char *data;
    size_t size;
    unsigned char tag;
};

static int check_block(const struct slot *s)
{
    /* Check both ends and a stride through the middle. */
    size_t step = s->size / 8 + 1;
    for (size_t i = 0; i < s->size; i += step)
        if (s->data[i] != (unsigned char)(s->tag + i))
            return 0;
    return s->data[s->size - 1] == (unsigned char)(s->tag + s->size - 1);
}

static void fill_block(struct slot *s)
{
    for (size_t i = 0; i < s->size; i++)
        s->data[i] = (unsigned char)(s->tag + i);
}

int main(void)
{
    static struct slot slots[SLOTS];
    uint64_t checksum = 1469598103934665603ull;
    unsigned mallocs = 0, reallocs = 0, frees = 0, callocs = 0, bad = 0;

    for (int round = 0; round < ROUNDS; round++) {
        uint64_t r = xorshift64();
        struct slot *s = &slots[r % SLOTS];
        if (!s->data) {
            s->size = 1 + (size_t)((r >> 16) % 200);
            s->tag = (unsigned char)(r >> 40);
            if ((r >> 60) == 0) {
                s->data = calloc(s->size, 1);
                callocs++;
                for (size_t i = 0; i < s->size; i++)
                    if (s->data[i] != 0)
                        bad++;
            } else {
                s->data = malloc(s->size);
                mallocs++;
            }
            fill_block(s);
        } else {
            if (!check_block(s))
                bad++;
            checksum = (checksum ^ s->data[s->size / 2] ^ s->size) * 1099511628211ull;
            if ((r >> 32) % 3 == 0) {
                size_t old = s->size;
                size_t new_size = 1 + (size_t)((r >> 20) % 400);
                s->data = realloc(s->data, new_size);
                reallocs++;
                size_t keep = old < new_size ? old : new_size;
                for (size_t i = 0; i < keep; i++)
                    if (s->data[i] != (unsigned char)(s->tag + i))
                        bad++;
                s->size = new_size;
                fill_block(s);
            } else {
                free(s->data);
                s->data = NULL;
                frees++;
            }
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].data) {
            if (!check_block(&slots[i]))
                bad++;
            checksum = (checksum ^ slots[i].size) * 1099511628211ull;
            free(slots[i].data);
        }
    }
    printf("small: mallocs=%u callocs=%u reallocs=%u frees=%u bad=%u checksum=%016llx\n", mallocs, callocs,
           reallocs, frees, bad, (unsigned long long)checksum);

    /* A large block: mmap-backed. Touch one byte per page. */
    size_t big = 8u << 20;
    unsigned char *block = malloc(big);
    if (!block) {
        printf("large malloc failed\n");
        return 1;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < big; i += 4096)
        block[i] = (unsigned char)(i >> 12);
    block[big - 1] = 0xA5;
    unsigned char *grown = realloc(block, 2 * big);
    if (!grown) {
        printf("large realloc failed\n");
        return 1;
    }
    for (size_t i = big; i < 2 * big; i += 4096)
        grown[i] = (unsigned char)(i >> 13);
    for (size_t i = 0; i < 2 * big; i += 4096)
        sum = sum * 131 + grown[i];
    printf("large: size=%zu last=%#x sum=%016llx\n", 2 * big, grown[big - 1], (unsigned long long)sum);
    free(grown);

    /* A zero-filled large calloc: fresh mmap pages must read as zero. */
    unsigned long *zeros = calloc(1u << 18, sizeof *zeros);
    unsigned long nonzero = 0;
    for (size_t i = 0; i < (1u << 18); i += 512)
        nonzero += zeros[i] != 0;
    printf("large calloc nonzero=%lu\n", nonzero);
    free(zeros);
    return bad != 0;
}
