/* abort: calls abort() after flushing output; the process dies of SIGABRT. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    printf("calling abort()\n");
    fflush(stdout);
    fprintf(stderr, "stderr before abort\n");
    abort();
}
