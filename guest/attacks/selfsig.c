/* Signals the guest sends itself end or stop it as Linux would.
 * MODE: raise-kill | kill-kill | tgkill-kill | blocked-kill | handler-kill | raise-term | raise-usr1 |
 *       raise-stop | kill-stop
 * A killed guest never prints "after"; a stopped one prints "continued" once the test sends SIGCONT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "raise-kill";
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("before %s\n", mode);
    if (!strcmp(mode, "raise-kill")) raise(SIGKILL);
    if (!strcmp(mode, "kill-kill")) kill(getpid(), SIGKILL);
    if (!strcmp(mode, "tgkill-kill")) syscall(SYS_tgkill, getpid(), gettid(), SIGKILL);
    if (!strcmp(mode, "blocked-kill")) {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        raise(SIGKILL);
    }
    if (!strcmp(mode, "handler-kill")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        int rc = sigaction(SIGKILL, &sa, NULL);
        printf("sigaction SIGKILL: %d %s\n", rc, rc ? strerrorname_np(errno) : "");
        rc = sigaction(SIGSTOP, &sa, NULL);
        printf("sigaction SIGSTOP: %d %s\n", rc, rc ? strerrorname_np(errno) : "");
        raise(SIGKILL);
    }
    if (!strcmp(mode, "raise-term")) raise(SIGTERM);
    if (!strcmp(mode, "raise-usr1")) raise(SIGUSR1);
    if (!strcmp(mode, "raise-stop") || !strcmp(mode, "kill-stop")) {
        if (mode[0] == 'r')
            raise(SIGSTOP);
        else
            kill(getpid(), SIGSTOP);
        printf("continued\n");
        return 0;
    }
    printf("after\n");
    return 3;
}
