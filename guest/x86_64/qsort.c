/* qsort and bsearch over pseudo-random integers and strings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_value(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    enum { N = 200000 };
    int64_t *v = malloc(N * sizeof *v);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; v[i] = (int64_t)(s % 1000003) - 500000; }
    qsort(v, N, sizeof *v, by_value);
    uint64_t h = 0;
    for (int i = 0; i < N; i++) h = h * 1000003 + (uint64_t)v[i];
    int64_t key = v[N / 3];
    int64_t *hit = bsearch(&key, v, N, sizeof *v, by_value);
    printf("min %lld max %lld median %lld hash %llu found %d\n", (long long)v[0], (long long)v[N - 1],
           (long long)v[N / 2], (unsigned long long)h, hit != NULL && *hit == key);
    static char storage[500][16];
    char *words[500];
    for (int i = 0; i < 500; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        snprintf(storage[i], sizeof storage[i], "w%06llu", (unsigned long long)(s % 999999));
        words[i] = storage[i];
    }
    qsort(words, 500, sizeof *words, by_string);
    printf("first %s last %s\n", words[0], words[499]);
    free(v);
    return 0;
}
