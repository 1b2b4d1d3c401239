/* The revocation scheduler: on the leader only, it expires leases on time.
 *
 * It never scans all leases and keeps nothing in memory that a new leader
 * would have to rebuild: it wakes at the earliest expire_at in the store's
 * expiry index (one cursor read, O(log n)), proposes LeaseExpire for the
 * leases due by now (a batch), and once that is applied (the leases are
 * `revoking`, replicated), finishes the ones no engine has to revoke (bare
 * leases and KV-bound leases: the store destroys their KV entries in the same
 * command) with LeaseRevoked. Expire is applied only if expire_at is still at
 * or before the command's now, so a renew committed in between wins.
 *
 * One proposal of each kind is in flight at a time; when it is applied, the
 * scheduler looks again. After every applied batch it re-reads the next due
 * time (a grant may have added an earlier one) and re-arms its timer.
 * Engine-issued leases wait for their engine: the revoking set is grouped by
 * engine mount (store/leases.c), each mount has one revoke call of up to
 * EXPIRY_BATCH leases in flight and its own backoff, and a batch skips the
 * leases whose LeaseRevoked is still in flight (no engine call is repeated
 * while the cluster is busy recording the last one).
 *
 * Tokens expire the same way: one TokenExpire in flight for the tokens due
 * in the token expiry index; the store revokes each one still due at the
 * command's now, with its children, and their leases become revoking. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/crl.h"
#include "server/mounts.h"
#include "server/proposer.h"
#include "server/scheduler.h"
#include "store/leases.h"
#include "store/tokens.h"

#define LOG_MOD "scheduler"
#define EXPIRY_BATCH 1000           /* leases per expire / revoked command */
#define EXPIRY_IDLE_MS 1000         /* re-check at least this often while leader */
/* Tokens per TokenExpire: each takes its children and leases along in the
 * same command, so fewer than the lease batch keeps one command small. */
#define TOKEN_EXPIRE_BATCH 256
#define TIDY_EVERY_MS 60000  /* drop revoked leases past retention */
/* After a failed proposal: never 0 ms. A timer re-armed with 0 runs again in
 * the same libuv timer pass; if proposals fail synchronously (a deposed leader
 * before its next ready batch) the loop would never leave that pass. Found by
 * jepsen (a leader paused with SIGSTOP livelocked after SIGCONT). */
#define FAILURE_BACKOFF_MS 100
#define REVOKED_RETENTION_MS (UINT64_C(24) * 3600 * 1000) /* revoked leases kept for lookups */

/* An engine mount's revocation pacing, for one opening of the mount. */
struct pace {
    struct pace *next;
    char mount[MF_LEASE_MOUNT_MAX + 1];
    uint64_t gen;             /* mf_mount_gen: a reopened mount starts afresh */
    bool revoke_inflight;     /* one revoke call per mount at a time */
    uint64_t revoke_backoff_ms;
    uint64_t next_revoke_ms;
    uint64_t next_reconcile_ms;
};

struct revoked_ctx;

struct mf_sched {
    struct mf_server *srv;
    uv_timer_t timer;
    bool expire_inflight;
    bool token_expire_inflight;           /* one TokenExpire at a time */
    bool revoked_inflight;                /* the engineless LeaseRevoked batch */
    struct revoked_ctx *revoked_pending;  /* LeaseRevoked proposals in flight */
    struct pace *paces;
    bool mounts_opened;                   /* this leader opened every recorded mount */
    uint64_t armed_at_ms;                 /* expire_at the timer aims at (0: idle) */
    uint64_t next_tidy_ms;
    struct mf_sched_stats stats;
};

const uint64_t mf_sched_lateness_bounds_ms[MF_SCHED_LATENESS_BUCKETS] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static void lateness_add(struct mf_sched_stats *st, uint64_t late_ms)
{
    size_t i = 0;
    while (i < MF_SCHED_LATENESS_BUCKETS && late_ms > mf_sched_lateness_bounds_ms[i])
        i++;
    if (i < MF_SCHED_LATENESS_BUCKETS)
        st->lateness_buckets[i]++;
    st->lateness_count++;
    st->lateness_sum_ms += late_ms;
    if (late_ms > st->lateness_max_ms)
        st->lateness_max_ms = late_ms;
}

/* The pacing of open mount m (made fresh for a new opening); NULL if out of
 * memory (then the mount is served without pacing this pass). */
static struct pace *pace_of(struct mf_sched *sc, const struct mf_mount *m)
{
    struct pace *p;
    for (p = sc->paces; p; p = p->next)
        if (strcmp(p->mount, mf_mount_name(m)) == 0)
            break;
    if (!p) {
        if (!(p = calloc(1, sizeof(*p))))
            return NULL;
        snprintf(p->mount, sizeof(p->mount), "%s", mf_mount_name(m));
        p->gen = mf_mount_gen(m);
        p->next = sc->paces;
        sc->paces = p;
    }
    if (p->gen != mf_mount_gen(m)) {
        struct pace *next = p->next;
        memset(p, 0, sizeof(*p));
        snprintf(p->mount, sizeof(p->mount), "%s", mf_mount_name(m));
        p->gen = mf_mount_gen(m);
        p->next = next;
    }
    return p;
}

static void paces_clear(struct mf_sched *sc)
{
    while (sc->paces) {
        struct pace *p = sc->paces;
        sc->paces = p->next;
        free(p);
    }
}

/* Proposes cmd; a proposal refused at once is reported to cb like one that
 * failed later, so each caller handles failure in one place. */
static void submit(struct mf_server *s, Mayfly__Cmd__Command *cmd, mf_propose_cb cb, void *arg)
{
    int rc = mf_propose(s->prop, cmd, cb, arg);
    if (rc)
        cb(arg, rc, NULL);
}

static void sched_run(struct mf_server *s);

static void on_timer(uv_timer_t *t)
{
    sched_run(t->data);
}

static void arm(struct mf_server *s, uint64_t delay_ms)
{
    if (delay_ms > EXPIRY_IDLE_MS)
        delay_ms = EXPIRY_IDLE_MS;
    uv_timer_start(&s->sched->timer, on_timer, delay_ms, 0);
}

/* An expire proposal finished (applied or failed): look again. */
static void on_expire_done(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    struct mf_server *s = arg;
    (void)res;
    s->sched->expire_inflight = false;
    if (rc)
        MF_WARN(LOG_MOD, "expire proposal failed: %s", mf_strerror(rc));
    if (mf_proposer_leading(s->prop))
        arm(s, rc ? FAILURE_BACKOFF_MS : 0);
}

/* One LeaseRevoked proposal in flight. Its lateness samples count only if
 * it applied (a deposed leader's failed proposals and retries must not
 * count). Until it is applied its leases are still in the revoking set: the
 * server keeps these in a list so the next batch of the same mount skips
 * them instead of sending them to the engine again. */
struct revoked_ctx {
    struct revoked_ctx *next;
    struct mf_server *srv;
    char mount[MF_LEASE_MOUNT_MAX + 1]; /* "" for the scheduler's engineless batch */
    size_t n;
    uint64_t *seqs;    /* ascending: the revoking set's order */
    uint64_t *late_ms;
    uint64_t data[];   /* seqs, then late_ms */
};

static void pending_unlink(struct mf_server *s, struct revoked_ctx *ctx)
{
    for (struct revoked_ctx **p = &s->sched->revoked_pending; *p; p = &(*p)->next)
        if (*p == ctx) {
            *p = ctx->next;
            return;
        }
}

static int cmp_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Is lease `seq` of `mount` in a LeaseRevoked proposal still in flight? */
static bool revoked_pending(const struct mf_server *s, const char *mount, uint64_t seq)
{
    for (const struct revoked_ctx *c = s->sched->revoked_pending; c; c = c->next)
        if (strcmp(c->mount, mount) == 0 && bsearch(&seq, c->seqs, c->n, sizeof(seq), cmp_seq))
            return true;
    return false;
}

static void on_revoked_done(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    struct revoked_ctx *ctx = arg;
    struct mf_server *s = ctx->srv;
    (void)res;
    if (!rc)
        for (size_t i = 0; i < ctx->n; i++)
            lateness_add(&s->sched->stats, ctx->late_ms[i]);
    if (!ctx->mount[0])
        s->sched->revoked_inflight = false;
    pending_unlink(s, ctx);
    struct mf_mount *m = ctx->mount[0] && !rc ? mf_mounts_find(s, ctx->mount) : NULL;
    if (m)
        mf_crl_publish(s, m); /* pki: the CRL lists them from now on */
    free(ctx);
    if (rc)
        MF_WARN(LOG_MOD, "revoked proposal failed: %s", mf_strerror(rc));
    if (mf_proposer_leading(s->prop))
        arm(s, rc ? FAILURE_BACKOFF_MS : 0);
}

static void on_logged_done(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    const char *what = arg;
    (void)res;
    if (rc)
        MF_WARN(LOG_MOD, "%s failed: %s", what, mf_strerror(rc));
}

static void propose_expire(struct mf_server *s, uint64_t *seqs, size_t n)
{
    Mayfly__Cmd__LeaseExpire m = MAYFLY__CMD__LEASE_EXPIRE__INIT;
    m.seqs = seqs;
    m.n_seqs = n;
    Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_EXPIRE;
    cmd.lease_expire = &m;
    s->sched->expire_inflight = true;
    s->sched->stats.expired += n;
    submit(s, &cmd, on_expire_done, s);
}

/* seqs ascending; mount "" for the scheduler's own engineless batch (one in
 * flight at a time). */
static void propose_revoked(struct mf_server *s, const uint64_t *seqs, size_t n,
                            const uint64_t *late_ms, const char *mount)
{
    struct revoked_ctx *ctx = malloc(sizeof(*ctx) + 2 * n * sizeof(uint64_t));
    if (!ctx)
        return;
    ctx->srv = s;
    snprintf(ctx->mount, sizeof(ctx->mount), "%s", mount);
    ctx->n = n;
    ctx->seqs = ctx->data;
    ctx->late_ms = ctx->data + n;
    memcpy(ctx->seqs, seqs, n * sizeof(uint64_t));
    memcpy(ctx->late_ms, late_ms, n * sizeof(uint64_t));
    ctx->next = s->sched->revoked_pending;
    s->sched->revoked_pending = ctx;
    Mayfly__Cmd__LeaseRevoked m = MAYFLY__CMD__LEASE_REVOKED__INIT;
    m.seqs = ctx->seqs;
    m.n_seqs = n;
    Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKED;
    cmd.lease_revoked = &m;
    if (!mount[0])
        s->sched->revoked_inflight = true;
    s->sched->stats.revoked += n;
    submit(s, &cmd, on_revoked_done, ctx);
}

/* A TokenExpire finished: count the tokens it revoked (children included)
 * and look again (their leases are revoking now). */
static void on_token_expire_done(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    struct mf_server *s = arg;
    s->sched->token_expire_inflight = false;
    if (rc)
        MF_WARN(LOG_MOD, "token expire proposal failed: %s", mf_strerror(rc));
    else if (res)
        s->sched->stats.tokens_revoked += res->count;
    if (mf_proposer_leading(s->prop))
        arm(s, rc ? FAILURE_BACKOFF_MS : 0);
}

static void propose_token_expire(struct mf_server *s, uint8_t (*hashes)[MF_TOKEN_HASH_LEN],
                                 size_t n)
{
    ProtobufCBinaryData b[TOKEN_EXPIRE_BATCH];
    MF_ASSERT(n <= TOKEN_EXPIRE_BATCH && n <= MF_TOKEN_EXPIRE_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        b[i].data = hashes[i];
        b[i].len = MF_TOKEN_HASH_LEN;
    }
    Mayfly__Cmd__TokenExpire m = MAYFLY__CMD__TOKEN_EXPIRE__INIT;
    m.hashes = b;
    m.n_hashes = n;
    Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_EXPIRE;
    cmd.token_expire = &m;
    s->sched->token_expire_inflight = true;
    submit(s, &cmd, on_token_expire_done, s);
}

static void propose_tidy(struct mf_server *s)
{
    Mayfly__Cmd__LeaseTidy m = MAYFLY__CMD__LEASE_TIDY__INIT;
    m.retention_ms = REVOKED_RETENTION_MS;
    Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_TIDY;
    cmd.lease_tidy = &m;
    submit(s, &cmd, on_logged_done, "tidy");
}

/* ---- engine revocations ---- */

#define REVOKE_BACKOFF_MIN_MS 100
#define REVOKE_BACKOFF_MAX_MS 30000
/* Engine mounts served per pass (each with its own batch; more mounts wait
 * for the next pass, which follows at once), and pages of a group read to
 * step over leases whose LeaseRevoked is still in flight. */
#define REVOKING_GROUPS_MAX 64
#define REVOKING_SCAN_PAGES 4

struct revoke_batch {
    char mount[MF_LEASE_MOUNT_MAX + 1];
    size_t n;
    uint64_t seqs[EXPIRY_BATCH];
    uint64_t expire_at[EXPIRY_BATCH];
};

static void propose_irrevocable(struct mf_server *s, uint64_t seq, const char *error)
{
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    if (mf_barrier_encrypt(s->barrier, MF_SRV_LEASE_ERROR_PATH, seq, error, strlen(error), &ct,
                           &ct_len))
        return;
    Mayfly__Cmd__LeaseIrrevocable m = MAYFLY__CMD__LEASE_IRREVOCABLE__INIT;
    m.seq = seq;
    m.last_error.data = ct;
    m.last_error.len = ct_len;
    Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_IRREVOCABLE;
    cmd.lease_irrevocable = &m;
    s->sched->stats.irrevocable++;
    submit(s, &cmd, on_logged_done, "irrevocable");
    free(ct);
}

static void on_engine_revoked(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct revoke_batch *b = arg;
    struct mf_mount *m;
    uint64_t now = mf_propose_now(s->prop);
    if (mf_mjob_rc(j) == MF_ENOTLEADER || mf_mjob_rc(j) == MF_ECLOSED) {
        free(b);
        return;
    }
    const int *results = mf_mjob_results(j);
    uint64_t ok[EXPIRY_BATCH], late[EXPIRY_BATCH];
    size_t n_ok = 0, n_failed = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (results && results[i] == 0) {
            late[n_ok] = now > b->expire_at[i] ? now - b->expire_at[i] : 0;
            ok[n_ok++] = b->seqs[i];
        } else {
            n_failed++;
            s->sched->stats.retries++;
            if (now > b->expire_at[i] + s->cfg->revoke_deadline_ms)
                propose_irrevocable(s, b->seqs[i], mf_mjob_err(j)[0] ? mf_mjob_err(j)
                                                                     : "revocation failed");
        }
    }
    if (n_ok)
        propose_revoked(s, ok, n_ok, late, b->mount);
    struct pace *p = mf_mounts_get(s, b->mount, &m) == 0 ? pace_of(s->sched, m) : NULL;
    if (p) {
        p->revoke_inflight = false;
        uint64_t *backoff = &p->revoke_backoff_ms;
        if (n_failed) {
            /* Exponential backoff with jitter, no attempt limit: the deadline
             * (revoke_deadline_ms after expire_at) decides when to give up. */
            *backoff = *backoff ? *backoff * 2 : REVOKE_BACKOFF_MIN_MS;
            if (*backoff > REVOKE_BACKOFF_MAX_MS)
                *backoff = REVOKE_BACKOFF_MAX_MS;
            uint64_t jitter = mf_rand_u64() % (*backoff / 2 + 1);
            p->next_revoke_ms = now + *backoff / 2 + jitter;
            MF_WARN(LOG_MOD, "engine '%s': %zu revocation(s) failed (%s); retry in %" PRIu64
                             " ms", b->mount, n_failed, mf_mjob_err(j), *backoff);
        } else {
            *backoff = 0;
        }
    }
    free(b);
    if (mf_proposer_leading(s->prop))
        arm(s, n_failed ? FAILURE_BACKOFF_MS : 0);
}

/* Reconciler: objects in the target whose lease is revoked or unknown are
 * revoked again (a paused, deposed leader may have created one late). */
static void on_reconcile_list(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    char *mount = arg;
    size_t n = 0;
    const uint64_t *seqs = mf_mjob_seqs(j, &n);
    struct mf_mount *m;
    if (mf_mjob_rc(j) || mf_mounts_get(s, mount, &m)) {
        free(mount);
        return;
    }
    uint64_t orphans[EXPIRY_BATCH];
    size_t k = 0;
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn) == 0) {
        /* The applied index of the state this transaction reads. */
        uint64_t applied = 0;
        mf_state_meta_get_u64(txn, mf_fsm_state(s->fsm), "applied", &applied);
        for (size_t i = 0; i < n && k < EXPIRY_BATCH; i++) {
            if (seqs[i] > applied)
                continue; /* its grant may not be applied here yet */
            Mayfly__Cmd__LeaseRecord *rec = NULL;
            int rc = mf_lease_get(txn, mf_fsm_state(s->fsm), seqs[i], &rec);
            bool orphan = rc == MF_ENOTFOUND ||
                          (rc == 0 && (rec->state == MAYFLY__CMD__LEASE_STATE__LEASE_REVOKED ||
                                       rec->state == MAYFLY__CMD__LEASE_STATE__LEASE_IRREVOCABLE));
            if (orphan)
                orphans[k++] = seqs[i];
            mf_lease_free(rec);
        }
        mf_srv_read_end(s, txn);
    }
    if (k) {
        MF_WARN(LOG_MOD, "reconciler: %zu object(s) at '%s' outlived their lease; revoking",
                k, mount);
        s->sched->stats.reconciled += k;
        mf_mounts_revoke(m, orphans, k, NULL, NULL);
    }
    free(mount);
}

/* Up to EXPIRY_BATCH leases of `engine`'s revoking group, skipping those a
 * LeaseRevoked in flight already covers, into seqs[] with their expire_at. */
static size_t revoking_group_batch(struct mf_server *s, MDB_txn *txn, const char *engine,
                                   uint64_t *seqs, uint64_t *expire_at)
{
    struct mf_state *st = mf_fsm_state(s->fsm);
    uint64_t page[EXPIRY_BATCH], after = 0;
    size_t kept = 0;
    for (int p = 0; p < REVOKING_SCAN_PAGES && kept < EXPIRY_BATCH; p++) {
        size_t n = 0;
        if (mf_lease_revoking(txn, st, engine, after, page, EXPIRY_BATCH, &n) || n == 0)
            break;
        after = page[n - 1];
        for (size_t i = 0; i < n && kept < EXPIRY_BATCH; i++) {
            Mayfly__Cmd__LeaseRecord *rec = NULL;
            if (revoked_pending(s, engine, page[i]) ||
                mf_lease_get(txn, st, page[i], &rec) != 0)
                continue;
            seqs[kept] = page[i];
            expire_at[kept++] = rec->expire_at_ms;
            mf_lease_free(rec);
        }
        if (n < EXPIRY_BATCH)
            break;
    }
    return kept;
}

/* Walks the revoking set group by group (one group per engine mount, ""
 * for leases no engine revokes): the engineless group is finished at once
 * (into out/late), and every mount that is ready (no call in flight, not
 * backing off, or gone) gets its own batch. A mount whose database is down
 * holds back nobody else: its group is skipped without being read. */
static size_t revoking_split(struct mf_server *s, MDB_txn *txn, uint64_t now, uint64_t *out,
                             uint64_t *late, struct revoke_batch **batches, size_t *n_batches,
                             size_t batches_cap)
{
    struct mf_state *st = mf_fsm_state(s->fsm);
    char group[2][MF_LEASE_MOUNT_MAX + 1];
    size_t kept = 0;
    const char *after = NULL;
    for (int g = 0; g < REVOKING_GROUPS_MAX && *n_batches < batches_cap; g++) {
        char *engine = group[g % 2];
        if (mf_lease_revoking_next_engine(txn, st, after, engine, sizeof(group[0])) != 0)
            break;
        after = engine;
        if (!engine[0]) {
            if (s->sched->revoked_inflight)
                continue;
            uint64_t expire_at[EXPIRY_BATCH];
            kept = revoking_group_batch(s, txn, "", out, expire_at);
            /* Revoked early on request (revoke before expiry) is not late. */
            for (size_t i = 0; i < kept; i++)
                late[i] = now > expire_at[i] ? now - expire_at[i] : 0;
            continue;
        }
        struct mf_mount *m;
        struct pace *p = mf_mounts_get(s, engine, &m) == 0 ? pace_of(s->sched, m) : NULL;
        if (p && (p->revoke_inflight || now < p->next_revoke_ms))
            continue;
        struct revoke_batch *b = calloc(1, sizeof(*b));
        if (!b)
            break;
        snprintf(b->mount, sizeof(b->mount), "%s", engine);
        b->n = revoking_group_batch(s, txn, engine, b->seqs, b->expire_at);
        if (b->n)
            batches[(*n_batches)++] = b;
        else
            free(b);
    }
    return kept;
}

static void start_engine_revocations(struct mf_server *s, uint64_t now,
                                     struct revoke_batch **batches, size_t n_batches)
{
    for (size_t i = 0; i < n_batches; i++) {
        struct revoke_batch *b = batches[i];
        struct mf_mount *m;
        if (mf_mounts_get(s, b->mount, &m) != 0) {
            /* The mount is gone: nothing can revoke these; after the deadline
             * they become irrevocable for an operator to force. */
            for (size_t k = 0; k < b->n; k++)
                if (now > b->expire_at[k] + s->cfg->revoke_deadline_ms)
                    propose_irrevocable(s, b->seqs[k], "no engine is mounted there any more");
            free(b);
            continue;
        }
        struct pace *p = pace_of(s->sched, m);
        if (p)
            p->revoke_inflight = true;
        s->sched->stats.engine_calls += b->n;
        if (mf_mounts_revoke(m, b->seqs, b->n, on_engine_revoked, b)) {
            if (p)
                p->revoke_inflight = false;
            free(b);
        }
    }
}

static void reconcile(struct mf_server *s, uint64_t now)
{
    for (struct mf_mount *m = mf_mounts_first(s); m; m = mf_mounts_next(m)) {
        struct pace *p = pace_of(s->sched, m);
        if (!p || now < p->next_reconcile_ms)
            continue;
        p->next_reconcile_ms = now + s->cfg->reconcile_interval_ms;
        char *name = strdup(mf_mount_name(m));
        if (name && mf_mounts_list(m, on_reconcile_list, name))
            free(name);
    }
}

static void sched_run(struct mf_server *s)
{
    /* The core's role, not the one cached at the last ready batch. */
    if (!mf_proposer_leading(s->prop) || s->failed)
        return;
    /* Sealed: nothing can be read or proposed, but keep looking. A leader
     * elected while sealed (a restart with Shamir shares) must start once an
     * operator unseals it; unsealing has no hook here. Found by the CRL test:
     * until a grant re-armed the timer, nothing expired. */
    if (mf_barrier_sealed(s->barrier))
        return arm(s, EXPIRY_IDLE_MS);
    uint64_t now = mf_propose_now(s->prop);
    /* Leader time never runs backwards; mf_propose_now already advanced it,
     * which is harmless: the next command carries at least this time. */
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn))
        return arm(s, EXPIRY_IDLE_MS);
    struct mf_state *st = mf_fsm_state(s->fsm);
    uint64_t due[EXPIRY_BATCH], done[EXPIRY_BATCH], late[EXPIRY_BATCH];
    size_t n_due = 0, n_done = 0, n_batches = 0;
    struct revoke_batch *batches[REVOKING_GROUPS_MAX];
    struct mf_sched *sc = s->sched;
    if (!sc->expire_inflight)
        mf_lease_due(txn, st, now, NULL, due, EXPIRY_BATCH, &n_due, NULL);
    uint8_t tokens_due[TOKEN_EXPIRE_BATCH][MF_TOKEN_HASH_LEN];
    size_t n_tokens = 0;
    if (!sc->token_expire_inflight &&
        mf_token_due(txn, st, now, tokens_due, TOKEN_EXPIRE_BATCH, &n_tokens) != 0)
        n_tokens = 0; /* logged by nobody: the next pass reads again */
    n_done = revoking_split(s, txn, now, done, late, batches, &n_batches, REVOKING_GROUPS_MAX);
    uint64_t next_at = 0, next_seq = 0, token_at = 0;
    uint8_t token_hash[MF_TOKEN_HASH_LEN];
    int has_next = mf_lease_next_due(txn, st, &next_at, &next_seq) == 0;
    int has_token = mf_token_next_due(txn, st, &token_at, token_hash) == 0;
    mf_srv_read_end(s, txn);

    if (n_due)
        propose_expire(s, due, n_due);
    if (n_tokens)
        propose_token_expire(s, tokens_due, n_tokens);
    if (n_done)
        propose_revoked(s, done, n_done, late, "");
    start_engine_revocations(s, now, batches, n_batches);
    if (!sc->mounts_opened) {
        /* A new leader opens every mount: reconcilers and CRLs need no client. */
        sc->mounts_opened = true;
        mf_mounts_open_all(s);
    }
    mf_crl_tick(s, mf_now_wall_ms());
    reconcile(s, now);
    if (now >= sc->next_tidy_ms) {
        sc->next_tidy_ms = now + TIDY_EVERY_MS;
        propose_tidy(s);
    }
    uint64_t delay = EXPIRY_IDLE_MS;
    if (has_next)
        delay = next_at > now ? next_at - now : (sc->expire_inflight ? EXPIRY_IDLE_MS : 0);
    if (has_token) {
        /* A due token not in flight now was not proposed (a read or a
         * proposal failed): look again after the failure backoff, never 0. */
        uint64_t d = token_at > now ? token_at - now
                                    : (sc->token_expire_inflight ? EXPIRY_IDLE_MS
                                                                 : FAILURE_BACKOFF_MS);
        if (d < delay)
            delay = d;
        if (!has_next || token_at < next_at)
            next_at = token_at;
    }
    sc->armed_at_ms = has_next || has_token ? next_at : 0;
    arm(s, delay);
}

int mf_sched_init(struct mf_server *s)
{
    struct mf_sched *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return -ENOMEM;
    sc->srv = s;
    uv_timer_init(s->loop, &sc->timer);
    sc->timer.data = s;
    s->sched = sc;
    return 0;
}

void mf_sched_role_changed(struct mf_server *s)
{
    struct mf_sched *sc = s->sched;
    if (!sc)
        return;
    sc->mounts_opened = false; /* a new term of leadership opens them again */
    paces_clear(sc);           /* mounts were dropped: their pacing starts afresh */
    if (s->role == MF_RAFT_LEADER) {
        MF_INFO(LOG_MOD, "leader: resuming expiry from the index");
        arm(s, 0);
    } else {
        uv_timer_stop(&sc->timer);
    }
}

void mf_sched_applied(struct mf_server *s, uint64_t expire_at_ms)
{
    struct mf_sched *sc = s->sched;
    if (!sc || s->role != MF_RAFT_LEADER || !expire_at_ms)
        return;
    /* A grant or renew may have put an earlier lease first. */
    if (sc->armed_at_ms == 0 || expire_at_ms < sc->armed_at_ms) {
        uint64_t now = mf_now_wall_ms();
        sc->armed_at_ms = expire_at_ms;
        arm(s, expire_at_ms > now ? expire_at_ms - now : 0);
    }
}

void mf_sched_stats(const struct mf_server *s, struct mf_sched_stats *out)
{
    if (s->sched)
        *out = s->sched->stats;
    else
        memset(out, 0, sizeof(*out));
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mf_server *s = h->data;
    free(s->sched); /* h lives in it */
    s->sched = NULL;
    mf_srv_handle_released(s);
}

void mf_sched_close(struct mf_server *s)
{
    struct mf_sched *sc = s->sched;
    if (!sc)
        return;
    uv_timer_stop(&sc->timer);
    paces_clear(sc);
    /* In-flight proposals hold their contexts; they are answered (failed)
     * before the node stops, so nothing here outlives the server. */
    s->handles_open++;
    uv_close((uv_handle_t *)&sc->timer, on_timer_closed);
}
