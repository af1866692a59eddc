/* A wild pointer write: the process dies with SIGSEGV after its flushed output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("about to crash\n");
    fflush(stdout);
    volatile int *wild = (volatile int *)(uintptr_t)strtoul("16", NULL, 0);
    *wild = 42;
    printf("not reached\n");
    return 0;
}
