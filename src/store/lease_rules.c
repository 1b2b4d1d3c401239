/* Lease rules (lease_rules.h): ttl capping, expiry arithmetic and the
 * serve-or-refuse check, written once. The server used to cap ttls in two
 * places with two shapes (bare grants and engine credentials) and the state
 * machine capped now + increment at max_expire_at twice; a rule written
 * twice drifts, so both now call these.
 *
 * Pure: the caller passes now_ms; nothing here reads a clock or touches
 * storage, so the apply path stays deterministic (tests/store/check_apply_nm.sh
 * checks this object with the rest of the apply path). */
#include "store/lease_rules.h"

#include "command.pb-c.h"
#include "common/assert.h"
#include "common/err.h"

/* Lower *cap to limit when limit is given (non-zero). */
static void lower_to(uint64_t *cap, uint64_t limit)
{
    if (limit && limit < *cap)
        *cap = limit;
}

void mf_lease_ttl_clamp(const struct mf_lease_ttl_inputs *in, uint64_t *ttl_ms,
                        uint64_t *max_ttl_ms)
{
    uint64_t max = in->cluster_max_ttl_ms;
    lower_to(&max, in->role_max_ttl_ms);
    lower_to(&max, in->policy_max_ttl_ms);
    lower_to(&max, in->requested_max_ttl_ms);

    uint64_t ttl = in->requested_ttl_ms     ? in->requested_ttl_ms
                   : in->role_default_ttl_ms ? in->role_default_ttl_ms
                                             : in->cluster_default_ttl_ms;
    if (ttl > max)
        ttl = max;

    MF_ASSERT(ttl <= max && max <= in->cluster_max_ttl_ms);
    *ttl_ms = ttl;
    *max_ttl_ms = max;
}

int mf_lease_grant_expiry(uint64_t now_ms, uint64_t ttl_ms, uint64_t max_ttl_ms,
                          uint64_t *expire_at_ms, uint64_t *max_expire_at_ms)
{
    if (ttl_ms == 0 || ttl_ms > MF_LEASE_TTL_LIMIT_MS || max_ttl_ms > MF_LEASE_TTL_LIMIT_MS ||
        (max_ttl_ms && max_ttl_ms < ttl_ms) || now_ms > MF_LEASE_NOW_LIMIT_MS)
        return MF_EINVAL;
    /* The limits above keep both sums below UINT64_MAX. */
    *expire_at_ms = now_ms + ttl_ms;
    *max_expire_at_ms = now_ms + (max_ttl_ms ? max_ttl_ms : ttl_ms);
    return 0;
}

uint64_t mf_lease_expire_at(uint64_t now_ms, uint64_t ttl_ms, uint64_t max_expire_at_ms)
{
    if (max_expire_at_ms <= now_ms || ttl_ms > max_expire_at_ms - now_ms)
        return max_expire_at_ms;
    return now_ms + ttl_ms; /* <= max_expire_at_ms: no overflow */
}

uint64_t mf_lease_renew_expire_at(uint64_t now_ms, uint64_t increment_ms, uint64_t ttl_ms,
                                  uint64_t expire_at_ms, uint64_t max_expire_at_ms)
{
    uint64_t inc = increment_ms ? increment_ms : ttl_ms;
    uint64_t exp = mf_lease_expire_at(now_ms, inc, max_expire_at_ms);
    return exp < expire_at_ms ? expire_at_ms : exp;
}

bool mf_lease_servable(int state, uint64_t expire_at_ms, uint64_t now_ms,
                       uint64_t max_clock_skew_ms)
{
    bool live = state == MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE ||
                state == MAYFLY__CMD__LEASE_STATE__LEASE_ISSUING;
    /* now + skew < expire_at, written so that the sum cannot wrap. */
    bool before = now_ms < expire_at_ms && max_clock_skew_ms < expire_at_ms - now_ms;
    return live && before;
}
