/* Tries every way out of the guest root; under `vm run --root DIR` each must land inside DIR. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *path) {
    char buf[128];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: cannot open\n", path);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    printf("%s: %s\n", path, buf);
}

int main(void) {
    char cwd[256];
    show("/etc/passwd");
    show("../../../../../../etc/passwd");
    show("/../../etc/passwd");
    show("/escape-abs/passwd");      /* symlink -> /etc (absolute) */
    show("/escape-rel/passwd");      /* symlink -> ../../../../etc (relative, climbing out) */
    chdir("/../../..");
    printf("cwd after chdir(/../../..): %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    show("etc/passwd");
    return 0;
}
