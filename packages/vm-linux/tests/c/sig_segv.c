/* Catches SIGSEGV on an alternate stack with SA_SIGINFO and siglongjmps out
 * (unmapped: SEGV_MAPERR; read-only: SEGV_ACCERR), then dies of SIGSEGV. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf env;
static volatile unsigned long fault_addr;
static volatile int fault_code, fault_signo, on_alt;
static char altstack[65536];
static volatile uintptr_t round_trip_address;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char here;
    fault_signo = sig;
    fault_addr = (unsigned long)si->si_addr;
    fault_code = si->si_code;
    on_alt = &here >= altstack && &here < altstack + sizeof altstack;
    siglongjmp(env, 1);
}

int main(void) {
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, 0);
    for (int round = 0; round < 2; round++) {
        if (sigsetjmp(env, 1) == 0) {
            *(volatile int *)(uintptr_t)(0x1000 + round * 8) = 42;
            puts("not reached");
        } else {
            printf("round %d: signal %d code %d addr %#lx altstack %d\n", round, fault_signo, fault_code,
                   fault_addr, on_alt);
        }
    }
    sigset_t cur;
    sigprocmask(SIG_BLOCK, 0, &cur);
    printf("SIGSEGV blocked after siglongjmp: %d\n", sigismember(&cur, SIGSEGV));
    static const char literal[] = "read-only";
    if (sigsetjmp(env, 1) == 0) {
        *(volatile char *)literal = 'x';
        puts("not reached");
    } else {
        printf("rodata write: signal %d code %d exact %d\n", fault_signo, fault_code,
               fault_addr == (unsigned long)literal);
    }
    signal(SIGSEGV, SIG_DFL);
    fflush(stdout);
    *(volatile int *)(uintptr_t)(round_trip_address + 8) = 1;
    return 0;
}
