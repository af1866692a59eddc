/* The attempts shared by the attack programs: one system call through one path, judged by where its
 * effect landed (see attack.h). Each program defines reset() (put its decoys back). */
#ifndef VM_ATTACK_OPS_H
#define VM_ATTACK_OPS_H
#include "attack.h"

#include <sys/statfs.h>
#include <sys/time.h>
#include <utime.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif


/* One concrete attempt: a dirfd, the path to pass and the in-root path it must act on. */
struct attempt {
    char name[400];
    int dirfd;
    char path[PATH_MAX];
    char expect[PATH_MAX];
    int is_link_route;
};

typedef void (*op_fn)(struct attempt *a);

/* errno of the attempted call, saved before the checks that follow it can change errno */
static int call_errno;

static const char *LEAVES_RESET[] = {"secret", "canary"};

static void mirror_path(char *out, size_t size, const char *leaf) { snprintf(out, size, "%s/%s", OUTSIDE, leaf); }

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
    call_errno = errno;
    judge_stat(a, rc, &st);
}

static void op_lstat(struct attempt *a) {
    if (a->is_link_route) return;
    struct stat st;
    int rc = fstatat(a->dirfd, a->path, &st, AT_SYMLINK_NOFOLLOW);
    call_errno = errno;
    judge_stat(a, rc, &st);
}

static void op_statx(struct attempt *a) {
    struct statx sx;
    int rc = statx(a->dirfd, a->path, 0, STATX_BASIC_STATS, &sx);
    call_errno = errno;
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
    call_errno = errno;
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
    unlink("/linked");
    int rc = linkat(a->dirfd, a->path, AT_FDCWD, "/linked", a->is_link_route ? AT_SYMLINK_FOLLOW : 0);
    call_errno = errno;
    judge_linked(a, rc, "/linked");
}

static void op_link_emptypath(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_RDONLY);
    if (fd < 0) {
        blocked(a->name, errno);
        return;
    }
    unlink("/linked_e");
    int rc = linkat(fd, "", AT_FDCWD, "/linked_e", AT_EMPTY_PATH);
    call_errno = errno;
    close(fd);
    judge_linked(a, rc, "/linked_e");
}

#ifdef SYS_link
static void op_legacy_link(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    unlink("/linked");
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
    call_errno = errno;
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
        blocked(a->name, call_errno);
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
    call_errno = errno;
    close(fd);
    char buf[128] = "";
    read_file(a->expect, buf, sizeof buf);
    judge_change(a, n == 1 ? 0 : -1, buf[0] && buf[strlen(buf) - 1] == 'Z', "appended");
}

static void op_open_trunc(struct attempt *a) {
    int fd = openat(a->dirfd, a->path, O_WRONLY | O_TRUNC);
    call_errno = errno;
    if (fd >= 0) close(fd);
    struct stat st;
    judge_change(a, fd < 0 ? -1 : 0, expect_stat(a, &st) == 0 && st.st_size == 0, "O_TRUNC");
}

static void op_truncate(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = truncate(a->path, 3);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_size == 3, "truncate 3");
}

static void op_chmod(struct attempt *a) {
    int rc = fchmodat(a->dirfd, a->path, 0604, 0);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && (st.st_mode & 07777) == 0604, "mode 0604");
}

static void op_chown(struct attempt *a) {
    int rc = fchownat(a->dirfd, a->path, 4242, 4243, 0);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_uid == 4242 && st.st_gid == 4243, "owner 4242:4243");
}

static void op_lchown(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = fchownat(a->dirfd, a->path, 4242, 4243, AT_SYMLINK_NOFOLLOW);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_uid == 4242, "owner 4242 (nofollow)");
}

static void op_utimens(struct attempt *a) {
    struct timespec times[2] = {{1000, 0}, {1000, 0}};
    int rc = utimensat(a->dirfd, a->path, times, 0);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_mtime == 1000, "mtime 1000");
}

static void op_unlink(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = unlinkat(a->dirfd, a->path, 0);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}

static void op_rename_in(struct attempt *a) {
    if (a->is_link_route) return;
    int rc = renameat(a->dirfd, a->path, AT_FDCWD, "/grabbed");
    call_errno = errno;
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
    call_errno = errno;
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
    call_errno = errno;
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
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && (st.st_mode & 07777) == 0604, "mode 0604");
}
static void op_legacy_chown(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = (int)syscall(SYS_chown, a->path, 4242, 4243);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_uid == 4242, "owner 4242");
}
static void op_legacy_unlink(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    int rc = (int)syscall(SYS_unlink, a->path);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}
static void op_legacy_rename(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    int rc = (int)syscall(SYS_rename, a->path, "/grabbed");
    call_errno = errno;
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
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_size == 3, "truncate 3");
}
static void op_legacy_utime(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    struct utimbuf ub = {1000, 1000};
    int rc = (int)syscall(SYS_utime, a->path, &ub);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_mtime == 1000, "mtime 1000");
}
static void op_legacy_utimes(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    struct timeval tv[2] = {{1000, 0}, {1000, 0}};
    int rc = (int)syscall(SYS_utimes, a->path, tv);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) == 0 && st.st_mtime == 1000, "mtime 1000");
}
#endif

/* ------------------------------------------------------------------ creating: leaf "made_by_guest" */

static void judge_created(struct attempt *a, int rc) {
    if (rc != 0) call_errno = errno;
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
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}

#ifdef SYS_rmdir
static void op_legacy_rmdir(struct attempt *a) {
    if (a->dirfd != AT_FDCWD || a->is_link_route) return;
    int rc = (int)syscall(SYS_rmdir, a->path);
    call_errno = errno;
    struct stat st;
    judge_change(a, rc, expect_stat(a, &st) != 0, "removed");
}
#endif

/* Decoys inside the root at DIR: secret, canary, hostdir/inner, hostlink, emptydir (tag in the content). */
__attribute__((unused)) static void make_decoys(const char *dir, const char *tag) {
    char p[PATH_MAX], content[128];
    mkdir(dir, 0755);
    const char *files[] = {"secret", "canary"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        snprintf(content, sizeof content, "%s-%s\n", tag, files[i]);
        write_file(p, content, 0644);
    }
    snprintf(p, sizeof p, "%s/hostdir", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/hostdir/inner", dir);
    snprintf(content, sizeof content, "%s-inner\n", tag);
    write_file(p, content, 0644);
    snprintf(p, sizeof p, "%s/hostlink", dir);
    snprintf(content, sizeof content, "%s-link", tag);
    unlink(p);
    symlink(content, p);
    snprintf(p, sizeof p, "%s/emptydir", dir);
    rmdir(p);
    mkdir(p, 0755);
}

#endif
