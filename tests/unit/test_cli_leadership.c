/* The CLI's leadership commands (../shared/CLI.md "Operations"): what
 * `operator transfer-leader [-to N]` and `operator step-down` send, and the
 * JSON shape of the answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli_testlib.h"
#include "common/err.h"

/* -to N names the target; without it 0 asks the leader to choose; neither
 * is a write (nothing is proposed, so no idempotency key). -to 0 and -to x
 * are refused before anything is sent. */
static void test_cli_leadership_transfer_builds(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = true;
    assert_int_equal(test_cli_parse(&a, err, 4, "operator", "transfer-leader", "-to", "3"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_TRANSFER_LEADER);
    assert_int_equal(req.transfer_leader->to, 3);
    assert_false(w);
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "transfer-leader"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_int_equal(req.transfer_leader->to, 0);
    assert_int_equal(test_cli_parse(&a, err, 4, "operator", "transfer-leader", "-to", "0"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "-to"));
    assert_int_equal(test_cli_parse(&a, err, 4, "operator", "transfer-leader", "-to", "x"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "step-down"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_STEP_DOWN);
    assert_false(w);
    mf_cli_arena_free(&ar);
}

/* The answers' JSON: {"leader_id": N} and {}. */
static void test_cli_leadership_json(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    Mayfly__Api__TransferLeaderResponse tl = MAYFLY__API__TRANSFER_LEADER_RESPONSE__INIT;
    tl.leader_id = 2;
    Mayfly__Api__Response r = MAYFLY__API__RESPONSE__INIT;
    r.result_case = MAYFLY__API__RESPONSE__RESULT_TRANSFER_LEADER;
    r.transfer_leader = &tl;
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "transfer-leader"), 0);
    json_t *doc = mf_cli_render_json(&a, &r);
    assert_non_null(doc);
    char *s = json_dumps(doc, JSON_COMPACT);
    assert_string_equal(s, "{\"leader_id\":2}");
    free(s);
    json_decref(doc);
    Mayfly__Api__Empty e = MAYFLY__API__EMPTY__INIT;
    Mayfly__Api__Response r2 = MAYFLY__API__RESPONSE__INIT;
    r2.result_case = MAYFLY__API__RESPONSE__RESULT_EMPTY;
    r2.empty = &e;
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "step-down"), 0);
    doc = mf_cli_render_json(&a, &r2);
    assert_non_null(doc);
    s = json_dumps(doc, JSON_COMPACT);
    assert_string_equal(s, "{}");
    free(s);
    json_decref(doc);
}

int main(void)
{
    unsetenv("MAYFLY_ADDR");
    unsetenv("MAYFLY_TOKEN");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_leadership_transfer_builds),
        cmocka_unit_test(test_cli_leadership_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
