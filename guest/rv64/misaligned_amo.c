/* A misaligned atomic: SIGBUS with si_code BUS_ADRALN and si_addr the data address, as Linux and qemu report. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static char buf[64] __attribute__((aligned(16)));
static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("signal %d code %d addr_off %ld\n", sig, si->si_code, (long)((char *)si->si_addr - buf));
    fflush(stdout);
    _exit(0);
}
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, 0);
    volatile int *p = (int *)(buf + 2);
    __atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
    printf("no signal\n");
    return 1;
}
