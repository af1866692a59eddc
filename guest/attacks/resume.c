/* Files and the cwd across a snapshot: `vm resume` must not follow what was planted after the cut.
 *
 * MODE "file": open /data/victim read-write, print its first bytes, spin (the
 *   test snapshots here, then replaces /data/victim with a symlink to the
 *   host), then read the rest, append "Z" and print what it read.
 * MODE "cwd": chdir /work, spin (the test moves /work away and plants a
 *   symlink to the host), then read "secret" and create "made_by_guest" there.
 * MODE "dirfd": the same through an fd of /work.
 * argv after the common four: MODE SPIN_ITERATIONS
 */
#include "attack.h"

static void spin(long n) {
    volatile long sink = 0;
    for (long i = 0; i < n; i++) sink += i;
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 7);
    const char *mode = argv[5];
    long iterations = atol(argv[6]);
    char buf[128];
    if (!strcmp(mode, "file")) {
        int fd = open("/data/victim", O_RDWR);
        if (fd < 0) {
            line("resume open", "WRONG", "errno=%s", ename(errno));
            return finish();
        }
        ssize_t n = read(fd, buf, 6);
        buf[n > 0 ? n : 0] = 0;
        printf("before: %s\n", buf);
        spin(iterations);
        n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        char whole[128];
        ssize_t m = pread(fd, whole, sizeof whole - 1, 0);
        whole[m > 0 ? m : 0] = 0;
        if (strstr(whole, HOST_MARK))
            line("resume pread", "ESCAPED", "read=%s", whole);
        if (strstr(buf, HOST_MARK))
            line("resume read", "ESCAPED", "read=%s", buf);
        else
            line("resume read", "contained", "read=%s", buf);
        struct stat st;
        if (fstat(fd, &st) == 0 && is_host_ino(&st)) line("resume fstat", "ESCAPED", "the host file's inode");
        n = write(fd, "Z", 1);
        line("resume write", "contained", "wrote=%zd", n);
        close(fd);
    } else {
        int dfd = -1;
        if (!strcmp(mode, "cwd")) {
            if (chdir("/work") != 0) line("resume chdir", "WRONG", "errno=%s", ename(errno));
        } else {
            dfd = open("/work", O_RDONLY | O_DIRECTORY);
        }
        printf("before: ready\n");
        spin(iterations);
        int base = dfd >= 0 ? dfd : AT_FDCWD;
        int fd = openat(base, "secret", O_RDONLY);
        if (fd < 0)
            blocked("resume open secret", errno);
        else {
            judge_fd_content("resume open secret", fd);
            close(fd);
        }
        fd = openat(base, "made_by_guest", O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) close(fd);
        line("resume create", fd >= 0 ? "contained" : "blocked", "fd=%d", fd);
        if (fchmodat(base, "canary", 0604, 0) == 0) line("resume chmod", "contained", "");
        char cwd[PATH_MAX];
        if (dfd < 0 && getcwd(cwd, sizeof cwd)) {
            char hostroot[PATH_MAX];
            snprintf(hostroot, sizeof hostroot, "%s/root", OUTSIDE);
            line("resume getcwd", strstr(cwd, hostroot) ? "ESCAPED" : "contained", "%s",
                 strstr(cwd, hostroot) ? "host path" : cwd);
        }
    }
    return finish();
}
