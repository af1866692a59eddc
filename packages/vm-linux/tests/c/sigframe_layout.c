/* Prints glibc's riscv64 ucontext_t/mcontext_t offsets: the oracle for vm_linux.rv64_sigframe. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <ucontext.h>

int main(void) {
    printf("siginfo_size=%zu\n", sizeof(siginfo_t));
    printf("uc_stack=%zu\n", offsetof(ucontext_t, uc_stack));
    printf("uc_sigmask=%zu\n", offsetof(ucontext_t, uc_sigmask));
    printf("uc_mcontext=%zu\n", offsetof(ucontext_t, uc_mcontext));
    printf("fpregs=%zu\n", offsetof(ucontext_t, uc_mcontext.__fpregs));
    printf("fcsr=%zu\n", offsetof(ucontext_t, uc_mcontext.__fpregs.__d.__fcsr));
    printf("ucontext_size=%zu\n", sizeof(ucontext_t));
    printf("si_addr=%zu\n", offsetof(siginfo_t, si_addr));
    printf("si_pid=%zu\n", offsetof(siginfo_t, si_pid));
    printf("si_uid=%zu\n", offsetof(siginfo_t, si_uid));
    printf("sigaction_mask=%d\n", 16);
    return 0;
}
