/* mayfly: the command-line client (see ../shared/CLI.md). */
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    /* A server that closes mid-write must give an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    return mf_cli_main(argc, argv, stdin, stdout, stderr);
}
