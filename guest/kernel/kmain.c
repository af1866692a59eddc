/*
 * The vm project's boot-protocol test kernel: entered through the Linux x86
 * 64-bit boot protocol, it prints what its loader told it in struct
 * boot_params on the COM1 UART (an 8250/16550, polled) and powers off
 * through the ACPI PM1a control port (0x604 <- SLP_EN).
 *
 * Printed, one item per line: the boot protocol version and loader type from
 * the copied setup header, the command line, every E820 entry, the initrd's
 * address and size and its first 16 bytes in hex. With "echo" on the command
 * line it then reads one line from the UART and prints it back; with "irq" it
 * programs the 8259 PICs and its own IDT, enables the UART's receive
 * interrupt and sleeps in hlt until IRQ 4 brings a byte, then prints the
 * vector, IIR and the byte (the in-kernel irqchip path of the loader).
 *
 * Freestanding (no libc): struct boot_params is read by byte offset, with
 * the offsets of arch/x86/include/uapi/asm/bootparam.h. It runs at CPL 0,
 * which some hosts (KVM-PVM) emulate instruction by instruction, so it is
 * kept to a few thousand instructions per line.
 */
#include <stdint.h>

#define COM1 0x3f8
#define UART_THR 0
#define UART_RBR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_SCR 7
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LCR_DLAB 0x80
#define LCR_8N1 0x03

/* struct boot_params offsets (bootparam.h). */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define E820_ENTRY_SIZE 20
#define E820_MAX 128
#define CMDLINE_MAX 4096
#define INITRD_HEAD 16
#define ECHO_MAX 256
#define UART_IIR 2
#define IER_RDI 0x01
#define MCR_OUT2 0x08
#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20
#define IRQ_BASE 0x20
#define IRQ_COM1 4
#define IDT_VECTORS 48
#define KERNEL_CS 0x10
#define POWEROFF_PORT 0x604
#define ACPI_SLP_EN 0x2000

static inline void outb(uint16_t port, uint8_t value)
{
	__asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t value)
{
	__asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t value;
	__asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static uint8_t u8_at(const uint8_t *base, unsigned offset)
{
	return base[offset];
}

static uint32_t u32_at(const uint8_t *base, unsigned offset)
{
	const volatile uint8_t *p = base + offset;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t u64_at(const uint8_t *base, unsigned offset)
{
	return (uint64_t)u32_at(base, offset) | (uint64_t)u32_at(base, offset + 4) << 32;
}

static void uart_init(void)
{
	outb(COM1 + UART_IER, 0x00);            /* no interrupts: this kernel polls */
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 0x01);            /* divisor 1: 115200 baud */
	outb(COM1 + UART_DLM, 0x00);
	outb(COM1 + UART_LCR, LCR_8N1);
	outb(COM1 + UART_FCR, 0x07);            /* FIFOs on, both cleared */
	outb(COM1 + UART_MCR, 0x03);            /* DTR, RTS */
}

static void uart_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		;
	outb(COM1 + UART_THR, (uint8_t)c);
}

static void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

static void put_hex(uint64_t value, int digits)
{
	static const char hex[] = "0123456789abcdef";
	uart_puts("0x");
	for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
		uart_putc(hex[(value >> shift) & 0xf]);
}

static void put_dec(unsigned value)
{
	char buf[12];
	int n = 0;
	do {
		buf[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	while (n)
		uart_putc(buf[--n]);
}

static int has_word(const char *s, const char *word)
{
	/* word occurs in s delimited by spaces or the ends */
	for (const char *p = s; *p; p++) {
		if (p != s && p[-1] != ' ')
			continue;
		const char *a = p, *b = word;
		while (*b && *a == *b)
			a++, b++;
		if (!*b && (*a == ' ' || *a == '\0'))
			return 1;
	}
	return 0;
}

static void echo_line(void)
{
	char line[ECHO_MAX + 1];
	int n = 0;
	uart_puts("echo: ready\n");
	for (;;) {
		while (!(inb(COM1 + UART_LSR) & LSR_DR))
			;
		char c = (char)inb(COM1 + UART_RBR);
		if (c == '\r' || c == '\n')
			break;
		if (n < ECHO_MAX)
			line[n++] = c;
	}
	line[n] = '\0';
	uart_puts("echo: ");
	uart_puts(line);
	uart_putc('\n');
}

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

struct idt_pointer {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

void irq4_entry(void);
void unexpected_entry(void);
void irq4_handler(void);
void unexpected_interrupt(void) __attribute__((noreturn));

static struct idt_gate idt[IDT_VECTORS] __attribute__((aligned(16)));
static volatile unsigned irq_count;
static volatile uint8_t irq_iir, irq_byte;

void irq4_handler(void)
{
	irq_iir = inb(COM1 + UART_IIR);
	irq_byte = inb(COM1 + UART_RBR);
	irq_count++;
	outb(PIC1_CMD, PIC_EOI);
}

void unexpected_interrupt(void)
{
	uart_puts("vmkernel: unexpected interrupt or exception\n");
	outw(POWEROFF_PORT, ACPI_SLP_EN);
	for (;;)
		__asm__ volatile("hlt");
}

static void set_gate(int vector, void (*handler)(void))
{
	uint64_t address = (uint64_t)(uintptr_t)handler;
	idt[vector].offset_low = (uint16_t)address;
	idt[vector].selector = KERNEL_CS;
	idt[vector].ist = 0;
	idt[vector].type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
	idt[vector].offset_mid = (uint16_t)(address >> 16);
	idt[vector].offset_high = (uint32_t)(address >> 32);
	idt[vector].reserved = 0;
}

static void wait_for_uart_irq(void)
{
	struct idt_pointer pointer = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	for (int v = 0; v < IDT_VECTORS; v++)
		set_gate(v, unexpected_entry);
	set_gate(IRQ_BASE + IRQ_COM1, irq4_entry);
	__asm__ volatile("lidt %0" : : "m"(pointer));
	/* 8259A initialization: edge triggered, cascaded, vectors 0x20-0x2f, 8086 mode. */
	outb(PIC1_CMD, 0x11);
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, IRQ_BASE);
	outb(PIC2_DATA, IRQ_BASE + 8);
	outb(PIC1_DATA, 0x04);
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01);
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, (uint8_t)~(1 << IRQ_COM1));
	outb(PIC2_DATA, 0xff);
	outb(COM1 + UART_MCR, 0x03 | MCR_OUT2);
	outb(COM1 + UART_IER, IER_RDI);
	uart_puts("irq: waiting\n");
	while (!irq_count)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	outb(COM1 + UART_IER, 0);
	uart_puts("irq: vector ");
	put_hex(IRQ_BASE + IRQ_COM1, 2);
	uart_puts(" iir ");
	put_hex(irq_iir, 2);
	uart_puts(" byte ");
	put_hex(irq_byte, 2);
	uart_putc('\n');
}

void kmain(const uint8_t *bp)
{
	uart_init();
	uart_puts("vmkernel: 64-bit entry, boot_params at ");
	put_hex((uint64_t)(uintptr_t)bp, 8);
	uart_puts("\nprotocol: ");
	put_hex(u32_at(bp, BP_VERSION) & 0xffff, 4);
	uart_puts(" loader: ");
	put_hex(u8_at(bp, BP_TYPE_OF_LOADER), 2);
	uart_putc('\n');

	uint64_t cmdline_ptr = u32_at(bp, BP_CMD_LINE_PTR) | (uint64_t)u32_at(bp, BP_EXT_CMD_LINE_PTR) << 32;
	const char *cmdline = (const char *)(uintptr_t)cmdline_ptr;
	uart_puts("cmdline: [");
	if (cmdline) {
		for (int i = 0; i < CMDLINE_MAX && cmdline[i]; i++)
			uart_putc(cmdline[i]);
	}
	uart_puts("]\n");

	unsigned entries = u8_at(bp, BP_E820_ENTRIES);
	if (entries > E820_MAX)
		entries = E820_MAX;
	uart_puts("e820: ");
	put_dec(entries);
	uart_puts(" entries\n");
	for (unsigned i = 0; i < entries; i++) {
		unsigned at = BP_E820_TABLE + i * E820_ENTRY_SIZE;
		uart_puts("e820: ");
		put_hex(u64_at(bp, at), 16);
		uart_putc(' ');
		put_hex(u64_at(bp, at + 8), 16);
		uart_puts(" type ");
		put_dec(u32_at(bp, at + 16));
		uart_putc('\n');
	}

	uint64_t initrd = u32_at(bp, BP_RAMDISK_IMAGE) | (uint64_t)u32_at(bp, BP_EXT_RAMDISK_IMAGE) << 32;
	uint64_t initrd_size = u32_at(bp, BP_RAMDISK_SIZE) | (uint64_t)u32_at(bp, BP_EXT_RAMDISK_SIZE) << 32;
	uart_puts("initrd: ");
	put_hex(initrd, 16);
	uart_puts(" size ");
	put_hex(initrd_size, 16);
	uart_putc('\n');
	if (initrd && initrd_size) {
		const uint8_t *data = (const uint8_t *)(uintptr_t)initrd;
		uint64_t n = initrd_size < INITRD_HEAD ? initrd_size : INITRD_HEAD;
		uart_puts("initrd head:");
		for (uint64_t i = 0; i < n; i++) {
			uart_putc(' ');
			uart_putc("0123456789abcdef"[data[i] >> 4]);
			uart_putc("0123456789abcdef"[data[i] & 0xf]);
		}
		uart_putc('\n');
	}

	if (cmdline && has_word(cmdline, "echo"))
		echo_line();
	if (cmdline && has_word(cmdline, "irq"))
		wait_for_uart_irq();
	uart_puts("vmkernel: powering off\n");
}
