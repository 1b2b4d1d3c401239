/* The CLI's `operator members add / promote / remove` (../shared/CLI.md
 * "Operations"): what they send, -addr after `members add` as the new
 * member's peer address (the servers come from an -addr before it), and
 * the refusals of missing or malformed arguments. */
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

static int build(struct mf_cli_args *a, struct mf_cli_arena *ar, Mayfly__Api__Request *req,
                 char *err)
{
    bool w;
    return mf_cli_build(a, ar, stdin, req, &w, err, MF_CLI_ERR_LEN);
}

/* Every field of add; -addr before the command is the server's. */
static void test_cli_members_change_add(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    assert_int_equal(test_cli_parse(&a, err, 14, "-addr", "127.0.0.1:8200", "operator", "members",
                                    "add", "-id", "4", "-addr", "10.0.0.4:7000", "-api-addr",
                                    "10.0.0.4:8200", "-zone", "b", "-force"),
                     0);
    assert_string_equal(a.g.addr, "127.0.0.1:8200");
    assert_int_equal(build(&a, &ar, &req, err), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_MEMBERS_ADD);
    assert_int_equal(req.members_add->id, 4);
    assert_string_equal(req.members_add->addr, "10.0.0.4:7000");
    assert_string_equal(req.members_add->api_addr, "10.0.0.4:8200");
    assert_string_equal(req.members_add->zone, "b");
    assert_true(req.members_add->force);
    mf_cli_arena_free(&ar);
    /* No zone, no -force. */
    assert_int_equal(test_cli_parse(&a, err, 9, "operator", "members", "add", "-id=5",
                                    "-addr=h:1", "-api-addr", "h:2", "-format", "json"),
                     0);
    assert_int_equal(build(&a, &ar, &req, err), 0);
    assert_string_equal(req.members_add->zone, "");
    assert_false(req.members_add->force);
    mf_cli_arena_free(&ar);
}

/* add without -id, -addr or -api-addr, or with a bad id: refused with the flag named. */
static void test_cli_members_change_add_refused(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    assert_int_equal(test_cli_parse(&a, err, 7, "operator", "members", "add", "-addr", "h:1",
                                    "-api-addr", "h:2"),
                     0);
    assert_int_equal(build(&a, &ar, &req, err), MF_EINVAL);
    assert_non_null(strstr(err, "-id"));
    assert_int_equal(test_cli_parse(&a, err, 7, "operator", "members", "add", "-id", "3",
                                    "-api-addr", "h:2"),
                     0);
    assert_int_equal(build(&a, &ar, &req, err), MF_EINVAL);
    assert_non_null(strstr(err, "-addr"));
    assert_int_equal(test_cli_parse(&a, err, 7, "operator", "members", "add", "-id", "3",
                                    "-addr", "h:1"),
                     0);
    assert_int_equal(build(&a, &ar, &req, err), MF_EINVAL);
    assert_non_null(strstr(err, "-api-addr"));
    assert_int_equal(test_cli_parse(&a, err, 9, "operator", "members", "add", "-id", "x",
                                    "-addr", "h:1", "-api-addr", "h:2"),
                     0);
    assert_int_equal(build(&a, &ar, &req, err), MF_EINVAL);
    /* A positional argument does not apply. */
    assert_int_not_equal(test_cli_parse(&a, err, 4, "operator", "members", "add", "4"), 0);
    mf_cli_arena_free(&ar);
}

/* promote and remove take N and -force; -zone does not apply; N must be a node id. */
static void test_cli_members_change_promote_remove(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    assert_int_equal(test_cli_parse(&a, err, 4, "operator", "members", "promote", "4"), 0);
    assert_int_equal(build(&a, &ar, &req, err), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_MEMBERS_PROMOTE);
    assert_int_equal(req.members_promote->id, 4);
    assert_false(req.members_promote->force);
    assert_int_equal(test_cli_parse(&a, err, 5, "operator", "members", "remove", "-force", "3"),
                     0);
    assert_int_equal(build(&a, &ar, &req, err), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_MEMBERS_REMOVE);
    assert_int_equal(req.members_remove->id, 3);
    assert_true(req.members_remove->force);
    assert_int_equal(test_cli_parse(&a, err, 4, "operator", "members", "remove", "0"), 0);
    assert_int_equal(build(&a, &ar, &req, err), MF_EINVAL);
    assert_int_not_equal(test_cli_parse(&a, err, 3, "operator", "members", "remove"), 0);
    assert_int_not_equal(
        test_cli_parse(&a, err, 6, "operator", "members", "promote", "-zone", "a", "4"), 0);
    /* -addr after promote stays the servers' address. */
    assert_int_equal(
        test_cli_parse(&a, err, 6, "operator", "members", "promote", "-addr", "s:1", "4"), 0);
    assert_string_equal(a.g.addr, "s:1");
    mf_cli_arena_free(&ar);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_members_change_add),
        cmocka_unit_test(test_cli_members_change_add_refused),
        cmocka_unit_test(test_cli_members_change_promote_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
