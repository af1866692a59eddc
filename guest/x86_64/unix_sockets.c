/* unix_sockets for x86-64 (run through KVM, compared with running it natively): the riscv64 suite's
 * program, plus what only the kernel gets right (MSG_CTRUNC for a short control buffer). */
#define KERNEL_IS_THE_ORACLE 1
#include "../rv64/unix_sockets.c"
