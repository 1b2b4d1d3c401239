/* The revocation scheduler through its seams: a fake proposer that applies
 * each command to a real state database one loop turn later (no Raft node),
 * a fake engine registered as engine type "fake", a real barrier, real
 * mounts and a real libuv loop. The proposer's clock is the test's: lease
 * times are judged by it, so nothing waits for a lease to run out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "../store/fsm_testlib.h"
#include "common/config.h"
#include "common/env.h"
#include "common/err.h"
#include "engines/engine.h"
#include "server/crl.h"
#include "server/mounts.h"
#include "server/proposer.h"
#include "server/records.h"
#include "server/scheduler.h"
#include "server/srv.h"

#define T0 1700000000000ULL
#define BATCH 1000 /* the scheduler's EXPIRY_BATCH */
#define GIVE_UP_MS 30000 /* a run that never gets there fails instead of hanging */

/* ---- the fake proposer ---- */

struct fake_prop {
    struct mf_proposer base;
    struct tf *t;
    uv_loop_t *loop;
    bool leading;
    uint64_t now_ms;      /* the test's clock at set_at_ms, then running */
    uint64_t set_at_ms;   /* monotonic time when now_ms was set */
    size_t expire_cmds, revoked_cmds, largest_batch;
};

/* The test's clock runs like the real one from where the test set it, so
 * backoff deadlines (judged by this clock) pass as real time does. */
static uint64_t fake_now(void *ctx)
{
    struct fake_prop *fp = ctx;
    return fp->now_ms + (mf_now_mono_ms() - fp->set_at_ms);
}

static void set_now(struct fake_prop *fp, uint64_t now_ms)
{
    fp->now_ms = now_ms;
    fp->set_at_ms = mf_now_mono_ms();
}
struct inflight {
    uv_timer_t timer;
    struct fake_prop *fp;
    uint8_t *buf;
    size_t len;
    mf_propose_cb cb;
    void *arg;
};

static void inflight_closed(uv_handle_t *h)
{
    struct inflight *f = h->data;
    free(f->buf);
    free(f);
}

static void inflight_apply(uv_timer_t *tm)
{
    struct inflight *f = tm->data;
    struct tf *t = f->fp->t;
    Mayfly__Cmd__Result *res = NULL;
    assert_int_equal(mf_fsm_apply(t->fsm, ++t->index, f->buf, f->len, &res), 0);
    f->cb(f->arg, res->code, res);
    mf_fsm_result_free(res);
    uv_close((uv_handle_t *)tm, inflight_closed);
}

static int fake_propose(void *ctx, Mayfly__Cmd__Command *cmd, mf_propose_cb cb, void *arg)
{
    struct fake_prop *fp = ctx;
    if (!fp->leading)
        return MF_EUNAVAIL;
    if (!cmd->now_ms)
        cmd->now_ms = fake_now(fp);
    size_t n = 0;
    if (cmd->op_case == MAYFLY__CMD__COMMAND__OP_LEASE_EXPIRE) {
        fp->expire_cmds++;
        n = cmd->lease_expire->n_seqs;
    } else if (cmd->op_case == MAYFLY__CMD__COMMAND__OP_LEASE_REVOKED) {
        fp->revoked_cmds++;
        n = cmd->lease_revoked->n_seqs;
    }
    if (n > fp->largest_batch)
        fp->largest_batch = n;
    struct inflight *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->fp = fp;
    f->len = mayfly__cmd__command__get_packed_size(cmd);
    f->buf = malloc(f->len ? f->len : 1);
    mayfly__cmd__command__pack(cmd, f->buf);
    f->cb = cb;
    f->arg = arg;
    uv_timer_init(fp->loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, inflight_apply, 0, 0);
    return 0;
}

static uint64_t fake_next_index(void *ctx) { return ((struct fake_prop *)ctx)->t->index + 1; }
static bool fake_leading(void *ctx) { return ((struct fake_prop *)ctx)->leading; }

static const struct mf_proposer_ops fake_ops = {fake_propose, fake_now, fake_next_index,
                                                fake_leading};

/* ---- the fake engine (its calls run on libuv's worker threads) ---- */

static int engine_fail_calls;      /* revoke calls that fail before they succeed */
static int engine_revoke_calls;
static size_t engine_revoked;      /* leases revoked successfully */
static uint64_t engine_call_at_ms[8];

static int fake_open(const char *config, struct mf_engine **out, char *err, size_t el)
{
    (void)config, (void)err, (void)el;
    *out = (struct mf_engine *)calloc(1, 1);
    return 0;
}
static void fake_close(struct mf_engine *e) { free(e); }
static int fake_role_put(struct mf_engine *e, const char *r, const char *j, char *err, size_t el)
{
    (void)e, (void)r, (void)j, (void)err, (void)el;
    return 0;
}
static int fake_revoke(struct mf_engine *e, const uint64_t *seqs, size_t n, int *results,
                       char *err, size_t el)
{
    (void)e, (void)seqs;
    int call = __atomic_fetch_add(&engine_revoke_calls, 1, __ATOMIC_SEQ_CST);
    if (call < 8)
        engine_call_at_ms[call] = mf_now_mono_ms();
    bool fail = call < engine_fail_calls;
    for (size_t i = 0; i < n; i++)
        results[i] = fail ? MF_EUNAVAIL : 0;
    if (fail) {
        snprintf(err, el, "database down");
        return MF_EUNAVAIL;
    }
    __atomic_fetch_add(&engine_revoked, n, __ATOMIC_SEQ_CST);
    return 0;
}
static int fake_list(struct mf_engine *e, void (*cb)(void *, uint64_t), void *arg, char *err,
                     size_t el)
{
    (void)e, (void)cb, (void)arg, (void)err, (void)el;
    return 0;
}
static const struct mf_engine_ops fake_engine = {
    .type = "fake", .open = fake_open, .close = fake_close, .role_put = fake_role_put,
    .revoke = fake_revoke, .list = fake_list};

/* ---- a server made of the pieces the scheduler uses ---- */

struct rig {
    struct tf t;
    uv_loop_t loop;
    struct mf_config cfg;
    struct fake_prop fp;
    struct mf_server *s;
};

static void rig_open(struct rig *g)
{
    memset(g, 0, sizeof(*g));
    tf_open(&g->t);
    assert_int_equal(uv_loop_init(&g->loop), 0);
    assert_int_equal(mf_config_defaults(&g->cfg), 0);
    g->fp.base.ops = &fake_ops;
    g->fp.base.ctx = &g->fp;
    g->fp.t = &g->t;
    g->fp.loop = &g->loop;
    g->fp.leading = true;
    set_now(&g->fp, T0);
    struct mf_server *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->loop = &g->loop;
    s->cfg = &g->cfg;
    s->fsm = g->t.fsm;
    pthread_rwlock_init(&s->state_lock, NULL);
    assert_int_equal(mf_barrier_new(&s->barrier), 0);
    uint8_t root[MF_BARRIER_KEY_BYTES];
    assert_int_equal(RAND_bytes(root, sizeof(root)), 1);
    struct mf_barrier_seal_config sc = {.type = MF_SEAL_KEYFILE};
    assert_int_equal(mf_barrier_initialize(s->barrier, root, &sc, T0), 0);
    s->prop = &g->fp.base;
    assert_int_equal(mf_mounts_init(s), 0);
    assert_int_equal(mf_crl_init(s), 0);
    assert_int_equal(mf_sched_init(s), 0);
    g->s = s;
    engine_fail_calls = engine_revoke_calls = 0;
    engine_revoked = 0;
}

static void rig_close(struct rig *g)
{
    struct mf_server *s = g->s;
    mf_mounts_close_all(s);
    mf_crl_free(s);
    s->handles_open++; /* held until the loop has closed every handle */
    mf_sched_close(s);
    mf_barrier_free(s->barrier);
    pthread_rwlock_destroy(&s->state_lock);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    assert_int_equal(s->handles_open, 1);
    free(s);
    assert_int_equal(uv_loop_close(&g->loop), 0);
    mf_config_free(&g->cfg);
    tf_close(&g->t);
}

static void lead(struct rig *g)
{
    g->s->role = MF_RAFT_LEADER;
    mf_sched_role_changed(g->s);
}

static size_t leases_in(struct rig *g, int state)
{
    MDB_txn *txn;
    uint64_t counts[MF_LEASE_STATES];
    assert_int_equal(mf_state_read_begin(tf_st(&g->t), &txn), 0);
    assert_int_equal(mf_state_lease_counts(txn, tf_st(&g->t), counts), 0);
    mf_state_read_end(txn);
    return counts[state];
}

/* Turns the loop until `want` leases are revoked; false if it never gets there. */
static bool run_until_revoked(struct rig *g, size_t want)
{
    uint64_t give_up = mf_now_mono_ms() + GIVE_UP_MS;
    while (mf_now_mono_ms() < give_up) {
        if (leases_in(g, MAYFLY__CMD__LEASE_STATE__LEASE_REVOKED) >= want)
            return true;
        uv_run(&g->loop, UV_RUN_ONCE);
    }
    return false;
}

static void grant_bare(struct rig *g, size_t n, uint64_t ttl_ms)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tf_grant(&g->t, T0, g->t.index + 1, ttl_ms, 0), 0);
}

/* 2,500 due leases are expired and revoked in commands of at most 1,000
 * leases each, and the figures count every one once. */
static void test_server_scheduler_expires_in_batches(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    grant_bare(&g, 2500, 1000);
    set_now(&g.fp, T0 + 5000);
    lead(&g);
    assert_true(run_until_revoked(&g, 2500));
    assert_true(g.fp.expire_cmds >= 3);
    assert_true(g.fp.revoked_cmds >= 3);
    assert_int_equal(g.fp.largest_batch, BATCH);
    struct mf_sched_stats st;
    mf_sched_stats(g.s, &st);
    assert_int_equal(st.expired, 2500);
    assert_int_equal(st.revoked, 2500);
    assert_int_equal(st.lateness_count, 2500);
    rig_close(&g);
}

/* Leases not yet due stay active; a follower (not leading) proposes nothing. */
static void test_server_scheduler_waits_for_due_and_for_leadership(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    grant_bare(&g, 10, 60000);
    g.fp.leading = false;
    lead(&g); /* the node's role says leader, the proposer refuses: a deposed leader */
    for (int i = 0; i < 5; i++)
        uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.fp.expire_cmds, 0);
    g.fp.leading = true;
    set_now(&g.fp, T0 + 1000); /* not due yet (they expire at T0 + 60 s) */
    mf_sched_role_changed(g.s);
    for (int i = 0; i < 5; i++)
        uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.fp.expire_cmds, 0);
    assert_int_equal(leases_in(&g, MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE), 10);
    rig_close(&g);
}

static void on_record(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    (void)res;
    *(int *)arg = rc;
}

/* An engine whose revocations fail is retried with backoff (each retry at
 * least half the backoff after the last call) until it succeeds, each lease
 * reaches the engine once per attempt, and bare leases are revoked meanwhile
 * without waiting for it. */
static void test_server_scheduler_engine_backoff(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    json_t *rec = json_pack("{s:s, s:s}", "type", "fake", "config", "{}");
    int rc = 1;
    assert_int_equal(mf_records_put(g.s, MF_MOUNTS_ENGINES_PREFIX "db", rec, on_record, &rc), 0);
    json_decref(rec);
    while (rc == 1)
        uv_run(&g.loop, UV_RUN_ONCE);
    assert_int_equal(rc, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tf_grant_engine(&g.t, T0, g.t.index + 1, "db", 1000), 0);
    grant_bare(&g, 7, 1000);
    engine_fail_calls = 2;
    set_now(&g.fp, T0 + 5000);
    lead(&g);
    assert_true(run_until_revoked(&g, 7));
    /* The bare leases are done while the engine still fails (it succeeds
     * only on its third call, at least 150 ms after the first). */
    assert_int_equal(__atomic_load_n(&engine_revoked, __ATOMIC_SEQ_CST), 0);
    assert_true(run_until_revoked(&g, 12));
    assert_int_equal(__atomic_load_n(&engine_revoke_calls, __ATOMIC_SEQ_CST), 3);
    assert_int_equal(__atomic_load_n(&engine_revoked, __ATOMIC_SEQ_CST), 5);
    /* Backoff 100 ms then 200 ms; a retry comes no sooner than half of it. */
    assert_true(engine_call_at_ms[1] - engine_call_at_ms[0] >= 50);
    assert_true(engine_call_at_ms[2] - engine_call_at_ms[1] >= 100);
    struct mf_sched_stats st;
    mf_sched_stats(g.s, &st);
    assert_int_equal(st.retries, 10);
    assert_int_equal(st.engine_calls, 15);
    rig_close(&g);
}

static bool token_exists(struct rig *g, int who)
{
    Mayfly__Cmd__TokenRecord *r = tf_token_get(&g->t, who);
    mf_token_free(r);
    return r != NULL;
}

/* A token granted with a short TTL, owning two leases and a child token, is
 * revoked with its child once the clock passes its expiry, and its leases are
 * revoked with it; before that the scheduler leaves them alone. */
static void test_server_scheduler_revokes_expired_token_tree(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    assert_int_equal(tf_token(&g.t, T0, 1, "parent", 0, 1000), 0);
    assert_int_equal(tf_token(&g.t, T0, 2, "child", 1, 60000), 0);
    assert_int_equal(tf_token(&g.t, T0, 3, "bystander", 0, 60000), 0);
    for (uint64_t seq = 10; seq < 12; seq++)
        assert_int_equal(tf_grant_full(&g.t, T0, seq, "lease", "owned", 60000, 0,
                                       MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE, 1),
                         0);
    assert_int_equal(tf_grant_full(&g.t, T0, 12, "lease", "other", 60000, 0,
                                   MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE, 3),
                     0);
    set_now(&g.fp, T0 + 500);
    lead(&g);
    for (int i = 0; i < 5; i++)
        uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_true(token_exists(&g, 1));
    assert_true(token_exists(&g, 2));
    set_now(&g.fp, T0 + 1001);
    mf_sched_role_changed(g.s); /* look now rather than at the next idle tick */
    assert_true(run_until_revoked(&g, 2));
    assert_false(token_exists(&g, 1));
    assert_false(token_exists(&g, 2));
    assert_true(token_exists(&g, 3));
    assert_int_equal(tf_lease_state(&g.t, 10, NULL), MAYFLY__CMD__LEASE_STATE__LEASE_REVOKED);
    assert_int_equal(tf_lease_state(&g.t, 11, NULL), MAYFLY__CMD__LEASE_STATE__LEASE_REVOKED);
    assert_int_equal(tf_lease_state(&g.t, 12, NULL), MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE);
    struct mf_sched_stats st;
    mf_sched_stats(g.s, &st);
    assert_int_equal(st.tokens_revoked, 2);
    assert_int_equal(st.expired, 0); /* the leases went with the token, not by expiry */
    rig_close(&g);
}

int main(void)
{
    assert_int_equal(mf_engine_register(&fake_engine), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_scheduler_expires_in_batches),
        cmocka_unit_test(test_server_scheduler_waits_for_due_and_for_leadership),
        cmocka_unit_test(test_server_scheduler_engine_backoff),
        cmocka_unit_test(test_server_scheduler_revokes_expired_token_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
