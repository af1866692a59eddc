/* proc_cat: print "pid P ppid Q\n", then for each argument "== ARG <length>\n" and the file's bytes
   (or, for "@PATH", the link text of readlink(PATH)); a failure prints "== ARG error <errno>\n".
   The /proc tests run it under qemu-riscv64 and under vm-linux and compare the two. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char buf[1 << 20];

int main(int argc, char **argv) {
    printf("pid %d ppid %d\n", (int)getpid(), (int)getppid());
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        ssize_t len = 0;
        if (arg[0] == '@') {
            len = readlink(arg + 1, buf, sizeof buf);
            if (len < 0) { printf("== %s error %d\n", arg, errno); continue; }
        } else {
            int fd = open(arg, O_RDONLY);
            if (fd < 0) { printf("== %s error %d\n", arg, errno); continue; }
            ssize_t n;
            while ((n = read(fd, buf + len, sizeof buf - len)) > 0) len += n;
            close(fd);
        }
        printf("== %s %zd\n", arg, len);
        fflush(stdout);
        fwrite(buf, 1, len, stdout);
        fflush(stdout);
    }
    return 0;
}
