/* Shared helpers of the sandbox attack programs (guest/attacks/README.md).
 *
 * Every program is run by the test as
 *     vm run --root OUTSIDE/root OUTSIDE/root/bin/PROG OUTSIDE SECRET_INO CANARY_INO HOSTONLY [MODE...]
 * OUTSIDE is the host directory that holds the root and, next to it, the
 * host's secret ("HOSTSECRET-..."), canary ("HOSTCANARY-..."), hostdir/inner
 * ("HOSTINNER-...") and a file named HOSTONLY (a name only the host has).
 * The guest knows these only as names; the root holds decoys at the places
 * a confined resolution reaches instead ("GUEST-..."), including a mirror of
 * the OUTSIDE path itself (OUTSIDE/secret inside the root is a decoy too).
 *
 * One line per attempt:
 *   NAME: blocked errno=E        the call failed
 *   NAME: contained DETAIL       it worked and stayed inside the root
 *   NAME: ESCAPED DETAIL         it reached the host (read host data, changed the
 *                                wrong file, saw a host-only name)
 *   NAME: WRONG DETAIL           it worked but not as Linux would inside the root
 * The exit status is 1 when any line says ESCAPED or WRONG, else 0.
 */
#ifndef VM_ATTACK_H
#define VM_ATTACK_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static const char *OUTSIDE = "";
static const char *HOSTONLY = "";
static unsigned long long SECRET_INO, CANARY_INO;
static int n_escaped, n_wrong, n_attempts;

#define HOST_MARK "HOST"

static const char *ename(int err) {
    const char *name = strerrorname_np(err);
    return name ? name : "E?";
}

static void line(const char *name, const char *verdict, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    for (char *p = detail; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    printf("%s: %s%s%s\n", name, verdict, detail[0] ? " " : "", detail);
    fflush(stdout);
    n_attempts++;
    if (!strcmp(verdict, "ESCAPED")) n_escaped++;
    if (!strcmp(verdict, "WRONG")) n_wrong++;
}

static void blocked(const char *name, int err) { line(name, "blocked", "errno=%s", ename(err)); }
static void contained(const char *name, const char *detail) { line(name, "contained", "%s", detail); }
static void escaped(const char *name, const char *detail) { line(name, "ESCAPED", "%s", detail); }

/* Read an fd (from the start if it can seek) and judge what it gave. */
static void judge_fd_content(const char *name, int fd) {
    char buf[256];
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) {
        line(name, "blocked", "read errno=%s", ename(errno));
        return;
    }
    buf[n] = 0;
    if (strstr(buf, HOST_MARK)) {
        line(name, "ESCAPED", "read=%s", buf);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_ino == SECRET_INO || st.st_ino == CANARY_INO)) {
        line(name, "ESCAPED", "fstat ino is the host file's");
        return;
    }
    line(name, "contained", "read=%.60s", buf);
}

static int is_host_ino(const struct stat *st) { return st->st_ino == SECRET_INO || st->st_ino == CANARY_INO; }

/* "%O" in a template becomes OUTSIDE, "%L" the leaf name. */
static void expand(char *out, size_t size, const char *tpl, const char *leaf) {
    size_t k = 0;
    for (const char *p = tpl; *p && k + 1 < size; p++) {
        const char *ins = NULL;
        if (p[0] == '%' && p[1] == 'O') ins = OUTSIDE;
        if (p[0] == '%' && p[1] == 'L') ins = leaf;
        if (ins) {
            size_t len = strlen(ins);
            if (k + len >= size) len = size - 1 - k;
            memcpy(out + k, ins, len);
            k += len;
            p++;
        } else {
            out[k++] = *p;
        }
    }
    out[k] = 0;
}

static int write_file(const char *path, const char *content, mode_t mode) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) return -1;
    ssize_t n = write(fd, content, strlen(content));
    close(fd);
    chmod(path, mode);
    return n == (ssize_t)strlen(content) ? 0 : -1;
}

static int read_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

static void setup_args(int argc, char **argv, int need) {
    if (argc < need) {
        fprintf(stderr, "usage: %s OUTSIDE SECRET_INO CANARY_INO HOSTONLY [MODE]\n", argv[0]);
        exit(2);
    }
    OUTSIDE = argv[1];
    SECRET_INO = strtoull(argv[2], NULL, 10);
    CANARY_INO = strtoull(argv[3], NULL, 10);
    HOSTONLY = argv[4];
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static int finish(void) {
    printf("summary: attempts=%d escaped=%d wrong=%d\n", n_attempts, n_escaped, n_wrong);
    fflush(stdout);
    return (n_escaped || n_wrong) ? 1 : 0;
}

/* Does a directory listing (through an fd) show a name only the host has? */
static void judge_dir_fd(const char *name, int fd) {
    char buf[4096];
    int found_host = 0, entries = 0;
    char first[128] = "";
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0) {
            line(name, "blocked", "getdents64 errno=%s", ename(errno));
            return;
        }
        if (n == 0) break;
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            entries++;
            if (!strncmp(d->name, "HOSTONLY", 8)) found_host = 1;
            if (!first[0] && strcmp(d->name, ".") && strcmp(d->name, "..")) snprintf(first, sizeof first, "%s", d->name);
            off += d->reclen;
        }
    }
    if (found_host)
        line(name, "ESCAPED", "listing shows the host-only name %s", HOSTONLY);
    else
        line(name, "contained", "entries=%d", entries);
}

#endif
