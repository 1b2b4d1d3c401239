/* The revocation scheduler: on the leader only, it expires leases on time
 * and has engines revoke what they issued (DESIGN.md guarantee 3), and it
 * revokes expired tokens with their children and leases.
 *
 * It keeps nothing a new leader would have to rebuild: it wakes at the
 * earliest expire_at in the store's expiry index and proposes through the
 * proposer seam (proposer.h); engine calls go through mounts.h. Its own
 * state is pacing (one revoke call per engine mount at a time, backoff after
 * failures), the proposals in flight, and the figures below.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_SCHEDULER_H
#define MF_SERVER_SCHEDULER_H

#include <stdint.h>

#include "server/srv.h"

#define MF_SCHED_LATENESS_BUCKETS 10
/* Upper bounds (ms) of the lateness histogram's buckets. */
extern const uint64_t mf_sched_lateness_bounds_ms[MF_SCHED_LATENESS_BUCKETS];

/* What this node did as leader (for /metrics). */
struct mf_sched_stats {
    uint64_t expired;      /* leases proposed for expiry */
    uint64_t revoked;      /* leases proposed as revoked */
    uint64_t retries;      /* failed engine revocations (retried) */
    uint64_t irrevocable;  /* leases this leader gave up on */
    uint64_t reconciled;   /* orphan objects the reconciler revoked */
    uint64_t engine_calls; /* leases sent to an engine's revoke (repeats included) */
    uint64_t tokens_revoked; /* expired tokens revoked (children included), applied */
    /* Time from expire_at to the applied LeaseRevoked proposed by this leader. */
    uint64_t lateness_buckets[MF_SCHED_LATENESS_BUCKETS];
    uint64_t lateness_count, lateness_sum_ms, lateness_max_ms;
};

/* Needs s->loop, s->prop, s->mounts, s->crl. @return 0 or -ENOMEM.
 * mf_sched_close frees (after the loop closes its timer). */
int mf_sched_init(struct mf_server *s);
void mf_sched_close(struct mf_server *s);
/* s->role changed: a leader starts from the index at once. */
void mf_sched_role_changed(struct mf_server *s);
/* A command applied with this expire_at (grant, renew): maybe earlier. */
void mf_sched_applied(struct mf_server *s, uint64_t expire_at_ms);
void mf_sched_stats(const struct mf_server *s, struct mf_sched_stats *out);

#endif
