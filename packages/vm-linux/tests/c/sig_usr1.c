/* Sends itself SIGUSR1 (raise, kill, while blocked, with SA_RESETHAND) and
 * checks what the handler sees: siginfo, the blocked mask, uc_sigmask. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, 0, &cur);
    printf("handler: sig=%d code=%d pid_match=%d blocked_self=%d uc_mask_self=%d\n", sig,
           si->si_code, si->si_pid == getpid(), sigismember(&cur, SIGUSR1),
           sigismember(&uc->uc_sigmask, SIGUSR1));
    got++;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1);
    printf("after raise: got=%d\n", got);
    kill(getpid(), SIGUSR1);
    printf("after kill: got=%d\n", got);
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, 0);
    raise(SIGUSR1);
    sigpending(&pend);
    printf("while blocked: got=%d pending=%d\n", got, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &s, 0);
    printf("after unblock: got=%d\n", got);
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    puts("SIGUSR2 ignored");
    volatile double d = 1.5;
    raise(SIGUSR1);
    printf("double after handler: %.3f\n", d * 2);
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1);
    struct sigaction old;
    sigaction(SIGUSR1, 0, &old);
    printf("reset to default: %d\n", old.sa_handler == SIG_DFL);
    return 3;
}
