/* sigint_read: a SIGINT handler, then a blocking read from stdin (a pipe that stays empty), which the
 * SIGINT sent to the emulator (qemu-riscv64 or vm) interrupts with EINTR; a second SIGINT, with
 * SA_RESTART, restarts the read, which then gets the byte the test writes after the handler's line. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_int(int signo)
{
    (void)signo;
    handled++;
    if (write(1, "handler\n", 8) != 8)
        _exit(3);
}

static void handle(int flags)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_int;
    action.sa_flags = flags;
    sigaction(SIGINT, &action, NULL);
}

int main(void)
{
    char c = 0;
    handle(0);
    printf("ready\n");
    fflush(stdout);
    ssize_t r = read(0, &c, 1);
    printf("read: %zd %s, handled %d\n", r, r < 0 && errno == EINTR ? "EINTR" : "?", handled);
    handle(SA_RESTART);
    printf("ready again\n");
    fflush(stdout);
    r = read(0, &c, 1);
    printf("read: %zd '%c', handled %d\n", r, c, handled);
    return 0;
}
