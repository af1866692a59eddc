/* The working directory and directory fds must follow the directory, not its name.
 *
 * For each scenario the guest makes a directory with decoys, makes it its cwd
 * (or opens it as a dirfd), renames it away and plants, under the old name, a
 * symlink to the host (OUTSIDE, absolute; "..", relative; or a symlink to a
 * parent of a nested directory). Linux keeps the cwd and the fd on the moved
 * directory, so every relative call below must act on the decoys in the moved
 * directory ("expected"), never on the host.
 */
#include "ops.h"

static char scenario_dir[PATH_MAX]; /* where the decoys are after the move */

static void reset(void) {
    make_decoys(scenario_dir, "GUEST-moved");
    write_file("/data/swap", "GUEST-swap\n", 0644);
    write_file("/data/file", "GUEST-data\n", 0644);
    unlink("/grabbed");
    unlink("/grabbed2");
    unlink("/linked");
    unlink("/linked_e");
}

static int cur_dirfd = AT_FDCWD;
static const char *cur_label = "";

static void attempt(const char *op, const char *leaf, op_fn fn) {
    struct attempt a;
    memset(&a, 0, sizeof a);
    a.dirfd = cur_dirfd;
    snprintf(a.path, sizeof a.path, "%s", leaf);
    snprintf(a.expect, sizeof a.expect, "%s/%s", scenario_dir, leaf);
    snprintf(a.name, sizeof a.name, "%s %s %s", cur_label, op, leaf[0] == 'H' ? "HOSTONLY" : leaf);
    fn(&a);
    reset();
}

static void attempt_dotdot(const char *op, const char *leaf, op_fn fn, const char *expect_parent) {
    struct attempt a;
    memset(&a, 0, sizeof a);
    a.dirfd = cur_dirfd;
    snprintf(a.path, sizeof a.path, "../%s", leaf);
    snprintf(a.expect, sizeof a.expect, "%s/%s", expect_parent, leaf);
    snprintf(a.name, sizeof a.name, "%s %s ../%s", cur_label, op, leaf);
    fn(&a);
    reset();
}

/* chdir to a host-only name, then back to where the cwd was (by fd: the cwd is the moved directory). */
static void op_probe_chdir_here(struct attempt *a) {
    int here = open(".", O_RDONLY | O_DIRECTORY);
    int rc = chdir(a->path);
    int saved = errno;
    if (here >= 0) {
        fchdir(here);
        close(here);
    }
    errno = saved;
    judge_probe(a, rc);
}

/* Every relative call, relative to the cwd (dirfd AT_FDCWD) or to cur_dirfd. */
static void all_ops(void) {
    attempt("open", "secret", op_open);
    attempt("openat2", "secret", op_openat2);
    attempt("stat", "secret", op_stat);
    attempt("lstat", "secret", op_lstat);
    attempt("statx", "secret", op_statx);
    attempt("readlink", "hostlink", op_readlink);
    attempt("link", "secret", op_link_in);
    attempt("getdents", ".", op_getdents);
    attempt("probe-open", HOSTONLY, op_probe_open);
    attempt("probe-access", HOSTONLY, op_probe_access);
    attempt("probe-faccessat2", HOSTONLY, op_probe_faccessat2);
    attempt("probe-readlink", HOSTONLY, op_probe_readlink);
    attempt("probe-execveat", HOSTONLY, op_probe_execveat);
    attempt("write", "canary", op_write);
    attempt("O_TRUNC", "canary", op_open_trunc);
    attempt("chmod", "canary", op_chmod);
    attempt("chown", "canary", op_chown);
    attempt("utimensat", "canary", op_utimens);
    attempt("unlink", "canary", op_unlink);
    attempt("rename-in", "canary", op_rename_in);
    attempt("renameat2-EXCHANGE", "canary", op_exchange);
    attempt("rmdir", "emptydir", op_rmdir);
    attempt("create", "made_by_guest", op_create);
    attempt("mkdir", "made_by_guest", op_mkdir);
    attempt("mknod", "made_by_guest", op_mknod);
    attempt("symlink", "made_by_guest", op_symlink);
    attempt("link-out", "made_by_guest", op_link_out);
    attempt("rename-out", "made_by_guest", op_rename_out);
    if (cur_dirfd == AT_FDCWD) {
        attempt("truncate", "canary", op_truncate);
        attempt("probe-statfs", HOSTONLY, op_probe_statfs);
        attempt("probe-chdir", HOSTONLY, op_probe_chdir_here);
#ifdef SYS_open
        attempt("legacy-open", "secret", op_legacy_open);
        attempt("legacy-stat", "secret", op_legacy_stat);
        attempt("legacy-chmod", "canary", op_legacy_chmod);
        attempt("legacy-unlink", "canary", op_legacy_unlink);
        attempt("legacy-creat", "made_by_guest", op_legacy_creat);
        attempt("legacy-mkdir", "made_by_guest", op_legacy_mkdir);
        attempt("probe-legacy-access", HOSTONLY, op_probe_legacy_access);
#endif
    }
}

static void check_getcwd(const char *label, const char *want) {
    char cwd[PATH_MAX];
    char name[256];
    snprintf(name, sizeof name, "%s getcwd", label);
    if (!getcwd(cwd, sizeof cwd)) {
        blocked(name, errno);
        return;
    }
    if (strstr(cwd, "/root")) {
        line(name, "ESCAPED", "getcwd shows a host path");
        return;
    }
    if (strcmp(cwd, want))
        line(name, "WRONG", "getcwd=%s, Linux gives %s", cwd, want);
    else
        contained(name, cwd);
}

/* Make DIR (with decoys), enter it (cwd) or open it (dirfd), rename MOVE_FROM to MOVE_TO, plant a
 * symlink TARGET at MOVE_FROM, then try everything. DIR is inside MOVE_FROM (or is it). */
static void scenario(const char *label, const char *dir, const char *move_from, const char *move_to,
                     const char *target, int use_dirfd, int use_fchdir) {
    char moved_dir[PATH_MAX];
    snprintf(moved_dir, sizeof moved_dir, "%s%s", move_to, dir + strlen(move_from));
    /* set up: mkdir -p dir, decoys */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    make_decoys(dir, "GUEST-moved");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        line(label, "WRONG", "cannot open %s: %s", dir, ename(errno));
        return;
    }
    if (!use_dirfd && !use_fchdir && chdir(dir) != 0) {
        line(label, "WRONG", "cannot chdir %s: %s", dir, ename(errno));
        return;
    }
    if (rename(move_from, move_to) != 0) {
        line(label, "WRONG", "rename %s %s: %s", move_from, move_to, ename(errno));
        return;
    }
    if (symlink(target, move_from) != 0) {
        line(label, "WRONG", "symlink at %s: %s", move_from, ename(errno));
        return;
    }
    if (use_fchdir && fchdir(fd) != 0) {
        line(label, "WRONG", "fchdir: %s", ename(errno));
        return;
    }
    snprintf(scenario_dir, sizeof scenario_dir, "%s", moved_dir);
    reset();
    cur_dirfd = use_dirfd ? fd : AT_FDCWD;
    cur_label = label;
    if (!use_dirfd) check_getcwd(label, moved_dir);
    all_ops();
    /* ".." from the moved directory is the moved parent, not the planted link's */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", moved_dir);
    char *slash = strrchr(parent, '/');
    if (slash == parent) parent[1] = 0; else *slash = 0;
    if (strcmp(parent, "/")) {
        make_decoys(parent, "GUEST-parent");
        attempt_dotdot("open", "secret", op_open, parent);
        attempt_dotdot("stat", "secret", op_stat, parent);
        attempt_dotdot("chmod", "canary", op_chmod, parent);
        attempt_dotdot("unlink", "canary", op_unlink, parent);
        attempt_dotdot("create", "made_by_guest", op_create, parent);
        make_decoys(parent, "GUEST-parent");
    }
    if (use_dirfd) {
        /* fchdir to the fd now, after the plant: the cwd is the moved directory */
        char name[256];
        snprintf(name, sizeof name, "%s fchdir-after-plant", label);
        if (fchdir(fd) != 0)
            blocked(name, errno);
        else {
            check_getcwd(name, moved_dir);
            cur_dirfd = AT_FDCWD;
            cur_label = name;
            attempt("open", "secret", op_open);
            attempt("create", "made_by_guest", op_create);
            attempt("unlink", "canary", op_unlink);
        }
    }
    chdir("/");
    close(fd);
    cur_dirfd = AT_FDCWD;
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 5);
    mkdir("/data", 0755);
    snprintf(scenario_dir, sizeof scenario_dir, "/data/none");
    char outside_hostdir[PATH_MAX];
    snprintf(outside_hostdir, sizeof outside_hostdir, "%s/hostdir", OUTSIDE);
    /* cwd, the directory itself replaced */
    scenario("cwd/abs", "/w1", "/w1", "/w1_moved", OUTSIDE, 0, 0);
    scenario("cwd/rel", "/w2", "/w2", "/w2_moved", "..", 0, 0);
    scenario("cwd/rel-up2", "/w3", "/w3", "/w3_moved", "../..", 0, 0); /* the test's own tmp dir, no further */
    scenario("cwd/abs-hostdir", "/w4", "/w4", "/w4_moved", outside_hostdir, 0, 0);
    /* cwd, a parent replaced: /p/hostdir is the cwd, /p moves, /p -> OUTSIDE (which has hostdir) */
    scenario("cwd/parent-abs", "/p1/hostdir", "/p1", "/p1_moved", OUTSIDE, 0, 0);
    scenario("cwd/parent-rel", "/p2/hostdir", "/p2", "/p2_moved", "..", 0, 0);
    /* dirfd, the directory itself and a parent */
    scenario("dirfd/abs", "/d1", "/d1", "/d1_moved", OUTSIDE, 1, 0);
    scenario("dirfd/rel", "/d2", "/d2", "/d2_moved", "..", 1, 0);
    scenario("dirfd/parent-abs", "/q1/hostdir", "/q1", "/q1_moved", OUTSIDE, 1, 0);
    scenario("dirfd/parent-rel", "/q2/hostdir", "/q2", "/q2_moved", "..", 1, 0);
    /* fchdir before the plant */
    scenario("fchdir/abs", "/f1", "/f1", "/f1_moved", OUTSIDE, 0, 1);
    /* moved into a deeper place */
    mkdir("/deep", 0755);
    mkdir("/deep/er", 0755);
    scenario("cwd/moved-deeper", "/w5", "/w5", "/deep/er/w5", OUTSIDE, 0, 0);
    return finish();
}
