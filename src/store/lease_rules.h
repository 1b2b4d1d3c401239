/* Lease rules: how long a lease lives, and whether its secret may be served.
 * The one copy of each rule, shared by the server (which picks the ttl and
 * answers reads) and the state machine (which applies grants, activations and
 * renewals).
 *
 * Pure: no clock (time comes in as now_ms), no I/O, no LMDB, no allocation.
 * All times and durations are milliseconds; unsigned arithmetic here never
 * wraps (sums saturate or are bounded by checked limits).
 */
#ifndef MF_STORE_LEASE_RULES_H
#define MF_STORE_LEASE_RULES_H

#include <stdbool.h>
#include <stdint.h>

/* Bounds a grant command must respect, so that now + ttl and now + max_ttl
 * cannot overflow. Far beyond any real value: config caps ttls at 10 years
 * and wall clocks are near 2^41 ms. */
#define MF_LEASE_TTL_LIMIT_MS (UINT64_MAX / 4) /* largest ttl or max ttl granted */
#define MF_LEASE_NOW_LIMIT_MS (UINT64_MAX / 2) /* latest command time a grant accepts */

/* What decides a new lease's ttl and max ttl. 0 means "not given" for the
 * requested and role fields and "no cap" for the policy field; the cluster
 * fields always apply (config: default_lease_ttl_ms, max_lease_ttl_ms). */
struct mf_lease_ttl_inputs {
    uint64_t requested_ttl_ms;       /* the client's ttl */
    uint64_t requested_max_ttl_ms;   /* the client's max ttl */
    uint64_t role_default_ttl_ms;    /* an engine role's default ttl (bare leases: 0) */
    uint64_t role_max_ttl_ms;        /* an engine role's cap (bare leases: 0) */
    uint64_t policy_max_ttl_ms;      /* the authorising policy rule's cap */
    uint64_t cluster_default_ttl_ms; /* used when neither client nor role names a ttl */
    uint64_t cluster_max_ttl_ms;     /* the hard cap on every lease */
};

/* The ttl and max ttl of a new lease (bare or engine credential):
 *   max_ttl = cluster max, lowered by each given role max, policy max and
 *             requested max (the smallest wins; none can raise it);
 *   ttl     = requested ttl, else the role's default, else the cluster
 *             default, then lowered to max_ttl.
 * So ttl <= max_ttl <= cluster max always. Never fails. */
void mf_lease_ttl_clamp(const struct mf_lease_ttl_inputs *in, uint64_t *ttl_ms,
                        uint64_t *max_ttl_ms);

/* A grant's times: expire_at = now + ttl, max_expire_at = now + max_ttl (a
 * max_ttl of 0 means the lease cannot outlive its first ttl). Returns 0, or
 * MF_EINVAL (outputs untouched) if ttl is 0, ttl or max_ttl exceeds
 * MF_LEASE_TTL_LIMIT_MS, a given max_ttl is below ttl, or now exceeds
 * MF_LEASE_NOW_LIMIT_MS. */
int mf_lease_grant_expiry(uint64_t now_ms, uint64_t ttl_ms, uint64_t max_ttl_ms,
                          uint64_t *expire_at_ms, uint64_t *max_expire_at_ms);

/* min(now + ttl, max_expire_at), without overflow: the expiry an activation
 * with a ttl, or a renewal, asks for. A max_expire_at at or before now gives
 * max_expire_at. */
uint64_t mf_lease_expire_at(uint64_t now_ms, uint64_t ttl_ms, uint64_t max_expire_at_ms);

/* The expiry after renewing a lease that expires at expire_at by
 * increment (0: by the lease's own ttl): mf_lease_expire_at(now, increment,
 * max_expire_at), but never earlier than expire_at (a renewal never
 * shortens a lease). */
uint64_t mf_lease_renew_expire_at(uint64_t now_ms, uint64_t increment_ms, uint64_t ttl_ms,
                                  uint64_t expire_at_ms, uint64_t max_expire_at_ms);

/* May this node serve the secret of a lease in `state` (a
 * Mayfly__Cmd__LeaseState value) expiring at expire_at, at its local time
 * now, given that clocks may differ by up to max_clock_skew (DESIGN.md
 * guarantee 4)? Only issuing and active leases are served, and only while
 * now + max_clock_skew < expire_at (the sum saturates: it never wraps into
 * the past). */
bool mf_lease_servable(int state, uint64_t expire_at_ms, uint64_t now_ms,
                       uint64_t max_clock_skew_ms);

#endif
