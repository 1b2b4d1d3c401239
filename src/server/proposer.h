/* The proposer seam: one call to propose a command and learn its applied
 * result, or an error code.
 *
 * Everything that writes (client operations, the scheduler, the CRL
 * publisher, the reconciler's bookkeeping, dev init) goes through
 * mf_propose. The real proposer (mf_proposer_node_new) stamps the command
 * with the leader's clock and the barrier key's use count, packs it and hands
 * it to the node; a test may supply its own ops (a fake that applies commands
 * to an fsm directly) without a Raft node.
 *
 * The leader's clock: `now` in commands never runs backwards, neither across
 * this leader's proposals nor below what the cluster already applied (a
 * previous leader's clock may have run ahead). The clock-safety issue
 * changes how it advances: here, and nowhere else.
 *
 * Threads: loop thread only, except mf_proposer_applied_now (writer thread). */
#ifndef MF_SERVER_PROPOSER_H
#define MF_SERVER_PROPOSER_H

#include <stdbool.h>
#include <stdint.h>

#include "command.pb-c.h"

struct mf_node;
struct mf_barrier;

/* The outcome of one proposal, called exactly once:
 *   rc 0, res: applied (res->code == 0);
 *   rc = res->code (< 0), res: applied as a deterministic refusal (res->error
 *       says why: CAS mismatch, quota, not found ...);
 *   rc MF_EUNKNOWN, res NULL: not known whether it applied (it may still);
 *   rc other, res NULL: not applied (leadership changed: retry).
 * `res` belongs to the proposer; valid during the call only. */
typedef void (*mf_propose_cb)(void *arg, int rc, const Mayfly__Cmd__Result *res);

struct mf_proposer_ops {
    int (*propose)(void *ctx, Mayfly__Cmd__Command *cmd, mf_propose_cb cb, void *arg);
    uint64_t (*now_ms)(void *ctx);     /* the leader's clock (advances it) */
    uint64_t (*next_index)(void *ctx); /* the index the next proposal gets */
    bool (*leading)(void *ctx);        /* may this node propose now? */
};

struct mf_proposer {
    const struct mf_proposer_ops *ops;
    void *ctx;
};

/* Proposes `cmd` (borrowed until return; now_ms stamped if 0).
 * @return 0 and cb later; or, without calling cb: MF_ETOOLARGE (the packed
 *   command is over MF_FSM_COMMAND_MAX, or over what one Raft entry may
 *   hold), MF_ERATELIMIT (the node's proposal
 *   queue is full), MF_EUNAVAIL (not the leader), -ENOMEM. */
static inline int mf_propose(struct mf_proposer *p, Mayfly__Cmd__Command *cmd, mf_propose_cb cb,
                             void *arg)
{
    return p->ops->propose(p->ctx, cmd, cb, arg);
}
static inline uint64_t mf_propose_now(struct mf_proposer *p) { return p->ops->now_ms(p->ctx); }
static inline uint64_t mf_propose_next_index(struct mf_proposer *p)
{
    return p->ops->next_index(p->ctx);
}
static inline bool mf_proposer_leading(struct mf_proposer *p) { return p->ops->leading(p->ctx); }

/* The real proposer over a Raft node. `applied_now_ms`: the fsm's now at
 * start. Made before the node starts (its writer thread reports applied
 * time at once), then attached to it; nothing may be proposed before.
 * Freed with mf_proposer_node_free. @return 0 or -ENOMEM. */
int mf_proposer_node_new(struct mf_node *node, struct mf_barrier *barrier,
                         uint64_t applied_now_ms, struct mf_proposer **out);
void mf_proposer_node_attach(struct mf_proposer *p, struct mf_node *node);
void mf_proposer_node_free(struct mf_proposer *p);
/* Writer thread: the fsm applied commands up to time `now_ms`. Only for the
 * proposer made by mf_proposer_node_new. */
void mf_proposer_applied_now(struct mf_proposer *p, uint64_t now_ms);

#endif
