/* inet_sockets: loopback TCP and UDP (and IPv6 ::1 where the host has it).
 *
 * TCP: bind port 0, getsockname for the port, connect, accept4 with
 * SOCK_CLOEXEC, the peer's address against the client's own name,
 * send/recv, sendmsg/recvmsg with several iovecs, shutdown, SO_REUSEADDR,
 * TCP_NODELAY, SO_RCVBUF (Linux doubles it), SO_LINGER, SO_ERROR,
 * ECONNREFUSED. UDP: sendmmsg of three datagrams, recvmmsg of them with
 * sender addresses, MSG_WAITFORONE, SO_RCVTIMEO giving EAGAIN, connected
 * UDP. Prints only deterministic facts: no ports, no addresses that vary.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CHECK(expr)                                                                                  \
    do {                                                                                             \
        if (!(expr)) {                                                                               \
            printf("FAILED line %d: %s (errno %d: %s)\n", __LINE__, #expr, errno, strerror(errno)); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

static struct sockaddr_in loopback(unsigned short port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

static int get_int(int fd, int level, int name)
{
    int value = -1;
    socklen_t len = sizeof value;
    CHECK(getsockopt(fd, level, name, &value, &len) == 0);
    CHECK(len == sizeof value);
    return value;
}

static void read_exactly(int fd, char *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = recv(fd, buf + done, n - done, 0);
        CHECK(r > 0);
        done += (size_t)r;
    }
}

static void tcp(void)
{
    int server = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(server >= 0);
    int one = 1;
    CHECK(setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    printf("SO_REUSEADDR %d\n", get_int(server, SOL_SOCKET, SO_REUSEADDR));
    struct sockaddr_in addr = loopback(0);
    CHECK(bind(server, (struct sockaddr *)&addr, sizeof addr) == 0);
    socklen_t len = sizeof addr;
    CHECK(getsockname(server, (struct sockaddr *)&addr, &len) == 0);
    printf("bound: len %u, family %d, port assigned %d, address 127.0.0.1 %d\n", (unsigned)len, addr.sin_family,
           addr.sin_port != 0, addr.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(listen(server, 8) == 0);
    printf("SO_ACCEPTCONN %d\n", get_int(server, SOL_SOCKET, SO_ACCEPTCONN));

    int client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
    printf("TCP_NODELAY %d\n", get_int(client, IPPROTO_TCP, TCP_NODELAY));
    int rcvbuf = 65536;
    CHECK(setsockopt(client, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    printf("SO_RCVBUF after setting 65536: %d\n", get_int(client, SOL_SOCKET, SO_RCVBUF));
    struct linger linger = {1, 3};
    CHECK(setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, sizeof linger) == 0);
    struct linger got_linger;
    socklen_t linger_len = sizeof got_linger;
    CHECK(getsockopt(client, SOL_SOCKET, SO_LINGER, &got_linger, &linger_len) == 0);
    printf("SO_LINGER %d %d (len %u)\n", got_linger.l_onoff, got_linger.l_linger, (unsigned)linger_len);
    CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0);

    struct sockaddr_in peer, client_name;
    socklen_t peer_len = sizeof peer, name_len = sizeof client_name;
    int conn = accept4(server, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC);
    CHECK(conn >= 0);
    CHECK(getsockname(client, (struct sockaddr *)&client_name, &name_len) == 0);
    printf("accepted: cloexec %d, peer len %u, peer is the client %d\n", fcntl(conn, F_GETFD) & FD_CLOEXEC,
           (unsigned)peer_len, peer.sin_port == client_name.sin_port && peer.sin_addr.s_addr == client_name.sin_addr.s_addr);
    struct sockaddr_in server_seen;
    socklen_t seen_len = sizeof server_seen;
    CHECK(getpeername(client, (struct sockaddr *)&server_seen, &seen_len) == 0);
    printf("client's peer is the server %d\n", server_seen.sin_port == addr.sin_port);
    printf("SO_ERROR %d, SO_TYPE %d\n", get_int(conn, SOL_SOCKET, SO_ERROR), get_int(conn, SOL_SOCKET, SO_TYPE));

    char buf[64];
    CHECK(send(client, "request", 7, 0) == 7);
    read_exactly(conn, buf, 7);
    printf("server got \"%.7s\"\n", buf);

    struct iovec out[3] = {{"alpha-", 6}, {"beta-", 5}, {"gamma", 5}};
    struct msghdr msg = {0};
    msg.msg_iov = out;
    msg.msg_iovlen = 3;
    printf("sendmsg of 3 iovecs: %zd\n", sendmsg(conn, &msg, 0));
    char first[4], second[32];
    struct iovec in[2] = {{first, sizeof first}, {second, sizeof second}};
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = in;
    msg.msg_iovlen = 2;
    size_t total = 0;
    while (total < 16) {
        ssize_t n = recvmsg(client, &msg, 0);
        CHECK(n > 0);
        total += (size_t)n;
        if (total < 16) { /* a short read: take the rest plainly */
            read_exactly(client, second + total - 4, 16 - total);
            total = 16;
        }
    }
    printf("recvmsg into 2 iovecs: \"%.4s\" + \"%.12s\"\n", first, second);

    CHECK(shutdown(client, SHUT_WR) == 0);
    printf("server read after client SHUT_WR: %zd\n", recv(conn, buf, sizeof buf, 0));
    CHECK(send(conn, "bye", 3, 0) == 3);
    read_exactly(client, buf, 3);
    printf("client still reads: \"%.3s\"\n", buf);
    close(conn);
    printf("client read after server close: %zd\n", recv(client, buf, sizeof buf, 0));
    close(client);

    /* a port nobody listens on: the closed listener's */
    close(server);
    int refused = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    printf("connect to a closed port: %d %s\n", connect(refused, (struct sockaddr *)&addr, sizeof addr),
           strerror(errno));
    close(refused);
    errno = 0;
    int bad = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in short_addr = loopback(0);
    printf("bind with a short address: %d %s\n", bind(bad, (struct sockaddr *)&short_addr, 4), strerror(errno));
    close(bad);
}

static void udp(void)
{
    int receiver = socket(AF_INET, SOCK_DGRAM, 0);
    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in raddr = loopback(0), saddr = loopback(0);
    CHECK(bind(receiver, (struct sockaddr *)&raddr, sizeof raddr) == 0);
    CHECK(bind(sender, (struct sockaddr *)&saddr, sizeof saddr) == 0);
    socklen_t len = sizeof raddr;
    CHECK(getsockname(receiver, (struct sockaddr *)&raddr, &len) == 0);
    len = sizeof saddr;
    CHECK(getsockname(sender, (struct sockaddr *)&saddr, &len) == 0);

    const char *texts[3] = {"one", "datagram two", "three!"};
    struct iovec iov[3];
    struct mmsghdr out[3];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = (void *)texts[i];
        iov[i].iov_len = strlen(texts[i]);
        out[i].msg_hdr.msg_iov = &iov[i];
        out[i].msg_hdr.msg_iovlen = 1;
        out[i].msg_hdr.msg_name = &raddr;
        out[i].msg_hdr.msg_namelen = sizeof raddr;
    }
    int sent = sendmmsg(sender, out, 3, 0);
    printf("sendmmsg: %d (lengths %u %u %u)\n", sent, out[0].msg_len, out[1].msg_len, out[2].msg_len);

    char bufs[4][32];
    struct iovec in_iov[4];
    struct sockaddr_in from[4];
    struct mmsghdr in[4];
    memset(in, 0, sizeof in);
    for (int i = 0; i < 4; i++) {
        in_iov[i].iov_base = bufs[i];
        in_iov[i].iov_len = sizeof bufs[i];
        in[i].msg_hdr.msg_iov = &in_iov[i];
        in[i].msg_hdr.msg_iovlen = 1;
        in[i].msg_hdr.msg_name = &from[i];
        in[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int got = recvmmsg(receiver, in, 3, 0, NULL);
    printf("recvmmsg: %d\n", got);
    for (int i = 0; i < got; i++)
        printf("  [%d] %u \"%.*s\" from the sender %d (namelen %u)\n", i, in[i].msg_len, (int)in[i].msg_len, bufs[i],
               from[i].sin_port == saddr.sin_port, (unsigned)in[i].msg_hdr.msg_namelen);

    CHECK(sendto(sender, "solo", 4, 0, (struct sockaddr *)&raddr, sizeof raddr) == 4);
    got = recvmmsg(receiver, in, 4, MSG_WAITFORONE, NULL);
    printf("recvmmsg MSG_WAITFORONE with one queued: %d, \"%.*s\"\n", got, (int)in[0].msg_len, bufs[0]);

    struct timeval timeout = {0, 50000};
    CHECK(setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);
    struct timeval got_timeout;
    socklen_t tlen = sizeof got_timeout;
    CHECK(getsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &got_timeout, &tlen) == 0);
    /* the kernel keeps it in jiffies: 50 ms reads back rounded up to the host's tick */
    printf("SO_RCVTIMEO reads back 50-60 ms: %d\n",
           got_timeout.tv_sec == 0 && got_timeout.tv_usec >= 50000 && got_timeout.tv_usec <= 60000);
    errno = 0;
    printf("recv with nothing queued: %zd %s\n", recv(receiver, bufs[0], 32, 0), strerror(errno));

    CHECK(connect(sender, (struct sockaddr *)&raddr, sizeof raddr) == 0);
    CHECK(send(sender, "connected", 9, 0) == 9);
    struct sockaddr_in who;
    socklen_t who_len = sizeof who;
    ssize_t n = recvfrom(receiver, bufs[0], 32, 0, (struct sockaddr *)&who, &who_len);
    printf("connected UDP: \"%.*s\" from the sender %d\n", (int)n, bufs[0], who.sin_port == saddr.sin_port);
    close(sender);
    close(receiver);
}

static void ipv6(void)
{
    int server = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) != 0) {
        printf("ipv6 ::1: not available on this host, skipped\n");
        if (server >= 0)
            close(server);
        return;
    }
    socklen_t len = sizeof addr;
    CHECK(getsockname(server, (struct sockaddr *)&addr, &len) == 0);
    CHECK(listen(server, 1) == 0);
    int client = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0);
    struct sockaddr_in6 peer;
    socklen_t peer_len = sizeof peer;
    int conn = accept(server, (struct sockaddr *)&peer, &peer_len);
    CHECK(conn >= 0);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text);
    CHECK(send(client, "six", 3, 0) == 3);
    char buf[8];
    read_exactly(conn, buf, 3);
    printf("ipv6: len %u, peer %s, got \"%.3s\"\n", (unsigned)peer_len, text, buf);
    close(conn);
    close(client);
    close(server);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    tcp();
    udp();
    ipv6();
    return 0;
}
