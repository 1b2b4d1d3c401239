/* The real proposer: commands to the Raft node, results back (proposer.h).
 *
 * The leader stamps each command with its clock (leader_clock.h: the wall
 * clock only while the node's clock view agrees and it has not jumped; the
 * monotonic clock otherwise), never backwards, and with
 * the barrier key's term and use count (so every replica counts encryptions
 * per key: PITFALLS.md, AES-GCM nonces), then packs it and hands it to the
 * node. The node answers once the entry applied here, or failed. */
#include "server/proposer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/env.h"
#include "common/err.h"
#include "node/node.h"
#include "server/leader_clock.h"
#include "store/barrier.h"
#include "store/alarms.h"
#include "store/features.h"
#include "store/fsm.h"

struct node_proposer {
    struct mf_proposer base;
    struct mf_node *node;
    struct mf_barrier *barrier;
    struct mf_leader_clock clock; /* loop thread */
    /* The applied now and the monotonic time it was reported (writer
     * thread), a pair: under `lock`. */
    pthread_mutex_t lock;
    uint64_t applied_now_ms;
    uint64_t applied_mono_ms;
    uint64_t clock_refusals; /* atomic: read by the metrics snapshot */
    bool storage_refuse;     /* loop thread: storage.c's alarm */
    char storage_why[512];
    mf_proposer_gate_fn gate; /* loop thread: cluster_version.c's feature gate */
    void *gate_ctx;
};

struct pending {
    mf_propose_cb cb;
    void *arg;
};

static void clock_view(struct node_proposer *np, struct mf_node_clock *nc,
                       struct mf_leader_clock_view *v)
{
    mf_node_clock(np->node, nc);
    v->agrees = nc->agrees;
    v->voters = nc->voters;
    v->max_skew_ms = nc->max_skew_ms;
}

/* The applied now, learnt when the writer reported it: the candidate is
 * then no later than the applied now plus the real time since. */
static uint64_t observe_applied(struct node_proposer *np)
{
    pthread_mutex_lock(&np->lock);
    uint64_t applied = np->applied_now_ms, applied_mono = np->applied_mono_ms;
    pthread_mutex_unlock(&np->lock);
    mf_leader_clock_observe(&np->clock, applied, applied_mono);
    return applied;
}

static uint64_t leader_now(void *ctx)
{
    struct node_proposer *np = ctx;
    uint64_t applied = observe_applied(np);
    struct mf_node_clock nc;
    struct mf_leader_clock_view v;
    clock_view(np, &nc, &v);
    return mf_leader_clock_stamp(&np->clock, mf_now_wall_ms(), mf_now_mono_ms(), applied, &v);
}

static int clock_check(void *ctx, bool expired, char *why, size_t why_len)
{
    struct node_proposer *np = ctx;
    struct mf_node_clock nc;
    struct mf_leader_clock_view v;
    clock_view(np, &nc, &v);
    observe_applied(np);
    int64_t jump = 0;
    bool jumped = v.voters > 1 &&
                  mf_leader_clock_jumped(&np->clock, mf_now_wall_ms(), mf_now_mono_ms(),
                                         2 * nc.max_skew_ms, &jump);
    bool refuse = jumped || (!mf_leader_clock_trusted(&v) &&
                             (!expired || (nc.measured && nc.offset_ms > (int64_t)nc.max_skew_ms)));
    if (!refuse)
        return 0;
    __atomic_add_fetch(&np->clock_refusals, 1, __ATOMIC_RELAXED);
    /* The voters' view names the skew best; the local check covers the
     * time until the probes notice a jump. */
    if (mf_leader_clock_trusted(&v))
        mf_leader_clock_jump_reason(why, why_len, jump, 2 * nc.max_skew_ms);
    else
        mf_leader_clock_reason(why, why_len, nc.measured, nc.offset_ms, nc.agreeing, nc.voters,
                               nc.max_skew_ms);
    return MF_EUNAVAIL;
}

/* May this leader stamp a time-bearing command? */
static int write_clock_check(struct node_proposer *np, char *why, size_t why_len)
{
    struct mf_node_clock nc;
    struct mf_leader_clock_view v;
    clock_view(np, &nc, &v);
    if (mf_leader_clock_trusted(&v))
        return 0;
    __atomic_add_fetch(&np->clock_refusals, 1, __ATOMIC_RELAXED);
    mf_leader_clock_reason(why, why_len, nc.measured, nc.offset_ms, nc.agreeing, nc.voters,
                           nc.max_skew_ms);
    return MF_EUNAVAIL;
}

static uint64_t clock_refusals(void *ctx)
{
    return __atomic_load_n(&((struct node_proposer *)ctx)->clock_refusals, __ATOMIC_RELAXED);
}

/* Does this command set a time from the stamped now (an expire_at)? The
 * scheduler's own commands (expire, revoked, token expire) and revocations
 * never do: they go on with the monotonic candidate. */
static bool time_bearing(const Mayfly__Cmd__Command *cmd)
{
    switch (cmd->op_case) {
    case MAYFLY__CMD__COMMAND__OP_LEASE_GRANT:
    case MAYFLY__CMD__COMMAND__OP_LEASE_RENEW:
    case MAYFLY__CMD__COMMAND__OP_TOKEN_RENEW:
        return true;
    case MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE:
        return cmd->lease_activate->ttl_ms != 0;
    case MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE:
        return cmd->token_create->ttl_ms != 0 || cmd->token_create->max_ttl_ms != 0;
    default:
        return false;
    }
}

/* A time-bearing command on a leader whose clock does not agree: answered
 * at once with the reason (proposer.h). */
static bool refuse_for_clock(struct node_proposer *np, const Mayfly__Cmd__Command *cmd,
                             mf_propose_cb cb, void *arg)
{
    char why[256];
    if (!time_bearing(cmd) || write_clock_check(np, why, sizeof(why)) == 0)
        return false;
    Mayfly__Cmd__Result res = MAYFLY__CMD__RESULT__INIT;
    res.code = MF_EUNAVAIL;
    res.error = why;
    cb(arg, MF_EUNAVAIL, &res);
    return true;
}

/* A command that grows the data while a storage alarm holds (proposer.h). */
static bool refuse_for_storage(struct node_proposer *np, const Mayfly__Cmd__Command *cmd,
                               mf_propose_cb cb, void *arg)
{
    if (!np->storage_refuse || !mf_alarm_cmd_grows(cmd))
        return false;
    Mayfly__Cmd__Result res = MAYFLY__CMD__RESULT__INIT;
    res.code = MF_EQUOTA;
    res.error = np->storage_why;
    cb(arg, MF_EQUOTA, &res);
    return true;
}

/* An op of a feature level the cluster has not reached (proposer.h). */
static bool refuse_for_feature(struct node_proposer *np, const Mayfly__Cmd__Command *cmd,
                               mf_propose_cb cb, void *arg)
{
    char why[512];
    int code;
    if (!np->gate || mf_feature_op_level((int)cmd->op_case) <= 1 ||
        (code = np->gate(np->gate_ctx, (int)cmd->op_case, why, sizeof(why))) == 0)
        return false;
    Mayfly__Cmd__Result res = MAYFLY__CMD__RESULT__INIT;
    res.code = code;
    res.error = why;
    cb(arg, code, &res);
    return true;
}

static void on_node_result(void *arg, int rc, uint64_t index, void *result)
{
    struct pending p = *(struct pending *)arg;
    free(arg);
    (void)index;
    const Mayfly__Cmd__Result *res = result;
    if (rc)
        return p.cb(p.arg, rc, NULL);
    if (!res)
        return p.cb(p.arg, MF_EINTERNAL, NULL);
    p.cb(p.arg, res->code, res);
}

static int node_propose(void *ctx, Mayfly__Cmd__Command *cmd, mf_propose_cb cb, void *arg)
{
    struct node_proposer *np = ctx;
    if (refuse_for_feature(np, cmd, cb, arg) || refuse_for_clock(np, cmd, cb, arg) ||
        refuse_for_storage(np, cmd, cb, arg))
        return 0;
    if (!cmd->now_ms)
        cmd->now_ms = leader_now(np);
    if (!mf_barrier_sealed(np->barrier))
        mf_barrier_uses_take_command(np->barrier, &cmd->key_term, &cmd->key_encryptions);
    size_t len = mayfly__cmd__command__get_packed_size(cmd);
    if (len > MF_FSM_COMMAND_MAX)
        return MF_ETOOLARGE;
    uint8_t *buf = malloc(len ? len : 1);
    struct pending *p = malloc(sizeof(*p));
    if (!buf || !p) {
        free(buf);
        free(p);
        return -ENOMEM;
    }
    mayfly__cmd__command__pack(cmd, buf);
    p->cb = cb;
    p->arg = arg;
    int rc = mf_node_propose(np->node, buf, len, on_node_result, p);
    free(buf);
    if (rc) {
        free(p);
        /* Too large for one Raft entry is the request's fault: say so (a
         * client retries UNAVAILABLE). */
        return rc == -ENOBUFS ? MF_ERATELIMIT : rc == MF_ETOOLARGE ? MF_ETOOLARGE : MF_EUNAVAIL;
    }
    return 0;
}

static uint64_t node_next_index(void *ctx)
{
    return mf_node_next_index(((struct node_proposer *)ctx)->node);
}

static bool node_leading(void *ctx)
{
    return mf_node_is_leader(((struct node_proposer *)ctx)->node);
}

static const struct mf_proposer_ops node_ops = {
    .propose = node_propose,
    .now_ms = leader_now,
    .next_index = node_next_index,
    .leading = node_leading,
};

static const struct mf_proposer_clock_ops node_clock_ops = {
    .check = clock_check,
    .refusals = clock_refusals,
};

int mf_proposer_node_new(struct mf_node *node, struct mf_barrier *barrier,
                         uint64_t applied_now_ms, struct mf_proposer **out)
{
    struct node_proposer *np = calloc(1, sizeof(*np));
    if (!np)
        return -ENOMEM;
    np->base.ops = &node_ops;
    np->base.clock = &node_clock_ops;
    np->base.ctx = np;
    np->node = node;
    np->barrier = barrier;
    np->applied_now_ms = applied_now_ms;
    np->applied_mono_ms = mf_now_mono_ms();
    mf_leader_clock_init(&np->clock, applied_now_ms, np->applied_mono_ms);
    if (pthread_mutex_init(&np->lock, NULL)) {
        free(np);
        return -ENOMEM;
    }
    *out = &np->base;
    return 0;
}

void mf_proposer_node_attach(struct mf_proposer *p, struct mf_node *node)
{
    ((struct node_proposer *)p->ctx)->node = node;
}

void mf_proposer_node_free(struct mf_proposer *p)
{
    if (!p)
        return;
    struct node_proposer *np = p->ctx;
    pthread_mutex_destroy(&np->lock);
    free(np);
}

void mf_proposer_storage_refuse(struct mf_proposer *p, const char *why)
{
    if (p->ops != &node_ops)
        return;
    struct node_proposer *np = p->ctx;
    np->storage_refuse = why != NULL;
    snprintf(np->storage_why, sizeof(np->storage_why), "%s", why ? why : "");
}

void mf_proposer_feature_gate(struct mf_proposer *p, mf_proposer_gate_fn gate, void *ctx)
{
    if (p->ops != &node_ops)
        return;
    struct node_proposer *np = p->ctx;
    np->gate = gate;
    np->gate_ctx = ctx;
}

void mf_proposer_applied_now(struct mf_proposer *p, uint64_t now_ms)
{
    struct node_proposer *np = p->ctx;
    uint64_t mono = mf_now_mono_ms();
    pthread_mutex_lock(&np->lock);
    if (now_ms > np->applied_now_ms) { /* the first report of each now counts */
        np->applied_now_ms = now_ms;
        np->applied_mono_ms = mono;
    }
    pthread_mutex_unlock(&np->lock);
}
