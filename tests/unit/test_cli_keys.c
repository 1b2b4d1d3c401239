/* The CLI's `operator rotate`, `key-status` and `rekey` (../shared/CLI.md
 * "Operations"): what they send and their JSON shapes. */
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
                 bool *w)
{
    char err[MF_CLI_ERR_LEN];
    return mf_cli_build(a, ar, stdin, req, w, err, sizeof(err));
}

/* rotate is a write (an idempotency key), key-status a read; no arguments. */
static void test_cli_keys_rotate_and_status_build(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = false;
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "rotate"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_ROTATE);
    assert_true(w);
    mf_cli_arena_free(&ar);
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "key-status"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_KEY_STATUS);
    assert_false(w);
    mf_cli_arena_free(&ar);
    assert_int_not_equal(test_cli_parse(&a, err, 3, "operator", "rotate", "x"), 0);
}

/* rekey: exactly one of -init -shares N -threshold T, -nonce N SHARE,
 * -cancel; bad N/T refused before sending. */
static void test_cli_keys_rekey_build(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = true;
    assert_int_equal(test_cli_parse(&a, err, 7, "operator", "rekey", "-init", "-shares", "5",
                                    "-threshold", "3"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_REKEY);
    assert_int_equal(req.rekey->mode, MAYFLY__API__REKEY_MODE__REKEY_INIT);
    assert_int_equal(req.rekey->shares, 5);
    assert_int_equal(req.rekey->threshold, 3);
    assert_false(w);
    mf_cli_arena_free(&ar);
    assert_int_equal(test_cli_parse(&a, err, 5, "operator", "rekey", "-nonce", "abc", "mf1-x"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), 0);
    assert_int_equal(req.rekey->mode, MAYFLY__API__REKEY_MODE__REKEY_UPDATE);
    assert_string_equal(req.rekey->nonce, "abc");
    assert_string_equal(req.rekey->share, "mf1-x");
    mf_cli_arena_free(&ar);
    assert_int_equal(test_cli_parse(&a, err, 3, "operator", "rekey", "-cancel"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), 0);
    assert_int_equal(req.rekey->mode, MAYFLY__API__REKEY_MODE__REKEY_CANCEL);
    mf_cli_arena_free(&ar);
    /* Refused: nothing, two modes, a nonce without a share, T > N, N > 255. */
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "rekey"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 4, "operator", "rekey", "-init", "-cancel"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 4, "operator", "rekey", "-nonce", "abc"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 7, "operator", "rekey", "-init", "-shares", "2",
                                    "-threshold", "3"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 7, "operator", "rekey", "-init", "-shares", "256",
                                    "-threshold", "3"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 3, "operator", "rekey", "-init"), 0);
    assert_int_equal(build(&a, &ar, &req, &w), MF_EINVAL); /* no -shares / -threshold */
    mf_cli_arena_free(&ar);
}

/* The JSON shapes: {term}; {term, install_ms, encryptions}; rekey -init
 * {nonce, expire_at_ms, threshold}; an update {progress, threshold} and,
 * the last one, the new shares with their threshold. */
static void test_cli_keys_json(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    Mayfly__Api__Response r;
    mayfly__api__response__init(&r);
    Mayfly__Api__KeyStatusResponse ks = MAYFLY__API__KEY_STATUS_RESPONSE__INIT;
    ks.term = 4, ks.install_ms = 1700000000000, ks.encryptions = 12;
    r.result_case = MAYFLY__API__RESPONSE__RESULT_KEY_STATUS;
    r.key_status = &ks;
    assert_int_equal(test_cli_parse(&a, err, 2, "operator", "key-status"), 0);
    json_t *doc = mf_cli_render_json(&a, &r);
    char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"encryptions\":12,\"install_ms\":1700000000000,\"term\":4}");
    free(text);
    json_decref(doc);

    Mayfly__Api__RekeyResponse rk = MAYFLY__API__REKEY_RESPONSE__INIT;
    rk.nonce = (char *)"n1", rk.expire_at_ms = 5, rk.threshold = 3;
    r.result_case = MAYFLY__API__RESPONSE__RESULT_REKEY;
    r.rekey = &rk;
    assert_int_equal(test_cli_parse(&a, err, 7, "operator", "rekey", "-init", "-shares", "5",
                                    "-threshold", "3"), 0);
    doc = mf_cli_render_json(&a, &r);
    text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"expire_at_ms\":5,\"nonce\":\"n1\",\"threshold\":3}");
    free(text);
    json_decref(doc);
    char *shares[] = {"s1", "s2"};
    rk.progress = 3, rk.shares = shares, rk.n_shares = 2, rk.new_threshold = 2;
    assert_int_equal(test_cli_parse(&a, err, 5, "operator", "rekey", "-nonce", "n1", "x"), 0);
    doc = mf_cli_render_json(&a, &r);
    text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"new_threshold\":2,\"progress\":3,\"shares\":[\"s1\",\"s2\"],"
                              "\"threshold\":3}");
    free(text);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_keys_rotate_and_status_build),
        cmocka_unit_test(test_cli_keys_rekey_build),
        cmocka_unit_test(test_cli_keys_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
