/* Process groups and sessions: setpgid/getpgid/setsid/getsid, kill to a process group and to 0,
 * kill and tgkill between guest processes (default action and handlers). Pids are printed only as relations. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, usr2_from_parent;
static volatile pid_t parent_pid;
static void on_usr1(int sig) { (void)sig; usr1++; }
static void on_usr2(int sig, siginfo_t *info, void *ctx) {
    (void)sig; (void)ctx;
    usr2++;
    usr2_from_parent = info->si_pid == parent_pid && info->si_code == SI_USER;
}

static void describe(const char *what, int st) {
    if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) printf("%s: killed by %d\n", what, WTERMSIG(st));
    else printf("%s: status %#x\n", what, st);
}

static void wait_for(volatile sig_atomic_t *flag) {
    for (int i = 0; i < 5000 && !*flag; i++) usleep(1000);
}

static int ready_pipe[2];
static void ready(void) { if (write(ready_pipe[1], "r", 1) != 1) _exit(90); }
static void await_ready(int n) {
    char c;
    for (int i = 0; i < n; i++) if (read(ready_pipe[0], &c, 1) != 1) exit(91);
}

int main(void) {
    if (pipe(ready_pipe)) return 1;
    /* a group of our own first: kill(0, ...) below must reach only this program's processes */
    printf("setpgid(0,0): %d, leader %d\n", setpgid(0, 0), getpgid(0) == getpid());
    printf("getpgrp == getpgid(0): %d, getsid(0) == getsid(getpid()): %d\n", getpgrp() == getpgid(0),
           getsid(0) == getsid(getpid()));
    errno = 0;
    printf("setsid as group leader: %d %s\n", setsid(), strerror(errno));
    errno = 0;
    printf("setpgid of a non-child: %d %s\n", setpgid(getppid(), 0), strerror(errno));
    errno = 0;
    printf("getpgid of no process: %d %s\n", getpgid(0x3ffffff0), strerror(errno));
    errno = 0;
    printf("setpgid negative: %d %s\n", setpgid(0, -1), strerror(errno));
    fflush(stdout);

    /* two children in a new group led by the first; kill(-group) ends both with SIGTERM's default action */
    pid_t a = fork();
    if (a == 0) { setpgid(0, 0); ready(); for (;;) usleep(1000); }
    setpgid(a, a);
    pid_t b = fork();
    if (b == 0) { setpgid(0, a); ready(); for (;;) usleep(1000); }
    setpgid(b, a);
    await_ready(2);
    printf("group: a leads %d, b in a's group %d, same session %d\n", getpgid(a) == a, getpgid(b) == a,
           getsid(a) == getsid(0));
    printf("kill(-a, SIGTERM): %d\n", kill(-a, SIGTERM));
    int st;
    waitpid(a, &st, 0);
    describe("a", st);
    waitpid(b, &st, 0);
    describe("b", st);
    errno = 0;
    printf("kill of the empty group: %d %s\n", kill(-a, SIGTERM), strerror(errno));

    /* a handler in another guest process: kill and tgkill reach it */
    fflush(stdout);
    parent_pid = getpid();
    pid_t c = fork();
    if (c == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_usr2;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR2, &sa, NULL);
        signal(SIGUSR1, on_usr1);
        ready();
        wait_for(&usr2);
        wait_for(&usr1);
        _exit(usr2_from_parent * 100 + usr2 * 10 + usr1);
    }
    await_ready(1);
    printf("kill(c, SIGUSR2): %d\n", kill(c, SIGUSR2));
    printf("kill(c, 0): %d\n", kill(c, 0));
    usleep(20000);
    printf("tgkill(c, c, SIGUSR1): %ld\n", syscall(SYS_tgkill, c, c, SIGUSR1));
    waitpid(c, &st, 0);
    describe("c (100*SIGUSR2 from the parent + 10*usr2 + usr1)", st);

    /* kill(0, ...): the whole group, this process included */
    signal(SIGUSR1, on_usr1);
    usr1 = 0;
    fflush(stdout);
    pid_t d = fork();
    if (d == 0) { usr1 = 0; ready(); wait_for(&usr1); _exit(usr1 ? 4 : 5); }
    await_ready(1);
    printf("kill(0, SIGUSR1): %d\n", kill(0, SIGUSR1));
    wait_for(&usr1);
    printf("parent got SIGUSR1: %d\n", usr1);
    waitpid(d, &st, 0);
    describe("d", st);

    /* a new session in a child */
    fflush(stdout);
    pid_t e = fork();
    if (e == 0) {
        pid_t sid = setsid();
        int ok = sid == getpid() && getsid(0) == getpid() && getpgid(0) == getpid();
        errno = 0;
        int again = setsid();
        _exit(ok * 10 + (again == -1 && errno == EPERM));
    }
    waitpid(e, &st, 0);
    describe("e (10*new session + EPERM again)", st);
    printf("parent's session unchanged: %d\n", getsid(0) != e);
    return 0;
}
