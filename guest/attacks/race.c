/* Resolve-then-use races: two guest processes in the same root.
 *
 * MODE "swap": renameat2(RENAME_EXCHANGE) /race/d (a directory with decoys)
 *   and /race/l (a symlink to the host, planted by the test: absolute), and
 *   /race/d2 and /race/l2 (relative, "../.."), and the files /race/f and
 *   /race/f2 with symlinks to the host canary /race/fl (absolute) and
 *   /race/fl2 (relative), in a loop, until
 *   /race/stop appears or LIMIT seconds pass. Creates /race/started first.
 * MODE "use": waits for /race/started, then for ITERATIONS rounds (or LIMIT
 *   seconds) opens, stats, creates, chmods, renames and links through /race/d and
 *   /race/d2, from a cwd inside them, and opens, chmods, truncates and touches
 *   /race/f and /race/f2; whatever the
 *   swap, every call must land inside the root. Creates /race/stop at the end.
 * argv after the common four: MODE LIMIT_SECONDS ITERATIONS
 */
#include "attack.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static int swap_loop(double limit) {
    write_file("/race/started", "1", 0644);
    double start = now();
    long swaps = 0, errors = 0;
    for (long i = 0;; i++) {
        if ((i & 7) == 0 && (exists("/race/stop") || now() - start > limit)) break;
        static const char *pairs[4][2] = {
            {"/race/d", "/race/l"}, {"/race/f", "/race/fl"}, {"/race/d2", "/race/l2"}, {"/race/f2", "/race/fl2"}};
        const char *d = pairs[i & 3][0], *l = pairs[i & 3][1];
        if (syscall(SYS_renameat2, AT_FDCWD, d, AT_FDCWD, l, RENAME_EXCHANGE) == 0)
            swaps++;
        else
            errors++;
    }
    /* leave d and d2 directories again */
    struct stat st;
    if (lstat("/race/d", &st) == 0 && S_ISLNK(st.st_mode))
        syscall(SYS_renameat2, AT_FDCWD, "/race/d", AT_FDCWD, "/race/l", RENAME_EXCHANGE);
    if (lstat("/race/d2", &st) == 0 && S_ISLNK(st.st_mode))
        syscall(SYS_renameat2, AT_FDCWD, "/race/d2", AT_FDCWD, "/race/l2", RENAME_EXCHANGE);
    if (lstat("/race/f", &st) == 0 && S_ISLNK(st.st_mode))
        syscall(SYS_renameat2, AT_FDCWD, "/race/f", AT_FDCWD, "/race/fl", RENAME_EXCHANGE);
    if (lstat("/race/f2", &st) == 0 && S_ISLNK(st.st_mode))
        syscall(SYS_renameat2, AT_FDCWD, "/race/f2", AT_FDCWD, "/race/fl2", RENAME_EXCHANGE);
    printf("swapper: swaps=%ld errors=%ld\n", swaps, errors);
    if (swaps == 0) line("swapper", "WRONG", "renameat2(RENAME_EXCHANGE) never worked: %s", ename(errno));
    return finish();
}

static int use_loop(double limit, long iterations) {
    double start = now();
    while (!exists("/race/started")) {
        if (now() - start > 120) {
            line("user", "WRONG", "the swapper never started");
            return finish();
        }
        usleep(2000);
    }
    start = now();
    long opens = 0, in_root = 0, misses = 0, created = 0;
    char buf[128], path[64];
    for (long i = 0; i < iterations && now() - start < limit; i++) {
        const char *dir = (i & 1) ? "/race/d2" : "/race/d";
        char p[96], label[96], q[96];
        snprintf(p, sizeof p, "%s/secret", dir);
        int fd = open(p, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = 0;
            struct stat st;
            snprintf(label, sizeof label, "race open %s", p);
            if (strstr(buf, HOST_MARK) || (fstat(fd, &st) == 0 && is_host_ino(&st)))
                line(label, "ESCAPED", "read=%s (round %ld)", buf, i);
            else
                in_root++;
            opens++;
            close(fd);
        } else
            misses++;
        struct stat st;
        snprintf(label, sizeof label, "race stat %s", p);
        if (stat(p, &st) == 0 && is_host_ino(&st))
            line(label, "ESCAPED", "the host secret's inode (round %ld)", i);
        snprintf(path, sizeof path, "%s/made_by_guest_%ld", dir, i);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            created++;
            close(fd);
        }
        snprintf(p, sizeof p, "%s/canary", dir);
        chmod(p, 0604);
        snprintf(path, sizeof path, "%s/dir_by_guest_%ld", dir, i);
        mkdir(path, 0755);
        fd = open(p, O_WRONLY | O_APPEND);
        if (fd >= 0) {
            write(fd, "Z", 1);
            close(fd);
        }
        /* the last component swapped: a file, or a symlink to the host canary */
        const char *f = (i & 1) ? "/race/f2" : "/race/f";
        chmod(f, 0604);
        fd = open(f, O_WRONLY | O_APPEND);
        if (fd >= 0) {
            write(fd, "Z", 1);
            close(fd);
        }
        fd = open(f, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = 0;
            if (strstr(buf, HOST_MARK)) line("race open last component", "ESCAPED", "read=%s (round %ld)", buf, i);
            close(fd);
        }
        truncate(f, 40);
        struct timespec times[2] = {{1000, 0}, {1000, 0}};
        utimensat(AT_FDCWD, f, times, 0);
        /* the cwd inside the racing directory, then relative calls */
        if (chdir(dir) == 0) {
            fd = open("secret", O_RDONLY);
            if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof buf - 1);
                buf[n > 0 ? n : 0] = 0;
                if (strstr(buf, HOST_MARK)) line("race cwd open secret", "ESCAPED", "read=%s (round %ld)", buf, i);
                close(fd);
            }
            snprintf(q, sizeof q, "cwd_made_by_guest_%ld", i);
            fd = open(q, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd >= 0) close(fd);
            chdir("/");
        }
        /* rename and link through the racing path (a host canary would move, a host secret be linked in) */
        snprintf(q, sizeof q, "%s/canary_moved", dir);
        if (rename(p, q) == 0) rename(q, p);
        snprintf(p, sizeof p, "%s/secret", dir);
        snprintf(q, sizeof q, "/race/linked_%ld", i);
        if (link(p, q) == 0) {
            fd = open(q, O_RDONLY);
            if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof buf - 1);
                buf[n > 0 ? n : 0] = 0;
                if (strstr(buf, HOST_MARK)) line("race link", "ESCAPED", "linked the host secret in (round %ld)", i);
                close(fd);
            }
            unlink(q);
        }
    }
    write_file("/race/stop", "1", 0644);
    printf("user: opens=%ld in_root=%ld misses=%ld created=%ld\n", opens, in_root, misses, created);
    if (opens == 0) line("user", "WRONG", "no open ever worked");
    return finish();
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 8);
    double limit = atof(argv[6]);
    long iterations = atol(argv[7]);
    if (!strcmp(argv[5], "swap")) return swap_loop(limit);
    return use_loop(limit, iterations);
}
