/* vm's own descriptors, RLIMIT_NOFILE, and signals to host processes.
 *
 * argv after the common four: HOST_PID (a host process the test owns: it must
 * stay alive and unsignalled), HOST_PGID (its process group).
 * - fds 3..1023: fstat/fcntl/read/write/lseek/dup/dup2/close must all give EBADF
 *   (the guest has opened nothing but 0, 1, 2);
 * - setrlimit(RLIMIT_NOFILE, 16): opens succeed for fds 3..15, then EMFILE;
 *   dup2/F_DUPFD at or past the limit: EBADF/EINVAL;
 * - kill/tkill/tgkill to pid 1 (signal 0 only), the host pid and group: ESRCH;
 * - the same, and getpgid/getsid/setpgid of the host pid, once the guest has a child process of its own
 *   (guest processes know each other; a host process stays out of reach).
 */
#include "attack.h"

#include <sys/mman.h>
#include <sys/resource.h>

static void fd_probe(void) {
    int leaked = 0;
    char buf[8];
    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;
        const char *what = NULL;
        if (fstat(fd, &st) == 0)
            what = "fstat";
        else if (errno != EBADF)
            what = "fstat errno";
        else if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            what = "fcntl";
        else if (lseek(fd, 0, SEEK_CUR) >= 0 || errno != EBADF)
            what = "lseek";
        else if (read(fd, buf, 0) >= 0 || errno != EBADF)
            what = "read";
        else if (write(fd, buf, 0) >= 0 || errno != EBADF)
            what = "write";
        else if (getdents64(fd, buf, 0) >= 0 || errno != EBADF)
            what = "getdents64";
        else if (pread(fd, buf, 1, 0) >= 0 || errno != EBADF)
            what = "pread";
        else if (fsync(fd) == 0 || errno != EBADF)
            what = "fsync";
        else if (fchdir(fd) == 0 || errno != EBADF) {
            what = "fchdir";
            chdir("/");
        } else if (fcntl(fd, F_GETFL) >= 0 || errno != EBADF)
            what = "fcntl F_GETFL";
        else if (fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 || errno != EBADF)
            what = "fstatat AT_EMPTY_PATH";
        else if (openat(fd, ".", O_RDONLY) >= 0 || errno != EBADF)
            what = "openat(fd, \".\")";
        else if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) != MAP_FAILED || errno != EBADF)
            what = "mmap";
        else {
            int d = dup(fd);
            if (d >= 0 || errno != EBADF) {
                what = "dup";
                if (d >= 0) close(d);
            } else if (close(fd) == 0 || errno != EBADF)
                what = "close";
        }
        if (what) {
            if (leaked++ < 10) line("fd probe", "ESCAPED", "fd %d is not the guest's but %s works on it", fd, what);
        }
    }
    if (!leaked) contained("fd probe 3..1023", "all EBADF");
    /* dup2 onto a high number then use it: it is the guest's own now */
    int d = dup2(1, 900);
    if (d != 900)
        line("dup2 1 900", "WRONG", "errno=%s", ename(errno));
    else {
        close(900);
        contained("dup2 1 900", "ok");
    }
}

static void nofile(void) {
    struct rlimit rl = {16, 16};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        line("setrlimit NOFILE 16", "WRONG", "errno=%s", ename(errno));
        return;
    }
    struct rlimit got;
    getrlimit(RLIMIT_NOFILE, &got);
    line("getrlimit NOFILE", got.rlim_cur == 16 ? "contained" : "WRONG", "cur=%llu", (unsigned long long)got.rlim_cur);
    int opened = 0, last = -1, err = 0;
    for (int i = 0; i < 40; i++) {
        int fd = open("/secret", O_RDONLY);
        if (fd < 0) {
            err = errno;
            break;
        }
        opened++;
        last = fd;
    }
    /* fds 3..15: 13 opens, then EMFILE */
    if (opened == 13 && last == 15 && err == EMFILE)
        contained("RLIMIT_NOFILE 16", "13 opens then EMFILE");
    else
        line("RLIMIT_NOFILE 16", "WRONG", "opened %d (last fd %d) then errno=%s", opened, last, ename(err));
    int d = dup(0);
    line("dup at the limit", d < 0 && errno == EMFILE ? "blocked" : "WRONG", "fd=%d errno=%s", d, ename(errno));
    d = dup2(0, 16);
    line("dup2 past the limit", d < 0 && errno == EBADF ? "blocked" : "WRONG", "fd=%d errno=%s", d, ename(errno));
    d = fcntl(0, F_DUPFD, 16);
    line("F_DUPFD past the limit", d < 0 && errno == EINVAL ? "blocked" : "WRONG", "fd=%d errno=%s", d, ename(errno));
    for (int fd = 3; fd < 16; fd++) close(fd);
    int fds[2];
    if (pipe(fds) == 0) {
        contained("pipe after closing", "ok");
        close(fds[0]);
        close(fds[1]);
    } else
        line("pipe after closing", "WRONG", "errno=%s", ename(errno));
}

static void expect_esrch(const char *name, long rc) {
    if (rc == 0)
        line(name, "ESCAPED", "a host process was reached (returned 0)");
    else if (errno == ESRCH || (errno == ENOSYS && strncmp(name, "kill", 4) && strncmp(name, "tgkill", 6)))
        blocked(name, errno); /* ENOSYS tells nothing, but kill and tgkill must answer ESRCH */
    else
        line(name, "ESCAPED", "errno=%s tells a host process exists (want ESRCH)", ename(errno));
}

static void signals(pid_t host_pid, pid_t host_pgid) {
    if (getpid() != 1) expect_esrch("kill 1 0", kill(1, 0));
    expect_esrch("kill host 0", kill(host_pid, 0));
    expect_esrch("kill host SIGTERM", kill(host_pid, SIGTERM));
    expect_esrch("kill host SIGKILL", kill(host_pid, SIGKILL));
    expect_esrch("kill host SIGSTOP", kill(host_pid, SIGSTOP));
    expect_esrch("kill -pgid 0", kill(-host_pgid, 0));
    expect_esrch("kill -pgid SIGTERM", kill(-host_pgid, SIGTERM));
    expect_esrch("tkill host SIGKILL", syscall(SYS_tkill, host_pid, SIGKILL));
    expect_esrch("tgkill host SIGKILL", syscall(SYS_tgkill, host_pid, host_pid, SIGKILL));
    expect_esrch("tgkill self-tgid host-tid", syscall(SYS_tgkill, getpid(), host_pid, SIGKILL));
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGUSR1;
    info.si_code = SI_QUEUE; /* negative: Linux looks the pid up (a code >= 0 gives EPERM first) */
    expect_esrch("rt_sigqueueinfo host", syscall(SYS_rt_sigqueueinfo, host_pid, SIGUSR1, &info));
    expect_esrch("pidfd_open host", syscall(SYS_pidfd_open, host_pid, 0));
    if (getpid() != 1) expect_esrch("pidfd_open 1", syscall(SYS_pidfd_open, 1, 0));
    /* kill(-1, 0): every process but itself; a lone guest has none */
    expect_esrch("kill -1 0", kill(-1, 0));
    /* its own process: fine */
    long rc = kill(getpid(), 0);
    line("kill self 0", rc == 0 ? "contained" : "WRONG", "rc=%ld", rc);
    rc = kill(0, 0);
    line("kill own group 0", rc == 0 ? "contained" : "WRONG", "rc=%ld", rc);
}

static void with_a_child(pid_t host_pid, pid_t host_pgid) {
    pid_t child = fork();
    if (child < 0) { /* where guest processes cannot fork (a hardware accelerator): nothing more to try */
        line("fork", "contained", "errno=%s", ename(errno));
        return;
    }
    if (child == 0) {
        for (;;) usleep(10000);
    }
    expect_esrch("forked: kill host 0", kill(host_pid, 0));
    expect_esrch("forked: kill host SIGKILL", kill(host_pid, SIGKILL));
    expect_esrch("forked: kill -pgid SIGTERM", kill(-host_pgid, SIGTERM));
    expect_esrch("forked: tgkill host SIGKILL", syscall(SYS_tgkill, host_pid, host_pid, SIGKILL));
    expect_esrch("forked: getpgid host", getpgid(host_pid));
    expect_esrch("forked: getsid host", getsid(host_pid));
    expect_esrch("forked: setpgid host", setpgid(host_pid, host_pid));
    long rc = kill(child, 0);
    line("forked: kill own child 0", rc == 0 ? "contained" : "WRONG", "rc=%ld", rc);
    rc = kill(child, SIGKILL);
    int status = 0;
    pid_t reaped = waitpid(child, &status, 0);
    line("forked: SIGKILL own child", rc == 0 && reaped == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
         ? "contained" : "WRONG", "rc=%ld reaped=%d status=%#x", rc, (int)reaped, status);
    expect_esrch("forked: kill -1 0 after reaping", kill(-1, 0));
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 7);
    pid_t host_pid = (pid_t)atoi(argv[5]);
    pid_t host_pgid = (pid_t)atoi(argv[6]);
    write_file("/secret", "GUEST-secret\n", 0644);
    fd_probe();
    signals(host_pid, host_pgid);
    with_a_child(host_pid, host_pgid);
    nofile();
    return finish();
}
