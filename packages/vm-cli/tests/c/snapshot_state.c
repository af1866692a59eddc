/* snapshot_state: kernel-side state that a snapshot must carry across processes.
 *
 * Keeps files open across a long computation (a log written through an fd
 * and its dup, an O_APPEND file, an input file read piece by piece, a
 * directory fd used with openat), changes directory, umask, the blocked
 * signal mask, a SIGUSR1 handler and an alternate signal stack, and leaves
 * a pending signal blocked; at the end it reports what it sees, so a
 * snapshot taken anywhere in between must have kept all of it.
 * With the argument "pipe" it also holds a pipe open (which snapshots refuse).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static char altstack[65536];

static void on_usr1(int signo)
{
    char here = 0;
    uintptr_t at = (uintptr_t)&here, base = (uintptr_t)altstack;
    handled = signo + 1000 * (here == 0 && at >= base && at < base + sizeof altstack);
}

static unsigned long work(unsigned long seed, int rounds)
{
    for (int i = 0; i < rounds; i++)
        seed = seed * 6364136223846793005UL + 1442695040888963407UL + (seed >> 29);
    return seed;
}

int main(int argc, char **argv)
{
    int pipefd[2] = {-1, -1};
    if (argc > 1 && strcmp(argv[1], "pipe") == 0 && pipe(pipefd) != 0)
        return 2;
    umask(027);
    if (mkdir("dir", 0755) != 0 || chdir("dir") != 0)
        return 3;
    FILE *input = fopen("input.txt", "w");
    for (int i = 0; i < 40; i++)
        fprintf(input, "input line %d\n", i);
    fclose(input);

    int log = open("log.txt", O_CREAT | O_WRONLY | O_TRUNC, 0666);
    int log2 = dup(log);
    int app = open("append.txt", O_CREAT | O_WRONLY | O_APPEND, 0644);
    int in = open("input.txt", O_RDONLY);
    int dirfd = open(".", O_RDONLY | O_DIRECTORY);
    if (log < 0 || log2 < 0 || app < 0 || in < 0 || dirfd < 0)
        return 4;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1); /* stays pending while blocked */

    unsigned long seed = 1;
    char buf[64];
    for (int round = 0; round < 20; round++) {
        seed = work(seed, 3000);
        int n = snprintf(buf, sizeof buf, "round %d seed %016lx\n", round, seed);
        if (write(round % 2 ? log2 : log, buf, (size_t)n) != n)
            return 5;
        lseek(app, 0, SEEK_SET);
        if (write(app, buf, 9) != 9)
            return 6;
        char line[16];
        ssize_t got = read(in, line, sizeof line);
        printf("round %d: read %zd bytes: %.*s|\n", round, got, (int)(got > 0 ? got : 0), line);
        fflush(stdout);
        if (round == 10) {
            int made = openat(dirfd, "made_at.txt", O_CREAT | O_WRONLY | O_EXCL, 0666);
            if (made < 0 || write(made, "openat\n", 7) != 7 || close(made) != 0)
                return 7;
            fprintf(stderr, "stderr at round %d\n", round);
        }
    }
    printf("log offset %ld, log2 offset %ld, input offset %ld\n", (long)lseek(log, 0, SEEK_CUR),
           (long)lseek(log2, 0, SEEK_CUR), (long)lseek(in, 0, SEEK_CUR));
    printf("append flags %s\n", (fcntl(app, F_GETFL) & O_APPEND) ? "O_APPEND" : "none");
    sigset_t pending;
    sigpending(&pending);
    printf("SIGUSR1 pending before unblock: %d, handled: %d\n", sigismember(&pending, SIGUSR1), (int)handled);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    printf("handled after unblock: %d\n", (int)handled);
    mode_t old = umask(0);
    char cwd[256];
    printf("umask %03o cwd ends with /dir: %d\n", old, getcwd(cwd, sizeof cwd) && strlen(cwd) >= 4 &&
           strcmp(cwd + strlen(cwd) - 4, "/dir") == 0);
    printf("pipe fds %d %d\n", pipefd[0], pipefd[1]);
    return 0;
}
