/* Tests of the anchor's JSON form (src/audit/chain.c): what a node commits
 * through Raft reads back as the same anchor, a malformed one is refused, and
 * "ahead" says when a new anchor is worth committing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "audit/chain.h"
#include "common/err.h"

#define FILE_A "0123456789abcdef0123456789abcdef"
#define FILE_B "fedcba9876543210fedcba9876543210"
#define CHAIN_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct mf_audit_anchor anchor(const char *file, uint64_t seq)
{
    struct mf_audit_anchor a;
    memset(&a, 0, sizeof(a));
    strcpy(a.file_id, file);
    a.seq = seq;
    for (size_t i = 0; i < MF_AUDIT_MAC_BYTES; i++)
        a.chain[i] = (uint8_t)(i * 7 + seq);
    return a;
}

static void test_audit_anchor_round_trip(void **state)
{
    (void)state;
    struct mf_audit_anchor a = anchor(FILE_A, 42), b;
    json_t *o = mf_audit_anchor_to_json(&a);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 42);
    assert_string_equal(json_string_value(json_object_get(o, "file")), FILE_A);
    assert_int_equal(strlen(json_string_value(json_object_get(o, "chain"))), 64);
    assert_int_equal(mf_audit_anchor_from_json(o, &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    json_decref(o);
}

static void test_audit_anchor_malformed_refused(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{}",
        "{\"chain\":\"" CHAIN_HEX "\",\"file\":\"" FILE_A "\"}",              /* no seq */
        "{\"chain\":\"" CHAIN_HEX "\",\"file\":\"" FILE_A "\",\"seq\":0}",    /* seq 0 */
        "{\"chain\":\"" CHAIN_HEX "\",\"file\":\"" FILE_A "\",\"seq\":-1}",
        "{\"chain\":\"" CHAIN_HEX "\",\"file\":\"" FILE_A "\",\"seq\":\"3\"}",
        "{\"chain\":\"" CHAIN_HEX "\",\"file\":\"0123\",\"seq\":3}",          /* short id */
        "{\"chain\":\"" CHAIN_HEX "\",\"file\":\"0123456789ABCDEF0123456789ABCDEF\",\"seq\":3}",
        "{\"chain\":\"0011\",\"file\":\"" FILE_A "\",\"seq\":3}",             /* short chain */
        "{\"chain\":\"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
        "\"file\":\"" FILE_A "\",\"seq\":3}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t je;
        json_t *o = json_loads(bad[i], 0, &je);
        assert_non_null(o);
        struct mf_audit_anchor a = anchor(FILE_B, 9), keep = a;
        assert_int_equal(mf_audit_anchor_from_json(o, &a), MF_EINVAL);
        assert_memory_equal(&a, &keep, sizeof(a)); /* untouched on error */
        json_decref(o);
    }
    struct mf_audit_anchor a;
    assert_int_equal(mf_audit_anchor_from_json(NULL, &a), MF_EINVAL);
    json_error_t je;
    json_t *o = json_loads("{\"chain\":\"" CHAIN_HEX "\",\"file\":\"" FILE_A
                           "\",\"seq\":7,\"node\":3}", 0, &je);
    assert_int_equal(mf_audit_anchor_from_json(o, &a), 0); /* other members ignored */
    assert_int_equal(a.seq, 7);
    assert_int_equal(a.chain[0], 0x00);
    assert_int_equal(a.chain[31], 0xff);
    json_decref(o);
}

static void test_audit_anchor_ahead(void **state)
{
    (void)state;
    struct mf_audit_anchor a5 = anchor(FILE_A, 5), a6 = anchor(FILE_A, 6), b1 = anchor(FILE_B, 1);
    assert_true(mf_audit_anchor_ahead(&a6, &a5));
    assert_false(mf_audit_anchor_ahead(&a5, &a6)); /* stale: never moves back */
    assert_false(mf_audit_anchor_ahead(&a5, &a5)); /* committed already */
    assert_true(mf_audit_anchor_ahead(&b1, &a6));  /* a new file after rotation */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_anchor_round_trip),
        cmocka_unit_test(test_audit_anchor_malformed_refused),
        cmocka_unit_test(test_audit_anchor_ahead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
