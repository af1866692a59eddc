/* segv: stores through an unmapped pointer with no handler installed; the process dies of SIGSEGV. */
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    printf("about to store to address 0x10\n");
    fflush(stdout);
    volatile uintptr_t address = 0x10; /* volatile: the compiler cannot see the address */
    *(volatile int *)address = 42;
    printf("still alive after the store\n");
    return 0;
}
