/*
 * The protected-mode part's entry points, at the start of the image the
 * loader puts at pref_address: startup_32 at +0 (unsupported: halts) and
 * startup_64 at +0x200, entered in long mode with rsi = struct boot_params
 * (the 64-bit boot protocol). startup_64 switches to its own stack, calls
 * kmain(boot_params) and, should that return, powers off and halts.
 */
	.section .head.text, "ax"
	.code32
	.globl	startup_32
startup_32:
	cli
1:	hlt
	jmp	1b

	.code64
	.org	0x200
	.globl	startup_64
startup_64:
	cli
	cld
	leaq	boot_stack_top(%rip), %rsp
	movq	%rsi, %rdi
	call	kmain
	movw	$0x604, %dx
	movw	$0x2000, %ax
	outw	%ax, %dx
2:	hlt
	jmp	2b

/*
 * Interrupt entry points for the "irq" test: IRQ 4 (COM1) through the PIC,
 * and every other vector, which ends the kernel with a message.
 */
	.text
	.globl	irq4_entry
irq4_entry:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	cld
	call	irq4_handler
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	iretq

	.globl	unexpected_entry
unexpected_entry:
	cli
	cld
	call	unexpected_interrupt
3:	hlt
	jmp	3b

/* kernel_info (boot protocol 2.15): "LToP", its size, the total size, setup_type_max. */
	.section .rodata.kernel_info, "a"
	.balign	4
	.globl	kernel_info
kernel_info:
	.ascii	"LToP"
	.long	kernel_info_end - kernel_info
	.long	kernel_info_end - kernel_info
	.long	0
kernel_info_end:

	.section .bss
	.balign	16
boot_stack:
	.skip	8192
boot_stack_top:
