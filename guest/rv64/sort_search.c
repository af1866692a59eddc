/* sort_search: qsort of ints, doubles and strings, then bsearch for present and absent keys. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t xorshift64(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a;
    int y = *(const int *)b;
    return (x > y) - (x < y);
}

static int compare_doubles_descending(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x < y) - (x > y);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define NINTS 2000
#define NDOUBLES 500
#define NWORDS 64

int main(void)
{
    static int ints[NINTS];
    static double doubles[NDOUBLES];
    static char word_storage[NWORDS][12];
    static const char *words[NWORDS];

    for (int i = 0; i < NINTS; i++)
        ints[i] = (int)(xorshift64() % 100000) - 50000;
    qsort(ints, NINTS, sizeof ints[0], compare_ints);
    uint64_t checksum = 0;
    int sorted = 1;
    for (int i = 0; i < NINTS; i++) {
        checksum = checksum * 31 + (uint32_t)ints[i];
        if (i > 0 && ints[i - 1] > ints[i])
            sorted = 0;
    }
    printf("ints sorted=%d min=%d max=%d median=%d checksum=%016llx\n", sorted, ints[0], ints[NINTS - 1],
           ints[NINTS / 2], (unsigned long long)checksum);

    int found = 0;
    int missing = 0;
    for (int key = -50000; key < 50000; key += 37) {
        int *hit = bsearch(&key, ints, NINTS, sizeof ints[0], compare_ints);
        if (hit) {
            found++;
            if (*hit != key)
                printf("bsearch returned a wrong element for %d\n", key);
        } else {
            missing++;
        }
    }
    printf("bsearch found=%d missing=%d\n", found, missing);
    int probes[] = {ints[0], ints[NINTS - 1], ints[777], -50001, 50000};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        int *hit = bsearch(&probes[i], ints, NINTS, sizeof ints[0], compare_ints);
        printf("probe %d -> %s\n", probes[i], hit ? "found" : "absent");
    }

    for (int i = 0; i < NDOUBLES; i++)
        doubles[i] = (double)(int64_t)(xorshift64() >> 11) / 9007199254740992.0 - 0.5;
    qsort(doubles, NDOUBLES, sizeof doubles[0], compare_doubles_descending);
    printf("doubles first=%.17g last=%.17g mid=%.17g\n", doubles[0], doubles[NDOUBLES - 1], doubles[NDOUBLES / 2]);

    for (int i = 0; i < NWORDS; i++) {
        int len = 3 + (int)(xorshift64() % 8);
        for (int j = 0; j < len; j++)
            word_storage[i][j] = (char)('a' + xorshift64() % 26);
        word_storage[i][len] = '\0';
        words[i] = word_storage[i];
    }
    qsort(words, NWORDS, sizeof words[0], compare_strings);
    for (int i = 0; i < NWORDS; i++)
        printf("%s%c", words[i], (i % 8 == 7) ? '\n' : ' ');
    const char *key = word_storage[5];
    const char **hit = bsearch(&key, words, NWORDS, sizeof words[0], compare_strings);
    printf("word %s %s\n", key, hit ? "found" : "absent");
    const char *absent = "zzzzzzzzzzzz";
    hit = bsearch(&absent, words, NWORDS, sizeof words[0], compare_strings);
    printf("word %s %s\n", absent, hit ? "found" : "absent");
    return 0;
}
