/* The CLI unit tests' one helper: parse a command line as `mayfly ARGS...`.
 * Header-only, like tmpdir.h (tests/unit is on the include path). */
#ifndef MF_TESTS_CLI_TESTLIB_H
#define MF_TESTS_CLI_TESTLIB_H

#include <stdarg.h>

#include "cli/cli.h"

/* mf_cli_parse of "mayfly" followed by the argc strings given; err gets
 * MF_CLI_ERR_LEN bytes. At most 39 arguments. */
static inline int test_cli_parse(struct mf_cli_args *a, char *err, int argc, ...)
{
    char *argv[40] = {"mayfly"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 39; i++)
        argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    return mf_cli_parse(argc + 1, argv, a, err, MF_CLI_ERR_LEN);
}

#endif
