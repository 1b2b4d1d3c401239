/* The CLI's `operator snapshot save FILE` and `... restore FILE` (CLI.md
 * "Operations"): one FILE each, run as local commands of many requests; a
 * save that cannot reach a server leaves neither FILE nor FILE.tmp; a restore
 * of an unreadable file fails locally. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli_testlib.h"
#include "common/err.h"
#include "tmpdir.h"

static char *run(int *code, int argc, char **argv)
{
    FILE *out = tmpfile(), *errout = tmpfile();
    *code = mf_cli_main(argc, argv, stdin, out, errout);
    static char text[4096];
    size_t n = 0;
    rewind(out);
    n = fread(text, 1, sizeof(text) - 1, out);
    rewind(errout);
    n += fread(text + n, 1, sizeof(text) - 1 - n, errout);
    text[n] = '\0';
    fclose(out);
    fclose(errout);
    return text;
}

/* Both take exactly one FILE and run locally (not as one request). */
static void test_cli_snapshot_parse(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_not_equal(test_cli_parse(&a, err, 3, "operator", "snapshot", "save"), 0);
    assert_int_not_equal(
        test_cli_parse(&a, err, 5, "operator", "snapshot", "restore", "a", "b"), 0);
    const char *words[][3] = {{"operator", "snapshot", "save"},
                              {"operator", "snapshot", "restore"}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(test_cli_parse(&a, err, 4, words[i][0], words[i][1], words[i][2], "F"),
                         0);
        assert_non_null(a.cmd);
        assert_string_equal(a.cmd->words[2], words[i][2]);
        assert_string_equal(a.pos[0], "F");
        assert_non_null(mf_cli_command_local(a.cmd));
        assert_false(a.cmd->write);
    }
}

/* A save without a reachable server: exit 1 or 2, no FILE, no FILE.tmp. */
static void test_cli_snapshot_save_leaves_nothing(void **state)
{
    (void)state;
    char dir[256], file[300], tmp[320], ca[300];
    assert_int_equal(mf_tmpdir_make("cli-snap", dir, sizeof(dir)), 0);
    snprintf(file, sizeof(file), "%s/backup.mfbak", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    FILE *f = fopen(ca, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    int code;
    char *argv1[] = {"mayfly", "operator", "snapshot", "save", file};
    unsetenv("MAYFLY_ADDR");
    unsetenv("MAYFLY_CACERT");
    char *text = run(&code, 5, argv1);
    assert_int_equal(code, MF_CLI_EXIT_LOCAL);
    assert_non_null(strstr(text, "-addr"));
    char *argv2[] = {"mayfly", "-addr", "127.0.0.1:1", "-ca-cert", ca, "-timeout", "300ms",
                     "operator", "snapshot", "save", file};
    text = run(&code, 11, argv2);
    assert_int_not_equal(code, MF_CLI_EXIT_OK);
    assert_int_not_equal(access(file, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* A restore of a file that is not there fails before any request. */
    char *argv3[] = {"mayfly", "-addr", "127.0.0.1:1", "-ca-cert", ca,
                     "operator", "snapshot", "restore", file};
    text = run(&code, 9, argv3);
    assert_int_equal(code, MF_CLI_EXIT_LOCAL);
    assert_non_null(strstr(text, "cannot read FILE"));
    assert_int_equal(mf_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_snapshot_parse),
        cmocka_unit_test(test_cli_snapshot_save_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
