/* A libc-free position-independent program (no rcrt1.o needed): writes a
 * greeting with raw ecalls and exits with status 7. Built with -static-pie
 * -nostdlib to exercise ET_DYN loading. */
static long sys3(long nr, long a0, long a1, long a2) {
    register long x10 __asm__("a0") = a0;
    register long x11 __asm__("a1") = a1;
    register long x12 __asm__("a2") = a2;
    register long x17 __asm__("a7") = nr;
    __asm__ volatile("ecall" : "+r"(x10) : "r"(x11), "r"(x12), "r"(x17) : "memory");
    return x10;
}

void _start(void) {
    static const char msg[] = "hello from a static pie\n";
    sys3(64, 1, (long)msg, sizeof msg - 1);
    sys3(94, 7, 0, 0);
    for (;;) {
    }
}
