/* The guest address space's ceiling and the errno values beyond it, as qemu-riscv64 gives them.
 *
 * qemu-riscv64 7.2 on an x86-64 host gives the guest the host's user space:
 * the last mappable page ends at 0x7ffffffff000. MAP_FIXED at or past it is
 * ENOMEM, a hint past it is ignored (MAP_FIXED_NOREPLACE too: qemu 7.2 treats
 * it as a hint), munmap past it is EINVAL, mprotect ENOMEM, brk leaves the
 * break alone, and lengths no free range can hold are ENOMEM. Only facts that
 * do not depend on where the kernel places mappings are printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static const uintptr_t CEILING = 0x7ffffffff000UL;

static void *map_at(uintptr_t addr, size_t len, int flags) {
    errno = 0;
    return mmap((void *)addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
}

static void fixed(const char *what, uintptr_t addr, size_t len, int flags) {
    void *p = map_at(addr, len, flags);
    if (p == MAP_FAILED) {
        printf("%-40s errno %d (%s)\n", what, errno, strerror(errno));
        return;
    }
    printf("%-40s %s\n", what, (uintptr_t)p == addr ? "mapped where asked" : "mapped elsewhere");
    if ((uintptr_t)p == addr) {
        ((volatile char *)p)[len - 1] = 1;
        printf("%-40s reads back %d\n", "", ((volatile char *)p)[len - 1]);
    }
    munmap(p, len);
}

static void hinted(const char *what, uintptr_t addr, size_t len, int flags) {
    void *p = map_at(addr, len, flags);
    if (p == MAP_FAILED) {
        printf("%-40s errno %d (%s)\n", what, errno, strerror(errno));
        return;
    }
    uintptr_t got = (uintptr_t)p;
    printf("%-40s %s, %s the ceiling\n", what, got == addr ? "at the hint" : "not at the hint",
           got + len <= CEILING ? "below" : "PAST");
    munmap(p, len);
}

static void unmap(uintptr_t addr, size_t len) {
    errno = 0;
    int r = munmap((void *)addr, len);
    printf("munmap %#16lx %#14lx -> %d errno %d\n", (unsigned long)addr, (unsigned long)len, r, r ? errno : 0);
}

static void protect(uintptr_t addr, size_t len) {
    errno = 0;
    int r = mprotect((void *)addr, len, PROT_READ);
    printf("mprotect %#16lx %#12lx -> %d errno %d\n", (unsigned long)addr, (unsigned long)len, r, r ? errno : 0);
}

int main(void) {
    const uintptr_t page = 4096;
    fixed("MAP_FIXED last page below the ceiling", CEILING - page, page, MAP_FIXED);
    fixed("MAP_FIXED two pages below the ceiling", CEILING - 2 * page, 2 * page, MAP_FIXED);
    fixed("MAP_FIXED crossing the ceiling", CEILING - page, 2 * page, MAP_FIXED);
    fixed("MAP_FIXED at the ceiling", CEILING, page, MAP_FIXED);
    fixed("MAP_FIXED at 2^47", (uintptr_t)1 << 47, page, MAP_FIXED);
    fixed("MAP_FIXED at 2^48", (uintptr_t)1 << 48, page, MAP_FIXED);
    fixed("MAP_FIXED at 2^56", (uintptr_t)1 << 56, page, MAP_FIXED);
    fixed("MAP_FIXED at 2^63", (uintptr_t)1 << 63, page, MAP_FIXED);
    fixed("MAP_FIXED at the top page", (uintptr_t)0 - page, page, MAP_FIXED);
    fixed("MAP_FIXED at 2^40", (uintptr_t)1 << 40, page, MAP_FIXED);
    fixed("MAP_FIXED at 2^46", (uintptr_t)1 << 46, page, MAP_FIXED);
    fixed("MAP_FIXED unaligned", 0x10000001, page, MAP_FIXED);
    hinted("hint at 2^46", (uintptr_t)1 << 46, page, 0);
    hinted("hint at the ceiling", CEILING, page, 0);
    hinted("hint at 2^48", (uintptr_t)1 << 48, page, 0);
    hinted("hint at the top page", (uintptr_t)0 - page, page, 0);
    hinted("MAP_FIXED_NOREPLACE at the ceiling", CEILING, page, MAP_FIXED_NOREPLACE);
    hinted("MAP_FIXED_NOREPLACE at 2^56", (uintptr_t)1 << 56, page, MAP_FIXED_NOREPLACE);
    char *taken = map_at(0, page, 0);
    hinted("MAP_FIXED_NOREPLACE over a mapping", (uintptr_t)taken, page, MAP_FIXED_NOREPLACE);
    munmap(taken, page);

    unmap(CEILING - page, page);
    unmap(CEILING - page, 2 * page);
    unmap(CEILING - page, page + 1);
    unmap(CEILING, page);
    unmap(CEILING, 1);
    unmap((uintptr_t)1 << 47, page);
    unmap((uintptr_t)1 << 56, page);
    unmap((uintptr_t)1 << 63, page);
    unmap(0x10000, (size_t)1 << 63);
    protect(CEILING - page, page);
    protect(CEILING - page, 2 * page);
    protect(CEILING, page);
    protect((uintptr_t)1 << 48, page);
    protect((uintptr_t)1 << 63, page);

    long start = syscall(SYS_brk, 0);
    printf("brk to 2^40 moves it: %s\n", syscall(SYS_brk, (uintptr_t)1 << 40) == start ? "no" : "yes");
    printf("brk to the ceiling moves it: %s\n", syscall(SYS_brk, CEILING) == start ? "no" : "yes");
    printf("brk to 2^47 moves it: %s\n", syscall(SYS_brk, (uintptr_t)1 << 47) == start ? "no" : "yes");

    size_t lengths[] = {(size_t)1 << 47, ((size_t)1 << 47) - 0x10000, (size_t)1 << 48, (size_t)1 << 63,
                        (size_t)0 - page, (size_t)0 - 1};
    for (unsigned i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        char what[64];
        snprintf(what, sizeof what, "length %#lx", (unsigned long)lengths[i]);
        hinted(what, 0, lengths[i], MAP_NORESERVE);
    }
    return 0;
}
