/* argv[1] thousand getppid system calls (not cached by glibc): the cost of a guest system call. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long calls = (argc > 1 ? atol(argv[1]) : 1) * 1000L;
    long same = 0, first = syscall(SYS_getppid);
    for (long i = 0; i < calls; i++) same += syscall(SYS_getppid) == first;
    printf("%ld calls, %ld agreed\n", calls, same);
    return 0;
}
