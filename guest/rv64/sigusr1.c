/* sigusr1: raise/kill to a SIGUSR1 handler, blocking and pending, SIG_IGN, SA_RESETHAND.
 *
 * raise() goes through tgkill (si_code SI_TKILL), kill() to the own pid is
 * SI_USER; a blocked signal stays pending until unblocked and is then
 * delivered before sigprocmask returns.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t deliveries;
static volatile sig_atomic_t last_signo;
static volatile sig_atomic_t last_code;

static void on_signal(int signo, siginfo_t *info, void *context)
{
    (void)context;
    deliveries++;
    last_signo = signo;
    last_code = info->si_code;
}

int main(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_signal;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGUSR1, &action, NULL) != 0)
        return 1;

    for (int i = 0; i < 3; i++) {
        raise(SIGUSR1);
        printf("after raise %d: deliveries=%d signo=%d code=%d\n", i, deliveries, last_signo, last_code);
    }
    kill(getpid(), SIGUSR1);
    printf("after kill: deliveries=%d code=%d\n", deliveries, last_code);

    sigset_t block, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    raise(SIGUSR1); /* standard signals do not queue: one delivery */
    sigpending(&pending);
    printf("blocked: deliveries=%d pending=%d\n", deliveries, sigismember(&pending, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    printf("unblocked: deliveries=%d\n", deliveries);

    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored SIGUSR2, still running\n");

    struct sigaction old;
    action.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR2, &action, &old);
    printf("previous SIGUSR2 handler was SIG_IGN: %d\n", old.sa_handler == SIG_IGN);
    raise(SIGUSR2);
    sigaction(SIGUSR2, NULL, &old);
    printf("after SA_RESETHAND: deliveries=%d signo=%d handler reset to SIG_DFL: %d\n", deliveries, last_signo,
           old.sa_handler == SIG_DFL);
    return 0;
}
