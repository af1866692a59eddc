/* segv_handler: catches its own faults with a SA_SIGINFO SIGSEGV handler and siglongjmps out.
 *
 * Faults on an unmapped load, an unmapped store and a store to a read-only
 * mapping; the handler reports si_signo, si_code (SEGV_MAPERR vs
 * SEGV_ACCERR) and the faulting address relative to something fixed. The
 * signal mask saved by sigsetjmp must be restored so later faults are
 * delivered too.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf recovery;
static volatile uintptr_t fault_base;
static volatile int handled;

static void on_segv(int signo, siginfo_t *info, void *context)
{
    (void)context;
    char message[160];
    int n = snprintf(message, sizeof message, "handler: signo=%d code=%d offset=%#lx\n", signo, info->si_code,
                     (unsigned long)((uintptr_t)info->si_addr - fault_base));
    ssize_t written = write(STDOUT_FILENO, message, (size_t)n);
    (void)written;
    handled++;
    siglongjmp(recovery, handled);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0) {
        printf("sigaction failed\n");
        return 1;
    }

    unsigned char *readonly = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (readonly == MAP_FAILED) {
        printf("mmap failed\n");
        return 1;
    }
    readonly[100] = 7;
    if (mprotect(readonly, 4096, PROT_READ) != 0) {
        printf("mprotect failed\n");
        return 1;
    }

    volatile uintptr_t unmapped_load = 0x18, unmapped_store = 0x7008;
    int step = sigsetjmp(recovery, 1);
    printf("sigsetjmp returned %d\n", step);
    switch (step) {
    case 0:
        fault_base = 0;
        printf("load from 0x18: %d\n", *(volatile int *)unmapped_load);
        break;
    case 1:
        fault_base = 0;
        *(volatile long *)unmapped_store = 1;
        break;
    case 2:
        fault_base = (uintptr_t)readonly;
        printf("read-only byte reads %d\n", readonly[100]);
        *(volatile unsigned char *)(readonly + 100) = 9;
        break;
    case 3: {
        sigset_t current;
        sigprocmask(SIG_BLOCK, NULL, &current);
        printf("SIGSEGV blocked after siglongjmp: %d\n", sigismember(&current, SIGSEGV));
        printf("handled %d faults, byte still %d\n", handled, readonly[100]);
        return 0;
    }
    default:
        break;
    }
    printf("a fault was not delivered at step %d\n", step);
    return 1;
}
