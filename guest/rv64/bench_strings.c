/* bench_strings (heavy): libc string work: formatting words with snprintf, sorting them with qsort
 * and strcmp, joining them with memcpy/strlen and counting tokens with strtok_r.
 * argv[1]: the number of words (default 20000). Prints a checksum of the sorted text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    if (count < 1 || count > 10000000) {
        fprintf(stderr, "usage: bench_strings [WORDS in 1..10000000]\n");
        return 2;
    }
    char **words = malloc((size_t)count * sizeof *words);
    uint64_t state = 88172645463325252ull;
    for (long i = 0; i < count; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        char buffer[48];
        int length = snprintf(buffer, sizeof buffer, "w%llx-%ld", (unsigned long long)(state % 1000003), i % 97);
        words[i] = malloc((size_t)length + 1);
        memcpy(words[i], buffer, (size_t)length + 1);
    }
    qsort(words, (size_t)count, sizeof *words, compare);
    size_t total = 0;
    for (long i = 0; i < count; i++)
        total += strlen(words[i]) + 1;
    char *text = malloc(total + 1);
    char *end = text;
    for (long i = 0; i < count; i++) {
        size_t length = strlen(words[i]);
        memcpy(end, words[i], length);
        end[length] = ' ';
        end += length + 1;
        free(words[i]);
    }
    *end = '\0';
    uint32_t hash = 2166136261u;
    long tokens = 0;
    char *saved = NULL;
    for (char *token = strtok_r(text, " ", &saved); token; token = strtok_r(NULL, " ", &saved)) {
        tokens++;
        for (const char *c = token; *c; c++)
            hash = (hash ^ (unsigned char)*c) * 16777619u;
    }
    printf("words=%ld tokens=%ld bytes=%zu hash=%08x\n", count, tokens, total, hash);
    free(text);
    free(words);
    return 0;
}
