/* timers_signals: alarm, setitimer/getitimer (REAL, VIRTUAL, PROF), POSIX timers (SIGEV_SIGNAL,
 * SIGEV_THREAD_ID, SIGEV_NONE), nanosleep interrupted by a timer (EINTR, time left), pause,
 * sigsuspend, and a read on an empty pipe with and without SA_RESTART.
 *
 * Only facts that do not depend on timing are printed (counts reached, ranges, errno values).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, vtalrms, profs, usr2s, last_code, last_value, last_signo;
static int pipe_fds[2];
static volatile sig_atomic_t write_on_tick;

static void on_alarm(int signo)
{
    (void)signo;
    alarms++;
    if (write_on_tick && alarms == write_on_tick) {
        if (write(pipe_fds[1], "x", 1) != 1)
            _exit(3);
    }
}

static void on_vtalrm(int signo) { (void)signo; vtalrms++; }
static void on_prof(int signo) { (void)signo; profs++; }

static void on_info(int signo, siginfo_t *info, void *context)
{
    (void)context;
    usr2s++;
    last_signo = signo;
    last_code = info->si_code;
    last_value = info->si_value.sival_int;
}

static void handle(int signo, void (*handler)(int), int flags)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    sigaction(signo, &action, NULL);
}

static void arm_real(long first_us, long every_us)
{
    struct itimerval value = {{every_us / 1000000, every_us % 1000000}, {first_us / 1000000, first_us % 1000000}};
    if (setitimer(ITIMER_REAL, &value, NULL) != 0)
        perror("setitimer");
}

int main(void)
{
    /* alarm: the old alarm's seconds, rounded */
    printf("alarm(0) = %u\n", alarm(0));
    alarm(5);
    printf("alarm(0) after alarm(5) = %u\n", alarm(0));

    /* ITIMER_REAL, periodic, waited for with pause() */
    handle(SIGALRM, on_alarm, 0);
    arm_real(10000, 10000);
    while (alarms < 3) {
        int r = pause();
        if (r != -1 || errno != EINTR)
            printf("pause returned %d errno %d\n", r, errno);
    }
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    printf("real armed: interval %ld.%06ld, value in (0, 0.01]: %s\n", (long)now.it_interval.tv_sec,
           (long)now.it_interval.tv_usec,
           now.it_value.tv_sec == 0 && now.it_value.tv_usec > 0 && now.it_value.tv_usec <= 10000 ? "yes" : "no");
    arm_real(0, 0);
    getitimer(ITIMER_REAL, &now);
    printf("real disarmed: %ld %ld %ld %ld\n", (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec,
           (long)now.it_value.tv_sec, (long)now.it_value.tv_usec);
    printf("alarms >= 3: %s\n", alarms >= 3 ? "yes" : "no");

    /* nanosleep interrupted: EINTR and the time left */
    alarms = 0;
    arm_real(20000, 0);
    struct timespec want = {2, 0}, left = {0, 0};
    int r = nanosleep(&want, &left);
    int e = errno;
    printf("nanosleep: %d %s, alarms %d, left in (1, 2) s: %s\n", r, e == EINTR ? "EINTR" : strerror(e), alarms,
           left.tv_sec == 1 && left.tv_nsec > 0 ? "yes" : "no");
    struct timespec bad = {0, 1000000000};
    r = nanosleep(&bad, NULL);
    printf("nanosleep(tv_nsec=1e9): %d %s\n", r, errno == EINVAL ? "EINVAL" : strerror(errno));
    struct timespec tiny = {0, 1000};
    printf("nanosleep(1us): %d\n", nanosleep(&tiny, NULL));

    /* ITIMER_VIRTUAL and ITIMER_PROF: CPU time, spent in a loop */
    handle(SIGVTALRM, on_vtalrm, 0);
    handle(SIGPROF, on_prof, 0);
    struct itimerval cpu = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_VIRTUAL, &cpu, NULL);
    setitimer(ITIMER_PROF, &cpu, NULL);
    volatile unsigned long spin = 0;
    while (vtalrms < 2 || profs < 2) {
        /* a system call now and then: under KVM, vm sees guest timers at system calls */
        if ((++spin & 0xfff) == 0)
            sched_yield();
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_VIRTUAL, &off, NULL);
    setitimer(ITIMER_PROF, &off, &now);
    printf("virtual >= 2: yes, prof >= 2: yes, prof old interval %ld us\n", (long)now.it_interval.tv_usec);
    printf("setitimer(3): %d %s\n", setitimer(3, &off, NULL), errno == EINVAL ? "EINVAL" : strerror(errno));
    struct itimerval badv = {{0, 0}, {0, 1000000}};
    printf("setitimer(usec=1e6): %d %s\n", setitimer(ITIMER_REAL, &badv, NULL),
           errno == EINVAL ? "EINVAL" : strerror(errno));

    /* POSIX timer, SIGEV_SIGNAL with a value, waited for with sigsuspend */
    struct sigaction info_action;
    memset(&info_action, 0, sizeof info_action);
    info_action.sa_sigaction = on_info;
    info_action.sa_flags = SA_SIGINFO;
    sigemptyset(&info_action.sa_mask);
    sigaction(SIGUSR2, &info_action, NULL);
    sigset_t block, old, during;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = SIGUSR2;
    event.sigev_value.sival_int = 42;
    timer_t timer;
    printf("timer_create: %d\n", timer_create(CLOCK_MONOTONIC, &event, &timer));
    struct itimerspec spec = {{0, 0}, {0, 15000000}};
    printf("timer_settime: %d\n", timer_settime(timer, 0, &spec, NULL));
    sigprocmask(SIG_BLOCK, NULL, &during);
    sigdelset(&during, SIGUSR2);
    r = sigsuspend(&during);
    e = errno;
    sigset_t after;
    sigprocmask(SIG_BLOCK, NULL, &after);
    printf("sigsuspend: %d %s; usr2 %d signo %d code SI_TIMER %s value %d; mask restored %s\n", r,
           e == EINTR ? "EINTR" : strerror(e), usr2s, last_signo, last_code == SI_TIMER ? "yes" : "no", last_value,
           sigismember(&after, SIGUSR2) ? "yes" : "no");
    struct itimerspec got;
    timer_gettime(timer, &got);
    printf("one-shot after expiry: %ld %ld\n", (long)got.it_value.tv_sec, got.it_value.tv_nsec);
    printf("timer_getoverrun: %d\n", timer_getoverrun(timer));
    printf("timer_delete: %d\n", timer_delete(timer));
    r = timer_gettime(timer, &got);
    printf("timer_gettime(deleted): %d %s\n", r, errno == EINVAL ? "EINVAL" : strerror(errno));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* SIGEV_THREAD_ID to this thread, absolute time */
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = SIGUSR2;
    event.sigev_value.sival_int = 7;
    event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    usr2s = 0;
    printf("timer_create(THREAD_ID): %d\n", timer_create(CLOCK_REALTIME, &event, &timer));
    clock_gettime(CLOCK_REALTIME, &spec.it_value);
    spec.it_value.tv_nsec += 5000000;
    if (spec.it_value.tv_nsec >= 1000000000) {
        spec.it_value.tv_sec++;
        spec.it_value.tv_nsec -= 1000000000;
    }
    timer_settime(timer, TIMER_ABSTIME, &spec, NULL);
    while (usr2s == 0)
        pause();
    printf("thread-id timer: usr2 %d value %d\n", usr2s, last_value);
    timer_delete(timer);
    event._sigev_un._tid = 1;
    r = timer_create(CLOCK_REALTIME, &event, &timer);
    printf("timer_create(THREAD_ID of pid 1): %d %s\n", r, errno == EINVAL ? "EINVAL" : strerror(errno));

    /* SIGEV_NONE: nothing is sent, the time left is kept */
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_MONOTONIC, &event, &timer);
    struct itimerspec ten = {{1, 0}, {10, 0}};
    timer_settime(timer, 0, &ten, NULL);
    timer_gettime(timer, &got);
    printf("SIGEV_NONE: interval %ld, value in [9, 10) s: %s\n", (long)got.it_interval.tv_sec,
           got.it_value.tv_sec == 9 ? "yes" : "no");
    timer_delete(timer);
    r = timer_create(12345, NULL, &timer);
    printf("timer_create(bad clock): %d %s\n", r, errno == EINVAL ? "EINVAL" : strerror(errno));

    /* a read on an empty pipe: EINTR without SA_RESTART, restarted with it */
    if (pipe(pipe_fds) != 0)
        return 1;
    char c = 0;
    alarms = 0;
    write_on_tick = 0;
    handle(SIGALRM, on_alarm, 0);
    arm_real(10000, 0);
    r = (int)read(pipe_fds[0], &c, 1);
    printf("read without SA_RESTART: %d %s, alarms %d\n", r, errno == EINTR ? "EINTR" : strerror(errno), alarms);
    alarms = 0;
    write_on_tick = 3;
    handle(SIGALRM, on_alarm, SA_RESTART);
    arm_real(10000, 10000);
    r = (int)read(pipe_fds[0], &c, 1);
    arm_real(0, 0);
    printf("read with SA_RESTART: %d '%c', alarms >= 3: %s\n", r, c, alarms >= 3 ? "yes" : "no");
    return 0;
}
