/* Prints a line and calls abort(): the process must die of SIGABRT. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    puts("about to abort");
    fflush(stdout);
    abort();
}
