/* Guest processes: fork trees with pipes, exit statuses, WNOHANG, waitid, wait4, SIGCHLD, zombies, orphans.
 * Only the first process prints; the others report through pipes and exit statuses. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t chld_count, chld_code, chld_status;
static volatile pid_t chld_pid;

static void on_chld(int sig, siginfo_t *info, void *ctx) {
    (void)sig; (void)ctx;
    chld_count++;
    chld_code = info->si_code;
    chld_status = info->si_status;
    chld_pid = info->si_pid;
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status)) printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) printf("%s: killed by %d core %d\n", what, WTERMSIG(status), WCOREDUMP(status) ? 1 : 0);
    else if (WIFSTOPPED(status)) printf("%s: stopped by %d\n", what, WSTOPSIG(status));
    else if (WIFCONTINUED(status)) printf("%s: continued\n", what);
    else printf("%s: status %#x\n", what, status);
}

static void tree(void) {
    /* three children, each forks a grandchild; every grandchild writes a line into one pipe, children exit 10+i */
    int fds[2];
    if (pipe(fds)) { perror("pipe"); exit(1); }
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        fflush(stdout);
        kids[i] = fork();
        if (kids[i] == 0) {
            close(fds[0]);
            pid_t g = fork();
            if (g == 0) {
                char line[32];
                int n = snprintf(line, sizeof line, "grandchild %d\n", i);
                if (write(fds[1], line, n) != n) _exit(99);
                _exit(20 + i);
            }
            int st;
            if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 20 + i) _exit(98);
            _exit(10 + i);
        }
    }
    close(fds[1]);
    char buf[256];
    size_t got = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0) got += n;
    buf[got] = 0;
    close(fds[0]);
    /* the grandchildren's lines may come in any order: count them */
    int lines = 0;
    for (size_t i = 0; i < got; i++) lines += buf[i] == '\n';
    printf("tree: %d lines, %zu bytes from grandchildren\n", lines, got);
    for (int i = 2; i >= 0; i--) {
        int st;
        pid_t w = waitpid(kids[i], &st, 0);
        printf("child %d: waited %s, ", i, w == kids[i] ? "ok" : "wrong");
        describe("status", st);
    }
}

static void nohang_and_waitid(void) {
    int fds[2];
    if (pipe(fds)) exit(1);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char c;
        close(fds[1]);
        if (read(fds[0], &c, 1) != 1) _exit(97);
        _exit(c);
    }
    close(fds[0]);
    int st = -1;
    printf("WNOHANG before exit: %d\n", (int)waitpid(p, &st, WNOHANG));
    siginfo_t si;
    memset(&si, 0x55, sizeof si);
    int r = waitid(P_PID, p, &si, WEXITED | WNOHANG);
    printf("waitid WNOHANG: %d si_pid %d si_signo %d\n", r, (int)si.si_pid, si.si_signo);
    if (write(fds[1], "\x2a", 1) != 1) exit(1);
    close(fds[1]);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, p, &si, WEXITED | WNOWAIT);
    printf("waitid WNOWAIT: %d pid ok %d signo %d code %d status %d\n", r, si.si_pid == p, si.si_signo, si.si_code,
           si.si_status);
    printf("zombie exists for kill: %d\n", kill(p, 0));
    struct rusage ru;
    r = wait4(p, &st, 0, &ru);
    printf("wait4: pid ok %d ", r == p);
    describe("status", st);
    errno = 0;
    printf("after reaping: kill %d errno %s, waitpid %d errno %s\n", kill(p, 0), strerror(errno),
           (int)waitpid(p, &st, 0), strerror(errno));
    errno = 0;
    printf("no children: wait %d errno %s\n", (int)wait(&st), strerror(errno));
    errno = 0;
    printf("bad options: waitpid %d errno %s\n", (int)waitpid(-1, &st, 0x100), strerror(errno));
}

static void signals_and_stops(void) {
    int st;
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) { kill(getpid(), SIGTERM); _exit(1); }
    waitpid(p, &st, 0);
    describe("self-SIGTERM child", st);
    /* SIGINT and SIGHUP from the parent: their default action ends the child */
    int sigs[] = {SIGINT, SIGHUP};
    for (int i = 0; i < 2; i++) {
        int ready[2];
        if (pipe(ready)) exit(1);
        fflush(stdout);
        p = fork();
        if (p == 0) {
            if (write(ready[1], "r", 1) != 1) _exit(1);
            for (;;) usleep(1000);
        }
        char c;
        if (read(ready[0], &c, 1) != 1) exit(1);
        close(ready[0]);
        close(ready[1]);
        kill(p, sigs[i]);
        waitpid(p, &st, 0);
        describe(i ? "SIGHUP child" : "SIGINT child", st);
    }
    fflush(stdout);
    p = fork();
    if (p == 0) { abort(); }
    waitpid(p, &st, 0);
    describe("abort child", st);
    fflush(stdout);
    p = fork();
    if (p == 0) {
        raise(SIGSTOP);
        for (;;) pause();
    }
    waitpid(p, &st, WUNTRACED);
    describe("stopping child", st);
    kill(p, SIGCONT);
    waitpid(p, &st, WCONTINUED);
    describe("continued child", st);
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    describe("killed child", st);
}

static void sigchld_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) _exit(33);
    for (int i = 0; i < 5000 && !chld_count; i++) usleep(1000);
    printf("SIGCHLD: delivered %d code %d status %d pid ok %d\n", chld_count > 0, chld_code, chld_status,
           chld_pid == p);
    int st;
    waitpid(p, &st, 0);
    describe("SIGCHLD child", st);
    /* SIG_IGN: the kernel reaps the children; wait finds none */
    signal(SIGCHLD, SIG_IGN);
    fflush(stdout);
    p = fork();
    if (p == 0) _exit(5);
    errno = 0;
    pid_t w = waitpid(p, &st, 0);
    printf("SIG_IGN: waitpid %d errno %s\n", w == p ? 1 : (int)w, strerror(errno));
    signal(SIGCHLD, SIG_DFL);
}

static void orphan(void) {
    int fds[2];
    if (pipe(fds)) exit(1);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        close(fds[0]);
        pid_t parent = getpid();
        if (fork() == 0) {
            for (int i = 0; i < 5000 && getppid() == parent; i++) usleep(1000);
            const char *msg = getppid() != parent ? "orphan reparented\n" : "orphan not reparented\n";
            if (write(fds[1], msg, strlen(msg)) < 0) _exit(1);
            _exit(0);
        }
        _exit(0);
    }
    close(fds[1]);
    int st;
    waitpid(p, &st, 0);
    describe("orphan's parent", st);
    char buf[64];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("%s", buf);
    printf("getppid differs from getpid: %d\n", getppid() != getpid());
}

int main(void) {
    tree();
    nohang_and_waitid();
    signals_and_stops();
    sigchld_handler();
    orphan();
    return 0;
}
