/* A SIGUSR1 handler that returns (rt_sigreturn): registers and floating point survive it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t seen;
static volatile double in_handler;

static void on_usr1(int signo, siginfo_t *info, void *context) {
    (void)context;
    seen = signo;
    in_handler = 1.0 / 7.0 * (double)info->si_signo;
    printf("handler: signo %d code %d from self %d\n", info->si_signo, info->si_code, info->si_pid == getpid());
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    volatile double x = 2.0 / 3.0;
    kill(getpid(), SIGUSR1);
    printf("after: seen %d x %.17g handler value %.17g\n", seen, x * 3.0, in_handler);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    seen = 0;
    raise(SIGUSR1);
    printf("blocked: seen %d\n", seen);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("unblocked: seen %d\n", seen);
    signal(SIGUSR1, SIG_DFL);
    fflush(stdout);
    raise(SIGUSR1);
    return 0;
}
