/* Prints "ready", then sleeps in 10 ms steps (a system call each: vm's signal handlers run between them)
 * until a minute has passed, so a test that forgets it cannot leave it running for long. */
#include <stdio.h>
#include <time.h>

int main(void) {
    puts("ready");
    fflush(stdout);
    for (int step = 0; step < 6000; step++) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return 3;
}
