/* The real proposer: commands to the Raft node, results back (proposer.h).
 *
 * The leader stamps each command with its clock, never backwards, and with
 * the barrier key's term and use count (so every replica counts encryptions
 * per key: PITFALLS.md, AES-GCM nonces), then packs it and hands it to the
 * node. The node answers once the entry applied here, or failed. */
#include "server/proposer.h"

#include <errno.h>
#include <stdlib.h>

#include "common/env.h"
#include "common/err.h"
#include "node/node.h"
#include "store/barrier.h"
#include "store/fsm.h"

struct node_proposer {
    struct mf_proposer base;
    struct mf_node *node;
    struct mf_barrier *barrier;
    uint64_t last_now_ms;    /* the greatest now this node proposed */
    uint64_t applied_now_ms; /* written by the writer thread (atomic) */
};

struct pending {
    mf_propose_cb cb;
    void *arg;
};

static uint64_t leader_now(void *ctx)
{
    struct node_proposer *np = ctx;
    uint64_t now = mf_now_wall_ms();
    uint64_t applied = __atomic_load_n(&np->applied_now_ms, __ATOMIC_ACQUIRE);
    if (now < applied)
        now = applied;
    if (now < np->last_now_ms)
        now = np->last_now_ms;
    np->last_now_ms = now;
    return now;
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

int mf_proposer_node_new(struct mf_node *node, struct mf_barrier *barrier,
                         uint64_t applied_now_ms, struct mf_proposer **out)
{
    struct node_proposer *np = calloc(1, sizeof(*np));
    if (!np)
        return -ENOMEM;
    np->base.ops = &node_ops;
    np->base.ctx = np;
    np->node = node;
    np->barrier = barrier;
    np->applied_now_ms = applied_now_ms;
    *out = &np->base;
    return 0;
}

void mf_proposer_node_attach(struct mf_proposer *p, struct mf_node *node)
{
    ((struct node_proposer *)p->ctx)->node = node;
}

void mf_proposer_node_free(struct mf_proposer *p)
{
    free(p ? p->ctx : NULL);
}

void mf_proposer_applied_now(struct mf_proposer *p, uint64_t now_ms)
{
    struct node_proposer *np = p->ctx;
    __atomic_store_n(&np->applied_now_ms, now_ms, __ATOMIC_RELEASE);
}
