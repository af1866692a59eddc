/* Allocate and touch N MiB (argv[1]): malloc'd (committed) memory, then a MAP_NORESERVE mapping page by page.
 *
 * With a small N it runs like any program of the suite. The vm-cli tests also
 * run it under `vm run --max-memory` with N past the bound: malloc must fail
 * (the commit is refused with ENOMEM) and touching the reservation must get
 * the guest killed with SIGKILL, as the OOM killer would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 8;
    size_t size = mib << 20;
    char *heap = malloc(size);
    printf("malloc %zu MiB: %s\n", mib, heap ? "ok" : "failed");
    if (heap) {
        memset(heap, 1, size);
        free(heap);
    }
    char *reserve = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("mmap %zu MiB MAP_NORESERVE: %s\n", mib, reserve == MAP_FAILED ? "failed" : "ok");
    fflush(stdout);
    if (reserve == MAP_FAILED)
        return 1;
    unsigned long sum = 0;
    for (size_t offset = 0; offset < size; offset += 4096) {
        reserve[offset] = (char)(offset >> 12);
        sum += (unsigned char)reserve[offset];
    }
    printf("touched %zu MiB, checksum %lu\n", mib, sum);
    return 0;
}
