/* sockets: AF_UNIX names as escape routes (guest/attacks/README.md).
 *
 * The host listens next to the root: OUTSIDE/hostsock (stream),
 * OUTSIDE/hostdgram (datagram) and the abstract name "\0HOSTONLY". The guest
 * first binds its own sockets at the same paths inside the root (the mirror
 * of OUTSIDE), so every confined connect or sendto reaches the guest's own
 * socket ("contained"); reaching anything else is an escape. Then it binds
 * through planted links and dangling links of its own: a socket must appear
 * inside the root or not at all (the test checks OUTSIDE from the host, and
 * that the host sockets saw no connection and no datagram).
 */
#include "attack.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int own_stream = -1, own_dgram = -1;

static socklen_t path_addr(struct sockaddr_un *addr, const char *path) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    snprintf(addr->sun_path, sizeof addr->sun_path, "%s", path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(addr->sun_path) + 1);
}

static socklen_t abstract_addr(struct sockaddr_un *addr, const char *name) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t len = strlen(name);
    if (len > sizeof addr->sun_path - 1) len = sizeof addr->sun_path - 1;
    memcpy(addr->sun_path + 1, name, len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static int bind_own(int type, const char *tpl) {
    char path[PATH_MAX];
    struct sockaddr_un addr;
    expand(path, sizeof path, tpl, "");
    unlink(path);
    int fd = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
    socklen_t len = path_addr(&addr, path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) != 0) {
        line("setup-bind-own", "WRONG", "%s errno=%s", path, ename(errno));
        return -1;
    }
    if (type == SOCK_STREAM) listen(fd, 16);
    return fd;
}

/* A connection made: was it to the guest's own listener, or to something else? */
static void judge_connection(const char *name, int fd) {
    int conn = accept(own_stream, NULL, NULL);
    if (conn >= 0) {
        contained(name, "reached the guest's own socket");
        close(conn);
        return;
    }
    char buf[128] = "";
    usleep(50000);
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n > 0) buf[n] = 0;
    escaped(name, buf[0] ? buf : "connected to a socket that is not the guest's");
}

static void try_connect(const char *name, const char *tpl) {
    char path[PATH_MAX];
    struct sockaddr_un addr;
    expand(path, sizeof path, tpl, "");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t len = path_addr(&addr, path);
    if (connect(fd, (struct sockaddr *)&addr, len) != 0)
        blocked(name, errno);
    else
        judge_connection(name, fd);
    close(fd);
}

static void try_sendto(const char *name, const char *tpl) {
    char path[PATH_MAX], buf[64];
    struct sockaddr_un addr;
    expand(path, sizeof path, tpl, "");
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t len = path_addr(&addr, path);
    if (sendto(fd, "GUESTDGRAM", 10, 0, (struct sockaddr *)&addr, len) != 10)
        blocked(name, errno);
    else if (recv(own_dgram, buf, sizeof buf, MSG_DONTWAIT) == 10)
        contained(name, "reached the guest's own socket");
    else
        escaped(name, "the datagram went elsewhere");
    close(fd);
}

static void try_abstract(void) {
    struct sockaddr_un addr;
    socklen_t len = abstract_addr(&addr, HOSTONLY);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, len) != 0)
        blocked("connect-abstract-host", errno);
    else
        judge_connection("connect-abstract-host", fd);
    close(fd);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (sendto(fd, "x", 1, 0, (struct sockaddr *)&addr, len) != 1)
        blocked("sendto-abstract-host", errno);
    else
        escaped("sendto-abstract-host", "a datagram reached a host abstract name");
    close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    len = abstract_addr(&addr, "vm-guest-abstract");
    if (bind(fd, (struct sockaddr *)&addr, len) != 0)
        blocked("bind-abstract", errno);
    else
        line("bind-abstract", "WRONG", "an abstract name was bound under --root");
    close(fd);
    /* autobind: only the family; the kernel picks a name nobody outside knows */
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    len = sizeof(sa_family_t);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
        line("autobind", "WRONG", "errno=%s", ename(errno));
    } else {
        socklen_t got = sizeof addr;
        getsockname(fd, (struct sockaddr *)&addr, &got);
        contained("autobind", got > sizeof(sa_family_t) && addr.sun_path[0] == 0 ? "abstract name" : "?");
    }
    close(fd);
}

/* Bind NAME (a template); the socket must appear at CHECK inside the root (NULL: the bind must fail). */
static void try_bind(const char *name, const char *tpl, const char *check_tpl) {
    char path[PATH_MAX], check[PATH_MAX];
    struct sockaddr_un addr;
    expand(path, sizeof path, tpl, "");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t len = path_addr(&addr, path);
    if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
        blocked(name, errno);
        close(fd);
        return;
    }
    struct stat st;
    if (check_tpl == NULL) {
        line(name, "WRONG", "bound, though Linux refuses");
    } else {
        expand(check, sizeof check, check_tpl, "");
        if (lstat(check, &st) == 0 && S_ISSOCK(st.st_mode))
            contained(name, "socket inside the root");
        else
            line(name, "WRONG", "no socket at %s", check);
    }
    close(fd);
}

int main(int argc, char **argv) {
    setup_args(argc, argv, 5);
    own_stream = bind_own(SOCK_STREAM, "%O/hostsock");
    own_dgram = bind_own(SOCK_DGRAM, "%O/hostdgram");
    if (own_stream < 0 || own_dgram < 0) return finish();
    symlink("%O/hostsock", "/gl_abs_literal"); /* a literal "%O": dangling */
    char target[PATH_MAX];
    expand(target, sizeof target, "%O/hostsock", "");
    symlink(target, "/gl_abs");
    expand(target, sizeof target, "../../../../../../../../../..%O/hostsock", "");
    symlink(target, "/sub/gl_rel");
    expand(target, sizeof target, "%O/hostdgram", "");
    symlink(target, "/gl_dgram");
    expand(target, sizeof target, "%O/made_by_guest", "");
    symlink(target, "/gl_new");

    try_connect("connect-abs", "%O/hostsock");
    try_connect("connect-dotdot", "/../../../../../../..%O/hostsock");
    try_connect("connect-lnkdir_abs", "/lnkdir_abs/hostsock");
    try_connect("connect-lnkdir_rel", "/sub/lnkdir_rel2/lnkdir_rel%O/hostsock");
    try_connect("connect-chain", "/chain1%O/hostsock");
    try_connect("connect-guest-link-abs", "/gl_abs");
    try_connect("connect-guest-link-rel", "/sub/gl_rel");
    try_connect("connect-relative", "lnkdir_abs/hostsock");
    try_sendto("sendto-abs", "%O/hostdgram");
    try_sendto("sendto-lnkdir_abs", "/lnkdir_abs/hostdgram");
    try_sendto("sendto-guest-link", "/gl_dgram");
    try_abstract();
    try_bind("bind-lnkdir_abs", "/lnkdir_abs/made_by_guest", "%O/made_by_guest");
    try_bind("bind-dotdot", "/../../../../made_by_guest", "/made_by_guest");
    try_bind("bind-guest-dangling-link", "/gl_new", NULL);
    try_bind("bind-planted-abs-link", "/lnk_abs_made_by_guest", NULL);
    return finish();
}
