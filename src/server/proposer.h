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
 * previous leader's clock may have run ahead). It takes the wall clock only
 * while the node's clock view agrees with a majority of voters and the wall
 * clock has not jumped; otherwise it advances by the monotonic clock
 * (leader_clock.h). While the view does not agree, commands that set a time
 * from now (lease grant, renew and activation with a TTL, token create with
 * a TTL, token renew) are refused: README.md "Time model".
 *
 * Threads: loop thread only, except mf_proposer_applied_now (writer thread). */
#ifndef MF_SERVER_PROPOSER_H
#define MF_SERVER_PROPOSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"

struct mf_node;
struct mf_barrier;

/* The outcome of one proposal, called exactly once:
 *   rc 0, res: applied (res->code == 0);
 *   rc = res->code (< 0), res: applied as a deterministic refusal (res->error
 *       says why: CAS mismatch, quota, not found ...);
 *   rc MF_EUNAVAIL, res with res->error naming the clock skew: a time-bearing
 *       command refused before proposing, because this leader's clock does
 *       not agree with a majority of voters (called before mf_propose
 *       returns 0);
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

/* The node's clock, for reads and figures (the real proposer's). */
struct mf_proposer_clock_ops {
    int (*check)(void *ctx, bool expired, char *why, size_t why_len);
    uint64_t (*refusals)(void *ctx);
};

struct mf_proposer {
    const struct mf_proposer_ops *ops;
    void *ctx;
    const struct mf_proposer_clock_ops *clock; /* NULL (a fake): trusted, no refusals */
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

/* May this node rely on its clock to serve a lease-bound secret (`expired`
 * false), or to call one expired (`expired` true)? Refused when its wall
 * clock jumped against its monotonic clock since the last applied now (by
 * more than twice the bound: nodes may differ by that much), and when its
 * clock view does not agree with a majority of voters (to call a lease
 * expired: only when measured ahead by more than the bound; an unmeasured
 * clock's "expired" is still a safe refusal). A single voter is trusted.
 * @return 0; MF_EUNAVAIL with `why` naming the skew, counted as one
 * refusal. */
static inline int mf_proposer_clock_check(struct mf_proposer *p, bool expired, char *why,
                                          size_t why_len)
{
    return p->clock ? p->clock->check(p->ctx, expired, why, why_len) : 0;
}
/* Clock refusals on this node so far (writes and reads). */
static inline uint64_t mf_proposer_clock_refusals(struct mf_proposer *p)
{
    return p->clock ? p->clock->refusals(p->ctx) : 0;
}

/* The storage alarm on the leader (storage.h): while `why` is non-NULL,
 * the real proposer refuses every command that grows the data
 * (store/alarms.h mf_alarm_cmd_grows) before it is appended, calling cb
 * with MF_EQUOTA and res->error = why before mf_propose returns 0 (as for
 * the clock). NULL lifts it. Copied; a fake proposer ignores it. */
void mf_proposer_storage_refuse(struct mf_proposer *p, const char *why);

/* The feature gate (cluster_version.h): before appending a command whose
 * op needs a feature level above 1 (store/features.h), the real proposer
 * calls gate(ctx, op, why, len); a nonzero return (MF_EUNAVAIL) refuses it:
 * cb gets that code with res->error = why before mf_propose returns 0 (as
 * for the clock). NULL removes the gate; a fake proposer ignores it. */
typedef int (*mf_proposer_gate_fn)(void *ctx, int op, char *why, size_t why_len);
void mf_proposer_feature_gate(struct mf_proposer *p, mf_proposer_gate_fn gate, void *ctx);

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
