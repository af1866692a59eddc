/* /proc/self/exe, /proc/self/{cwd,root,fd/N,...}, /proc/<pid>/..., /dev entries.
 *
 * MODE "inside": the program is ROOT/bin/procfs (the test runs it from there).
 * MODE "outside": the program lies outside the root (OUTSIDE/hostbin/procfs):
 *   nothing done through /proc/self/exe may change that file.
 * MODE "emulated": what the guest must see in /proc and /dev (functional checks).
 * The exe attacks first work on /proc/self/exe as it is, then replace the
 * program's file with a symlink to the host secret / canary and try again.
 */
#include "ops.h"

static char guest_exe[PATH_MAX]; /* the program's path as the guest sees it */
static int exe_outside;           /* the program lies outside the root */

static void reset(void) {
    make_decoys("/", "GUEST");
    write_file("/data/file", "GUEST-data\n", 0644);
    unlink("/stolen");
    unlink("/moved_exe");
}

static void judge_text(const char *name, const char *text) {
    char hostroot[PATH_MAX];
    snprintf(hostroot, sizeof hostroot, "%s/root", OUTSIDE);
    if (strstr(text, HOST_MARK))
        line(name, "ESCAPED", "shows host data: %.80s", strstr(text, HOST_MARK));
    else if (strstr(text, hostroot))
        line(name, "ESCAPED", "shows the root's host path");
    else if (strstr(text, OUTSIDE))
        line(name, "ESCAPED", "shows the host path of OUTSIDE");
    else
        contained(name, "no host path or data");
}

static void readlink_check(const char *name, const char *path, const char *want) {
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) {
        blocked(name, errno);
        return;
    }
    buf[n] = 0;
    char hostroot[PATH_MAX];
    snprintf(hostroot, sizeof hostroot, "%s/root", OUTSIDE);
    if (strstr(buf, HOST_MARK) || strstr(buf, hostroot))
        line(name, "ESCAPED", "readlink shows a host path or data");
    else if (exe_outside && strstr(buf, OUTSIDE) && strstr(buf, "hostbin"))
        line(name, "ESCAPED", "readlink shows the program's host path");
    else if (want && strcmp(buf, want))
        line(name, "WRONG", "readlink=%s, want %s", buf, want);
    else
        contained(name, buf);
}

static void read_check(const char *name, const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) {
        blocked(name, errno);
        return;
    }
    judge_fd_content(name, fd);
    close(fd);
}

/* A change through /proc/self/exe worked: fine when the program is in the root (it is the guest's own
 * file), an escape when it lies outside (it would act on the host's file). */
static void changed(const char *name, int rc, const char *linux_note) {
    if (rc != 0)
        line(name, "blocked", "errno=%s%s", ename(errno), linux_note);
    else if (exe_outside)
        line(name, "ESCAPED", "acted on the program's file outside the root");
    else
        line(name, "contained", "the guest's own program file%s", linux_note);
}

/* Everything that names the program through /proc: none may act outside the root. */
static void exe_ops(const char *label, const char *exe) {
    char name[256], buf[128];
    struct stat st;
#define NAME(op) (snprintf(name, sizeof name, "%s %s %s", label, op, exe), name)
    int fd = open(exe, O_RDONLY);
    if (fd < 0)
        blocked(NAME("open"), errno);
    else {
        ssize_t n = pread(fd, buf, 4, 0);
        buf[n > 0 ? n : 0] = 0;
        if (n == 4 && !memcmp(buf, "\177ELF", 4))
            contained(NAME("open"), "the program's ELF image");
        else
            judge_fd_content(NAME("open"), fd);
        close(fd);
    }
    if (stat(exe, &st) == 0 && is_host_ino(&st))
        escaped(NAME("stat"), "the host secret's inode");
    else
        line(NAME("stat"), "contained", "");
    fd = open(exe, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        ssize_t n = write(fd, "Z", 1);
        close(fd);
        changed(NAME("write"), n == 1 ? 0 : -1, " (Linux: ETXTBSY)");
    } else
        blocked(NAME("write"), errno);
    fd = open(exe, O_WRONLY | O_TRUNC);
    if (fd >= 0) close(fd);
    changed(NAME("O_TRUNC"), fd >= 0 ? 0 : -1, " (Linux: ETXTBSY)");
    int rc = truncate(exe, 1);
    changed(NAME("truncate"), rc, " (Linux: ETXTBSY)");
    /* Safety: should a resolver hand /proc/self/exe to the host's /proc, it names vm's own Python
     * interpreter; so only changes that leave it working (mode 0755, owner root, mtime now): any of
     * them still shows on the host copy of the program (ctime) and on the host secret and canary. */
    rc = chmod(exe, 0755);
    changed(NAME("chmod"), rc, "");
    rc = chown(exe, 0, 0);
    changed(NAME("chown"), rc, "");
    struct timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    rc = utimensat(AT_FDCWD, exe, times, 0);
    changed(NAME("utimensat"), rc, "");
    rc = linkat(AT_FDCWD, exe, AT_FDCWD, "/stolen", AT_SYMLINK_FOLLOW);
    if (rc == 0 && exe_outside) {
        changed(NAME("link-follow"), rc, "");
        unlink("/stolen");
    } else if (rc == 0) {
        fd = open("/stolen", O_RDONLY);
        if (fd >= 0) {
            judge_fd_content(NAME("link-follow"), fd);
            close(fd);
        } else
            line(NAME("link-follow"), "contained", "");
        unlink("/stolen");
    } else
        blocked(NAME("link-follow"), errno);
    rc = link(exe, "/stolen");
    if (rc == 0) {
        /* Linux links the magic link itself (a symlink to the program's path) or refuses */
        char target[PATH_MAX];
        ssize_t n = readlink("/stolen", target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        fd = open("/stolen", O_RDONLY | O_NOFOLLOW);
        char hostroot[PATH_MAX];
        snprintf(hostroot, sizeof hostroot, "%s/root", OUTSIDE);
        struct stat lst;
        if (fd >= 0 && exe_outside && fstat(fd, &lst) == 0 && S_ISREG(lst.st_mode)) {
            line(NAME("link"), "ESCAPED", "hard-linked the program's file from outside the root");
            close(fd);
        } else if (fd >= 0) {
            judge_fd_content(NAME("link"), fd);
            close(fd);
        } else if (strstr(target, HOST_MARK) || strstr(target, hostroot))
            line(NAME("link"), "ESCAPED", "the link shows a host path");
        else
            contained(NAME("link"), "a link to the guest's own text");
        unlink("/stolen");
    } else
        blocked(NAME("link"), errno);
    /* rename, unlink and exchange do not follow the last component: on the guest's own link to
     * /proc/self/exe they act on that link, inside the root */
    int own_link = !strcmp(exe, "/myexe");
    rc = rename(exe, "/moved_exe");
    if (own_link && rc == 0)
        contained(NAME("rename"), "the guest's own link");
    else
        changed(NAME("rename"), rc, " (Linux: EXDEV)");
    if (rc == 0) rename("/moved_exe", own_link ? exe : guest_exe);
    rc = unlink(exe);
    if (own_link && rc == 0) {
        contained(NAME("unlink"), "the guest's own link");
        symlink("/proc/self/exe", exe);
    } else
        changed(NAME("unlink"), rc, " (Linux: EACCES)");
    rc = (int)syscall(SYS_renameat2, AT_FDCWD, "/data/file", AT_FDCWD, exe, RENAME_EXCHANGE);
    if (rc == 0 && exe_outside && !own_link) {
        changed(NAME("exchange"), rc, "");
        syscall(SYS_renameat2, AT_FDCWD, "/data/file", AT_FDCWD, exe, RENAME_EXCHANGE);
    } else if (rc == 0) {
        char got[128] = "";
        read_file("/data/file", got, sizeof got);
        if (strstr(got, HOST_MARK))
            line(NAME("exchange"), "ESCAPED", "got %s", got);
        else
            line(NAME("exchange"), "contained", "");
        syscall(SYS_renameat2, AT_FDCWD, "/data/file", AT_FDCWD, exe, RENAME_EXCHANGE);
    } else
        blocked(NAME("exchange"), errno);
    readlink_check(NAME("readlink"), exe, NULL);
    reset();
#undef NAME
}

static void exe_attacks(int inside) {
    char pid_exe[64];
    snprintf(pid_exe, sizeof pid_exe, "/proc/%d/exe", (int)getpid());
    /* a guest symlink to /proc/self/exe must act like it, no more */
    symlink("/proc/self/exe", "/myexe");
    const char *names[] = {"/proc/self/exe", pid_exe, "/proc/thread-self/exe", "/proc//self/./exe",
                           "/proc/self/../self/exe", "/myexe"};
    /* readlink shows the program's guest path, never the host's */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        /* readlink does not follow the last component: the guest's own link reads as its own text */
        const char *want = strcmp(names[i], "/myexe") == 0 ? "/proc/self/exe" : inside ? guest_exe : NULL;
        readlink_check("exe readlink", names[i], want);
    }
    /* a guest-made /proc lookalike changes nothing */
    symlink("/proc/self", "/myproc");
    readlink_check("exe readlink via /myproc", "/myproc/exe", inside ? guest_exe : NULL);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) exe_ops("as-is", names[i]);
    if (!inside) return;
    /* replace the program's own file with symlinks to the host; /proc/self/exe must not follow them */
    const char *targets[] = {"secret", "canary"};
    for (int k = 0; k < 2; k++) {
        char abs_target[PATH_MAX], rel_target[PATH_MAX], label[64];
        snprintf(abs_target, sizeof abs_target, "%s/%s", OUTSIDE, targets[k]);
        snprintf(rel_target, sizeof rel_target, "../../%s", targets[k]);
        const char *plants[] = {abs_target, rel_target};
        for (int j = 0; j < 2; j++) {
            unlink("/bin/original");
            rename(guest_exe, "/bin/original");
            unlink(guest_exe);
            if (symlink(plants[j], guest_exe) != 0) {
                line("exe replace", "WRONG", "cannot replace %s: %s", guest_exe, ename(errno));
                return;
            }
            snprintf(label, sizeof label, "replaced->%s/%s", j ? "rel" : "abs", targets[k]);
            for (size_t i = 0; i < 2; i++) exe_ops(label, names[i]);
            unlink(guest_exe);
            rename("/bin/original", guest_exe);
        }
    }
}

static void proc_attacks(void) {
    char path[PATH_MAX];
    /* /proc/self/root is "/" for the guest; following it must stay inside */
    readlink_check("proc root readlink", "/proc/self/root", "/");
    snprintf(path, sizeof path, "/proc/self/root%s/secret", OUTSIDE);
    read_check("proc root+host path", path, O_RDONLY);
    read_check("proc root/../secret", "/proc/self/root/../secret", O_RDONLY);
    snprintf(path, sizeof path, "/proc/1/root%s/secret", OUTSIDE);
    read_check("proc 1/root+host path", path, O_RDONLY);
    read_check("proc cwd/../../secret", "/proc/self/cwd/../../secret", O_RDONLY);
    chdir("/hostdir");
    readlink_check("proc cwd readlink", "/proc/self/cwd", "/hostdir");
    read_check("proc cwd/inner", "/proc/self/cwd/inner", O_RDONLY);
    chdir("/");
    /* /proc/self/fd/N of a directory fd: ".." from it stays inside */
    int dfd = open("/hostdir", O_RDONLY | O_DIRECTORY);
    snprintf(path, sizeof path, "/proc/self/fd/%d/../../../secret", dfd);
    read_check("proc fd/N/../../../secret", path, O_RDONLY);
    snprintf(path, sizeof path, "/proc/self/fd/%d", dfd);
    readlink_check("proc fd/N readlink (dir)", path, "/hostdir");
    int ffd = open("/secret", O_RDONLY);
    snprintf(path, sizeof path, "/proc/self/fd/%d", ffd);
    readlink_check("proc fd/N readlink (file)", path, "/secret");
    read_check("proc fd/N reopen", path, O_RDONLY);
    close(ffd);
    close(dfd);
    /* fds the guest does not have: vm's own descriptors must not show through /proc/self/fd */
    int shown = 0;
    for (int fd = 3; fd < 1024; fd++) {
        if (fd == dfd || fd == ffd) continue;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        int ofd = open(path, O_RDONLY);
        if (n >= 0 || ofd >= 0) {
            if (shown++ < 5) {
                buf[n > 0 ? n : 0] = 0;
                line("proc fd probe", "ESCAPED", "fd %d is not the guest's but /proc/self/fd/%d resolves%s%s", fd,
                     fd, n > 0 ? " to " : "", n > 0 ? buf : "");
            }
        }
        if (ofd >= 0) close(ofd);
    }
    if (!shown) contained("proc fd probe 3..1023", "only the guest's own fds");
    /* the same through /dev/fd (a link to /proc/self/fd on Linux) */
    shown = 0;
    for (int fd = 3; fd < 1024; fd++) {
        snprintf(path, sizeof path, "/dev/fd/%d", fd);
        int ofd = open(path, O_RDONLY);
        if (ofd >= 0) {
            if (shown++ < 5) line("dev fd probe", "ESCAPED", "/dev/fd/%d opens though the guest has no fd %d", fd, fd);
            close(ofd);
        }
    }
    if (!shown) contained("dev fd probe 3..1023", "only the guest's own fds");
    /* the listing of /proc/self/fd shows only the guest's fds */
    int lfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    if (lfd < 0)
        blocked("proc fd listing", errno);
    else {
        char buf[4096];
        long n = syscall(SYS_getdents64, lfd, buf, sizeof buf);
        int extra = 0;
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            int num = atoi(d->name);
            if (d->name[0] != '.' && num > 2 && num != lfd) extra++;
            off += d->reclen;
        }
        if (extra)
            line("proc fd listing", "ESCAPED", "%d descriptors that are not the guest's", extra);
        else
            contained("proc fd listing", "0 1 2 and the listing's own");
        close(lfd);
    }
    /* files describing the process must not show the host */
    const char *files[] = {"/proc/self/maps", "/proc/self/cmdline", "/proc/self/environ", "/proc/self/status",
                           "/proc/self/stat", "/proc/self/mountinfo", "/proc/self/mounts", "/proc/mounts",
                           "/proc/self/auxv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char buf[65536];
        int fd = open(files[i], O_RDONLY);
        char name[128];
        snprintf(name, sizeof name, "proc content %s", files[i]);
        if (fd < 0) {
            blocked(name, errno);
            continue;
        }
        ssize_t total = 0, n;
        while (total < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + total, sizeof buf - 1 - total)) > 0) total += n;
        close(fd);
        for (ssize_t k = 0; k < total; k++)
            if (!buf[k]) buf[k] = '\n';
        buf[total] = 0;
        /* cmdline and environ are the guest's own argv and environment (argv names OUTSIDE, the
         * environment is what vm was given): there only vm's own command line would be a leak */
        int own = strstr(files[i], "cmdline") || strstr(files[i], "environ");
        if (strstr(buf, "vm_cli") || strstr(buf, "vm_linux") || (!own && strstr(buf, "python")))
            line(name, "ESCAPED", "shows the host's vm process");
        else if (own && strstr(buf, HOST_MARK "SECRET"))
            line(name, "ESCAPED", "shows host data");
        else if (own)
            contained(name, "the guest's own");
        else
            judge_text(name, buf);
    }
    /* /proc of other (host) pids is not there */
    pid_t host_pid = getppid();
    const char *leaves[] = {"cmdline", "environ", "exe", "cwd", "root", "maps"};
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0] && getpid() != 1; i++) {
        char name[128];
        snprintf(path, sizeof path, "/proc/1/%s", leaves[i]);
        snprintf(name, sizeof name, "proc host pid 1 %s", leaves[i]);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            blocked(name, errno);
        else {
            char buf[4096];
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            line(name, n >= 0 ? "ESCAPED" : "blocked", "a host process's /proc entry opens");
        }
        if (host_pid > 1 && host_pid != getpid()) {
            snprintf(path, sizeof path, "/proc/%d/%s", (int)host_pid, leaves[i]);
            snprintf(name, sizeof name, "proc parent pid %s", leaves[i]);
            fd = open(path, O_RDONLY);
            if (fd < 0)
                blocked(name, errno);
            else {
                close(fd);
                line(name, "ESCAPED", "a host process's /proc entry opens");
            }
        }
    }
}

static void dev_attacks(int destructive) {
    char buf[64];
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        blocked("dev null open", errno);
    else {
        ssize_t w = write(fd, "x", 1), r = read(fd, buf, sizeof buf);
        line("dev null", (w == 1 && r == 0) ? "contained" : "WRONG", "write=%zd read=%zd", w, r);
        close(fd);
    }
    /* /dev paths through symlinks and ".." stay the guest's */
    read_check("dev ../secret", "/dev/../secret", O_RDONLY);
    read_check("dev null/../../secret", "/dev/null/../../secret", O_RDONLY);
    if (destructive) {
        /* only when the host refuses these anyway (not root): they must not reach the host's /dev */
        struct stat before, after;
        int got = stat("/dev/null", &before) == 0;
        int rc = chmod("/dev/null", 0600);
        line("dev chmod null", rc ? "blocked" : "contained", rc ? "errno=%s" : "%s", rc ? ename(errno) : "");
        if (got && stat("/dev/null", &after) == 0 && rc == 0 && (after.st_mode & 0777) == 0666)
            line("dev chmod null", "WRONG", "chmod said yes but nothing changed");
        rc = rename("/dev/null", "/devnull_moved");
        line("dev rename null", rc ? "blocked" : "contained", rc ? "errno=%s" : "%s", rc ? ename(errno) : "");
        if (rc == 0) rename("/devnull_moved", "/dev/null");
        rc = unlink("/dev/zero");
        line("dev unlink zero", rc ? "blocked" : "contained", rc ? "errno=%s" : "%s", rc ? ename(errno) : "");
    }
    /* a guest-made /dev entry that is a symlink to the host is not followed out */
    mkdir("/dev", 0755);
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s/secret", OUTSIDE);
    symlink(target, "/dev/mine");
    read_check("dev own symlink", "/dev/mine", O_RDONLY);
    unlink("/dev/mine");
}

static void emulated(void) {
    /* functional: what the spec says the guest sees */
    char buf[8192];
    struct {
        const char *path;
        const char *must;
    } wants[] = {
        {"/proc/self/maps", "r-xp"},     {"/proc/self/cmdline", "procfs"}, {"/proc/self/status", "Pid:"},
        {"/proc/self/stat", "("},        {"/proc/cpuinfo", ""},            {"/proc/meminfo", "MemTotal"},
        {"/proc/self/environ", "PATH="}, {"/proc/self/auxv", ""},
    };
    for (size_t i = 0; i < sizeof wants / sizeof wants[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "emulated %s", wants[i].path);
        int fd = open(wants[i].path, O_RDONLY);
        if (fd < 0) {
            line(name, "WRONG", "errno=%s", ename(errno));
            continue;
        }
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) {
            line(name, "WRONG", "empty");
            continue;
        }
        for (ssize_t k = 0; k < n; k++)
            if (!buf[k]) buf[k] = ' ';
        buf[n] = 0;
        if (!strstr(buf, wants[i].must))
            line(name, "WRONG", "lacks %s", wants[i].must);
        else
            contained(name, "ok");
    }
    char link[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    line("emulated readlink exe", n > 0 && !strcmp(link, guest_exe) ? "contained" : "WRONG", "%s", link);
    chdir("/hostdir");
    n = readlink("/proc/self/cwd", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    line("emulated readlink cwd", n > 0 && !strcmp(link, "/hostdir") ? "contained" : "WRONG", "%s", link);
    chdir("/");
    int fd = open("/dev/zero", O_RDONLY);
    n = fd < 0 ? -1 : read(fd, buf, 16);
    line("emulated /dev/zero", n == 16 && !buf[0] && !buf[15] ? "contained" : "WRONG", "read=%zd", n);
    if (fd >= 0) close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    n = fd < 0 ? -1 : read(fd, buf, 16);
    line("emulated /dev/urandom", n == 16 ? "contained" : "WRONG", "read=%zd", n);
    if (fd >= 0) close(fd);
    fd = open("/dev/null", O_WRONLY);
    n = fd < 0 ? -1 : write(fd, "x", 1);
    line("emulated /dev/null", n == 1 ? "contained" : "WRONG", "write=%zd", n);
    if (fd >= 0) close(fd);
    fd = open("/dev/tty", O_RDWR);
    line("emulated /dev/tty", fd >= 0 || errno == ENXIO ? "contained" : "WRONG", "fd=%d errno=%s", fd,
         fd < 0 ? ename(errno) : "0");
    if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 6);
    const char *mode = argv[5];
    snprintf(guest_exe, sizeof guest_exe, "%s", argc > 6 ? argv[6] : "/bin/procfs");
    int destructive = argc > 7 && !strcmp(argv[7], "destructive");
    mkdir("/data", 0755);
    reset();
    if (!strcmp(mode, "emulated")) {
        emulated();
        return finish();
    }
    int inside = !strcmp(mode, "inside");
    exe_outside = !inside;
    exe_attacks(inside);
    if (inside) {
        proc_attacks();
        dev_attacks(destructive);
    }
    return finish();
}
