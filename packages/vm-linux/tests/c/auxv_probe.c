/* Prints argc, argv, environment count and the deterministic auxiliary-vector
 * values, so a test can compare what the loader built with what qemu-riscv64 builds. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

int main(int argc, char **argv) {
    int envc = 0;
    while (environ[envc]) envc++;
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    printf("envc=%d\n", envc);
    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
    printf("AT_PHNUM=%lu\n", getauxval(AT_PHNUM));
    printf("AT_HWCAP=%#lx\n", getauxval(AT_HWCAP));
    printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
    printf("AT_UID=%lu\n", getauxval(AT_UID));
    printf("AT_EUID=%lu\n", getauxval(AT_EUID));
    printf("AT_GID=%lu\n", getauxval(AT_GID));
    printf("AT_EGID=%lu\n", getauxval(AT_EGID));
    printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
    printf("AT_BASE=%lu\n", getauxval(AT_BASE));
    printf("AT_FLAGS=%lu\n", getauxval(AT_FLAGS));
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN=%s\n", execfn ? execfn : "(null)");
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM=%s\n", platform ? platform : "(null)");
    printf("AT_RANDOM_set=%d\n", getauxval(AT_RANDOM) != 0);
    printf("sp_aligned=%d\n", ((uintptr_t)__builtin_frame_address(0) & 15) == 0);
    return argc;
}
