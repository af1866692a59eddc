/* The quick-start example: vm run examples/hello-riscv64 [NAME...] */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello from RISC-V!\n");
    for (int i = 1; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    double x = 1.0;
    for (int i = 0; i < 10; i++)
        x = x * 1.5 + 0.25;
    printf("a little floating point: %.6f\n", x);
    return argc - 1;
}
