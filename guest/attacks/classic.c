/* Classic escapes through every path-taking system call: "..", absolute host
 * paths, absolute and relative symlinks (planted by the test and by the
 * guest), chained symlinks, hard links, symlink loops (ELOOP).
 *
 * Each route is tried from the cwd ("/") and from a directory fd (/bin, with
 * "../" in front of relative routes). A route names a host file outside the
 * root; confined, it names a decoy inside the root (its "expected" guest
 * path), and the program checks that what the call did happened there.
 */
#include "ops.h"

#include <sys/xattr.h>

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
    {"//..//%L", "/%L"},
    {"./../%L", "/%L"},
    {"sub/./../../%L", "/%L"},
    {"lnkdir_rel/./%L", "/%L"},
    {"sub/lnkdir_rel2/../%L", "/%L"},
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

/* After a changing attempt: put back only what it may have changed (cheaper than reset()). */
static void restore(const struct attempt *a, const char *leaf) {
    char content[128];
    if (!strcmp(leaf, "emptydir")) {
        rmdir(a->expect);
        mkdir(a->expect, 0755);
        return;
    }
    if (strcmp(leaf, "canary")) return;
    int mirror = !strncmp(a->expect, OUTSIDE, strlen(OUTSIDE));
    snprintf(content, sizeof content, "%s-canary\n", mirror ? "GUEST-mirror" : "GUEST");
    write_file(a->expect, content, 0644);
    if (strstr(a->name, "rename") || strstr(a->name, "EXCHANGE")) {
        unlink("/grabbed");
        unlink("/grabbed2");
        write_file("/data/swap", "GUEST-swap\n", 0644);
    }
}

static int reaches_past_base(const char *tpl) {
    return !strncmp(tpl, "../../", 6) || !strncmp(tpl, "/../../", 7) || !strncmp(tpl, "g_root", 6);
}

static int mutating_leaf(const char *leaf) { return !strcmp(leaf, "canary") || !strcmp(leaf, "emptydir"); }

static void for_routes(const char *op, const char *leaf, int with_links, int with_dirfd, op_fn fn) {
    for (int via = 0; via <= with_dirfd; via++) {
        for (size_t i = 0; i < N_DIR_ROUTES + (with_links ? N_LINK_ROUTES : 0); i++) {
            struct attempt a;
            int is_link = i >= N_DIR_ROUTES;
            const struct route *r = is_link ? &LINK_ROUTES[i - N_DIR_ROUTES] : &DIR_ROUTES[i];
            /* Safety: a route that a broken resolver would take past the test's own directory (to the
             * host's / or /tmp) is only used for reading and probing, never to change or create. */
            if ((mutating_leaf(leaf) || !strcmp(leaf, "made_by_guest")) && reaches_past_base(r->tpl)) continue;
            make_attempt(&a, op, r, leaf, via, is_link);
            fn(&a);
            if (mutating_leaf(leaf)) restore(&a, leaf);
        }
        if (!strcmp(leaf, "secret")) {
            unlink("/linked");
            unlink("/linked_e");
        }
    }
}

static void op_setxattr(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    int rc = setxattr(a->path, "user.vm_attack", "1", 1, 0);
    call_errno = errno;
    char v[8];
    judge_change(a, rc, getxattr(a->expect, "user.vm_attack", v, sizeof v) == 1, "xattr set");
    removexattr(a->expect, "user.vm_attack");
}

static void op_probe_getxattr(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    char v[64];
    ssize_t n = getxattr(a->path, "user.none", v, sizeof v);
    /* ENODATA means the file exists */
    judge_probe(a, n >= 0 || errno == ENODATA || errno == ENOTSUP ? 0 : -1);
}

static void op_probe_listxattr(struct attempt *a) {
    if (a->dirfd != AT_FDCWD) return;
    char v[256];
    judge_probe(a, listxattr(a->path, v, sizeof v) < 0 ? -1 : 0);
}

/* The classic chroot breakout: chroot into a subdirectory, keep the cwd outside it, climb with "..". */
static void chroot_breakout(void) {
    char name[] = "chroot breakout";
    mkdir("/jail", 0755);
    if (syscall(SYS_chroot, "/jail") != 0) {
        blocked(name, errno);
        return;
    }
    for (int i = 0; i < 12; i++) chdir("..");
    syscall(SYS_chroot, ".");
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/secret", OUTSIDE);
    int fd = open(p, O_RDONLY);
    if (fd >= 0) {
        judge_fd_content(name, fd);
        close(fd);
    }
    fd = open("../secret", O_RDONLY);
    if (fd >= 0) {
        judge_fd_content("chroot breakout ../secret", fd);
        close(fd);
    } else
        blocked("chroot breakout ../secret", errno);
}

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
    symlink("..", "/g_rel");
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
        snprintf(t, sizeof t, "../../%s", leaf);
        symlink(t, p);
        snprintf(p, sizeof p, "/fl_chain_%s", leaf);
        snprintf(t, sizeof t, "fl_abs_%s", leaf);
        symlink(t, p);
    }
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 5);
    const char *only = argc > 5 ? argv[5] : ""; /* groups, comma-separated (default: all) */
    mkdir("/data", 0755);
    guest_links();
    reset();
    binfd = open("/bin", O_RDONLY | O_DIRECTORY);
    if (binfd < 0) {
        fprintf(stderr, "cannot open /bin: %s\n", strerror(errno));
        return 2;
    }
#define RUN(group) (!only[0] || strstr(only, group))
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
        for_routes("probe-getxattr", HOSTONLY, 1, 0, op_probe_getxattr);
        for_routes("probe-listxattr", HOSTONLY, 1, 0, op_probe_listxattr);
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
        for_routes("setxattr", "canary", 1, 0, op_setxattr);
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
    if (RUN("chroot")) chroot_breakout(); /* last: it may change what "/" is */
    return finish();
}
