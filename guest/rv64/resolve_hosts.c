/* resolve_hosts: getaddrinfo (IPv4, stream) of each argument, from /etc/hosts.
 *
 * Static glibc serves the "files" NSS source itself (no libnss_*.so is
 * loaded), so under `vm run --root DIR` the names come from DIR/etc/hosts
 * and DIR/etc/nsswitch.conf (the vm-cli test gives it a root; the suite runs
 * it with "localhost" against the host's files, as qemu-riscv64 does).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct addrinfo hints, *res;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(argv[i], "80", &hints, &res);
        if (rc != 0) {
            printf("%s: %s\n", argv[i], gai_strerror(rc));
            continue;
        }
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            char text[INET_ADDRSTRLEN];
            struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
            inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
            printf("%s: %s port %d\n", argv[i], text, ntohs(sin->sin_port));
        }
        freeaddrinfo(res);
    }
    return 0;
}
