/* mayfly: the command-line client. Until the server issue lands it only says
 * clearly that it has nothing to talk to yet. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "mayfly: not yet: the client (issue 5) has not landed\n");
    return 1;
}
