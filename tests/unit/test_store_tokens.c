/* Token rules of the state machine: the expiry index read by the scheduler
 * (mf_token_due), TokenRenew's caps, TokenExpire's revocation of a token with
 * its children and leases, and the maximum TTL a TokenCreate carries. Each
 * test uses a fresh store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"

#define T0 1700000000000ULL /* a command time, ms */

/* The hashes mf_token_due finds at `now` (up to cap) as the tf_hash ids. */
static size_t due_ids(struct tf *t, uint64_t now, int *ids, size_t cap)
{
    uint8_t hashes[16][MF_TOKEN_HASH_LEN];
    size_t n = 0;
    MDB_txn *txn;
    assert_true(cap <= 16);
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    assert_int_equal(mf_token_due(txn, tf_st(t), now, hashes, cap, &n), 0);
    mf_state_read_end(txn);
    for (size_t i = 0; i < n; i++)
        ids[i] = hashes[i][0];
    return n;
}

/* Tokens due by now come out earliest first, at most cap of them; tokens
 * not yet due and tokens without expiry never do. */
static void test_store_tokens_due_earliest_first(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token(&t, T0, 1, "a1", 0, 3000), 0);
    assert_int_equal(tf_token(&t, T0, 2, "a2", 0, 1000), 0);
    assert_int_equal(tf_token(&t, T0, 3, "a3", 0, 0), 0);
    assert_int_equal(tf_token(&t, T0, 4, "a4", 0, 2000), 0);
    int ids[16];
    assert_int_equal(due_ids(&t, T0 + 999, ids, 16), 0);
    assert_int_equal(due_ids(&t, T0 + 2000, ids, 16), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 4);
    assert_int_equal(due_ids(&t, T0 + 2000, ids, 1), 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(due_ids(&t, UINT64_MAX, ids, 16), 3); /* token 3 never */
    tf_close(&t);
}

/* A TokenCreate's TTL is capped by its max_ttl, and the record keeps the
 * maximum and whether the token carries `default`. */
static void test_store_tokens_create_keeps_max_and_default(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token_max(&t, T0, 1, "a1", 0, 10000, 5000, 1), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 5000);
    Mayfly__Cmd__TokenRecord *r = tf_token_get(&t, 1);
    assert_non_null(r);
    assert_int_equal(r->max_ttl_ms, 5000);
    assert_int_equal(r->ttl_ms, 5000);
    assert_true(r->no_default_policy);
    mf_token_free(r);
    assert_int_equal(tf_token_max(&t, T0, 2, "a2", 0, 1000, 5000, 0), 0);
    r = tf_token_get(&t, 2);
    assert_false(r->no_default_policy);
    mf_token_free(r);
    tf_close(&t);
}

/* Renew moves the expiry to now + increment (0: the token's TTL), never past
 * issued + max_ttl, and moves the token in the expiry index. */
static void test_store_tokens_renew_within_max(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token_max(&t, T0, 1, "a1", 0, 1000, 5000, 0), 0);
    assert_int_equal(tf_token_renew(&t, T0 + 500, 1, 0), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 1500);
    assert_int_equal(t.last->ttl_ms, 1000);
    assert_int_equal(tf_token_renew(&t, T0 + 600, 1, 60000), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 5000);
    assert_int_equal(t.last->ttl_ms, 4400);
    int ids[16];
    assert_int_equal(due_ids(&t, T0 + 4999, ids, 16), 0); /* the old entry is gone */
    assert_int_equal(due_ids(&t, T0 + 5000, ids, 16), 1);
    Mayfly__Cmd__TokenRecord *r = tf_token_get(&t, 1);
    assert_int_equal(r->expire_at_ms, T0 + 5000);
    mf_token_free(r);
    tf_close(&t);
}

/* A child's renewal never takes it past its parent's expiry. */
static void test_store_tokens_renew_capped_by_parent(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token(&t, T0, 1, "parent", 0, 3000), 0);
    assert_int_equal(tf_token(&t, T0, 2, "child", 1, 1000), 0);
    assert_int_equal(tf_token_renew(&t, T0 + 100, 2, 60000), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 3000);
    /* The parent renewed: the child may follow it. */
    assert_int_equal(tf_token_renew(&t, T0 + 200, 1, 10000), 0);
    assert_int_equal(tf_token_renew(&t, T0 + 300, 2, 5000), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 5300);
    tf_close(&t);
}

/* An expired token cannot renew (UNAUTHENTICATED, nothing changes); a token
 * without expiry renews and stays without expiry; an unknown one is not found. */
static void test_store_tokens_renew_refusals(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token(&t, T0, 1, "a1", 0, 1000), 0);
    assert_int_equal(tf_token_renew(&t, T0 + 1000, 1, 5000), MF_EUNAUTH);
    Mayfly__Cmd__TokenRecord *r = tf_token_get(&t, 1);
    assert_int_equal(r->expire_at_ms, T0 + 1000);
    mf_token_free(r);
    assert_int_equal(tf_token(&t, T0, 2, "root", 0, 0), 0);
    assert_int_equal(tf_token_renew(&t, T0 + 5, 2, 5000), 0);
    assert_int_equal(t.last->expire_at_ms, 0);
    r = tf_token_get(&t, 2);
    assert_int_equal(r->expire_at_ms, 0);
    mf_token_free(r);
    assert_int_equal(tf_token_renew(&t, T0 + 5, 9, 5000), MF_ENOTFOUND);
    tf_close(&t);
}

/* TokenExpire revokes a due token with its child and the leases both own
 * (to revoking), and leaves the expiry index empty. */
static void test_store_tokens_expire_revokes_tree_and_leases(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token(&t, T0, 1, "parent", 0, 1000), 0);
    assert_int_equal(tf_token(&t, T0, 2, "child", 1, 0), 0);
    assert_int_equal(tf_token(&t, T0, 3, "other", 0, 60000), 0);
    assert_int_equal(tf_grant_full(&t, T0, 10, "lease", "a", 60000, 0, LSTATE(ACTIVE), 1), 0);
    assert_int_equal(tf_grant_full(&t, T0, 11, "lease", "b", 60000, 0, LSTATE(ACTIVE), 2), 0);
    assert_int_equal(tf_grant_full(&t, T0, 12, "lease", "c", 60000, 0, LSTATE(ACTIVE), 3), 0);
    int ids[16];
    assert_int_equal(due_ids(&t, T0 + 1000, ids, 16), 2); /* the child has the parent's expiry */
    int batch[] = {ids[0], ids[1]};
    assert_int_equal(tf_token_expire(&t, T0 + 1000, batch, 2), 0);
    assert_int_equal(t.last->count, 2);
    assert_int_equal(t.last->leases, 2);
    assert_null(tf_token_get(&t, 1));
    assert_null(tf_token_get(&t, 2));
    Mayfly__Cmd__TokenRecord *r = tf_token_get(&t, 3);
    assert_non_null(r);
    mf_token_free(r);
    assert_int_equal(tf_lease_state(&t, 10, NULL), LSTATE(REVOKING));
    assert_int_equal(tf_lease_state(&t, 11, NULL), LSTATE(REVOKING));
    assert_int_equal(tf_lease_state(&t, 12, NULL), LSTATE(ACTIVE));
    assert_int_equal(due_ids(&t, T0 + 59999, ids, 16), 0);
    tf_close(&t);
}

/* A token renewed after the scheduler read the index is not expired by its
 * TokenExpire (judged at the command's now); a missing one is skipped. */
static void test_store_tokens_expire_skips_renewed(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token(&t, T0, 1, "a1", 0, 1000), 0);
    assert_int_equal(tf_token_renew(&t, T0 + 900, 1, 1000), 0);
    int batch[] = {1, 7};
    assert_int_equal(tf_token_expire(&t, T0 + 1000, batch, 2), 0);
    assert_int_equal(t.last->count, 0);
    Mayfly__Cmd__TokenRecord *r = tf_token_get(&t, 1);
    assert_non_null(r);
    mf_token_free(r);
    assert_int_equal(tf_token_expire(&t, T0 + 1900, batch, 1), 0);
    assert_int_equal(t.last->count, 1);
    assert_null(tf_token_get(&t, 1));
    tf_close(&t);
}

/* The pure renew rule: increment or TTL, capped by max and parent; nothing
 * to bound it answers UINT64_MAX. */
static void test_store_tokens_renew_rule(void **s)
{
    (void)s;
    assert_int_equal(mf_token_renew_expire_at(100, 0, 50, 0, 0, 0), 150);
    assert_int_equal(mf_token_renew_expire_at(100, 30, 50, 0, 0, 0), 130);
    assert_int_equal(mf_token_renew_expire_at(100, 500, 50, 10, 200, 0), 210);
    assert_int_equal(mf_token_renew_expire_at(100, 500, 50, 10, 200, 180), 180);
    assert_int_equal(mf_token_renew_expire_at(100, 0, 0, 10, 0, 0), UINT64_MAX);
    assert_int_equal(mf_token_renew_expire_at(100, 0, 0, 10, 0, 400), 400);
    assert_int_equal(mf_token_renew_expire_at(UINT64_MAX - 5, 50, 0, 0, 0, 0), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_tokens_due_earliest_first),
        cmocka_unit_test(test_store_tokens_create_keeps_max_and_default),
        cmocka_unit_test(test_store_tokens_renew_within_max),
        cmocka_unit_test(test_store_tokens_renew_capped_by_parent),
        cmocka_unit_test(test_store_tokens_renew_refusals),
        cmocka_unit_test(test_store_tokens_expire_revokes_tree_and_leases),
        cmocka_unit_test(test_store_tokens_expire_skips_renewed),
        cmocka_unit_test(test_store_tokens_renew_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
