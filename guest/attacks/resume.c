/* Files and the cwd across a snapshot: `vm resume` must not follow what was planted after the cut.
 *
 * MODE "file": open /data/victim and /data/victim2 read-write, print their
 *   first bytes, spin (the test snapshots here, then replaces victim with a
 *   symlink to the host secret and victim2 with one to the canary, and the
 *   program's own file with one to the secret), then read the rest and from
 *   the start, append "Z", print what was read, and read /proc/self/exe.
 * MODE "dirs": chdir /work and open /work2 as a dirfd, spin (the test moves
 *   both away and plants symlinks to the host: /work absolute, /work2 "..")
 *   then read "secret", create "made_by_guest" and chmod "canary" through each.
 * argv after the common four: MODE SPIN_ITERATIONS
 */
#include "attack.h"

static void spin(long n) {
    volatile long sink = 0;
    for (long i = 0; i < n; i++) sink += i;
}

static void after_file(const char *name, int fd) {
    char buf[128], whole[128], label[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    ssize_t m = pread(fd, whole, sizeof whole - 1, 0);
    whole[m > 0 ? m : 0] = 0;
    snprintf(label, sizeof label, "resume %s read", name);
    if (strstr(whole, HOST_MARK) || strstr(buf, HOST_MARK))
        line(label, "ESCAPED", "read=%s", whole);
    else
        line(label, "contained", "read=%s", whole);
    struct stat st;
    snprintf(label, sizeof label, "resume %s fstat", name);
    if (fstat(fd, &st) == 0 && is_host_ino(&st)) line(label, "ESCAPED", "the host file's inode");
    n = write(fd, "Z", 1);
    snprintf(label, sizeof label, "resume %s write", name);
    line(label, "contained", "wrote=%zd", n);
    close(fd);
}

static void after_dir(const char *name, int base) {
    char label[128];
    snprintf(label, sizeof label, "resume %s open secret", name);
    int fd = openat(base, "secret", O_RDONLY);
    if (fd < 0)
        blocked(label, errno);
    else {
        judge_fd_content(label, fd);
        close(fd);
    }
    snprintf(label, sizeof label, "resume %s create", name);
    fd = openat(base, "made_by_guest", O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
    line(label, fd >= 0 ? "contained" : "blocked", "fd=%d", fd);
    snprintf(label, sizeof label, "resume %s chmod", name);
    int rc = fchmodat(base, "canary", 0604, 0);
    line(label, rc == 0 ? "contained" : "blocked", "rc=%d", rc);
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 7);
    const char *mode = argv[5];
    long iterations = atol(argv[6]);
    char buf[16];
    if (!strcmp(mode, "file")) {
        int fd = open("/data/victim", O_RDWR), fd2 = open("/data/victim2", O_RDWR);
        if (fd < 0 || fd2 < 0) {
            line("resume open", "WRONG", "errno=%s", ename(errno));
            return finish();
        }
        ssize_t n = read(fd, buf, 6);
        buf[n > 0 ? n : 0] = 0;
        printf("before: %s", buf);
        n = read(fd2, buf, 6);
        buf[n > 0 ? n : 0] = 0;
        printf(" %s\n", buf);
        spin(iterations);
        after_file("victim", fd);
        after_file("victim2", fd2);
        /* the program's own file was replaced by a symlink to the host secret too */
        int efd = open("/proc/self/exe", O_RDONLY);
        if (efd < 0)
            blocked("resume /proc/self/exe", errno);
        else {
            n = pread(efd, buf, 4, 0);
            if (n == 4 && !memcmp(buf, "\177ELF", 4))
                contained("resume /proc/self/exe", "the program's ELF image");
            else
                judge_fd_content("resume /proc/self/exe", efd);
            close(efd);
        }
    } else {
        if (chdir("/work") != 0) line("resume chdir", "WRONG", "errno=%s", ename(errno));
        int dfd = open("/work2", O_RDONLY | O_DIRECTORY);
        if (dfd < 0) line("resume open /work2", "WRONG", "errno=%s", ename(errno));
        printf("before: ready\n");
        spin(iterations);
        after_dir("cwd", AT_FDCWD);
        after_dir("dirfd", dfd);
        char cwd[PATH_MAX], hostroot[PATH_MAX];
        snprintf(hostroot, sizeof hostroot, "%s/root", OUTSIDE);
        if (getcwd(cwd, sizeof cwd))
            line("resume getcwd", strstr(cwd, hostroot) ? "ESCAPED" : "contained", "%s",
                 strstr(cwd, hostroot) ? "host path" : cwd);
    }
    return finish();
}
