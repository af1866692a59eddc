/* Arguments, environment and the exit status: exits with the number in argv[1]. */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc %d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d] = '%s'\n", i, argv[i]);
    int envc = 0;
    for (char **e = environ; *e; e++) envc++;
    printf("environment entries %d, LC_ALL=%s\n", envc, getenv("LC_ALL") ? getenv("LC_ALL") : "(unset)");
    fflush(stdout);
    return argc > 1 ? atoi(argv[1]) : 0;
}
