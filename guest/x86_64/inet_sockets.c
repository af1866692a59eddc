/* inet_sockets for x86-64 (run through KVM, compared with running it natively): the riscv64 suite's program. */
#include "../rv64/inet_sockets.c"
