/* execve/execveat chains of this program with argv/envp, O_CLOEXEC, signal dispositions across exec,
 * #! scripts in the working directory (interpreter + one argument, nesting), and exec failures' errnos. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *self;

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the environment sorted: qemu-user hands it to the guest in reverse order, Linux (and vm) in order */
static void show_args(const char *stage, int argc, char **argv) {
    printf("%s: argc %d", stage, argc);
    for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
    printf("\n");
    char *env[64];
    int n = 0;
    for (char **e = environ; *e && n < 64; e++) env[n++] = *e;
    qsort(env, n, sizeof env[0], by_string);
    for (int i = 0; i < n; i++) printf("%s: env %s\n", stage, env[i]);
    fflush(stdout);
}

/* execveat, or where the kernel (qemu-user 7.2) has none, execve of the same file with the same vectors */
static void exec_at(int dirfd, const char *path, const char *fallback, char **argv, char **envp, int flags) {
    syscall(SYS_execveat, dirfd, path, argv, envp, flags);
    if (errno == ENOSYS) execve(fallback, argv, envp);
    perror("execveat");
    exit(1);
}

static void on_usr2(int sig) { (void)sig; }

static void write_file(const char *name, const char *text, mode_t mode) {
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) { perror(name); exit(1); }
    close(fd);
}

static void expect_failure(const char *what, const char *path, char *const argv[]) {
    char *envp[] = {NULL};
    errno = 0;
    int r = execve(path, argv, envp);
    printf("%s: %d %s\n", what, r, strerror(errno));
}

static void failures(void) {
    char *argv[] = {(char *)"x", NULL};
    expect_failure("missing file", "./does-not-exist", argv);
    expect_failure("directory", ".", argv);
    expect_failure("empty path", "", argv);
    write_file("plain", "just text\n", 0644);
    expect_failure("not a directory", "./plain/x", argv);
    expect_failure("not executable", "./plain", argv);
    write_file("garbage", "\x01\x02 not a program\n", 0755);
    expect_failure("unknown format", "./garbage", argv);
    write_file("empty-shebang", "#!\n", 0755);
    expect_failure("empty #! line", "./empty-shebang", argv);
    write_file("blank-shebang", "#!   \t \nexit 0\n", 0755);
    expect_failure("blank #! line", "./blank-shebang", argv);
    write_file("lost-interpreter", "#!/no/such/interpreter arg\n", 0755);
    expect_failure("missing interpreter", "./lost-interpreter", argv);
    /* seven scripts, each the interpreter of the one before: past the kernel's nesting limit */
    for (int i = 1; i <= 7; i++) {
        char name[16], text[64];
        snprintf(name, sizeof name, "nest%d", i);
        if (i < 7) snprintf(text, sizeof text, "#!./nest%d\n", i + 1);
        else snprintf(text, sizeof text, "#!%s\n", self);
        write_file(name, text, 0755);
    }
    expect_failure("nested scripts", "./nest1", argv);
    errno = 0;
    long r = syscall(SYS_execve, "./plain", (char **)8, NULL);
    printf("bad argv pointer: %ld %s\n", r, strerror(errno));
    fflush(stdout);
}

static void stage_start(void) {
    failures();
    /* descriptors: 10 closes at exec, 11 stays */
    int a = open("/dev/null", O_RDONLY | O_CLOEXEC), b = open("/dev/null", O_RDONLY);
    dup3(a, 10, O_CLOEXEC);
    dup2(b, 11);
    close(a);
    close(b);
    /* dispositions: ignored stays ignored, a handler goes back to the default, the mask stays */
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, on_usr2);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    char *argv[] = {(char *)self, (char *)"second", (char *)"two words", (char *)"", NULL};
    char *envp[] = {(char *)"A=1", (char *)"B=two words", (char *)"EMPTY=", NULL};
    execve(self, argv, envp);
    perror("execve");
    exit(1);
}

static void stage_second(int argc, char **argv) {
    show_args("second", argc, argv);
    printf("second: fd 10 %s, fd 11 %s\n", fcntl(10, F_GETFD) < 0 ? "closed" : "open",
           fcntl(11, F_GETFD) < 0 ? "closed" : "open");
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    printf("second: SIGUSR1 %s\n", sa.sa_handler == SIG_IGN ? "ignored" : "not ignored");
    sigaction(SIGUSR2, NULL, &sa);
    printf("second: SIGUSR2 %s\n", sa.sa_handler == SIG_DFL ? "default" : "handled");
    sigset_t set;
    sigprocmask(SIG_BLOCK, NULL, &set);
    printf("second: SIGHUP %s\n", sigismember(&set, SIGHUP) ? "blocked" : "not blocked");
    fflush(stdout);
    /* execveat relative to a directory descriptor */
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    char script[4200];
    snprintf(script, sizeof script, "#!%s  -s  one arg  \n", self);
    write_file("script.sh", script, 0755);
    char *next[] = {(char *)"ignored-argv0", (char *)"after", NULL};
    char *envp[] = {(char *)"STAGE=script", NULL};
    exec_at(dir, "script.sh", "./script.sh", next, envp, 0);
}

static void stage_script(int argc, char **argv) {
    /* argv: interpreter, its one argument ("-s  one arg"), the script path as given (execveat: /dev/fd/N/...),
     * then argv[1:] */
    size_t len = strlen(argv[2]);
    printf("script: argc %d argv1 [%s] argv2 ends in script.sh %d argv3 [%s] argv0 is self %d\n", argc, argv[1],
           len >= 9 && !strcmp(argv[2] + len - 9, "script.sh"), argc > 3 ? argv[3] : "-", strcmp(argv[0], self) == 0);
    fflush(stdout);
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    char *next[] = {(char *)"fd-exec", (char *)"last", NULL};
    char *envp[] = {(char *)"STAGE=fd", NULL};
    exec_at(fd, "", self, next, envp, AT_EMPTY_PATH);
}

static void stage_last(int argc, char **argv) {
    show_args("last", argc, argv);
    printf("last: argv0 [%s]\n", argv[0]);
    /* exec in a child: the parent waits and sees the exec'd program's exit status */
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char *next[] = {(char *)self, (char *)"exit", (char *)"7", NULL};
        execve(self, next, environ);
        _exit(100);
    }
    int st;
    waitpid(p, &st, 0);
    printf("last: child exec'd and exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(int argc, char **argv) {
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    self = path;
    if (argc < 2) stage_start();
    else if (!strcmp(argv[1], "second")) stage_second(argc, argv);
    else if (!strcmp(argv[1], "-s  one arg")) stage_script(argc, argv);
    else if (!strcmp(argv[1], "last")) stage_last(argc, argv);
    else if (!strcmp(argv[1], "exit")) return atoi(argv[2]);
    return 0;
}
