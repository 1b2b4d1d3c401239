/* The lease read side: lease ids, listing by prefix and state with a cursor,
 * due leases in pages, and the expiry index through grant/renew/revoke. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"

#define T0 1700000000000ULL

/* Lease ids print SEQ as 13 base32 characters in number order and parse
 * back. */
static void test_store_leases_id_format_parse(void **s)
{
    (void)s;
    char a[MF_LEASE_ID_MAX], b[MF_LEASE_ID_MAX];
    assert_int_equal(mf_lease_id_format(a, sizeof(a), "db", "ro", 1), 19);
    assert_string_equal(a, "db/ro/0000000000001");
    assert_true(mf_lease_id_format(b, sizeof(b), "db", "ro", 32) > 0);
    assert_true(strcmp(a, b) < 0);
    assert_true(mf_lease_id_format(b, sizeof(b), "db", "ro", UINT64_MAX) > 0);
    size_t plen;
    uint64_t seq;
    assert_int_equal(mf_lease_id_parse(b, &plen, &seq), 0);
    assert_int_equal(seq, UINT64_MAX);
    assert_int_equal(plen, 6);
    assert_int_equal(mf_lease_id_parse("db/ro/000000000000!", &plen, &seq), MF_EINVAL);
    assert_int_equal(mf_lease_id_parse("short", &plen, &seq), MF_EINVAL);
    assert_int_equal(mf_lease_id_parse("db/ro/g000000000000", &plen, &seq), MF_EINVAL);
    char tiny[8];
    assert_int_equal(mf_lease_id_format(tiny, sizeof(tiny), "db", "ro", 1), MF_ETOOLARGE);
}

/* Listing pages through a prefix with a cursor, and filters by state. */
static void test_store_leases_list_prefix_state_cursor(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    for (uint64_t i = 1; i <= 30; i++)
        assert_int_equal(tf_grant_full(&t, T0, i, i % 3 ? "db" : "pki", i % 2 ? "ro" : "rw",
                                       1000, 0, LSTATE(ACTIVE), 0),
                         0);
    for (uint64_t i = 1; i <= 30; i += 5)
        assert_int_equal(tf_revoke(&t, T0, i), 0);
    MDB_txn *txn;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    struct mf_lease_item *items;
    size_t n, total = 0;
    int more = 1;
    char after[MF_LEASE_ID_MAX] = "";
    uint64_t last = 0;
    while (more) {
        assert_int_equal(mf_lease_list(txn, tf_st(&t), "db/ro/", 0, total ? after : NULL, 4,
                                       &items, &n, &more),
                         0);
        for (size_t i = 0; i < n; i++) {
            assert_true(items[i].seq > last);
            last = items[i].seq;
            assert_true(items[i].seq % 2 == 1 && items[i].seq % 3 != 0);
            assert_true(strncmp(items[i].id, "db/ro/", 6) == 0);
        }
        if (n)
            snprintf(after, sizeof(after), "%s", items[n - 1].id);
        total += n;
        mf_lease_list_free(items, n);
    }
    assert_int_equal(total, 10); /* odd, not a multiple of 3, <= 30 */
    assert_int_equal(mf_lease_list(txn, tf_st(&t), "", LSTATE(REVOKING), NULL, 100, &items, &n,
                                   &more),
                     0);
    assert_int_equal(n, 6);
    assert_int_equal(more, 0);
    mf_lease_list_free(items, n);
    assert_int_equal(mf_lease_list(txn, tf_st(&t), "db/", LSTATE(ACTIVE), NULL, 100, &items, &n,
                                   &more),
                     0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(items[i].rec->state, LSTATE(ACTIVE));
    mf_lease_list_free(items, n);
    assert_int_equal(mf_lease_list(txn, tf_st(&t), "zzz", 0, NULL, 10, &items, &n, &more), 0);
    assert_int_equal(n, 0);
    mf_lease_list_free(items, n);
    mf_state_read_end(txn);
    tf_close(&t);
}

/* "All due by T" pages through the expiry index in time order. */
static void test_store_leases_due_pages(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    for (uint64_t i = 1; i <= 50; i++)
        assert_int_equal(tf_grant(&t, T0, i, 1000 + (i * 37) % 500, 0), 0);
    MDB_txn *txn;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    uint64_t seqs[8], prev = 0, got = 0, e;
    size_t n;
    struct mf_lease_due_cursor cur, *after = NULL;
    for (;;) {
        assert_int_equal(mf_lease_due(txn, tf_st(&t), T0 + 1250, after, seqs, 8, &n, &cur), 0);
        for (size_t i = 0; i < n; i++) {
            Mayfly__Cmd__LeaseRecord *r;
            assert_int_equal(mf_lease_get(txn, tf_st(&t), seqs[i], &r), 0);
            e = r->expire_at_ms;
            assert_true(e <= T0 + 1250 && e >= prev);
            prev = e;
            mf_lease_free(r);
        }
        got += n;
        if (n < 8)
            break;
        after = &cur;
    }
    mf_state_read_end(txn);
    uint64_t want = 0;
    for (uint64_t i = 1; i <= 50; i++)
        want += 1000 + (i * 37) % 500 <= 1250;
    assert_int_equal(got, want);
    tf_close(&t);
}

/* Next due follows grants, renewals and revocations of the first lease. */
static void test_store_leases_next_due_moves(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    uint64_t e, q;
    assert_int_equal(tf_next_due(&t, &e, &q), MF_ENOTFOUND);
    assert_int_equal(tf_grant(&t, T0, 1, 5000, 60000), 0);
    assert_int_equal(tf_grant(&t, T0, 2, 3000, 60000), 0);
    assert_int_equal(tf_grant(&t, T0, 3, 4000, 60000), 0);
    assert_int_equal(tf_next_due(&t, &e, &q), 0);
    assert_int_equal(q, 2);
    assert_int_equal(tf_renew(&t, T0 + 10, 2, 10000), 0);
    assert_int_equal(tf_next_due(&t, &e, &q), 0);
    assert_int_equal(q, 3);
    assert_int_equal(tf_revoke(&t, T0 + 20, 3), 0);
    assert_int_equal(tf_next_due(&t, &e, &q), 0);
    assert_int_equal(q, 1);
    assert_int_equal(e, T0 + 5000);
    assert_int_equal(tf_force(&t, T0 + 20, 1), 0);
    assert_int_equal(tf_force(&t, T0 + 20, 2), 0);
    assert_int_equal(tf_next_due(&t, &e, &q), MF_ENOTFOUND);
    tf_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_leases_id_format_parse),
        cmocka_unit_test(test_store_leases_list_prefix_state_cursor),
        cmocka_unit_test(test_store_leases_due_pages),
        cmocka_unit_test(test_store_leases_next_due_moves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
