#define _GNU_SOURCE
/* A 64 GiB MAP_NORESERVE reservation with three pages touched: sparse guest memory.
 *
 * Under qemu-user the host kernel backs only the touched pages; `vm run` must
 * too (the vm-cli tests read the VM's VmHWM while this program waits on stdin
 * with the reservation live). Also: protections over the whole range, a hole
 * punched by munmap, MADV_DONTNEED, mremap of a touched page, and commit
 * accounting (a reservation larger than the host's RAM + swap without
 * MAP_NORESERVE is refused by the host's overcommit heuristic; making 64 GiB
 * writable is refused where RAM + swap is smaller, qemu and vm on one host
 * agree either way). Sizes stay at 64 GiB: qemu-user 7.2 tracks guest page
 * flags page by page, so larger successful mappings make it slow.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GIB ((size_t)1 << 30)

static void report(const char *what, int ok) {
    printf("%-44s %s\n", what, ok ? "ok" : strerror(errno));
}

int main(void) {
    size_t size = 64 * GIB, page = 4096;
    char *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    report("mmap 64 GiB MAP_NORESERVE", base != MAP_FAILED);
    if (base == MAP_FAILED)
        return 1;
    size_t offsets[3] = {0, size / 2 + 123, size - 8};
    for (int i = 0; i < 3; i++)
        memcpy(base + offsets[i], "touched", 8 - (i == 2));
    unsigned long sum = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 7; j++)
            sum = sum * 31 + (unsigned char)base[offsets[i] + j];
    printf("three pages touched, checksum %lu, untouched byte %d\n", sum, base[size / 4]);
    fflush(stdout);
    char byte;
    ssize_t got = read(0, &byte, 1); /* the RSS check holds the reservation live here */
    printf("stdin gave %zd bytes\n", got < 0 ? (ssize_t)0 : got);

    report("mprotect 64 GiB read-only", mprotect(base, size, PROT_READ) == 0);
    printf("still reads %.7s\n", base + size / 2 + 123);
    report("mprotect 64 GiB read-write", mprotect(base, size, PROT_READ | PROT_WRITE) == 0);
    report("munmap a 1 GiB hole in the middle", munmap(base + 8 * GIB, GIB) == 0);
    report("mprotect across the hole (ENOMEM)", mprotect(base, 16 * GIB, PROT_READ) == 0);
    report("madvise DONTNEED the first page", madvise(base, page, MADV_DONTNEED) == 0);
    printf("after DONTNEED: %d\n", base[0]);
    char *moved = mremap(base + size - page, page, 2 * page, MREMAP_MAYMOVE);
    report("mremap the last page to two pages", moved != MAP_FAILED);
    if (moved != MAP_FAILED)
        printf("moved page holds %.6s, grown part %d\n", moved + page - 8, moved[page]);
    report("munmap everything", munmap(base, size) == 0);

    void *big = mmap(NULL, 1024 * GIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report("mmap 1 TiB accountable (beyond RAM + swap)", big != MAP_FAILED);
    big = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report("mmap 64 GiB read-only (not yet accountable)", big != MAP_FAILED);
    if (big != MAP_FAILED) {
        int writable = mprotect(big, size, PROT_READ | PROT_WRITE) == 0;
        printf("%-44s %s\n", "mprotect it writable (now accountable)", writable ? "ok" : "refused");
        report("munmap it", munmap(big, size) == 0);
    }
    return 0;
}
