/* start_ecall: a libc-free program with its own _start, raw ecalls and compressed instructions.
 *
 * Built with -nostdlib -static -march=rv64gc. Prints a greeting, its argc
 * and argv strings (read from the initial stack the kernel builds), the
 * sum 1..100 computed with compressed instructions, then exits with status
 * argc + 10 through the exit_group syscall.
 */
    .option rvc
    .equ SYS_write, 64
    .equ SYS_exit_group, 94

    .section .rodata
greeting:
    .ascii "hello from _start\n"
    .equ greeting_len, . - greeting
argc_label:
    .ascii "argc="
    .equ argc_label_len, . - argc_label
sum_label:
    .ascii "sum(1..100)="
    .equ sum_label_len, . - sum_label
newline:
    .ascii "\n"

    .bss
    .balign 8
digits:
    .space 32

    .text
    .globl _start
_start:
    /* Set up gp as crt1 does: the linker relaxes later address loads to gp-relative ones. */
    .option push
    .option norelax
    lla     gp, __global_pointer$
    .option pop
    c.mv    s0, sp                  /* s0 -> argc, argv[0], ..., NULL */
    ld      s1, 0(s0)               /* s1 = argc */

    li      a0, 1
    lla     a1, greeting
    li      a2, greeting_len
    call    write_bytes

    li      a0, 1
    lla     a1, argc_label
    li      a2, argc_label_len
    call    write_bytes
    c.mv    a0, s1
    call    print_decimal

    /* Print argv[1..argc-1], one per line. */
    c.li    s2, 1
1:  bge     s2, s1, 3f
    slli    t0, s2, 3
    c.add   t0, s0
    ld      a1, 8(t0)               /* argv[s2] */
    c.mv    a2, a1
2:  lbu     a3, 0(a2)               /* strlen */
    c.beqz  a3, 4f
    c.addi  a2, 1
    c.j     2b
4:  c.sub   a2, a1
    li      a0, 1
    call    write_bytes
    li      a0, 1
    lla     a1, newline
    c.li    a2, 1
    call    write_bytes
    c.addi  s2, 1
    c.j     1b

3:  /* sum 1..100 with compressed arithmetic and a compressed branch */
    c.li    a0, 0
    li      a3, 100
5:  c.add   a0, a3
    c.addi  a3, -1
    c.bnez  a3, 5b
    c.mv    s3, a0
    li      a0, 1
    lla     a1, sum_label
    li      a2, sum_label_len
    call    write_bytes
    c.mv    a0, s3
    call    print_decimal

    /* Exercise a few more compressed forms on the stack: c.addi16sp, c.sdsp, c.ldsp, c.lui, c.slli. */
    c.addi16sp sp, -32
    c.lui   t0, 0x12
    c.slli  t0, 4
    c.sdsp  t0, 8(sp)
    c.ldsp  t1, 8(sp)
    c.addi16sp sp, 32
    bne     t0, t1, fail

    addi    a0, s1, 10
    li      a7, SYS_exit_group
    ecall

fail:
    li      a0, 99
    li      a7, SYS_exit_group
    ecall

/* write_bytes(fd=a0, buf=a1, len=a2): loops until everything is written. */
write_bytes:
    c.mv    t3, a0
1:  c.beqz  a2, 2f
    c.mv    a0, t3
    li      a7, SYS_write
    ecall
    blez    a0, 2f
    c.add   a1, a0
    c.sub   a2, a0
    c.j     1b
2:  c.jr    ra

/* print_decimal(value=a0): unsigned decimal and a newline to stdout. */
print_decimal:
    c.addi16sp sp, -16
    c.sdsp  ra, 8(sp)
    lla     a3, digits + 31
    li      t1, '\n'
    sb      t1, 0(a3)
    c.li    t2, 10
1:  c.addi  a3, -1
    remu    t1, a0, t2
    addi    t1, t1, '0'
    sb      t1, 0(a3)
    divu    a0, a0, t2
    c.bnez  a0, 1b
    c.mv    a1, a3
    lla     a2, digits + 32
    c.sub   a2, a3
    c.li    a0, 1
    call    write_bytes
    c.ldsp  ra, 8(sp)
    c.addi16sp sp, 16
    c.jr    ra
