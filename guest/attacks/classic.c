/* Classic escapes through every path-taking system call: "..", absolute host
 * paths, absolute and relative symlinks (planted by the test and by the
 * guest), chained symlinks, hard links, symlink loops (ELOOP).
 *
 * Each route is tried from the cwd ("/") and from a directory fd (/bin, with
 * "../" in front of relative routes). A route names a host file outside the
 * root; confined, it names a decoy inside the root (its "expected" guest
 * path), and the program checks that what the call did happened there.
 */
#include "attack.h"

#include <sys/statfs.h>
#include <sys/time.h>
#include <utime.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

struct route {
    const char *tpl;    /* the path, %O = OUTSIDE, %L = the leaf */
    const char *expect; /* where it lands inside the root */
};

/* Routes whose last component is the leaf itself (a plain name). */
static const struct route DIR_ROUTES[] = {
    {"../%L", "/%L"},
    {"../../../../../../../../../../../../%L", "/%L"},
    {"/../%L", "/%L"},
    {"/../../../%L", "/%L"},
    {"%O/%L", "%O/%L"},
    {"%O/root/../%L", "%O/%L"},
    {"/bin/../../%L", "/%L"},
    {"lnkdir_abs/%L", "%O/%L"},
    {"lnkdir_rel/%L", "/%L"},
    {"sub/lnkdir_rel2/%L", "/%L"},
    {"lnkdir_abs/root/../%L", "%O/%L"},
    {"chain1/%L", "/%L"},
    {"g_abs/%L", "%O/%L"},
    {"g_rel/%L", "/%L"},
    {"g_root/%L", "/%L"},
};
#define N_DIR_ROUTES (sizeof DIR_ROUTES / sizeof DIR_ROUTES[0])

/* Routes whose last component is a symlink to the leaf (only for calls that follow it). */
static const struct route LINK_ROUTES[] = {
    {"fl_abs_%L", "%O/%L"},
    {"fl_rel_%L", "/%L"},
    {"sub/fl_rel_%L", "/%L"},
    {"fl_chain_%L", "%O/%L"},
    {"lnk_abs_%L", "%O/%L"},
};
#define N_LINK_ROUTES (sizeof LINK_ROUTES / sizeof LINK_ROUTES[0])

static int binfd = -1;

/* One concrete attempt: a dirfd, the path to pass and the in-root path it must act on. */
struct attempt {
    char name[400];
    int dirfd;
    char path[PATH_MAX];
    char expect[PATH_MAX];
    int is_link_route;
};

typedef void (*op_fn)(struct attempt *a);

static const char *LEAVES_RESET[] = {"secret", "canary"};

static void mirror_path(char *out, size_t size, const char *leaf) { snprintf(out, size, "%s/%s", OUTSIDE, leaf); }

/* Put the decoys back: /secret, /canary and their mirrors, the files under /data. */
static void reset(void) {
    char p[PATH_MAX];
    for (size_t i = 0; i < 2; i++) {
        const char *leaf = LEAVES_RESET[i];
        char content[64];
        snprintf(p, sizeof p, "/%s", leaf);
        snprintf(content, sizeof content, "GUEST-%s\n", leaf);
        write_file(p, content, 0644);
        lchown(p, 0, 0);
        mirror_path(p, sizeof p, leaf);
        snprintf(content, sizeof content, "GUEST-mirror-%s\n", leaf);
        write_file(p, content, 0644);
        lchown(p, 0, 0);
    }
    write_file("/data/swap", "GUEST-swap\n", 0644);
    write_file("/data/file", "GUEST-data\n", 0644);
    unlink("/grabbed");
    unlink("/grabbed2");
    unlink("/linked");
    unlink("/linked_e");
    rmdir("/emptydir");
    mkdir("/emptydir", 0755);
    mirror_path(p, sizeof p, "emptydir");
    rmdir(p);
    mkdir(p, 0755);
}

static void make_attempt(struct attempt *a, const char *op, const struct route *r, const char *leaf, int via_dirfd,
                         int is_link) {
    char path[PATH_MAX];
    expand(path, sizeof path, r->tpl, leaf);
    expand(a->expect, sizeof a->expect, r->expect, leaf);
    a->is_link_route = is_link;
    if (via_dirfd) {
        a->dirfd = binfd;
        if (path[0] == '/')
            snprintf(a->path, sizeof a->path, "%s", path);
        else
            snprintf(a->path, sizeof a->path, "../%s", path);
    } else {
        a->dirfd = AT_FDCWD;
        snprintf(a->path, sizeof a->path, "%s", path);
    }
    /* the name shows OUTSIDE as "%O": the host path printed by the guest would be a leak */
    char shown[PATH_MAX];
    expand(shown, sizeof shown, r->tpl, leaf);
    if (!strncmp(r->tpl, "%O", 2)) snprintf(shown, sizeof shown, "%%O%s", path + strlen(OUTSIDE));
    snprintf(a->name, sizeof a->name, "%s %s%s%s", op, via_dirfd ? "dirfd(/bin)+" : "",
             via_dirfd && shown[0] != '/' && strncmp(shown, "%O", 2) ? "../" : "", shown);
}

static void for_routes(const char *op, const char *leaf, int with_links, int with_dirfd, op_fn fn) {
    for (int via = 0; via <= with_dirfd; via++) {
        for (size_t i = 0; i < N_DIR_ROUTES; i++) {
            struct attempt a;
            make_attempt(&a, op, &DIR_ROUTES[i], leaf, via, 0);
            fn(&a);
            reset();
        }
        if (!with_links) continue;
        for (size_t i = 0; i < N_LINK_ROUTES; i++) {
            struct attempt a;
            make_attempt(&a, op, &LINK_ROUTES[i], leaf, via, 1);
            fn(&a);
            reset();
        }
    }
}

static int expect_stat(const struct attempt *a, struct stat *st) { return stat(a->expect, st); }

/* ------------------------------------------------------------------ reading: leaf "secret" */

static void judge_open_result(struct attempt *a, int fd) {
    if (fd < 0) {
        blocked(a->name, errno);
        return;
    }
    struct stat st, want;
    if (fstat(fd, &st) == 0 && expect_stat(a, &want) == 0 && st.st_ino != want.st_ino && !is_host_ino(&st)) {
        char buf[128] = "";
        ssize_t n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        if (strstr(buf, HOST_MARK))
            line(a->name, "ESCAPED", "read=%s", buf);
        else
            line(a->name, "WRONG", "opened another file than %s: %.60s", a->expect, buf);
        close(fd);
        return;
    }
    judge_fd_content(a->name, fd);
    close(fd);
}

static void op_open(struct attempt *a) { judge_open_result(a, openat(a->dirfd, a->path, O_RDONLY)); }

struct open_how_compat {
    uint64_t flags, mode, resolve;
};

static void op_openat2(struct attempt *a) {
    struct open_how_compat how = {O_RDONLY, 0, 0};
    judge_open_result(a, (int)syscall(SYS_openat2, a->dirfd, a->path, &how, sizeof how));
}

#ifdef SYS_open
static void op_legacy_open(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    judge_open_result(a, (int)syscall(SYS_open, a->path, O_RDONLY, 0));
}
#endif

static void judge_stat(struct attempt *a, int rc, const struct stat *st) {
    if (rc != 0) {
        blocked(a->name, errno);
        return;
    }
    struct stat want;
    if (is_host_ino(st)) {
        escaped(a->name, "stat gave the host file's inode");
    } else if (expect_stat(a, &want) == 0 && want.st_ino != st->st_ino) {
        line(a->name, "WRONG", "stat gave inode %llu, not that of %s", (unsigned long long)st->st_ino, a->expect);
    } else {
        contained(a->name, "inode of the decoy");
    }
}

static void op_stat(struct attempt *a) {
    struct stat st;
    int rc = fstatat(a->dirfd, a->path, &st, 0);
    judge_stat(a, rc, &st);
}

static void op_lstat(struct attempt *a) {
    if (a->is_link_route) return;
    struct stat st;
    int rc = fstatat(a->dirfd, a->path, &st, AT_SYMLINK_NOFOLLOW);
    judge_stat(a, rc, &st);
}

static void op_statx(struct attempt *a) {
    struct statx sx;
    int rc = statx(a->dirfd, a->path, 0, STATX_BASIC_STATS, &sx);
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = sx.stx_ino;
    judge_stat(a, rc, &st);
}

#ifdef SYS_stat
static void op_legacy_stat(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    struct stat st;
    int rc = (int)syscall(SYS_stat, a->path, &st);
    judge_stat(a, rc, &st);
}
#endif

/* link(route to secret, "/linked"), then read /linked. */
static void judge_linked(struct attempt *a, int rc, const char *linked) {
    if (rc != 0) {
        blocked(a->name, errno);
        return;
    }
    int fd = open(linked, O_RDONLY);
    if (fd < 0) {
        line(a->name, "WRONG", "link said yes but %s cannot be opened: %s", linked, ename(errno));
        return;
    }
    judge_open_result(a, fd);
}

static void op_link_in(struct attempt *a) {
    int rc = linkat(a->dirfd, a->path, AT_FDCWD, "/linked", a->is_link_route ? AT_SYMLINK_FOLLOW : 0);
    judge_linked(a, rc, "/linked");
}

static void op_link_emptypath(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_RDONLY);
    if (fd < 0) {
        blocked(a->name, errno);
        return;
    }
    int rc = linkat(fd, "", AT_FDCWD, "/linked_e", AT_EMPTY_PATH);
    close(fd);
    judge_linked(a, rc, "/linked_e");
}

#ifdef SYS_link
static void op_legacy_link(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    judge_linked(a, (int)syscall(SYS_link, a->path, "/linked"), "/linked");
}
#endif

static void op_chdir_read(struct attempt *a) {
    /* leaf "hostdir": chdir there, then read "inner" relative to the new cwd */
    int rc;
    if (a->dirfd == AT_FDCWD) {
        rc = chdir(a->path);
    } else {
        int fd = openat(a->dirfd, a->path, O_RDONLY | O_DIRECTORY);
        rc = fd < 0 ? -1 : fchdir(fd);
        int saved = errno;
        if (fd >= 0) close(fd);
        errno = saved;
    }
    if (rc != 0) {
        blocked(a->name, errno);
        chdir("/");
        return;
    }
    char cwd[PATH_MAX], hostroot[PATH_MAX];
    snprintf(hostroot, sizeof hostroot, "%s/root", OUTSIDE);
    if (getcwd(cwd, sizeof cwd) && !strncmp(cwd, hostroot, strlen(hostroot)))
        line(a->name, "ESCAPED", "getcwd shows the host path %s", cwd);
    int fd = open("inner", O_RDONLY);
    if (fd < 0)
        blocked(a->name, errno);
    else {
        judge_fd_content(a->name, fd);
        close(fd);
    }
    chdir("/");
}

static void op_getdents(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        blocked(a->name, errno);
        return;
    }
    judge_dir_fd(a->name, fd);
    close(fd);
}

static void op_readlink(struct attempt *a) {
    /* leaf "hostlink": a symlink whose target text only the host has */
    char buf[256];
    ssize_t n = readlinkat(a->dirfd, a->path, buf, sizeof buf - 1);
    if (n < 0) {
        blocked(a->name, errno);
        return;
    }
    buf[n] = 0;
    if (strstr(buf, HOST_MARK))
        line(a->name, "ESCAPED", "readlink=%s", buf);
    else
        line(a->name, "contained", "readlink=%s", buf);
}

/* ------------------------------------------------------------------ probing: leaf HOSTONLY */

static void judge_probe(struct attempt *a, int rc) {
    if (rc == 0)
        line(a->name, "ESCAPED", "a host-only name exists for the guest");
    else if (errno == ENOENT || errno == ENOSYS)
        blocked(a->name, errno);
    else
        line(a->name, "ESCAPED", "a host-only name gives errno=%s, not ENOENT", ename(errno));
}

static void op_probe_access(struct attempt *a) { judge_probe(a, faccessat(a->dirfd, a->path, F_OK, 0)); }
static void op_probe_faccessat2(struct attempt *a) {
    judge_probe(a, (int)syscall(SYS_faccessat2, a->dirfd, a->path, F_OK, AT_EACCESS));
}
static void op_probe_statfs(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    struct statfs sf;
    judge_probe(a, statfs(a->path, &sf));
}
static void op_probe_exec(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    char *argv[] = {(char *)"x", NULL};
    char *envp[] = {NULL};
    judge_probe(a, execve(a->path, argv, envp));
}
static void op_probe_execveat(struct attempt *a) {
    char *argv[] = {(char *)"x", NULL};
    char *envp[] = {NULL};
    judge_probe(a, (int)syscall(SYS_execveat, a->dirfd, a->path, argv, envp, 0));
}
static void op_probe_readlink(struct attempt *a) {
    char buf[64];
    judge_probe(a, readlinkat(a->dirfd, a->path, buf, sizeof buf) < 0 ? -1 : 0);
}
static void op_probe_open(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_PATH);
    if (fd >= 0) close(fd);
    judge_probe(a, fd < 0 ? -1 : 0);
}
static void op_probe_chdir(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = chdir(a->path);
    int saved = errno;
    chdir("/");
    errno = saved;
    judge_probe(a, rc);
}
#ifdef SYS_access
static void op_probe_legacy_access(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    judge_probe(a, (int)syscall(SYS_access, a->path, F_OK));
}
#endif

/* ------------------------------------------------------------------ changing: leaf "canary" */

/* The decoy at a->expect must show the change; otherwise it happened elsewhere (on the host). */
static void judge_change(struct attempt *a, int rc, int changed, const char *what) {
    if (rc != 0)
        blocked(a->name, errno);
    else if (changed)
        contained(a->name, what);
    else
        line(a->name, "ESCAPED", "the call succeeded but %s inside the root did not change (%s)", a->expect, what);
}

static void op_write(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_WRONLY | O_APPEND);
    if (fd < 0) {
        blocked(a->name, errno);
        return;
    }
    ssize_t n = write(fd, "Z", 1);
    close(fd);
    char buf[128] = "";
    read_file(a->expect, buf, sizeof buf);
    judge_change(a, n == 1 ? 0 : -1, buf[0] && buf[strlen(buf) - 1] == 'Z', "appended");
}

static void op_open_trunc(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_WRONLY | O_TRUNC);
    if (fd >= 0) close(fd);
    struct stat st;
    judge_change(a, fd < 0 ? -1 : 0, expect_stat(a, &st) == 0 && st.st_size == 0, "O_TRUNC");
}

static void op_truncate(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = truncate(a->path, 3);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_size == 3, "truncate 3");
}

static void op_chmod(struct attempt *a) {
    int rc = fchmodat(a->dirfd, a->path, 0604, 0);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && (st.st_mode & 07777) == 0604, "mode 0604");
}

static void op_chown(struct attempt *a) {
    int rc = fchownat(a->dirfd, a->path, 4242, 4243, 0);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_uid == 4242 && st.st_gid == 4243, "owner 4242:4243");
}

static void op_lchown(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = fchownat(a->dirfd, a->path, 4242, 4243, AT_SYMLINK_NOFOLLOW);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_uid == 4242, "owner 4242 (nofollow)");
}

static void op_utimens(struct attempt *a) {
    struct timespec times[2] = {{1000, 0}, {1000, 0}};
    int rc = utimensat(a->dirfd, a->path, times, 0);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_mtime == 1000, "mtime 1000");
}

static void op_unlink(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = unlinkat(a->dirfd, a->path, 0);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}

static void op_rename_in(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = renameat(a->dirfd, a->path, AT_FDCWD, "/grabbed");
    struct stat st;
    char buf[128] = "";
    read_file("/grabbed", buf, sizeof buf);
    if (rc == 0 && strstr(buf, HOST_MARK)) {
        line(a->name, "ESCAPED", "moved the host file into the root: %s", buf);
        return;
    }
    judge_change(a, rc, expect_stat(a, &st) != 0, "moved to /grabbed");
}

static void op_rename_noreplace(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = (int)syscall(SYS_renameat2, a->dirfd, a->path, AT_FDCWD, "/grabbed2", RENAME_NOREPLACE);
    char buf[128] = "";
    read_file("/grabbed2", buf, sizeof buf);
    if (rc == 0 && strstr(buf, HOST_MARK)) {
        line(a->name, "ESCAPED", "moved the host file into the root: %s", buf);
        return;
    }
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "moved to /grabbed2");
}

static void op_exchange(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = (int)syscall(SYS_renameat2, AT_FDCWD, "/data/swap", a->dirfd, a->path, RENAME_EXCHANGE);
    char buf[128] = "", there[128] = "";
    read_file("/data/swap", buf, sizeof buf);
    read_file(a->expect, there, sizeof there);
    if (rc == 0 && strstr(buf, HOST_MARK)) {
        line(a->name, "ESCAPED", "exchanged with the host file: %s", buf);
        return;
    }
    judge_change(a, rc, strstr(there, "GUEST-swap") != NULL, "exchanged");
}

#ifdef SYS_chmod
static void op_legacy_chmod(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = (int)syscall(SYS_chmod, a->path, 0604);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && (st.st_mode & 07777) == 0604, "mode 0604");
}
static void op_legacy_chown(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = (int)syscall(SYS_chown, a->path, 4242, 4243);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_uid == 4242, "owner 4242");
}
static void op_legacy_unlink(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    int rc = (int)syscall(SYS_unlink, a->path);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}
static void op_legacy_rename(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    int rc = (int)syscall(SYS_rename, a->path, "/grabbed");
    char buf[128] = "";
    read_file("/grabbed", buf, sizeof buf);
    if (rc == 0 && strstr(buf, HOST_MARK)) {
        line(a->name, "ESCAPED", "moved the host file into the root: %s", buf);
        return;
    }
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "moved");
}
static void op_legacy_truncate(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = (int)syscall(SYS_truncate, a->path, 3);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_size == 3, "truncate 3");
}
static void op_legacy_utime(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    struct utimbuf ub = {1000, 1000};
    int rc = (int)syscall(SYS_utime, a->path, &ub);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_mtime == 1000, "mtime 1000");
}
static void op_legacy_utimes(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    struct timeval tv[2] = {{1000, 0}, {1000, 0}};
    int rc = (int)syscall(SYS_utimes, a->path, tv);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_mtime == 1000, "mtime 1000");
}
#endif

/* ------------------------------------------------------------------ creating: leaf "made_by_guest" */

static void judge_created(struct attempt *a, int rc) {
    struct stat st;
    int there = fstatat(AT_FDCWD, a->expect, &st, AT_SYMLINK_NOFOLLOW) == 0;
    judge_change(a, rc, there, "created");
    /* clean up inside the root */
    unlinkat(AT_FDCWD, a->expect, 0);
    unlinkat(AT_FDCWD, a->expect, AT_REMOVEDIR);
}

static void op_create(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
        write(fd, "GUEST-new\n", 10);
        close(fd);
    }
    judge_created(a, fd < 0 ? -1 : 0);
}

static void op_create_follow(struct attempt *a) {
    /* O_CREAT without O_EXCL follows a dangling symlink and creates its target */
    int fd = openat(a->dirfd, a->path, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
    judge_created(a, fd < 0 ? -1 : 0);
}

static void op_mkdir(struct attempt *a) { judge_created(a, mkdirat(a->dirfd, a->path, 0755)); }
static void op_mknod(struct attempt *a) { judge_created(a, mknodat(a->dirfd, a->path, S_IFREG | 0644, 0)); }
static void op_mkfifo(struct attempt *a) { judge_created(a, mknodat(a->dirfd, a->path, S_IFIFO | 0644, 0)); }
static void op_symlink(struct attempt *a) { judge_created(a, symlinkat("GUEST-target", a->dirfd, a->path)); }
static void op_link_out(struct attempt *a) { judge_created(a, linkat(AT_FDCWD, "/data/file", a->dirfd, a->path, 0)); }
static void op_rename_out(struct attempt *a) {
    write_file("/data/moveme", "GUEST-moveme\n", 0644);
    judge_created(a, renameat(AT_FDCWD, "/data/moveme", a->dirfd, a->path));
}
#ifdef SYS_creat
static void op_legacy_creat(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int fd = (int)syscall(SYS_creat, a->path, 0644);
    if (fd >= 0) close(fd);
    judge_created(a, fd < 0 ? -1 : 0);
}
static void op_legacy_mkdir(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    judge_created(a, (int)syscall(SYS_mkdir, a->path, 0755));
}
static void op_legacy_symlink(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    judge_created(a, (int)syscall(SYS_symlink, "GUEST-target", a->path));
}
static void op_legacy_mknod(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    judge_created(a, (int)syscall(SYS_mknod, a->path, S_IFREG | 0644, 0));
}
#endif

/* ------------------------------------------------------------------ directories: leaf "emptydir" */

static void op_rmdir(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = unlinkat(a->dirfd, a->path, AT_REMOVEDIR);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}

#ifdef SYS_rmdir
static void op_legacy_rmdir(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    int rc = (int)syscall(SYS_rmdir, a->path);
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}
#endif

/* ------------------------------------------------------------------ loops and kernel errors */

static void expect_errno(const char *name, int rc, int want) {
    if (rc == 0)
        line(name, "WRONG", "succeeded, Linux gives %s", ename(want));
    else if (errno == want)
        blocked(name, errno);
    else if (errno == ENOSYS)
        blocked(name, errno);
    else
        line(name, "WRONG", "errno=%s, Linux gives %s", ename(errno), ename(want));
}

static void loops(void) {
    char a[64], b[64];
    symlink("loop2", "/loop1");
    symlink("loop1", "/loop2");
    symlink("selfl", "/selfl");
    symlink("dirloop/x", "/dirloop");
    /* c0 -> c1 -> ... -> c40 -> /secret: c1 needs 40 follows (allowed), c0 needs 41 (ELOOP) */
    for (int i = 0; i <= 40; i++) {
        snprintf(a, sizeof a, "/c%d", i);
        if (i == 40)
            snprintf(b, sizeof b, "/secret");
        else
            snprintf(b, sizeof b, "c%d", i + 1);
        symlink(b, a);
    }
    struct stat st;
    expect_errno("eloop open loop1", openat(AT_FDCWD, "loop1", O_RDONLY) < 0 ? -1 : 0, ELOOP);
    expect_errno("eloop stat selfl", stat("selfl", &st), ELOOP);
    expect_errno("eloop stat dirloop/y", stat("/dirloop/y", &st), ELOOP);
    expect_errno("eloop chmod loop1", chmod("/loop1", 0600), ELOOP);
    expect_errno("eloop open c0 (41 links)", open("/c0", O_RDONLY) < 0 ? -1 : 0, ELOOP);
    int fd = open("/c1", O_RDONLY);
    if (fd < 0)
        line("open c1 (40 links)", "WRONG", "errno=%s, Linux follows 40 links", ename(errno));
    else {
        judge_fd_content("open c1 (40 links)", fd);
        close(fd);
    }
    expect_errno("eloop O_NOFOLLOW on a link", open("/loop1", O_RDONLY | O_NOFOLLOW) < 0 ? -1 : 0, ELOOP);
    expect_errno("enotdir secret/..", stat("/secret/../canary", &st), ENOTDIR);
    expect_errno("enotdir secret/", open("/secret/", O_RDONLY) < 0 ? -1 : 0, ENOTDIR);
    expect_errno("exdev-free rename to missing dir", rename("/data/file", "/nodir/x"), ENOENT);
    /* plain within-root behaviour still works */
    char buf[64] = "";
    if (read_file("/data/file", buf, sizeof buf) > 0 && !strcmp(buf, "GUEST-data\n"))
        contained("control read /data/file", "ok");
    else
        line("control read /data/file", "WRONG", "read %s", buf);
}

/* ------------------------------------------------------------------ main */

static void guest_links(void) {
    char p[PATH_MAX], t[PATH_MAX];
    const char *leaves[] = {"secret", "canary", "hostdir", "hostlink", HOSTONLY, "made_by_guest", "emptydir"};
    mkdir("/sub", 0755);
    snprintf(t, sizeof t, "%s", OUTSIDE);
    symlink(t, "/g_abs");
    symlink("../../..", "/g_rel");
    symlink("/", "/g_root");
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        const char *leaf = leaves[i];
        snprintf(p, sizeof p, "/fl_abs_%s", leaf);
        snprintf(t, sizeof t, "%s/%s", OUTSIDE, leaf);
        symlink(t, p);
        snprintf(p, sizeof p, "/fl_rel_%s", leaf);
        snprintf(t, sizeof t, "../%s", leaf);
        symlink(t, p);
        snprintf(p, sizeof p, "/sub/fl_rel_%s", leaf);
        snprintf(t, sizeof t, "../../../%s", leaf);
        symlink(t, p);
        snprintf(p, sizeof p, "/fl_chain_%s", leaf);
        snprintf(t, sizeof t, "fl_abs_%s", leaf);
        symlink(t, p);
    }
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 5);
    const char *only = argc > 5 ? argv[5] : "";
    mkdir("/data", 0755);
    guest_links();
    reset();
    binfd = open("/bin", O_RDONLY | O_DIRECTORY);
    if (binfd < 0) {
        fprintf(stderr, "cannot open /bin: %s\n", strerror(errno));
        return 2;
    }
#define RUN(group) (!only[0] || !strcmp(only, group))
    if (RUN("read")) {
        for_routes("open", "secret", 1, 1, op_open);
        for_routes("openat2", "secret", 1, 1, op_openat2);
        for_routes("stat", "secret", 1, 1, op_stat);
        for_routes("lstat", "secret", 0, 1, op_lstat);
        for_routes("statx", "secret", 1, 1, op_statx);
        for_routes("link", "secret", 1, 1, op_link_in);
        for_routes("link-AT_EMPTY_PATH", "secret", 1, 1, op_link_emptypath);
        for_routes("chdir", "hostdir", 1, 1, op_chdir_read);
        for_routes("getdents", ".", 0, 1, op_getdents);
        for_routes("readlink", "hostlink", 0, 1, op_readlink);
#ifdef SYS_open
        for_routes("legacy-open", "secret", 1, 0, op_legacy_open);
        for_routes("legacy-stat", "secret", 1, 0, op_legacy_stat);
        for_routes("legacy-link", "secret", 0, 0, op_legacy_link);
#endif
    }
    if (RUN("probe")) {
        for_routes("probe-open", HOSTONLY, 1, 1, op_probe_open);
        for_routes("probe-access", HOSTONLY, 1, 1, op_probe_access);
        for_routes("probe-faccessat2", HOSTONLY, 1, 1, op_probe_faccessat2);
        for_routes("probe-statfs", HOSTONLY, 1, 0, op_probe_statfs);
        for_routes("probe-readlink", HOSTONLY, 0, 1, op_probe_readlink);
        for_routes("probe-chdir", HOSTONLY, 1, 0, op_probe_chdir);
        for_routes("probe-execve", HOSTONLY, 1, 0, op_probe_exec);
        for_routes("probe-execveat", HOSTONLY, 1, 1, op_probe_execveat);
#ifdef SYS_access
        for_routes("probe-legacy-access", HOSTONLY, 1, 0, op_probe_legacy_access);
#endif
    }
    if (RUN("change")) {
        for_routes("write", "canary", 1, 1, op_write);
        for_routes("O_TRUNC", "canary", 1, 1, op_open_trunc);
        for_routes("truncate", "canary", 1, 0, op_truncate);
        for_routes("chmod", "canary", 1, 1, op_chmod);
        for_routes("chown", "canary", 1, 1, op_chown);
        for_routes("lchown", "canary", 0, 1, op_lchown);
        for_routes("utimensat", "canary", 1, 1, op_utimens);
        for_routes("unlink", "canary", 0, 1, op_unlink);
        for_routes("rename-in", "canary", 0, 1, op_rename_in);
        for_routes("renameat2-NOREPLACE", "canary", 0, 1, op_rename_noreplace);
        for_routes("renameat2-EXCHANGE", "canary", 0, 1, op_exchange);
        for_routes("rmdir", "emptydir", 0, 1, op_rmdir);
#ifdef SYS_chmod
        for_routes("legacy-chmod", "canary", 1, 0, op_legacy_chmod);
        for_routes("legacy-chown", "canary", 1, 0, op_legacy_chown);
        for_routes("legacy-unlink", "canary", 0, 0, op_legacy_unlink);
        for_routes("legacy-rename", "canary", 0, 0, op_legacy_rename);
        for_routes("legacy-truncate", "canary", 1, 0, op_legacy_truncate);
        for_routes("legacy-utime", "canary", 1, 0, op_legacy_utime);
        for_routes("legacy-utimes", "canary", 1, 0, op_legacy_utimes);
        for_routes("legacy-rmdir", "emptydir", 0, 0, op_legacy_rmdir);
#endif
    }
    if (RUN("create")) {
        for_routes("create", "made_by_guest", 0, 1, op_create);
        for_routes("create-through-dangling-link", "made_by_guest", 1, 1, op_create_follow);
        for_routes("mkdir", "made_by_guest", 0, 1, op_mkdir);
        for_routes("mknod-reg", "made_by_guest", 0, 1, op_mknod);
        for_routes("mknod-fifo", "made_by_guest", 0, 1, op_mkfifo);
        for_routes("symlink", "made_by_guest", 0, 1, op_symlink);
        for_routes("link-out", "made_by_guest", 0, 1, op_link_out);
        for_routes("rename-out", "made_by_guest", 0, 1, op_rename_out);
#ifdef SYS_creat
        for_routes("legacy-creat", "made_by_guest", 0, 0, op_legacy_creat);
        for_routes("legacy-mkdir", "made_by_guest", 0, 0, op_legacy_mkdir);
        for_routes("legacy-symlink", "made_by_guest", 0, 0, op_legacy_symlink);
        for_routes("legacy-mknod", "made_by_guest", 0, 0, op_legacy_mknod);
#endif
    }
    if (RUN("loops")) loops();
    return finish();
}
