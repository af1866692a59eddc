/* strings: <string.h> and <stdlib.h> string routines at many lengths and alignments.
 *
 * glibc's RISC-V string functions are word-at-a-time, so lengths and
 * misalignments around 8 bytes matter; results are folded into checksums.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Truncation by snprintf and strncat is what some checks below test. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#pragma GCC diagnostic ignored "-Wstringop-truncation"

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static uint32_t fold(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

int main(void)
{
    static unsigned char source[300];
    static unsigned char dest[300];
    static char text[200];
    for (size_t i = 0; i < sizeof source; i++)
        source[i] = (unsigned char)(i * 37 + 11);

    uint32_t h = 2166136261u;
    for (size_t offset = 0; offset < 9; offset++) {
        for (size_t len = 0; len < 70; len += 3) {
            memset(text, 'x', sizeof text);
            text[offset + len] = '\0';
            h = h * 31 + (uint32_t)strlen(text + offset);
            memset(dest, 0, sizeof dest);
            memcpy(dest + (offset * 3) % 8, source + offset, len);
            h = fold(h, dest, 100);
        }
    }
    printf("strlen/memcpy checksum %08x\n", h);

    /* memmove with overlaps in both directions and at several distances. */
    h = 2166136261u;
    for (size_t distance = 1; distance < 20; distance += 3) {
        for (size_t len = 1; len < 120; len += 17) {
            memcpy(dest, source, sizeof dest);
            memmove(dest + distance, dest, len);
            h = fold(h, dest, 160);
            memcpy(dest, source, sizeof dest);
            memmove(dest, dest + distance, len);
            h = fold(h, dest, 160);
        }
    }
    printf("memmove checksum %08x\n", h);
    char overlap[] = "0123456789abcdef";
    memmove(overlap + 3, overlap, 10);
    printf("memmove forward: %s\n", overlap);
    memmove(overlap, overlap + 5, 11);
    printf("memmove backward: %s\n", overlap);

    static const char *const words[] = {"", "a", "ab", "abc", "abd", "abcdefgh", "abcdefghi", "abcdefgi", "B", "\xff"};
    size_t nwords = sizeof words / sizeof words[0];
    printf("strcmp signs:");
    for (size_t i = 0; i < nwords; i++)
        for (size_t j = 0; j < nwords; j++)
            printf("%c", "<=>"[sign(strcmp(words[i], words[j])) + 1]);
    printf("\nstrncmp(abcdefgh, abcdefgi, 7)=%d memcmp(\\xff, a)=%d\n",
           sign(strncmp("abcdefgh", "abcdefgi", 7)), sign(memcmp("\xff", "a", 1)));

    const char *haystack = "the quick brown fox jumps over the lazy dog";
    printf("strchr o at %td, strrchr o at %td, strstr 'the' last at %td, memchr z at %td, strspn %zu strcspn %zu\n",
           strchr(haystack, 'o') - haystack, strrchr(haystack, 'o') - haystack,
           strstr(haystack + 1, "the") - haystack, (const char *)memchr(haystack, 'z', 43) - haystack,
           strspn(haystack, "the "), strcspn(haystack, "xyz"));

    static const struct {
        const char *text;
        int base;
    } numbers[] = {
        {"12345", 10}, {"  -42xyz", 10}, {"0x1F", 0}, {"0755", 0}, {"0b101", 0}, {"1010", 2}, {"zz", 36},
        {"9223372036854775807", 10}, {"9223372036854775808", 10}, {"-9223372036854775809", 10}, {"", 10},
        {"+7", 8}, {"0x", 16}, {"ffffffffffffffff", 16},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char *end;
        errno = 0;
        long value = strtol(numbers[i].text, &end, numbers[i].base);
        int err = errno;
        errno = 0;
        unsigned long uvalue = strtoul(numbers[i].text, NULL, numbers[i].base);
        printf("strtol(\"%s\", %d) = %ld end+%td errno=%d strtoul=%lu errno=%d\n", numbers[i].text,
               numbers[i].base, value, end - numbers[i].text, err, uvalue, errno);
    }

    static const char *const reals[] = {"3.14159", "-0.0", "1e-400", "1e310", "0x1.8p3", "inf", "-nan",
                                        "  2.5e+3kg", "4.9406564584124654e-324", ".5", "1e", "nonsense"};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        char *end;
        errno = 0;
        double value = strtod(reals[i], &end);
        printf("strtod(\"%s\") = %.17g (%a) end+%td errno=%d strtof=%.9g\n", reals[i], value, value,
               end - reals[i], errno, (double)strtof(reals[i], NULL));
    }

    char small[8];
    int needed = snprintf(small, sizeof small, "%s-%d-%x", "value", 123456, 0xBEEF);
    printf("snprintf needed=%d got='%s'\n", needed, small);
    needed = snprintf(NULL, 0, "%08.3f|%-6s|%+d|%lld", 3.14159, "ab", 5, LLONG_MIN);
    char exact[64];
    snprintf(exact, sizeof exact, "%08.3f|%-6s|%+d|%lld", 3.14159, "ab", 5, LLONG_MIN);
    printf("snprintf(NULL) needed=%d text='%s'\n", needed, exact);

    char copy[16];
    strncpy(copy, "abc", sizeof copy);
    printf("strncpy pads: %d %d\n", copy[3], copy[15]);
    char *dup = strdup(haystack);
    char *save = NULL;
    printf("strtok_r:");
    for (char *tok = strtok_r(dup, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        printf(" [%s]", tok);
    printf("\n");
    free(dup);
    char joined[64] = "left";
    strcat(joined, "+right");
    strncat(joined, "+more-text", 5);
    printf("strcat: %s (%zu)\n", joined, strlen(joined));
    return 0;
}
