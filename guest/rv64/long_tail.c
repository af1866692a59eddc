/* long_tail: the calls C libraries and coreutils make around the edges. getrandom, prlimit64,
 * sched_getaffinity/sched_yield, getrusage, times, umask, flock, fcntl and OFD locks, pipe2, dup3,
 * memfd_create, sendfile, copy_file_range, splice, tee, fallocate, fsync/fdatasync/sync/syncfs,
 * statfs/fstatfs, tty ioctls on a non-tty, capget, membarrier, mincore, personality, and the
 * /proc/self/fd links of eventfd, epoll, signalfd, timerfd and memfd descriptors.
 *
 * Works in its current directory (leaves long_tail.b: spliced text, fallocated to 8 KiB); prints only
 * deterministic facts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <termios.h>
#include <unistd.h>

static const char *err(long r)
{
    static char text[64];
    if (r >= 0)
        return "ok";
    switch (errno) {
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case ENOTTY: return "ENOTTY";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case ESRCH: return "ESRCH";
    case EPERM: return "EPERM";
    default: snprintf(text, sizeof text, "errno %d", errno); return text;
    }
}

static int make_file(const char *name, const char *text)
{
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return -1;
    return fd;
}

static void show_file(const char *label, int fd)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n < 0 ? 0 : n] = 0;
    printf("%s: %zd \"%s\"\n", label, n, buf);
}

int main(void)
{
    /* getrandom */
    unsigned char random_bytes[64];
    long r = getrandom(random_bytes, sizeof random_bytes, 0);
    printf("getrandom: %ld\n", r);
    r = getrandom(random_bytes, 16, GRND_NONBLOCK | GRND_RANDOM);
    printf("getrandom(NONBLOCK|RANDOM): %ld\n", r);
    r = syscall(SYS_getrandom, random_bytes, 16, 0x100);
    printf("getrandom(bad flags): %ld %s\n", r, err(r));

    /* prlimit64 */
    struct rlimit64 lim, old;
    prlimit64(0, RLIMIT_NOFILE, NULL, &old);
    lim.rlim_cur = 100;
    lim.rlim_max = old.rlim_max;
    r = prlimit64(0, RLIMIT_NOFILE, &lim, NULL);
    struct rlimit64 now;
    prlimit64(0, RLIMIT_NOFILE, NULL, &now);
    printf("prlimit64 NOFILE set 100: %ld, now %llu, max unchanged %s\n", r, (unsigned long long)now.rlim_cur,
           now.rlim_max == old.rlim_max ? "yes" : "no");
    prlimit64(0, RLIMIT_NOFILE, &old, NULL);
    lim.rlim_cur = 10;
    lim.rlim_max = 5;
    r = prlimit64(0, RLIMIT_NOFILE, &lim, NULL);
    printf("prlimit64 soft > hard: %ld %s\n", r, err(r));
    r = prlimit64(0, 99, NULL, &now);
    printf("prlimit64 bad resource: %ld %s\n", r, err(r));

    /* scheduling */
    cpu_set_t set;
    CPU_ZERO(&set);
    r = sched_getaffinity(0, sizeof set, &set);
    printf("sched_getaffinity: %ld, cpus >= 1: %s\n", r, CPU_COUNT(&set) >= 1 ? "yes" : "no");
    r = syscall(SYS_sched_getaffinity, 0, 1, &set);
    printf("sched_getaffinity(size 1): %ld %s\n", r, err(r));
    printf("sched_yield: %d\n", sched_yield());

    /* getrusage, times */
    struct rusage usage;
    r = getrusage(RUSAGE_SELF, &usage);
    printf("getrusage: %ld maxrss > 0: %s\n", r, usage.ru_maxrss > 0 ? "yes" : "no");
    r = getrusage(7, &usage);
    printf("getrusage(7): %ld %s\n", r, err(r));
    struct tms tms;
    clock_t ticks = times(&tms);
    printf("times: %s, children %ld %ld\n", ticks != (clock_t)-1 ? "ok" : "failed", (long)tms.tms_cutime,
           (long)tms.tms_cstime);

    /* umask */
    mode_t before = umask(077);
    mode_t mine = umask(before);
    printf("umask: was %03o, set %03o\n", before, mine);

    /* flock, fcntl and OFD locks */
    int fd = make_file("long_tail.a", "hello, world\n");
    printf("flock EX: %d, SH|NB: %d, UN: %d\n", flock(fd, LOCK_EX), flock(fd, LOCK_SH | LOCK_NB), flock(fd, LOCK_UN));
    r = flock(fd, 0);
    printf("flock(0): %ld %s\n", r, err(r));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 4};
    printf("F_SETLK: %d\n", fcntl(fd, F_SETLK, &fl));
    fl.l_type = F_WRLCK;
    fcntl(fd, F_GETLK, &fl);
    printf("F_GETLK from the owner: type %s\n", fl.l_type == F_UNLCK ? "F_UNLCK" : "locked");
    struct flock ofd = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 2};
    r = fcntl(fd, F_OFD_SETLK, &ofd);
    printf("F_OFD_SETLK: %ld %s\n", r, err(r));

    /* pipe2, dup3 */
    int p[2];
    r = pipe2(p, O_CLOEXEC | O_NONBLOCK);
    char c;
    ssize_t n = read(p[0], &c, 1);
    printf("pipe2: %ld, cloexec %d, nonblock %s, empty read %zd %s\n", r, fcntl(p[0], F_GETFD),
           fcntl(p[1], F_GETFL) & O_NONBLOCK ? "yes" : "no", n, err(n));
    r = pipe2(p, 0x1);
    printf("pipe2(bad flags): %ld %s\n", r, err(r));
    r = dup3(fd, fd, 0);
    printf("dup3(same): %ld %s\n", r, err(r));
    r = dup3(fd, 20, O_CLOEXEC);
    printf("dup3: %ld cloexec %d\n", r, fcntl(20, F_GETFD));
    close(20);

    /* memfd_create */
    int mfd = memfd_create("scratch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    r = write(mfd, "memory file", 11);
    struct stat info;
    fstat(mfd, &info);
    printf("memfd: write %ld size %lld cloexec %d regular %s\n", r, (long long)info.st_size, fcntl(mfd, F_GETFD),
           S_ISREG(info.st_mode) ? "yes" : "no");
    printf("memfd seal: %d, write after seal: ", fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE));
    r = write(mfd, "x", 1);
    printf("%ld %s\n", r, err(r));
    r = memfd_create("bad", 0x100);
    printf("memfd bad flags: %ld %s\n", r, err(r));

    /* sendfile file -> pipe (with and without an offset) */
    int q[2];
    if (pipe(q) != 0)
        return 1;
    off_t offset = 7;
    r = sendfile(q[1], fd, &offset, 5);
    char buf[64] = {0};
    n = read(q[0], buf, sizeof buf);
    printf("sendfile offset: %ld \"%.*s\" offset now %lld\n", r, (int)n, buf, (long long)offset);
    lseek(fd, 0, SEEK_SET);
    r = sendfile(q[1], fd, NULL, 5);
    n = read(q[0], buf, sizeof buf);
    printf("sendfile: %ld \"%.*s\" position %lld\n", r, (int)n, buf, (long long)lseek(fd, 0, SEEK_CUR));

    /* copy_file_range file -> file */
    int out = make_file("long_tail.b", "");
    loff_t in_off = 0;
    r = copy_file_range(fd, &in_off, out, NULL, 5, 0);
    printf("copy_file_range: %ld in_off %lld\n", r, (long long)in_off);
    show_file("long_tail.b", out);
    r = copy_file_range(fd, NULL, out, NULL, 5, 1);
    printf("copy_file_range(flags 1): %ld %s\n", r, err(r));

    /* splice pipe -> file, tee pipe -> pipe */
    int t[2];
    if (pipe(t) != 0 || write(q[1], "spliced", 7) != 7)
        return 1;
    r = tee(q[0], t[1], 100, 0);
    n = read(t[0], buf, sizeof buf);
    printf("tee: %ld \"%.*s\"\n", r, (int)n, buf);
    loff_t out_off = 5;
    r = splice(q[0], NULL, out, &out_off, 100, 0);
    printf("splice: %ld out_off %lld\n", r, (long long)out_off);
    show_file("long_tail.b", out);
    r = splice(fd, NULL, out, NULL, 10, 0);
    printf("splice file -> file: %ld %s\n", r, err(r));

    /* fallocate, fsync family */
    r = fallocate(out, 0, 0, 8192);
    fstat(out, &info);
    printf("fallocate: %ld size %lld\n", r, (long long)info.st_size);
    r = fallocate(out, 0, -1, 10);
    printf("fallocate(negative offset): %ld %s\n", r, err(r));
    printf("fsync %d fdatasync %d syncfs %d sync_file_range %d\n", fsync(out), fdatasync(out), syncfs(out),
           sync_file_range(out, 0, 0, 0));
    sync();
    r = fsync(99);
    printf("fsync(99): %ld %s\n", r, err(r));

    /* statfs, fstatfs */
    struct statfs sfs, fsfs;
    r = statfs(".", &sfs);
    long r2 = fstatfs(fd, &fsfs);
    printf("statfs: %ld fstatfs: %ld same type %s bsize > 0 %s\n", r, r2, sfs.f_type == fsfs.f_type ? "yes" : "no",
           sfs.f_bsize > 0 ? "yes" : "no");
    r = statfs("no/such/dir", &sfs);
    printf("statfs(missing): %ld %s\n", r, errno == ENOENT ? "ENOENT" : err(r));

    /* tty ioctls on something that is not a tty */
    struct termios tio;
    struct winsize ws;
    pid_t pgrp;
    long a = ioctl(fd, TCGETS, &tio), b = ioctl(fd, TIOCGWINSZ, &ws), d = ioctl(fd, TIOCGPGRP, &pgrp);
    printf("ioctl on a file: TCGETS %s, TIOCGWINSZ %s, TIOCGPGRP %s\n", a < 0 && errno == ENOTTY ? "ENOTTY" : "?",
           b < 0 ? "ENOTTY" : "?", d < 0 ? "ENOTTY" : "?");
    printf("isatty(stdin): %d\n", isatty(0));

    /* capget */
    struct __user_cap_header_struct header = {0, 0};
    r = syscall(SYS_capget, &header, NULL);
    printf("capget(version 0): %ld %s, kernel's version %#x\n", r, err(r), header.version);
    struct __user_cap_data_struct caps[2];
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    r = syscall(SYS_capget, &header, caps);
    printf("capget: %ld effective %#x %#x permitted %#x %#x inheritable %#x\n", r, caps[0].effective,
           caps[1].effective, caps[0].permitted, caps[1].permitted, caps[0].inheritable);

    /* membarrier */
    r = syscall(SYS_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0);
    printf("membarrier query: %ld\n", r);
    r = syscall(SYS_membarrier, 0, 1, 0);
    printf("membarrier(bad flags): %ld %s\n", r, err(r));

    /* mincore on anonymous memory: touched pages are resident */
    unsigned char *mem = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mem[0] = 1;
    mem[2 * 4096] = 1;
    unsigned char vec[4];
    r = mincore(mem, 4 * 4096, vec);
    printf("mincore: %ld %d%d%d%d\n", r, vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1);
    r = mincore(mem + 1, 4096, vec);
    printf("mincore(unaligned): %ld %s\n", r, err(r));
    munmap(mem + 3 * 4096, 4096);
    r = mincore(mem, 4 * 4096, vec);
    printf("mincore(hole): %ld %s\n", r, err(r));

    /* personality */
    int persona = personality(0xffffffff);
    int prev = personality(ADDR_NO_RANDOMIZE);
    printf("personality: %#x, set returns %#x, now %#x\n", persona, prev, personality(0xffffffff));
    personality(persona);

    /* what /proc/self/fd shows for descriptors without a path */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    int anon[] = {eventfd(0, 0), epoll_create1(0), signalfd(-1, &usr1, 0), timerfd_create(CLOCK_MONOTONIC, 0), mfd};
    for (unsigned i = 0; i < sizeof anon / sizeof anon[0]; i++) {
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", anon[i]);
        n = readlink(path, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = 0;
        printf("fd link: %s\n", target);
    }

    close(fd);
    close(out);
    unlink("long_tail.a");
    return 0;
}
