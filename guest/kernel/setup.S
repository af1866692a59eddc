/*
 * The real-mode part of the test kernel's bzImage: one boot sector and one
 * setup sector (setup_sects = 1) carrying the Linux x86 setup header at
 * 0x1f1, boot protocol 2.15 (Documentation/arch/x86/boot.rst).
 *
 * This kernel only has a 64-bit entry point (XLF_KERNEL_64, startup_64 at
 * load address + 0x200); a loader that runs the real-mode setup code lands
 * on `cli; hlt`. syssize and init_size come from the linker script.
 */
	.code16
	.section .setup, "ax"
	.globl	_setup_start
_setup_start:
	/* A BIOS booting this from a floppy must not run it: stop. */
	cli
1:	hlt
	jmp	1b

	.org	0x1f1
setup_sects:		.byte	1
root_flags:		.word	0
syssize:		.long	kernel_syssize		/* protected-mode part, 16-byte units */
ram_size:		.word	0
vid_mode:		.word	0xffff			/* NORMAL_VGA */
root_dev:		.word	0
boot_flag:		.word	0xaa55
	/* offset 0x200: the real-mode entry; its second byte gives the header's end */
	.byte	0xeb
	.byte	setup_code - 1f
1:
header:			.ascii	"HdrS"
version:		.word	0x020f			/* boot protocol 2.15 */
realmode_swtch:		.long	0
start_sys_seg:		.word	0x1000
kernel_version:		.word	version_string - 0x200
type_of_loader:		.byte	0
loadflags:		.byte	0x01			/* LOADED_HIGH */
setup_move_size:	.word	0x8000
code32_start:		.long	0x100000
ramdisk_image:		.long	0
ramdisk_size:		.long	0
bootsect_kludge:	.long	0
heap_end_ptr:		.word	0
ext_loader_ver:		.byte	0
ext_loader_type:	.byte	0
cmd_line_ptr:		.long	0
initrd_addr_max:	.long	0x7fffffff
kernel_alignment:	.long	0x200000
relocatable_kernel:	.byte	0
min_alignment:		.byte	21
xloadflags:		.word	0x0003			/* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
cmdline_size:		.long	2047
hardware_subarch:	.long	0
hardware_subarch_data:	.quad	0
payload_offset:		.long	0
payload_length:		.long	0
setup_data:		.quad	0
pref_address:		.quad	kernel_load_address
init_size:		.long	kernel_init_size
handover_offset:	.long	0
kernel_info_offset:	.long	kernel_info_offset_value

setup_code:
	cli
1:	hlt
	jmp	1b

version_string:
	.asciz	"vmkernel 1.0 (the vm project's boot-protocol test kernel)"

	.org	1024				/* (setup_sects + 1) * 512 */
