/* stdio_interleave: stdout/stderr buffering against raw write(2).
 *
 * The harness captures stdout and stderr through pipes, so stdout is fully
 * buffered and stderr unbuffered: the order of bytes within stdout depends
 * on where fflush is called relative to write(1, ...), which a VM must
 * reproduce exactly. Ends with unflushed stdout data that exit() flushes.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void raw(int fd, const char *text)
{
    ssize_t written = write(fd, text, strlen(text));
    (void)written;
}

int main(void)
{
    for (int i = 0; i < 5; i++) {
        printf("stdout line %d\n", i);
        fprintf(stderr, "stderr line %d\n", i);
        if (i % 2 == 0)
            fflush(stdout);
    }
    printf("buffered before raw write\n");
    raw(1, "raw write to fd 1\n");
    raw(2, "raw write to fd 2\n");
    fflush(stdout);
    printf("after flush\n");
    fflush(stdout);

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("line buffered: partial ");
    raw(1, "[raw]");
    printf("completed\n");
    raw(1, "\n");

    fputs("stderr without newline, ", stderr);
    fputs("then the rest\n", stderr);
    for (int i = 0; i < 3000; i++)
        printf("%d%c", i, i % 25 == 24 ? '\n' : ' ');
    printf("tail without newline");
    return 3;
}
