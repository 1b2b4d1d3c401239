/* Determinism of the state machine: the same command sequence applied to two
 * fresh stores gives byte-identical state (a digest over every record of
 * every database) and identical results, while env.h's clock and random
 * source return different values in the two runs, and whatever the batch
 * boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/env.h"
#include "common/err.h"

#define T0 1700000000000ULL

/* Two different worlds for env.h: if the apply path read them, the runs
 * would diverge. */
struct world {
    uint64_t wall, mono;
    uint8_t fill;
};
static uint64_t w_wall(void *ctx) { return ((struct world *)ctx)->wall += 7919; }
static uint64_t w_mono(void *ctx) { return ((struct world *)ctx)->mono += 13; }
static int w_rand(void *ctx, void *buf, size_t len)
{
    struct world *w = ctx;
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(w->fill++ * 31u);
    return 0;
}

/* The test's own PRNG (xorshift64*): the sequence is fixed by the seed. */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* A mixed workload of every command type on store t (recorded). */
static void workload(struct tf *t, unsigned ncmds)
{
    uint64_t now = T0, seq = 0;
    char path[64], acc[32], rid[32], val[32];
    for (int i = 1; i <= 8; i++) {
        snprintf(acc, sizeof(acc), "acc-%d", i);
        tf_token(t, now, i, acc, i > 2 ? (int)(rng() % 2) + 1 : 0, 0);
    }
    tf_quota(t, now, "db/", 400);
    for (unsigned i = 0; i < ncmds; i++) {
        now += rng() % 50;
        uint64_t r = rng() % 100;
        uint64_t pick = seq ? rng() % seq + 1 : 1;
        if (r < 30) {
            const char *mounts[] = {"db", "pki", "lease"};
            int st = rng() % 3 == 0 ? LSTATE(ISSUING) : LSTATE(ACTIVE);
            if (rng() % 4 == 0) {
                snprintf(rid, sizeof(rid), "rid-%llu", (unsigned long long)(rng() % 64));
                t->rid = rid;
            }
            tf_grant_full(t, now, ++seq, mounts[rng() % 3], rng() % 2 ? "ro" : "rw",
                          500 + rng() % 5000, 20000, st, (int)(rng() % 9));
        } else if (r < 40) {
            tf_renew(t, now, pick, rng() % 3000);
        } else if (r < 45) {
            tf_activate(t, now, pick, "CRED-CIPHERTEXT", rng() % 4000);
        } else if (r < 55) {
            uint64_t due[32];
            size_t n = 0;
            MDB_txn *txn;
            MF_ASSERT(mf_state_read_begin(tf_st(t), &txn) == 0);
            MF_ASSERT(mf_lease_due(txn, tf_st(t), now, NULL, due, 32, &n, NULL) == 0);
            mf_state_read_end(txn);
            tf_expire(t, now + rng() % 10, due, n);
        } else if (r < 62) {
            uint64_t rs[32];
            size_t n = 0;
            MDB_txn *txn;
            MF_ASSERT(mf_state_read_begin(tf_st(t), &txn) == 0);
            MF_ASSERT(mf_lease_revoking(txn, tf_st(t), "", 0, rs, 32, &n) == 0);
            mf_state_read_end(txn);
            if (n && rng() % 5 == 0)
                tf_irrevocable(t, now, rs[0], "ERR-CIPHERTEXT");
            else
                tf_revoked(t, now, rs, n);
        } else if (r < 75) {
            snprintf(path, sizeof(path), "app/%llu", (unsigned long long)(rng() % 40));
            snprintf(val, sizeof(val), "V%llu", (unsigned long long)rng());
            t->key_term = 1 + (uint32_t)(rng() % 2);
            t->key_encryptions = 1;
            tf_kv_put(t, now, path, val, rng() % 4 == 0, rng() % 3, rng() % 3 == 0 ? pick : 0);
        } else if (r < 80) {
            snprintf(path, sizeof(path), "app/%llu", (unsigned long long)(rng() % 40));
            uint64_t v[2] = {rng() % 5, rng() % 5};
            tf_kv_op(t, now, path, 1 + (int)(rng() % 3), v, rng() % 3);
        } else if (r < 83) {
            snprintf(path, sizeof(path), "app/%llu", (unsigned long long)(rng() % 40));
            tf_kv_meta(t, now, path, 1 + (uint32_t)(rng() % 6), 1, rng() % 4 == 0);
        } else if (r < 86) {
            tf_revoke(t, now, pick);
        } else if (r < 87) {
            tf_prefix(t, now, rng() % 2 ? "db/ro/" : "pki/");
        } else if (r < 88) {
            tf_force(t, now, pick);
        } else if (r < 90) {
            tf_tidy(t, now, 2000, 50);
        } else if (r < 91) {
            tf_token_revoke(t, now, 3 + (int)(rng() % 6), (int)(rng() % 2));
        } else if (r < 93) {
            snprintf(acc, sizeof(acc), "acc-n%u", i);
            tf_token(t, now, 20 + (int)(i % 200), acc, (int)(rng() % 8) + 1, rng() % 100000);
        } else {
            tf_renew(t, now, pick, 0);
        }
    }
}

/* Same sequence, different env.h worlds and batch boundaries: same digest,
 * same results. */
static void test_store_determinism_same_state_different_env(void **s)
{
    (void)s;
    struct world w1 = {1000, 5, 0x11}, w2 = {987654321, 77777, 0xEE};
    struct mf_env_ops o1 = {w_wall, w_mono, w_rand, &w1};
    struct mf_env_ops o2 = {w_wall, w_mono, w_rand, &w2};

    /* Run 1: commands applied one by one, as they are generated. */
    mf_env_set(&o1);
    struct tf a;
    tf_open(&a);
    a.record = 1;
    rng_state = 0x9E3779B97F4A7C15ULL;
    workload(&a, 3000);
    /* Keep run 1's results by re-applying its recording to a second store. */
    uint8_t da[32];
    tf_digest(&a, 0, da);

    /* Run 2: the recorded bytes, in batches of 1..37, in another world. */
    mf_env_set(&o2);
    struct tf b;
    tf_open(&b);
    Mayfly__Cmd__Result **res = calloc(a.nrec, sizeof(*res));
    struct mf_fsm_entry *e = calloc(a.nrec, sizeof(*e));
    assert_non_null(res);
    assert_non_null(e);
    for (size_t i = 0; i < a.nrec; i++) {
        e[i].index = i + 1;
        e[i].data = a.rec[i];
        e[i].len = a.rec_len[i];
    }
    size_t i = 0, k = 1;
    while (i < a.nrec) {
        size_t n = k % 37 + 1;
        if (n > a.nrec - i)
            n = a.nrec - i;
        assert_int_equal(mf_fsm_apply_batch(b.fsm, e + i, n, res + i), 0);
        i += n;
        k = k * 7 + 3;
    }
    uint8_t db[32];
    tf_digest(&b, 0, db);
    assert_memory_equal(da, db, 32);

    /* Run 3: one by one again in world 2, results compared with run 2's. */
    struct tf c;
    tf_open(&c);
    size_t codes_nonzero = 0, dups = 0;
    for (i = 0; i < a.nrec; i++) {
        Mayfly__Cmd__Result *r;
        assert_int_equal(mf_fsm_apply(c.fsm, i + 1, a.rec[i], a.rec_len[i], &r), 0);
        size_t n1 = mayfly__cmd__result__get_packed_size(r);
        size_t n2 = mayfly__cmd__result__get_packed_size(res[i]);
        assert_int_equal(n1, n2);
        uint8_t *p1 = malloc(n1 + 1), *p2 = malloc(n2 + 1);
        mayfly__cmd__result__pack(r, p1);
        mayfly__cmd__result__pack(res[i], p2);
        assert_memory_equal(p1, p2, n1);
        codes_nonzero += r->code != 0;
        dups += r->duplicate;
        free(p1);
        free(p2);
        mf_fsm_result_free(r);
        mf_fsm_result_free(res[i]);
    }
    uint8_t dc[32];
    tf_digest(&c, 0, dc);
    assert_memory_equal(da, dc, 32);
    /* The workload exercised both outcomes. */
    assert_true(codes_nonzero > 0 && codes_nonzero < a.nrec);
    assert_true(dups > 0);
    /* The per-state lease counts (kept incrementally for /metrics) match a
     * recount of every lease record. */
    uint64_t counts[MF_LEASE_STATES], recount[MF_LEASE_STATES] = {0};
    MDB_txn *txn;
    assert_int_equal(mf_state_read_begin(tf_st(&c), &txn), 0);
    assert_int_equal(mf_state_lease_counts(txn, tf_st(&c), counts), 0);
    for (uint64_t seq = 1; seq <= a.nrec; seq++) {
        Mayfly__Cmd__LeaseRecord *rec;
        if (mf_lease_get(txn, tf_st(&c), seq, &rec) != 0)
            continue;
        assert_true(rec->state > 0 && rec->state < MF_LEASE_STATES);
        recount[rec->state]++;
        mf_lease_free(rec);
    }
    mf_state_read_end(txn);
    size_t states_seen = 0;
    for (int st = 1; st < MF_LEASE_STATES; st++) {
        assert_int_equal(counts[st], recount[st]);
        states_seen += recount[st] > 0;
    }
    assert_true(states_seen >= 3);
    mf_env_set(NULL);
    free(res);
    free(e);
    tf_close(&a);
    tf_close(&b);
    tf_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_determinism_same_state_different_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
