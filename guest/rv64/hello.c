/* hello: the smallest libc program: one line through stdio, exit status 0. */
#include <stdio.h>

int main(void)
{
    printf("Hello, world!\n");
    return 0;
}
