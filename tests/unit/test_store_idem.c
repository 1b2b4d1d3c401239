/* Idempotency entries belong to their caller: a request id reused with
 * another body is refused, one caller's flood evicts only its own oldest
 * entries, and expiry gives the caller's count back. Each test uses a fresh
 * store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"
#include "store/idempotency.h"

#define T0 1700000000000ULL /* a command time, ms */

/* A command from `caller` (a byte naming a 32-byte hash) with request id
 * `rid` and body fingerprint `fp` (a byte): a renew of lease `seq`, which
 * is refused NOT_FOUND when there is no such lease and kept all the same. */
static int renew_as(struct tf *t, uint64_t now, uint8_t caller, const char *rid, uint8_t fp,
                    uint64_t seq)
{
    uint8_t ch[32], fh[32];
    memset(ch, caller, sizeof(ch));
    memset(fh, fp, sizeof(fh));
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseRenew m = MAYFLY__CMD__LEASE_RENEW__INIT;
    m.seq = seq;
    m.increment_ms = 1000;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_RENEW;
    c.lease_renew = &m;
    c.idem_caller.data = ch;
    c.idem_caller.len = sizeof(ch);
    c.request_fingerprint.data = fh;
    c.request_fingerprint.len = sizeof(fh);
    t->rid = rid;
    return tf_cmd(t, &c, now);
}

static uint64_t caller_count(struct tf *t, uint8_t caller)
{
    uint8_t ch[32];
    memset(ch, caller, sizeof(ch));
    MDB_txn *txn;
    uint64_t n = 0;
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    assert_int_equal(mf_idem_caller_count(txn, tf_st(t), ch, &n), 0);
    mf_state_read_end(txn);
    return n;
}

static int remembered(struct tf *t, const char *rid, uint8_t fp, uint64_t now)
{
    uint8_t fh[32];
    memset(fh, fp, sizeof(fh));
    MDB_txn *txn;
    Mayfly__Cmd__Result *res = NULL;
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    int rc = mf_idem_get(txn, tf_st(t), (const uint8_t *)rid, strlen(rid), fh, sizeof(fh), now,
                         &res);
    mf_state_read_end(txn);
    mf_fsm_result_free(res);
    return rc;
}

/* The same request id with another body is refused INVALID_ARGUMENT and
 * leaves the first entry as it was: a retry with the first body is still a
 * duplicate, and the read side refuses the other body too. */
static void test_store_idem_other_body_refused(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 60000, 120000), 0);
    assert_int_equal(renew_as(&t, T0, 7, "rid-a", 0x11, 1), 0);
    assert_false(t.last->duplicate);
    assert_int_equal(renew_as(&t, T0 + 1, 7, "rid-a", 0x22, 1), MF_EINVAL);
    assert_string_equal(t.last->error, "request id reused with a different request");
    assert_false(t.last->duplicate);
    assert_int_equal(renew_as(&t, T0 + 2, 7, "rid-a", 0x11, 1), 0);
    assert_true(t.last->duplicate);
    assert_int_equal(remembered(&t, "rid-a", 0x11, T0 + 3), 0);
    assert_int_equal(remembered(&t, "rid-a", 0x22, T0 + 3), MF_EINVAL);
    assert_int_equal(caller_count(&t, 7), 1);
    tf_close(&t);
}

/* One caller storing past MF_IDEM_PER_CALLER_MAX entries loses its own
 * oldest ones; another caller's entry, older than all of them, stays. */
static void test_store_idem_caller_cap(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(renew_as(&t, T0, 2, "victim", 0x33, 99), MF_ENOTFOUND);
    char rid[32];
    for (int i = 0; i < MF_IDEM_PER_CALLER_MAX + 5; i++) {
        snprintf(rid, sizeof(rid), "flood-%06d", i);
        assert_int_equal(renew_as(&t, T0 + 1 + (uint64_t)i, 1, rid, 0x44, 99), MF_ENOTFOUND);
    }
    uint64_t now = T0 + MF_IDEM_PER_CALLER_MAX + 10;
    assert_int_equal(caller_count(&t, 1), MF_IDEM_PER_CALLER_MAX);
    assert_int_equal(caller_count(&t, 2), 1);
    assert_int_equal(remembered(&t, "victim", 0x33, now), 0);
    assert_int_equal(remembered(&t, "flood-000000", 0x44, now), MF_ENOTFOUND);
    assert_int_equal(remembered(&t, "flood-000004", 0x44, now), MF_ENOTFOUND);
    assert_int_equal(remembered(&t, "flood-000005", 0x44, now), 0);
    snprintf(rid, sizeof(rid), "flood-%06d", MF_IDEM_PER_CALLER_MAX + 4);
    assert_int_equal(remembered(&t, rid, 0x44, now), 0);
    MDB_txn *txn;
    uint64_t total;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_idem_count(txn, tf_st(&t), &total), 0);
    mf_state_read_end(txn);
    assert_int_equal(total, MF_IDEM_PER_CALLER_MAX + 1);
    tf_close(&t);
}

/* Expired entries pruned give their caller's count back (to none), and a
 * retry of a forgotten id applies again under the same caller. */
static void test_store_idem_expiry_uncounts(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(renew_as(&t, T0, 3, "x1", 0x55, 99), MF_ENOTFOUND);
    assert_int_equal(renew_as(&t, T0, 3, "x2", 0x55, 99), MF_ENOTFOUND);
    assert_int_equal(caller_count(&t, 3), 2);
    uint64_t later = T0 + MF_IDEM_TTL_MS + 1;
    assert_int_equal(tf_grant(&t, later, 1, 60000, 120000), 0); /* prunes both */
    assert_int_equal(caller_count(&t, 3), 0);
    assert_int_equal(renew_as(&t, later, 3, "x1", 0x66, 1), 0);
    assert_false(t.last->duplicate);
    assert_int_equal(caller_count(&t, 3), 1);
    tf_close(&t);
}

/* A caller that is not 32 bytes is refused: the fsm never counts garbage. */
static void test_store_idem_malformed_caller(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseRenew m = MAYFLY__CMD__LEASE_RENEW__INIT;
    m.seq = 1;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_RENEW;
    c.lease_renew = &m;
    c.idem_caller.data = (uint8_t *)"short";
    c.idem_caller.len = 5;
    t.rid = "r";
    assert_int_equal(tf_cmd(&t, &c, T0), MF_EINVAL);
    tf_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_idem_other_body_refused),
        cmocka_unit_test(test_store_idem_caller_cap),
        cmocka_unit_test(test_store_idem_expiry_uncounts),
        cmocka_unit_test(test_store_idem_malformed_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
