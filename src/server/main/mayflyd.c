/* mayflyd: the server program. Until the server issue lands it only parses
 * its command line and says clearly that serving is not built yet. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("mayflyd 0.0.1\n");
            return 0;
        }
    }
    fprintf(stderr, "mayflyd: not yet: the server (issue 5) has not landed; "
                    "this build has the libraries and tests only\n");
    return 1;
}
