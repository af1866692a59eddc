/* munmap and mprotect take effect at once: each bad access is a caught SIGSEGV (siglongjmp out). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static sigjmp_buf back;
static volatile int faults;

static void on_segv(int signo, siginfo_t *info, void *context) {
    (void)signo; (void)info; (void)context;
    faults++;
    siglongjmp(back, 1);
}

static int touch(volatile char *p, int write) {
    if (sigsetjmp(back, 1)) return 0;
    if (write) *p = 7; else (void)*p;
    return 1;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 1, 4 * 4096);
    printf("write mapped: %d\n", touch(p + 4096, 1));
    munmap(p + 4096, 4096);
    printf("read unmapped: %d\n", touch(p + 4096, 0));
    printf("neighbour still there: %d (%d)\n", touch(p + 8192, 0), p[8192]);
    mprotect(p, 4096, PROT_READ);
    printf("write read-only: %d, read read-only: %d\n", touch(p, 1), touch(p, 0));
    mprotect(p, 4096, PROT_NONE);
    printf("read PROT_NONE: %d\n", touch(p, 0));
    mprotect(p, 4096, PROT_READ | PROT_WRITE);
    printf("write after mprotect back: %d, byte kept %d\n", touch(p, 1), p[1]);
    char *again = mmap(p + 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("remapped reads zero: %d\n", again == p + 4096 && again[0] == 0 && touch(again, 1));
    printf("faults caught %d\n", faults);
    return 0;
}
