/* unix_sockets: AF_UNIX sockets in one process.
 *
 * socketpair (stream: data, shutdown semantics, EPIPE without and with
 * SIGPIPE; datagram: boundaries, MSG_TRUNC), SCM_RIGHTS passing a pipe's
 * write end and a file descriptor (shared offset, MSG_CMSG_CLOEXEC, EBADF
 * for a bad fd; MSG_CTRUNC only where the kernel is the oracle: qemu-user
 * hands the host a control buffer twice the guest's, so it disagrees with
 * Linux there), a named stream
 * server in the working directory with a client in the same process (the
 * connection completes in the backlog before accept), getsockname and
 * getpeername (named, unnamed), EADDRINUSE, ENOENT, ECONNREFUSED, named
 * datagram sockets with recvfrom's sender address, SO_TYPE/SO_DOMAIN/
 * SO_PEERCRED, /proc/self/fd of a socket, and finally whether an AF_INET
 * socket may be made (vm run --net none: EACCES). Leaves rights.txt behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CHECK(expr)                                                                                  \
    do {                                                                                             \
        if (!(expr)) {                                                                               \
            printf("FAILED line %d: %s (errno %d: %s)\n", __LINE__, #expr, errno, strerror(errno)); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

static volatile sig_atomic_t got_sigpipe;

static void on_sigpipe(int sig)
{
    (void)sig;
    got_sigpipe++;
}

static socklen_t unix_addr(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    strcpy(addr->sun_path, path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static void show_name(const char *what, int fd, int peer)
{
    struct sockaddr_un addr;
    memset(&addr, 0x55, sizeof addr);
    socklen_t len = sizeof addr;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&addr, &len) : getsockname(fd, (struct sockaddr *)&addr, &len);
    if (rc != 0) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    if (len <= offsetof(struct sockaddr_un, sun_path))
        printf("%s: family %d, len %u, unnamed\n", what, addr.sun_family, (unsigned)len);
    else
        printf("%s: family %d, len %u, path \"%s\"\n", what, addr.sun_family, (unsigned)len, addr.sun_path);
}

static void stream_pair(void)
{
    int sv[2];
    char buf[64];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[0], "hello", 5) == 5);
    CHECK(send(sv[0], " world", 6, 0) == 6);
    ssize_t n = recv(sv[1], buf, sizeof buf, 0);
    printf("stream: got %zd \"%.*s\"\n", n, (int)n, buf);
    show_name("stream pair name", sv[0], 0);
    show_name("stream pair peer", sv[0], 1);
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    printf("after SHUT_WR: read %zd\n", read(sv[1], buf, sizeof buf));
    errno = 0;
    printf("send after SHUT_WR (MSG_NOSIGNAL): %zd %s, sigpipe %d\n", send(sv[0], "x", 1, MSG_NOSIGNAL),
           strerror(errno), (int)got_sigpipe);
    errno = 0;
    printf("write after SHUT_WR: %zd %s, sigpipe %d\n", write(sv[0], "x", 1), strerror(errno), (int)got_sigpipe);
    CHECK(send(sv[1], "back", 4, 0) == 4);
    n = recv(sv[0], buf, sizeof buf, 0);
    printf("other direction still open: %zd \"%.*s\"\n", n, (int)n, buf);
    CHECK(shutdown(sv[1], SHUT_RDWR) == 0);
    printf("after peer SHUT_RDWR: recv %zd\n", recv(sv[0], buf, sizeof buf, 0));
    errno = 0;
    printf("shutdown(7): %d %s\n", shutdown(sv[0], 7), strerror(errno));
    close(sv[0]);
    close(sv[1]);
}

static void datagram_pair(void)
{
    int sv[2];
    char buf[8];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    printf("dgram pair cloexec: %d\n", fcntl(sv[1], F_GETFD) & FD_CLOEXEC);
    CHECK(send(sv[0], "first message", 13, 0) == 13);
    CHECK(send(sv[0], "two", 3, 0) == 3);
    struct iovec iov = {buf, 5};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(sv[1], &msg, 0);
    printf("dgram: %zd \"%.*s\" truncated %d\n", n, (int)n, buf, !!(msg.msg_flags & MSG_TRUNC));
    n = recv(sv[1], buf, sizeof buf, MSG_TRUNC);
    printf("dgram: %zd \"%.*s\"\n", n, (int)n, buf);
    errno = 0;
    printf("empty nonblocking recv: %zd %s\n", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), strerror(errno));
    close(sv[0]);
    close(sv[1]);
}

static int send_fds(int sock, const int *fds, int count)
{
    char data = 'F';
    struct iovec iov = {&data, 1};
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(count * sizeof(int));
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, count * sizeof(int));
    return (int)sendmsg(sock, &msg, 0);
}

/* Receives descriptors: returns how many, stores them in fds; *flags gets msg_flags. */
static int recv_fds(int sock, int *fds, size_t control_size, int recv_flags, int *flags)
{
    char data;
    struct iovec iov = {&data, 1};
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = control_size;
    CHECK(recvmsg(sock, &msg, recv_flags) == 1);
    *flags = msg.msg_flags;
    int count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fds + count, CMSG_DATA(c), n * sizeof(int));
            count += n;
        }
    }
    return count;
}

static void pass_rights(void)
{
    int sv[2], pipefd[2], got[4], flags;
    char buf[32];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(pipefd) == 0);
    int file = open("rights.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(file >= 0);
    CHECK(write(file, "0123456789", 10) == 10);
    CHECK(lseek(file, 2, SEEK_SET) == 2);

    int out[2] = {pipefd[1], file};
    CHECK(send_fds(sv[0], out, 2) == 1);
    int n = recv_fds(sv[1], got, CMSG_SPACE(4 * sizeof(int)), MSG_CMSG_CLOEXEC, &flags);
    printf("rights: received %d fds, ctrunc %d, new numbers %d\n", n, !!(flags & MSG_CTRUNC),
           got[0] != pipefd[1] && got[1] != file);
    printf("received fds cloexec: %d %d\n", fcntl(got[0], F_GETFD) & FD_CLOEXEC, fcntl(got[1], F_GETFD) & FD_CLOEXEC);
    CHECK(write(got[0], "through the pipe", 16) == 16);
    ssize_t r = read(pipefd[0], buf, sizeof buf);
    printf("pipe read: \"%.*s\"\n", (int)r, buf);
    r = read(got[1], buf, 3);
    printf("file via received fd: \"%.*s\", shared offset now %ld\n", (int)r, buf, (long)lseek(file, 0, SEEK_CUR));
    CHECK(write(got[1], "X", 1) == 1); /* left behind: rights.txt is 01234X6789 */

#ifdef KERNEL_IS_THE_ORACLE
    /* guest/x86_64 builds this file and compares with the host kernel, not qemu-user (see the top) */
    CHECK(send_fds(sv[0], out, 2) == 1);
    n = recv_fds(sv[1], got + 2, CMSG_SPACE(sizeof(int)), 0, &flags);
    printf("short control: received %d fds, ctrunc %d, cloexec %d\n", n, !!(flags & MSG_CTRUNC),
           fcntl(got[2], F_GETFD) & FD_CLOEXEC);
    close(got[2]);
#endif
    int bad[1] = {999};
    errno = 0;
    printf("send bad fd: %d %s\n", send_fds(sv[0], bad, 1), strerror(errno));
    close(got[0]);
    close(got[1]);
    close(pipefd[0]);
    close(pipefd[1]);
    close(file);
    close(sv[0]);
    close(sv[1]);
}

static void named_stream(void)
{
    struct sockaddr_un addr;
    socklen_t len = unix_addr(&addr, "srv.sock");
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(server >= 0);
    show_name("unbound name", server, 0);
    CHECK(bind(server, (struct sockaddr *)&addr, len) == 0);
    CHECK(listen(server, 4) == 0);
    struct stat st;
    CHECK(stat("srv.sock", &st) == 0);
    printf("srv.sock is a socket: %d\n", S_ISSOCK(st.st_mode));
    show_name("server name", server, 0);

    int again = socket(AF_UNIX, SOCK_STREAM, 0);
    errno = 0;
    printf("bind again: %d %s\n", bind(again, (struct sockaddr *)&addr, len), strerror(errno));
    close(again);

    int client = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(client, (struct sockaddr *)&addr, len) == 0);
    show_name("client name", client, 0);
    show_name("client peer", client, 1);
    struct sockaddr_un from;
    socklen_t from_len = sizeof from;
    int conn = accept4(server, (struct sockaddr *)&from, &from_len, SOCK_CLOEXEC);
    CHECK(conn >= 0);
    printf("accepted: from len %u, cloexec %d\n", (unsigned)from_len, fcntl(conn, F_GETFD) & FD_CLOEXEC);
    show_name("accepted name", conn, 0);
    show_name("accepted peer", conn, 1);

    char buf[32];
    CHECK(write(client, "ping", 4) == 4);
    ssize_t n = read(conn, buf, sizeof buf);
    printf("server got \"%.*s\"\n", (int)n, buf);
    CHECK(write(conn, "pong", 4) == 4);
    n = read(client, buf, sizeof buf);
    printf("client got \"%.*s\"\n", (int)n, buf);

    struct ucred cred;
    socklen_t cred_len = sizeof cred;
    CHECK(getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0);
    printf("peercred: len %u, pid is mine %d, uid is mine %d\n", (unsigned)cred_len, cred.pid == getpid(),
           cred.uid == getuid());
    int value;
    socklen_t value_len = sizeof value;
    CHECK(getsockopt(conn, SOL_SOCKET, SO_TYPE, &value, &value_len) == 0);
    printf("SO_TYPE %d", value);
    CHECK(getsockopt(conn, SOL_SOCKET, SO_DOMAIN, &value, &value_len) == 0);
    printf(", SO_DOMAIN %d\n", value);
    errno = 0;
    printf("getsockopt bad level: %d %s\n", getsockopt(conn, 12345, 1, &value, &value_len), strerror(errno));

    char link[64] = {0}, path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", conn);
    CHECK(readlink(path, link, sizeof link - 1) > 0);
    printf("/proc/self/fd of a socket: %.8s\n", link);

    close(client);
    n = read(conn, buf, sizeof buf);
    printf("after client close: read %zd\n", n);
    close(conn);
    close(server);

    int missing = socket(AF_UNIX, SOCK_STREAM, 0);
    len = unix_addr(&addr, "missing.sock");
    errno = 0;
    printf("connect missing: %d %s\n", connect(missing, (struct sockaddr *)&addr, len), strerror(errno));
    len = unix_addr(&addr, "srv.sock");
    errno = 0;
    printf("connect closed server: %d %s\n", connect(missing, (struct sockaddr *)&addr, len), strerror(errno));
    int fd = open("plain.txt", O_WRONLY | O_CREAT, 0644);
    close(fd);
    len = unix_addr(&addr, "plain.txt");
    errno = 0;
    printf("connect regular file: %d %s\n", connect(missing, (struct sockaddr *)&addr, len), strerror(errno));
    close(missing);
    CHECK(unlink("plain.txt") == 0);
    CHECK(unlink("srv.sock") == 0);
}

static void named_datagram(void)
{
    struct sockaddr_un server_addr, client_addr, from;
    socklen_t server_len = unix_addr(&server_addr, "d.sock");
    socklen_t client_len = unix_addr(&client_addr, "c.sock");
    int server = socket(AF_UNIX, SOCK_DGRAM, 0);
    int client = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(server, (struct sockaddr *)&server_addr, server_len) == 0);
    CHECK(bind(client, (struct sockaddr *)&client_addr, client_len) == 0);
    CHECK(sendto(client, "datagram", 8, 0, (struct sockaddr *)&server_addr, server_len) == 8);
    char buf[32];
    memset(&from, 0, sizeof from);
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(server, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
    printf("recvfrom: \"%.*s\" from \"%s\" len %u\n", (int)n, buf, from.sun_path, (unsigned)from_len);
    from_len = 4;
    memset(&from, 0, sizeof from);
    CHECK(sendto(client, "again", 5, 0, (struct sockaddr *)&server_addr, server_len) == 5);
    n = recvfrom(server, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
    printf("recvfrom short address buffer: %zd, len %u, \"%.2s\"\n", n, (unsigned)from_len, from.sun_path);

    int anonymous = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(sendto(anonymous, "anon", 4, 0, (struct sockaddr *)&server_addr, server_len) == 4);
    from_len = sizeof from;
    n = recvfrom(server, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
    printf("from an unbound socket: %zd, len %u\n", n, (unsigned)from_len);
    errno = 0;
    printf("sendto bad length: %zd %s\n", sendto(anonymous, "x", 1, 0, (struct sockaddr *)&server_addr, 200),
           strerror(errno));
    close(anonymous);
    close(server);
    close(client);
    CHECK(unlink("d.sock") == 0);
    CHECK(unlink("c.sock") == 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, on_sigpipe);
    stream_pair();
    datagram_pair();
    pass_rights();
    named_stream();
    named_datagram();
    int inet = socket(AF_INET, SOCK_STREAM, 0);
    printf("AF_INET socket: %s\n", inet >= 0 ? "ok" : strerror(errno));
    int pair[2];
    errno = 0;
    printf("AF_INET socketpair: %d %s\n", socketpair(AF_INET, SOCK_STREAM, 0, pair), strerror(errno));
    return 0;
}
