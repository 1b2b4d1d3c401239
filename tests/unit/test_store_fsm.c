/* The state machine's command rules: leases, quotas, idempotency, tokens,
 * bound KV, bad input, restart. Each test uses a fresh store in /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "store/barrier.h"
#include "common/err.h"
#include "store/idempotency.h"
#include "store/policies.h"

#define T0 1700000000000ULL /* a command time, ms */

/* A grant answers the lease's times and the lease is active and next due. */
static void test_store_fsm_grant_and_lookup(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 60000, 120000), 0);
    assert_int_equal(t.last->seq, 1);
    assert_int_equal(t.last->issued_ms, T0);
    assert_int_equal(t.last->expire_at_ms, T0 + 60000);
    assert_int_equal(t.last->max_expire_at_ms, T0 + 120000);
    uint64_t exp = 0, seq = 0;
    assert_int_equal(tf_lease_state(&t, 1, &exp), LSTATE(ACTIVE));
    assert_int_equal(exp, T0 + 60000);
    assert_int_equal(tf_next_due(&t, &exp, &seq), 0);
    assert_int_equal(seq, 1);
    MDB_txn *txn;
    uint64_t live;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_state_live_leases(txn, tf_st(&t), &live), 0);
    mf_state_read_end(txn);
    assert_int_equal(live, 1);
    assert_int_equal(mf_fsm_applied(t.fsm), 1);
    tf_close(&t);
}

/* Invalid grants are refused with a clear error and change nothing. */
static void test_store_fsm_grant_refuses_bad_input(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    uint8_t d0[32], d1[32];
    tf_digest(&t, 1, d0);
    assert_int_equal(tf_grant(&t, T0, 1, 0, 0), MF_EINVAL);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 500), MF_EINVAL);
    assert_int_equal(tf_grant(&t, T0, 0, 1000, 0), MF_EINVAL);
    assert_int_equal(tf_grant_full(&t, T0, 1, "a/b", "x", 1000, 0, LSTATE(ACTIVE), 0), MF_EINVAL);
    assert_int_equal(tf_grant_full(&t, T0, 1, "m", "x", 1000, 0, LSTATE(REVOKED), 0), MF_EINVAL);
    /* An owner token that does not exist (revoked meanwhile). */
    assert_int_equal(tf_grant_full(&t, T0, 1, "m", "x", 1000, 0, LSTATE(ACTIVE), 7), MF_EUNAUTH);
    assert_non_null(strstr(t.last->error, "owner token"));
    tf_digest(&t, 1, d1);
    assert_memory_equal(d0, d1, 32);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 0), 0);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 0), MF_EEXISTS);
    tf_close(&t);
}

/* issuing -> active with a credential; activation only from issuing and
 * before the issuing deadline. */
static void test_store_fsm_activate_rules(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant_full(&t, T0, 1, "db", "ro", 5000, 60000, LSTATE(ISSUING), 0), 0);
    assert_int_equal(tf_lease_state(&t, 1, NULL), LSTATE(ISSUING));
    assert_int_equal(tf_renew(&t, T0 + 1, 1, 1000), MF_ELEASENOTACTIVE);
    assert_int_equal(tf_activate(&t, T0 + 10, 1, "CIPHERTEXT", 30000), 0);
    uint64_t exp;
    assert_int_equal(tf_lease_state(&t, 1, &exp), LSTATE(ACTIVE));
    assert_int_equal(exp, T0 + 10 + 30000);
    assert_int_equal(tf_activate(&t, T0 + 20, 1, "X", 0), MF_ELEASENOTACTIVE);
    assert_int_equal(tf_activate(&t, T0, 99, "X", 0), MF_ENOTFOUND);
    assert_int_equal(tf_grant_full(&t, T0, 2, "db", "ro", 5000, 0, LSTATE(ISSUING), 0), 0);
    assert_int_equal(tf_activate(&t, T0 + 6000, 2, "X", 0), MF_ELEASEEXPIRED);
    MDB_txn *txn;
    Mayfly__Cmd__LeaseRecord *rec;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_lease_get(txn, tf_st(&t), 1, &rec), 0);
    assert_int_equal(rec->credential.len, 10);
    assert_memory_equal(rec->credential.data, "CIPHERTEXT", 10);
    mf_lease_free(rec);
    mf_state_read_end(txn);
    tf_close(&t);
}

/* Renewals extend an active lease up to its max TTL, never beyond, and never
 * revive an expired one. */
static void test_store_fsm_renew_capped_by_max_ttl(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 3000), 0);
    assert_int_equal(tf_renew(&t, T0 + 500, 1, 1000), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 1500);
    assert_int_equal(tf_renew(&t, T0 + 1000, 1, 10000), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 3000);
    assert_int_equal(t.last->ttl_ms, 2000);
    uint64_t exp, seq;
    assert_int_equal(tf_next_due(&t, &exp, &seq), 0);
    assert_int_equal(exp, T0 + 3000);
    assert_int_equal(tf_renew(&t, T0 + 3000, 1, 1000), MF_ELEASEEXPIRED);
    assert_int_equal(tf_renew(&t, T0, 42, 1000), MF_ENOTFOUND);
    tf_close(&t);
}

/* A renew committed between the scheduler's look at the expiry index and its
 * expire command keeps the lease alive: the expire does nothing. */
static void test_store_fsm_renew_between_look_and_expire_wins(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 60000), 0);
    /* The scheduler looks at T0+1000: lease 1 is due. */
    MDB_txn *txn;
    uint64_t due[4];
    size_t n;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_lease_due(txn, tf_st(&t), T0 + 1000, NULL, due, 4, &n, NULL), 0);
    mf_state_read_end(txn);
    assert_int_equal(n, 1);
    /* A client's renew (proposed at T0+999) commits first. */
    assert_int_equal(tf_renew(&t, T0 + 999, 1, 5000), 0);
    /* Then the scheduler's expire commits. */
    assert_int_equal(tf_expire(&t, T0 + 1001, due, n), 0);
    assert_int_equal(t.last->count, 0);
    uint64_t exp, seq;
    assert_int_equal(tf_lease_state(&t, 1, &exp), LSTATE(ACTIVE));
    assert_int_equal(exp, T0 + 5999);
    assert_int_equal(tf_next_due(&t, &exp, &seq), 0);
    assert_int_equal(exp, T0 + 5999);
    /* Without a renewal the expire applies. */
    assert_int_equal(tf_expire(&t, T0 + 6000, due, n), 0);
    assert_int_equal(t.last->count, 1);
    assert_int_equal(tf_lease_state(&t, 1, NULL), LSTATE(REVOKING));
    tf_close(&t);
}

/* expire -> revoking (in the revoking set, out of the expiry index) ->
 * revoked -> tidied after retention. */
static void test_store_fsm_expire_revoked_tidy(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    for (uint64_t i = 1; i <= 3; i++)
        assert_int_equal(tf_grant(&t, T0, i, 1000 * i, 0), 0);
    uint64_t seqs[3] = {1, 2, 3};
    assert_int_equal(tf_expire(&t, T0 + 2000, seqs, 3), 0);
    assert_int_equal(t.last->count, 2);
    MDB_txn *txn;
    uint64_t rs[8];
    size_t n;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_lease_revoking(txn, tf_st(&t), "", 0, rs, 8, &n), 0);
    mf_state_read_end(txn);
    assert_int_equal(n, 2);
    assert_int_equal(rs[0], 1);
    assert_int_equal(rs[1], 2);
    uint64_t exp, seq;
    assert_int_equal(tf_next_due(&t, &exp, &seq), 0);
    assert_int_equal(seq, 3);
    assert_int_equal(tf_revoked(&t, T0 + 2100, seqs, 3), 0);
    assert_int_equal(t.last->count, 2); /* 3 was not revoking */
    assert_int_equal(tf_lease_state(&t, 1, NULL), LSTATE(REVOKED));
    assert_int_equal(tf_lease_state(&t, 3, NULL), LSTATE(ACTIVE));
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_lease_revoking(txn, tf_st(&t), "", 0, rs, 8, &n), 0);
    uint64_t live;
    assert_int_equal(mf_state_live_leases(txn, tf_st(&t), &live), 0);
    mf_state_read_end(txn);
    assert_int_equal(n, 0);
    assert_int_equal(live, 1);
    /* Retention not passed: kept for lookups. */
    assert_int_equal(tf_tidy(&t, T0 + 5000, 86400000, 0), 0);
    assert_int_equal(t.last->count, 0);
    assert_int_equal(tf_tidy(&t, T0 + 2100 + 86400000, 86400000, 1), 0);
    assert_int_equal(t.last->count, 1);
    assert_int_equal(tf_tidy(&t, T0 + 2100 + 86400000, 86400000, 0), 0);
    assert_int_equal(t.last->count, 1);
    assert_int_equal(tf_lease_state(&t, 1, NULL), 0);
    assert_int_equal(tf_lease_state(&t, 2, NULL), 0);
    tf_close(&t);
}

/* A revoking lease becomes irrevocable with its (encrypted) last error;
 * force-revoke moves it to revoked. Revoke is idempotent. */
static void test_store_fsm_irrevocable_and_force_revoke(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 0), 0);
    assert_int_equal(tf_irrevocable(&t, T0, 1, "ERR"), MF_ELEASENOTACTIVE);
    assert_int_equal(tf_revoke(&t, T0 + 1, 1), 0);
    assert_int_equal(t.last->count, 1);
    assert_int_equal(tf_revoke(&t, T0 + 2, 1), 0);
    assert_int_equal(t.last->count, 0);
    assert_int_equal(tf_irrevocable(&t, T0 + 3, 1, "ENCRYPTED-ERROR"), 0);
    MDB_txn *txn;
    Mayfly__Cmd__LeaseRecord *rec;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_lease_get(txn, tf_st(&t), 1, &rec), 0);
    assert_int_equal(rec->state, LSTATE(IRREVOCABLE));
    assert_int_equal(rec->last_error.len, 15);
    mf_lease_free(rec);
    mf_state_read_end(txn);
    assert_int_equal(tf_force(&t, T0 + 4, 1), 0);
    assert_int_equal(t.last->count, 1);
    assert_int_equal(tf_lease_state(&t, 1, NULL), LSTATE(REVOKED));
    assert_int_equal(tf_force(&t, T0 + 5, 1), 0);
    assert_int_equal(t.last->count, 0);
    assert_int_equal(tf_revoke(&t, T0 + 5, 77), MF_ENOTFOUND);
    tf_close(&t);
}

/* revoke-prefix moves every issuing/active lease under the prefix, and only
 * those, at most `limit` per command (Result.more asks for another). */
static void test_store_fsm_revoke_prefix(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant_full(&t, T0, 1, "db", "ro", 1000, 0, LSTATE(ACTIVE), 0), 0);
    assert_int_equal(tf_grant_full(&t, T0, 2, "db", "ro", 1000, 0, LSTATE(ISSUING), 0), 0);
    assert_int_equal(tf_grant_full(&t, T0, 3, "db", "rw", 1000, 0, LSTATE(ACTIVE), 0), 0);
    assert_int_equal(tf_grant_full(&t, T0, 4, "pki", "web", 1000, 0, LSTATE(ACTIVE), 0), 0);
    assert_int_equal(tf_prefix(&t, T0, ""), MF_EINVAL);
    assert_int_equal(tf_prefix(&t, T0, "db/ro/"), 0);
    assert_int_equal(t.last->count, 2);
    assert_int_equal(tf_prefix(&t, T0, "db/"), 0);
    assert_int_equal(t.last->count, 1);
    assert_false(t.last->more);
    assert_int_equal(tf_lease_state(&t, 4, NULL), LSTATE(ACTIVE));
    /* Bounded: 25 leases under "bulk/", the first 20 already revoked (they
     * stay in the prefix index until tidy); 1 moved per command, at most 8
     * looked at, continuing from the cursor. */
    for (uint64_t i = 10; i < 35; i++) {
        assert_int_equal(tf_grant_full(&t, T0, i, "bulk", "x", 1000, 0, LSTATE(ACTIVE), 0), 0);
        if (i < 30)
            assert_int_equal(tf_force(&t, T0, i), 0);
    }
    uint64_t total = 0;
    int rounds = 0;
    char cursor[MF_LEASE_ID_MAX] = "";
    do {
        assert_int_equal(tf_prefix_after(&t, T0, "bulk/", 1, rounds ? cursor : NULL), 0);
        total += t.last->count;
        snprintf(cursor, sizeof(cursor), "%s", t.last->cursor);
        rounds++;
        assert_true(rounds < 20);
    } while (t.last->more);
    assert_int_equal(total, 5);
    assert_int_equal(rounds, 7); /* 8 + 8 looked at, then 4 + one move, then 4 moves */
    assert_int_equal(tf_prefix_after(&t, T0, "bulk/", 1, "db/ro/0000000000001"), MF_EINVAL);
    tf_close(&t);
}

/* Quotas: cluster-wide and per prefix, a clear QUOTA_EXCEEDED error, and room
 * again once a lease is revoked. */
static void test_store_fsm_quota_exceeded(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant_full(&t, T0, 1, "db", "ro", 1000, 0, LSTATE(ACTIVE), 0), 0);
    assert_int_equal(tf_quota(&t, T0, "db/", 2), 0);
    assert_int_equal(t.last->count, 1); /* counted the existing lease */
    assert_int_equal(tf_quota(&t, T0, "", 3), 0);
    assert_int_equal(tf_grant_full(&t, T0, 2, "db", "rw", 1000, 0, LSTATE(ACTIVE), 0), 0);
    assert_int_equal(tf_grant_full(&t, T0, 3, "db", "rw", 1000, 0, LSTATE(ACTIVE), 0), MF_EQUOTA);
    assert_non_null(strstr(t.last->error, "prefix 'db/'"));
    assert_int_equal(tf_grant_full(&t, T0, 3, "pki", "x", 1000, 0, LSTATE(ACTIVE), 0), 0);
    assert_int_equal(tf_grant_full(&t, T0, 4, "pki", "x", 1000, 0, LSTATE(ACTIVE), 0), MF_EQUOTA);
    assert_non_null(strstr(t.last->error, "cluster"));
    /* Revoking is not enough (still live); revoked frees the slot. */
    assert_int_equal(tf_revoke(&t, T0, 2), 0);
    assert_int_equal(tf_grant_full(&t, T0, 4, "pki", "x", 1000, 0, LSTATE(ACTIVE), 0), MF_EQUOTA);
    uint64_t seqs[1] = {2};
    assert_int_equal(tf_revoked(&t, T0, seqs, 1), 0);
    assert_int_equal(tf_grant_full(&t, T0, 4, "db", "x", 1000, 0, LSTATE(ACTIVE), 0), 0);
    MDB_txn *txn;
    uint64_t max, count;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_lease_quota_get(txn, tf_st(&t), "db/", &max, &count), 0);
    assert_int_equal(max, 2);
    assert_int_equal(count, 2);
    mf_state_read_end(txn);
    assert_int_equal(tf_quota(&t, T0, "", 0), 0); /* remove */
    assert_int_equal(tf_grant_full(&t, T0, 5, "pki", "x", 1000, 0, LSTATE(ACTIVE), 0), 0);
    tf_close(&t);
}

/* A duplicate request id gets the first result (with its kept ciphertext)
 * and is not applied again; a new id is. */
static void test_store_fsm_idempotent_duplicate(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
    g.seq = 10;
    g.mount = "lease";
    g.name = "default";
    g.ttl_ms = 1000;
    g.state = LSTATE(ACTIVE);
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    c.result_secret.data = (uint8_t *)"SEALED-SECRET";
    c.result_secret.len = 13;
    t.rid = "req-1";
    assert_int_equal(tf_cmd(&t, &c, T0), 0);
    assert_false(t.last->duplicate);
    uint8_t d0[32], d1[32];
    tf_digest(&t, 1, d0);
    /* The retry: a new leader assigned another seq, but it must not apply. */
    g.seq = 11;
    t.rid = "req-1";
    assert_int_equal(tf_cmd(&t, &c, T0 + 100), 0);
    assert_true(t.last->duplicate);
    assert_int_equal(t.last->seq, 10);
    assert_int_equal(t.last->expire_at_ms, T0 + 1000);
    assert_int_equal(t.last->secret.len, 13);
    assert_memory_equal(t.last->secret.data, "SEALED-SECRET", 13);
    assert_int_equal(tf_lease_state(&t, 11, NULL), 0);
    /* A failed command's result is kept too. */
    t.rid = "req-2";
    assert_int_equal(tf_renew(&t, T0, 999, 1), MF_ENOTFOUND);
    t.rid = "req-2";
    assert_int_equal(tf_renew(&t, T0, 999, 1), MF_ENOTFOUND);
    assert_true(t.last->duplicate);
    (void)d1;
    /* After the retention the id is forgotten and applies again. */
    t.rid = "req-1";
    assert_int_equal(tf_cmd(&t, &c, T0 + MF_IDEM_TTL_MS + 1000), 0);
    assert_false(t.last->duplicate);
    assert_int_equal(tf_lease_state(&t, 11, NULL), LSTATE(ACTIVE));
    MDB_txn *txn;
    uint64_t count;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_idem_count(txn, tf_st(&t), &count), 0);
    mf_state_read_end(txn);
    assert_int_equal(count, 1); /* req-2 pruned, req-1 stored again */
    tf_close(&t);
}

/* The revoking set is grouped by the engine mount that must revoke each
 * lease, so the scheduler serves every mount from its own group (a mount
 * whose database is down cannot hold back another mount or bare leases). */
static void test_store_fsm_revoking_grouped_by_engine(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    /* Interleaved SEQs: pg, bare, pki, pg, bare, pki, ... */
    const char *engines[] = {"pg", "", "pki"};
    for (uint64_t seq = 1; seq <= 9; seq++) {
        const char *e = engines[(seq - 1) % 3];
        assert_int_equal(e[0] ? tf_grant_engine(&t, T0, seq, e, 1000) : tf_grant(&t, T0, seq, 1000, 0),
                         0);
    }
    uint64_t all[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(tf_expire(&t, T0 + 1000, all, 9), 0);
    assert_int_equal(t.last->count, 9);
    MDB_txn *txn;
    uint64_t rs[8];
    size_t n;
    char e[MF_LEASE_MOUNT_MAX + 1];
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    /* Groups in name order, "" first. */
    assert_int_equal(mf_lease_revoking_next_engine(txn, tf_st(&t), NULL, e, sizeof(e)), 0);
    assert_string_equal(e, "");
    assert_int_equal(mf_lease_revoking_next_engine(txn, tf_st(&t), "", e, sizeof(e)), 0);
    assert_string_equal(e, "pg");
    assert_int_equal(mf_lease_revoking_next_engine(txn, tf_st(&t), "pg", e, sizeof(e)), 0);
    assert_string_equal(e, "pki");
    assert_int_equal(mf_lease_revoking_next_engine(txn, tf_st(&t), "pki", e, sizeof(e)),
                     MF_ENOTFOUND);
    /* Each group in SEQ order, paged by after_seq, and nothing of another. */
    assert_int_equal(mf_lease_revoking(txn, tf_st(&t), "pg", 0, rs, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rs[0], 1);
    assert_int_equal(rs[1], 4);
    assert_int_equal(rs[2], 7);
    assert_int_equal(mf_lease_revoking(txn, tf_st(&t), "pki", 3, rs, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rs[0], 6);
    assert_int_equal(mf_lease_revoking(txn, tf_st(&t), "", 5, rs, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rs[0], 8);
    assert_int_equal(mf_lease_revoking(txn, tf_st(&t), "p", 0, rs, 8, &n), 0);
    assert_int_equal(n, 0); /* a prefix of a name is not that name */
    mf_state_read_end(txn);
    /* Revoked leases leave their group; an emptied group is skipped. */
    uint64_t pg[3] = {1, 4, 7};
    assert_int_equal(tf_revoked(&t, T0 + 1100, pg, 3), 0);
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_lease_revoking_next_engine(txn, tf_st(&t), "", e, sizeof(e)), 0);
    assert_string_equal(e, "pki");
    assert_int_equal(mf_lease_revoking(txn, tf_st(&t), "pg", 0, rs, 8, &n), 0);
    assert_int_equal(n, 0);
    mf_state_read_end(txn);
    tf_close(&t);
}

/* Bound KV entries are destroyed (all versions) in the command that marks
 * their lease revoked; unbound ones stay. */
static void test_store_fsm_bound_kv_destroyed_on_revoke(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "app/db", "V1", 0, 0, 1), 0);
    assert_int_equal(tf_kv_put(&t, T0, "app/db", "V2", 0, 0, 1), 0);
    assert_int_equal(tf_kv_put(&t, T0, "app/other", "W", 0, 0, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "app/x", "W", 0, 0, 99), MF_ENOTFOUND);
    assert_int_equal(tf_revoke(&t, T0 + 1, 1), 0);
    /* Revoking: the entry is still there until the engine confirms. */
    MDB_txn *txn;
    Mayfly__Cmd__KvVersion *v;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_kv_get(txn, tf_st(&t), "app/db", 0, &v, NULL), 0);
    mf_kv_version_free(v);
    mf_state_read_end(txn);
    assert_int_equal(tf_kv_put(&t, T0, "app/y", "W", 0, 0, 1), MF_ELEASENOTACTIVE);
    uint64_t seqs[1] = {1};
    assert_int_equal(tf_revoked(&t, T0 + 2, seqs, 1), 0);
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_kv_get(txn, tf_st(&t), "app/db", 1, &v, NULL), MF_ENOTFOUND);
    assert_int_equal(mf_kv_get(txn, tf_st(&t), "app/db", 2, &v, NULL), MF_ENOTFOUND);
    Mayfly__Cmd__KvMeta *m;
    assert_int_equal(mf_kv_meta_get(txn, tf_st(&t), "app/db", &m), MF_ENOTFOUND);
    assert_int_equal(mf_kv_get(txn, tf_st(&t), "app/other", 0, &v, NULL), 0);
    mf_kv_version_free(v);
    mf_state_read_end(txn);
    /* Force-revoke destroys bound entries too. */
    assert_int_equal(tf_grant(&t, T0, 2, 1000, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "app/z", "Z", 0, 0, 2), 0);
    assert_int_equal(tf_force(&t, T0, 2), 0);
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_kv_get(txn, tf_st(&t), "app/z", 0, &v, NULL), MF_ENOTFOUND);
    mf_state_read_end(txn);
    tf_close(&t);
}

/* Revoking a token revokes its leases and its child tokens (the tree);
 * siblings and their leases stay. */
static void test_store_fsm_token_revoke_tree(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token(&t, T0, 1, "acc-root", 0, 0), 0);
    assert_int_equal(tf_token(&t, T0, 2, "acc-a", 1, 0), 0);
    assert_int_equal(tf_token(&t, T0, 3, "acc-b", 2, 0), 0);
    assert_int_equal(tf_token(&t, T0, 4, "acc-c", 1, 0), 0);
    assert_int_equal(tf_token(&t, T0, 5, "acc-other", 0, 0), 0);
    assert_int_equal(tf_token(&t, T0, 6, "acc-a", 0, 0), MF_EEXISTS);
    assert_int_equal(tf_token(&t, T0, 6, "acc-x", 9, 0), MF_ENOTFOUND);
    int owners[] = {1, 2, 3, 4, 5, 3};
    for (int i = 0; i < 6; i++)
        assert_int_equal(tf_grant_full(&t, T0, (uint64_t)i + 1, "m", "n", 10000, 0,
                                       LSTATE(ACTIVE), owners[i]),
                         0);
    assert_int_equal(tf_token_revoke(&t, T0 + 1, 2, 0), 0);
    assert_int_equal(t.last->count, 2);  /* tokens 2 and 3 */
    assert_int_equal(t.last->leases, 3); /* leases 2, 3, 6 */
    assert_int_equal(tf_lease_state(&t, 1, NULL), LSTATE(ACTIVE));
    assert_int_equal(tf_lease_state(&t, 2, NULL), LSTATE(REVOKING));
    assert_int_equal(tf_lease_state(&t, 3, NULL), LSTATE(REVOKING));
    assert_int_equal(tf_lease_state(&t, 6, NULL), LSTATE(REVOKING));
    assert_int_equal(tf_lease_state(&t, 4, NULL), LSTATE(ACTIVE));
    MDB_txn *txn;
    Mayfly__Cmd__TokenRecord *tok;
    uint8_t h[32];
    size_t nchild;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    tf_hash(h, 3);
    assert_int_equal(mf_token_get(txn, tf_st(&t), h, &tok), MF_ENOTFOUND);
    assert_int_equal(mf_token_by_accessor(txn, tf_st(&t), "acc-a", h), MF_ENOTFOUND);
    tf_hash(h, 1);
    assert_int_equal(mf_token_children_count(txn, tf_st(&t), h, &nchild), 0);
    assert_int_equal(nchild, 1); /* only token 4 left */
    mf_state_read_end(txn);
    /* A revoked owner cannot get new leases. */
    assert_int_equal(tf_grant_full(&t, T0, 7, "m", "n", 1000, 0, LSTATE(ACTIVE), 2), MF_EUNAUTH);
    /* Revoke the root: token 4 and leases 1, 4 go; token 5 stays. */
    assert_int_equal(tf_token_revoke(&t, T0 + 2, 1, 0), 0);
    assert_int_equal(t.last->count, 2);
    assert_int_equal(t.last->leases, 2);
    assert_int_equal(tf_lease_state(&t, 5, NULL), LSTATE(ACTIVE));
    assert_int_equal(tf_token_revoke(&t, T0 + 3, 1, 0), MF_ENOTFOUND);
    tf_close(&t);
}

/* Revoking with orphan_children keeps the children, now orphans; the token
 * expiry index gives the token due first. */
static void test_store_fsm_token_revoke_orphans_children(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_token(&t, T0, 1, "p", 0, 60000), 0);
    assert_int_equal(tf_token(&t, T0, 2, "c", 1, 120000), 0);
    assert_int_equal(t.last->expire_at_ms, T0 + 60000); /* capped by the parent */
    MDB_txn *txn;
    Mayfly__Cmd__TokenRecord *tok;
    uint8_t h[32], want[32];
    uint64_t due;
    /* Both expire at T0+60000; the lower hash (token 1) sorts first. */
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_token_next_due(txn, tf_st(&t), &due, h), 0);
    mf_state_read_end(txn);
    tf_hash(want, 1);
    assert_int_equal(due, T0 + 60000);
    assert_memory_equal(h, want, 32);
    assert_int_equal(tf_token_revoke(&t, T0, 1, 1), 0);
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_token_next_due(txn, tf_st(&t), &due, h), 0);
    tf_hash(want, 2);
    assert_memory_equal(h, want, 32);
    tf_hash(h, 2);
    assert_int_equal(mf_token_get(txn, tf_st(&t), h, &tok), 0);
    assert_true(tok->orphan);
    assert_int_equal(tok->parent_hash.len, 0);
    mf_token_free(tok);
    mf_state_read_end(txn);
    tf_close(&t);
}

/* A corrupted command gets a clear INVALID_ARGUMENT and changes nothing but
 * the applied index. */
static void test_store_fsm_corrupted_command_refused(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 0), 0);
    uint8_t d0[32], d1[32];
    tf_digest(&t, 1, d0);
    uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}; /* length past the end */
    assert_int_equal(tf_raw(&t, junk, sizeof(junk)), MF_EINVAL);
    assert_non_null(strstr(t.last->error, "corrupted"));
    /* A valid grant with a flipped byte in the middle. */
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
    g.seq = 2;
    g.mount = "lease";
    g.name = "default";
    g.ttl_ms = 1000;
    g.state = LSTATE(ACTIVE);
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    c.now_ms = T0;
    uint8_t buf[256];
    size_t n = mayfly__cmd__command__pack(&c, buf);
    size_t at = 0;
    while (at < n && buf[at] != 0x52) /* field 10, length-delimited: the grant */
        at++;
    assert_true(at + 1 < n);
    buf[at + 1] = 0x7f; /* its length now runs past the end */
    assert_int_equal(tf_raw(&t, buf, n), MF_EINVAL);
    assert_int_equal(tf_raw(&t, (const uint8_t *)"", 0), MF_EINVAL); /* no time, no op */
    tf_digest(&t, 1, d1);
    assert_memory_equal(d0, d1, 32);
    assert_int_equal(mf_fsm_applied(t.fsm), 4);
    tf_close(&t);
}

/* An unknown command type (a field number this version does not know) stops
 * the apply (store/features.h: a replica that skipped it would diverge): the
 * batch fails, nothing changes, and the reason names the entry and type. */
static void test_store_fsm_unknown_command_refused(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    uint8_t d0[32], d1[32];
    tf_digest(&t, 1, d0);
    /* now_ms = 1 (field 2, varint) and field 99 (length-delimited, 2 bytes). */
    uint8_t b[] = {0x10, 0x01, 0x9a, 0x06, 0x02, 0x08, 0x01};
    Mayfly__Cmd__Result *res = NULL;
    assert_int_equal(mf_fsm_apply(t.fsm, t.index + 1, b, sizeof(b), &res), MF_ECORRUPT);
    assert_null(res);
    assert_int_equal(mf_fsm_applied(t.fsm), t.index);
    assert_non_null(mf_fsm_stop_reason(t.fsm));
    assert_non_null(strstr(mf_fsm_stop_reason(t.fsm), "holds command type 99, unknown to this build"));
    tf_digest(&t, 1, d1);
    assert_memory_equal(d0, d1, 32);
    tf_close(&t);
}

/* Every command carrying ciphertext adds its encryptions to its key term's
 * counter, duplicates included. */
static void test_store_fsm_key_use_counted(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    t.key_term = 3;
    t.key_encryptions = 2;
    assert_int_equal(tf_kv_put(&t, T0, "a", "C1", 0, 0, 0), 0);
    t.key_term = 3;
    t.key_encryptions = 1;
    assert_int_equal(tf_kv_put(&t, T0, "a", "C2", 0, 0, 0), 0);
    t.key_term = 4;
    t.key_encryptions = 5;
    assert_int_equal(tf_kv_put(&t, T0, "a", "C3", 0, 0, 0), 0);
    /* A retried write was encrypted again: its nonces count, though it is
     * not applied again. */
    t.rid = "put-4";
    t.key_term = 4;
    t.key_encryptions = 1;
    assert_int_equal(tf_kv_put(&t, T0, "a", "C4", 0, 0, 0), 0);
    t.rid = "put-4";
    t.key_term = 4;
    t.key_encryptions = 1;
    assert_int_equal(tf_kv_put(&t, T0, "a", "C4", 0, 0, 0), 0);
    assert_true(t.last->duplicate);
    assert_int_equal(t.last->version, 4);
    MDB_txn *txn;
    uint64_t n3, n4, n5;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_state_key_uses(txn, tf_st(&t), 3, &n3), 0);
    assert_int_equal(mf_state_key_uses(txn, tf_st(&t), 4, &n4), 0);
    assert_int_equal(mf_state_key_uses(txn, tf_st(&t), 5, &n5), 0);
    mf_state_read_end(txn);
    assert_int_equal(n3, 3);
    assert_int_equal(n4, 7);
    assert_int_equal(n5, 0);
    tf_close(&t);
}

static int put_keyring(struct tf *t, const uint8_t *blob, size_t len)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KeyringPut k = MAYFLY__CMD__KEYRING_PUT__INIT;
    k.keyring.data = (uint8_t *)blob;
    k.keyring.len = len;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_PUT;
    c.keyring_put = &k;
    return tf_cmd(t, &c, T0);
}

static void new_keyring(struct mf_barrier **b, uint8_t **blob, size_t *len, uint8_t seal_byte)
{
    uint8_t root[MF_BARRIER_KEY_BYTES];
    memset(root, seal_byte, sizeof(root));
    struct mf_barrier_seal_config cfg = {.type = MF_SEAL_KEYFILE};
    memset(cfg.seal_id, seal_byte, sizeof(cfg.seal_id));
    assert_int_equal(mf_barrier_new(b), 0);
    assert_int_equal(mf_barrier_initialize(*b, root, &cfg, T0), 0);
    assert_int_equal(mf_barrier_keyring_export(*b, blob, len), 0);
}

/* A keyring put never replaces the keyring of another seal (a second init) nor
 * a newer term with an older one (a stale rotation); a rotation of the same
 * seal is taken, and a refused put leaves the stored keyring as it was. */
static void test_store_fsm_keyring_replace_rules(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    struct mf_barrier *a, *b;
    uint8_t *blob_a, *blob_b, *blob_a2;
    size_t len_a, len_b, len_a2;
    uint32_t term;
    new_keyring(&a, &blob_a, &len_a, 0x11);
    new_keyring(&b, &blob_b, &len_b, 0x22);
    assert_int_equal(mf_barrier_rotate_export(a, T0 + 1, &blob_a2, &len_a2, &term), 0);
    assert_int_equal(put_keyring(&t, blob_a, len_a), 0);
    assert_int_equal(put_keyring(&t, blob_b, len_b), MF_EEXISTS);
    assert_int_equal(put_keyring(&t, blob_a2, len_a2), 0);
    assert_int_equal(put_keyring(&t, blob_a, len_a), MF_ECAS);
    MDB_txn *txn;
    const uint8_t *body;
    size_t len;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_state_keyring(txn, tf_st(&t), &body, &len), 0);
    assert_int_equal(len, len_a2);
    assert_memory_equal(body, blob_a2, len);
    mf_state_read_end(txn);
    free(blob_a);
    free(blob_b);
    free(blob_a2);
    mf_barrier_free(a);
    mf_barrier_free(b);
    tf_close(&t);
}

static int change_keyring(struct tf *t, const uint8_t *blob, size_t len, bool rekey)
{
    static uint8_t wrapped[MF_BARRIER_WRAPPED_BYTES]; /* the fsm only sees it is there */
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KeyringChange k = MAYFLY__CMD__KEYRING_CHANGE__INIT;
    k.keyring.data = (uint8_t *)blob;
    k.keyring.len = len;
    if (rekey) {
        k.wrapped_root.data = wrapped;
        k.wrapped_root.len = sizeof(wrapped);
    }
    c.op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_CHANGE;
    c.keyring_change = &k;
    return tf_cmd(t, &c, T0);
}

/* KeyringChange with a wrapped root key stores only a rekey of the stored
 * keyring (next generation, same term) and nothing before init; without
 * one only a rotation (same generation, higher term); a rekeyed blob sent as
 * a KeyringPut is refused; after the rekey a rotation of the new generation
 * is taken and one made under the old root key is not. */
static void test_store_fsm_keyring_change(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    struct mf_barrier *a;
    assert_int_equal(mf_barrier_new(&a), 0);
    uint8_t root[MF_BARRIER_KEY_BYTES] = {9}, new_root[MF_BARRIER_KEY_BYTES] = {8};
    struct mf_barrier_seal_config cfg = {.type = MF_SEAL_SHAMIR, .shares = 3, .threshold = 2};
    assert_int_equal(mf_barrier_initialize(a, root, &cfg, T0), 0);
    uint8_t *b1, *b2, *r1, *w, *r1b2;
    size_t l1, l2, lr, lw, lrb;
    assert_int_equal(mf_barrier_keyring_export(a, &b1, &l1), 0);
    assert_int_equal(mf_barrier_rotate_export(a, T0 + 1, &b2, &l2, NULL), 0);
    assert_int_equal(mf_barrier_rekey_export(a, new_root, 5, 3, &r1, &lr, &w, &lw), 0);
    free(w);
    assert_int_equal(change_keyring(&t, r1, lr, true), MF_ENOTINIT);
    assert_int_equal(put_keyring(&t, b1, l1), 0);
    assert_int_equal(change_keyring(&t, b2, l2, true), MF_ECAS);  /* a rotation is no rekey */
    assert_int_equal(change_keyring(&t, r1, lr, false), MF_ECAS); /* a rekey is no rotation */
    assert_int_equal(put_keyring(&t, r1, lr), MF_ECAS);           /* nor a put */
    assert_int_equal(change_keyring(&t, r1, lr, true), 0);
    assert_int_equal(change_keyring(&t, r1, lr, true), MF_ECAS);  /* replayed */
    assert_int_equal(change_keyring(&t, b2, l2, false), MF_ECAS); /* under the old root */
    mf_barrier_seal(a);
    assert_int_equal(mf_barrier_unseal(a, new_root, r1, lr), 0);
    assert_int_equal(mf_barrier_rotate_export(a, T0 + 2, &r1b2, &lrb, NULL), 0);
    assert_int_equal(change_keyring(&t, r1b2, lrb, false), 0);
    MDB_txn *txn;
    const uint8_t *body;
    size_t len;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_state_keyring(txn, tf_st(&t), &body, &len), 0);
    assert_int_equal(len, lrb);
    assert_memory_equal(body, r1b2, len);
    mf_state_read_end(txn);
    free(b1), free(b2), free(r1), free(r1b2);
    mf_barrier_free(a);
    tf_close(&t);
}

/* Policies and the keyring blob are stored as given. */
static void test_store_fsm_policy_and_keyring(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__PolicyPut p = MAYFLY__CMD__POLICY_PUT__INIT;
    p.name = "ops";
    p.body.data = (uint8_t *)"path \"*\" {}";
    p.body.len = 11;
    c.op_case = MAYFLY__CMD__COMMAND__OP_POLICY_PUT;
    c.policy_put = &p;
    assert_int_equal(tf_cmd(&t, &c, T0), 0);
    Mayfly__Cmd__KeyringPut k = MAYFLY__CMD__KEYRING_PUT__INIT;
    k.keyring.data = (uint8_t *)"KEYRING-CT";
    k.keyring.len = 10;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_PUT;
    c.keyring_put = &k;
    assert_int_equal(tf_cmd(&t, &c, T0), 0);
    MDB_txn *txn;
    const uint8_t *body;
    size_t len;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_policy_get(txn, tf_st(&t), "ops", &body, &len), 0);
    assert_int_equal(len, 11);
    assert_int_equal(mf_state_keyring(txn, tf_st(&t), &body, &len), 0);
    assert_memory_equal(body, "KEYRING-CT", 10);
    mf_state_read_end(txn);
    Mayfly__Cmd__PolicyDelete d = MAYFLY__CMD__POLICY_DELETE__INIT;
    d.name = "ops";
    c.op_case = MAYFLY__CMD__COMMAND__OP_POLICY_DELETE;
    c.policy_delete = &d;
    assert_int_equal(tf_cmd(&t, &c, T0), 0);
    assert_int_equal(tf_cmd(&t, &c, T0), MF_ENOTFOUND);
    tf_close(&t);
}

/* State time never goes backwards: a command with an older now (a new leader
 * with a slow clock) is applied at the greatest now seen. */
static void test_store_fsm_time_never_backwards(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0 + 5000, 1, 1000, 0), 0);
    assert_int_equal(tf_grant(&t, T0, 2, 1000, 0), 0);
    assert_int_equal(t.last->issued_ms, T0 + 5000);
    assert_int_equal(mf_fsm_now(t.fsm), T0 + 5000);
    tf_close(&t);
}

/* After a restart the applied index is where the last commit left it, and
 * entries at or below it are skipped (log replay); the durable applied index
 * trails the last commit by one until a sync. */
static void test_store_fsm_restart_resumes(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 1000, 0), 0);
    assert_int_equal(tf_grant(&t, T0, 2, 1000, 0), 0);
    /* LMDB forbids a second open of one environment in a process. */
    struct mf_fsm *again = NULL;
    assert_int_equal(mf_fsm_open(t.dir, NULL, &again), MF_EEXISTS);
    assert_null(again);
    mf_fsm_close(t.fsm);
    assert_int_equal(mf_fsm_open(t.dir, NULL, &t.fsm), 0);
    assert_int_equal(mf_fsm_applied(t.fsm), 2);
    assert_int_equal(mf_fsm_now(t.fsm), T0);
    uint8_t d0[32], d1[32];
    tf_digest(&t, 0, d0);
    /* Replaying entry 2 does nothing. */
    Mayfly__Cmd__Result *r = (void *)1;
    assert_int_equal(mf_fsm_apply(t.fsm, 2, (const uint8_t *)"x", 1, &r), 0);
    assert_null(r);
    tf_digest(&t, 0, d1);
    assert_memory_equal(d0, d1, 32);
    /* Entries with no command only advance the index. */
    assert_int_equal(mf_fsm_durable_applied(t.fsm), 2); /* synced at open */
    struct mf_fsm_entry e[2] = {{3, NULL, 0, false}, {4, NULL, 0, false}};
    assert_int_equal(mf_fsm_apply_batch(t.fsm, e, 2, NULL), 0);
    assert_int_equal(mf_fsm_applied(t.fsm), 4);
    /* The last commit's meta page is not synced yet; the one before is. */
    assert_int_equal(mf_fsm_durable_applied(t.fsm), 2);
    struct mf_fsm_entry e5 = {5, NULL, 0, false};
    assert_int_equal(mf_fsm_apply_batch(t.fsm, &e5, 1, NULL), 0);
    assert_int_equal(mf_fsm_durable_applied(t.fsm), 4);
    assert_int_equal(mf_fsm_sync(t.fsm), 0);
    assert_int_equal(mf_fsm_durable_applied(t.fsm), 5);
    tf_close(&t);
}

/* A full map is an operating error: the batch is refused as a whole with
 * MF_EMAPFULL (no crash, nothing half-applied), and after growing the map
 * the same batch applies. */
static void test_store_fsm_map_full_reported(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    mf_fsm_close(t.fsm);
    tf_rm(t.dir);
    MF_ASSERT(mkdir(t.dir, 0700) == 0);
    struct mf_state_opts o = {.map_size_bytes = 256 * 1024};
    assert_int_equal(mf_fsm_open(t.dir, &o, &t.fsm), 0);
    /* 64 KiB values: a few fit, then the map is full. */
    static char big[60000];
    memset(big, 'c', sizeof(big) - 1);
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KvPut p = MAYFLY__CMD__KV_PUT__INIT;
    p.path = "big";
    p.value.data = (uint8_t *)big;
    p.value.len = sizeof(big) - 1;
    c.now_ms = T0;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    c.kv_put = &p;
    size_t n = mayfly__cmd__command__get_packed_size(&c);
    uint8_t *buf = malloc(n);
    mayfly__cmd__command__pack(&c, buf);
    struct mf_fsm_entry e[8];
    for (int i = 0; i < 8; i++) {
        e[i].index = (uint64_t)i + 1;
        e[i].data = buf;
        e[i].len = n;
        e[i].conf = false;
    }
    Mayfly__Cmd__Result *res[8];
    uint8_t d0[32], d1[32];
    tf_digest(&t, 0, d0);
    assert_int_equal(mf_fsm_apply_batch(t.fsm, e, 8, res), MF_EMAPFULL);
    for (int i = 0; i < 8; i++)
        assert_null(res[i]);
    assert_int_equal(mf_fsm_applied(t.fsm), 0);
    tf_digest(&t, 0, d1);
    assert_memory_equal(d0, d1, 32);
    assert_int_equal(mf_state_set_map_size(tf_st(&t), (size_t)64 << 20), 0);
    assert_int_equal(mf_fsm_apply_batch(t.fsm, e, 8, res), 0);
    assert_int_equal(mf_fsm_applied(t.fsm), 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(res[i]->code, 0);
        mf_fsm_result_free(res[i]);
    }
    free(buf);
    tf_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_fsm_grant_and_lookup),
        cmocka_unit_test(test_store_fsm_grant_refuses_bad_input),
        cmocka_unit_test(test_store_fsm_revoking_grouped_by_engine),
        cmocka_unit_test(test_store_fsm_activate_rules),
        cmocka_unit_test(test_store_fsm_renew_capped_by_max_ttl),
        cmocka_unit_test(test_store_fsm_renew_between_look_and_expire_wins),
        cmocka_unit_test(test_store_fsm_expire_revoked_tidy),
        cmocka_unit_test(test_store_fsm_irrevocable_and_force_revoke),
        cmocka_unit_test(test_store_fsm_revoke_prefix),
        cmocka_unit_test(test_store_fsm_quota_exceeded),
        cmocka_unit_test(test_store_fsm_idempotent_duplicate),
        cmocka_unit_test(test_store_fsm_bound_kv_destroyed_on_revoke),
        cmocka_unit_test(test_store_fsm_token_revoke_tree),
        cmocka_unit_test(test_store_fsm_token_revoke_orphans_children),
        cmocka_unit_test(test_store_fsm_corrupted_command_refused),
        cmocka_unit_test(test_store_fsm_unknown_command_refused),
        cmocka_unit_test(test_store_fsm_key_use_counted),
        cmocka_unit_test(test_store_fsm_policy_and_keyring),
        cmocka_unit_test(test_store_fsm_keyring_replace_rules),
        cmocka_unit_test(test_store_fsm_keyring_change),
        cmocka_unit_test(test_store_fsm_time_never_backwards),
        cmocka_unit_test(test_store_fsm_restart_resumes),
        cmocka_unit_test(test_store_fsm_map_full_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
