/* hello: stdout and stderr, buffered and unbuffered. */
#include <stdio.h>

int main(void) {
    printf("hello, world\n");
    fprintf(stderr, "to stderr\n");
    puts("goodbye");
    return 0;
}
