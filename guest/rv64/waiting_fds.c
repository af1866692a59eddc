/* waiting_fds: readiness and waiting on descriptors. poll/ppoll/select/pselect6/epoll timeouts and
 * readiness on a pipe, eventfd (counter and semaphore mode), timerfd expirations, signalfd reading a
 * blocked SIGUSR1, rt_sigtimedwait with a timeout, poll/epoll interrupted by a timer (EINTR), and a
 * ppoll whose mask lets a blocked signal in.
 *
 * Only facts that do not depend on timing are printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, usr1s;
static void on_alarm(int signo) { (void)signo; alarms++; }
static void on_usr1(int signo) { (void)signo; usr1s++; }

static const char *err(int r)
{
    static char text[64];
    if (r >= 0)
        return "ok";
    snprintf(text, sizeof text, "%s", errno == EINTR ? "EINTR" : errno == EAGAIN ? "EAGAIN"
                                      : errno == EINVAL ? "EINVAL" : errno == EBADF ? "EBADF" : strerror(errno));
    return text;
}

static void arm_real(long first_us)
{
    struct itimerval value = {{0, 0}, {0, first_us}};
    setitimer(ITIMER_REAL, &value, NULL);
}

int main(void)
{
    int p[2];
    if (pipe(p) != 0)
        return 1;

    /* poll: timeout on an empty pipe, then readable; POLLNVAL for a closed fd; POLLHUP */
    struct pollfd pfd[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {99, POLLIN, 0}};
    int r = poll(pfd, 1, 20);
    printf("poll empty: %d revents %#x\n", r, pfd[0].revents);
    r = poll(pfd, 3, 0);
    printf("poll three: %d revents %#x %#x %#x\n", r, pfd[0].revents, pfd[1].revents, pfd[2].revents);
    if (write(p[1], "ab", 2) != 2)
        return 1;
    r = poll(pfd, 1, -1);
    printf("poll data: %d revents %#x\n", r, pfd[0].revents);

    /* ppoll with a timeout: the time left is written back */
    struct timespec ts = {5, 0};
    r = ppoll(pfd, 1, &ts, NULL);
    printf("ppoll data: %d revents %#x, timeout left in (4, 5] s: %s\n", r, pfd[0].revents,
           (ts.tv_sec == 4 && ts.tv_nsec > 0) || (ts.tv_sec == 5 && ts.tv_nsec == 0) ? "yes" : "no");
    char buf[16];
    if (read(p[0], buf, sizeof buf) != 2)
        return 1;
    ts.tv_sec = 0;
    ts.tv_nsec = 10000000;
    r = ppoll(pfd, 1, &ts, NULL);
    printf("ppoll empty: %d, left %ld.%09ld\n", r, (long)ts.tv_sec, ts.tv_nsec);

    /* select / pselect6 */
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(p[0], &rd);
    FD_SET(p[1], &wr);
    struct timeval tv = {0, 10000};
    r = select(p[1] + 1, &rd, &wr, NULL, &tv);
    printf("select: %d read %d write %d\n", r, FD_ISSET(p[0], &rd), FD_ISSET(p[1], &wr));
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    ts.tv_sec = 0;
    ts.tv_nsec = 10000000;
    r = pselect(p[0] + 1, &rd, NULL, NULL, &ts, NULL);
    printf("pselect empty: %d read %d\n", r, FD_ISSET(p[0], &rd));
    FD_ZERO(&rd);
    FD_SET(50, &rd);
    r = select(51, &rd, NULL, NULL, &tv);
    printf("select bad fd: %d %s\n", r, err(r));

    /* epoll: level-triggered, edge-triggered, oneshot, data round trip */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
    printf("epoll_ctl add: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    r = epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    printf("epoll_ctl add again: %d %s\n", r, r < 0 && errno == EEXIST ? "EEXIST" : err(r));
    struct epoll_event out[4];
    r = epoll_wait(ep, out, 4, 10);
    printf("epoll_wait empty: %d\n", r);
    if (write(p[1], "c", 1) != 1)
        return 1;
    r = epoll_wait(ep, out, 4, -1);
    printf("epoll_wait: %d events %#x data %#llx\n", r, out[0].events, (unsigned long long)out[0].data.u64);
    r = epoll_wait(ep, out, 4, 0);
    printf("epoll_wait level again: %d\n", r);
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u32 = 7;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    r = epoll_wait(ep, out, 4, 0);
    printf("epoll_wait edge: %d data %u\n", r, out[0].data.u32);
    r = epoll_wait(ep, out, 4, 0);
    printf("epoll_wait edge again: %d\n", r);
    ev.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    r = epoll_wait(ep, out, 4, 0);
    int r2 = epoll_wait(ep, out, 4, 0);
    printf("epoll_wait oneshot: %d then %d\n", r, r2);
    printf("epoll_ctl del: %d\n", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    r = epoll_wait(ep, out, 0, 0);
    printf("epoll_wait maxevents 0: %d %s\n", r, err(r));
    if (read(p[0], buf, sizeof buf) != 1)
        return 1;

    /* eventfd: counter, semaphore mode, nonblocking empty read */
    int efd = eventfd(3, EFD_NONBLOCK);
    uint64_t value = 0;
    r = (int)read(efd, &value, 8);
    printf("eventfd read: %d value %llu\n", r, (unsigned long long)value);
    r = (int)read(efd, &value, 8);
    printf("eventfd empty: %d %s\n", r, err(r));
    value = 5;
    r = (int)write(efd, &value, 8);
    struct pollfd epfd = {efd, POLLIN, 0};
    printf("eventfd write: %d, poll %d\n", r, poll(&epfd, 1, 0));
    close(efd);
    int sem = eventfd(2, EFD_SEMAPHORE);
    uint64_t one = 0, two = 0;
    r = (int)read(sem, &one, 8);
    r2 = (int)read(sem, &two, 8);
    struct pollfd spfd = {sem, POLLIN, 0};
    printf("eventfd semaphore: %d %llu %d %llu, then poll %d\n", r, (unsigned long long)one, r2,
           (unsigned long long)two, poll(&spfd, 1, 0));
    close(sem);
    r = eventfd(0, 0x7);
    printf("eventfd bad flags: %d %s\n", r, err(r));

    /* timerfd: periodic expirations, read blocks until one */
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {{0, 5000000}, {0, 5000000}};
    printf("timerfd_settime: %d\n", timerfd_settime(tfd, 0, &its, NULL));
    uint64_t expirations = 0;
    r = (int)read(tfd, &expirations, 8);
    printf("timerfd read: %d expirations >= 1: %s\n", r, expirations >= 1 ? "yes" : "no");
    struct itimerspec cur;
    timerfd_gettime(tfd, &cur);
    printf("timerfd interval %ld ns, value <= 5 ms: %s\n", cur.it_interval.tv_nsec,
           cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec <= 5000000 ? "yes" : "no");
    struct itimerspec stop = {{0, 0}, {0, 0}};
    timerfd_settime(tfd, 0, &stop, NULL);
    close(tfd);
    r = timerfd_create(12345, 0);
    printf("timerfd bad clock: %d %s\n", r, err(r));

    /* signalfd: a blocked SIGUSR1 read as a record, visible to poll and epoll */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    int sfd = signalfd(-1, &usr1, SFD_NONBLOCK);
    struct signalfd_siginfo record;
    r = (int)read(sfd, &record, sizeof record);
    printf("signalfd empty: %d %s\n", r, err(r));
    kill(getpid(), SIGUSR1);
    struct pollfd sp = {sfd, POLLIN, 0};
    printf("signalfd poll: %d revents %#x\n", poll(&sp, 1, 0), sp.revents);
    ev.events = EPOLLIN;
    ev.data.u32 = 99;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    r = epoll_wait(ep, out, 4, 0);
    printf("signalfd epoll: %d data %u\n", r, out[0].data.u32);
    r = (int)read(sfd, &record, sizeof record);
    printf("signalfd read: %d signo %u code %d pid ok %s\n", r, record.ssi_signo, record.ssi_code,
           record.ssi_pid == (uint32_t)getpid() ? "yes" : "no");
    printf("signalfd after: poll %d, epoll %d\n", poll(&sp, 1, 0), epoll_wait(ep, out, 4, 0));
    r = (int)read(sfd, &record, 8);
    printf("signalfd short read: %d %s\n", r, err(r));
    close(sfd);
    close(ep);

    /* rt_sigtimedwait: the pending signal at once, then a timeout */
    kill(getpid(), SIGUSR1);
    siginfo_t info;
    struct timespec wait_ts = {0, 10000000};
    r = sigtimedwait(&usr1, &info, &wait_ts);
    printf("sigtimedwait pending: %d code %d\n", r, info.si_code);
    r = sigtimedwait(&usr1, &info, &wait_ts);
    printf("sigtimedwait timeout: %d %s\n", r, err(r));

    /* a timer interrupts poll, epoll_wait and sigtimedwait: EINTR even with SA_RESTART */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    action.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &action, NULL);
    arm_real(10000);
    r = poll(pfd, 1, 5000);
    printf("poll interrupted: %d %s alarms %d\n", r, err(r), alarms);
    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    arm_real(10000);
    r = epoll_wait(ep, out, 4, 5000);
    printf("epoll_wait interrupted: %d %s alarms %d\n", r, err(r), alarms);
    wait_ts.tv_sec = 5;
    arm_real(10000);
    r = sigtimedwait(&usr1, &info, &wait_ts);
    printf("sigtimedwait interrupted: %d %s alarms %d\n", r, err(r), alarms);

    /* ppoll's mask lets the blocked SIGUSR1 in: EINTR, handler ran, mask back */
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &action, NULL);
    kill(getpid(), SIGUSR1);
    printf("usr1 while blocked: %d\n", usr1s);
    sigset_t open_mask;
    sigemptyset(&open_mask);
    ts.tv_sec = 5;
    ts.tv_nsec = 0;
    r = ppoll(pfd, 1, &ts, &open_mask);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("ppoll with mask: %d %s usr1 %d, still blocked %s\n", r, err(r), usr1s,
           sigismember(&now, SIGUSR1) ? "yes" : "no");
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 0;
}
