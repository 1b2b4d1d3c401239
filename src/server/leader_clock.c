/* The leader's clock rule (leader_clock.h): a high-water anchor advanced by
 * monotonic time, the wall clock taken only when it agrees with both the
 * voters and the anchor. Pure: every time is an argument. */
#include "server/leader_clock.h"

#include <inttypes.h>
#include <stdio.h>

void mf_leader_clock_init(struct mf_leader_clock *c, uint64_t now_ms, uint64_t mono_ms)
{
    c->h_ms = now_ms;
    c->h_mono_ms = mono_ms;
    c->cold = true;
    c->last_ms = now_ms;
    c->wall_used = false;
}

uint64_t mf_leader_clock_candidate(const struct mf_leader_clock *c, uint64_t mono_ms)
{
    /* A monotonic clock never runs back; if a caller's did, hold still. */
    uint64_t elapsed = mono_ms > c->h_mono_ms ? mono_ms - c->h_mono_ms : 0;
    return c->h_ms + elapsed;
}

static void anchor(struct mf_leader_clock *c, uint64_t now_ms, uint64_t mono_ms)
{
    c->h_ms = now_ms;
    c->h_mono_ms = mono_ms;
}

void mf_leader_clock_observe(struct mf_leader_clock *c, uint64_t now_ms, uint64_t mono_ms)
{
    if (now_ms > mf_leader_clock_candidate(c, mono_ms)) {
        anchor(c, now_ms, mono_ms);
        /* Stamped by a leader whose clock agreed: a live time point, no
         * longer the unknown gap since the last start. */
        c->cold = false;
    }
    if (now_ms > c->last_ms)
        c->last_ms = now_ms;
}

bool mf_leader_clock_trusted(const struct mf_leader_clock_view *v)
{
    return v->voters <= 1 || v->agrees;
}

/* Does the wall clock agree with the anchor? */
static bool wall_fits(const struct mf_leader_clock *c, uint64_t wall_ms, uint64_t cand_ms,
                      const struct mf_leader_clock_view *v)
{
    if (v->voters <= 1)
        return wall_ms + v->max_skew_ms >= cand_ms || c->cold;
    if (!v->agrees)
        return false;
    if (wall_ms < cand_ms)
        return cand_ms - wall_ms <= v->max_skew_ms;
    return c->cold || wall_ms - cand_ms <= v->max_skew_ms;
}

uint64_t mf_leader_clock_stamp(struct mf_leader_clock *c, uint64_t wall_ms, uint64_t mono_ms,
                               uint64_t applied_ms, const struct mf_leader_clock_view *v)
{
    mf_leader_clock_observe(c, applied_ms, mono_ms);
    uint64_t cand = mf_leader_clock_candidate(c, mono_ms);
    c->wall_used = wall_fits(c, wall_ms, cand, v);
    uint64_t now = c->wall_used ? wall_ms : cand;
    /* A single voter trusts its clock (README "Time model"): a step forward
     * is taken, so the anchor follows its wall clock. */
    if (v->voters <= 1 && wall_ms > cand)
        now = wall_ms, c->wall_used = true;
    if (now < c->last_ms)
        now = c->last_ms;
    if (now < applied_ms)
        now = applied_ms;
    c->last_ms = now;
    if (c->wall_used) {
        anchor(c, now, mono_ms);
        c->cold = false;
    } else if (now > cand) {
        anchor(c, now, mono_ms);
    }
    return now;
}

void mf_leader_clock_reason(char *buf, size_t len, bool measured, int64_t offset_ms,
                            uint32_t agreeing, uint32_t voters, uint64_t max_skew_ms)
{
    if (!measured)
        snprintf(buf, len,
                 "clock skew: this node's clock offset to the voters is not measured (no fresh "
                 "measurement from a majority; %" PRIu32 " of %" PRIu32
                 " voters agree; bound %" PRIu64 " ms)",
                 agreeing, voters, max_skew_ms);
    else
        snprintf(buf, len,
                 "clock skew: this node's clock is %" PRId64 " ms off the voters' (bound %" PRIu64
                 " ms; %" PRIu32 " of %" PRIu32 " voters agree)",
                 offset_ms, max_skew_ms, agreeing, voters);
}

bool mf_leader_clock_jumped(const struct mf_leader_clock *c, uint64_t wall_ms, uint64_t mono_ms,
                            uint64_t allowance_ms, int64_t *jump_ms)
{
    uint64_t cand = mf_leader_clock_candidate(c, mono_ms);
    uint64_t diff = wall_ms > cand ? wall_ms - cand : cand - wall_ms;
    *jump_ms = wall_ms > cand ? (int64_t)diff : -(int64_t)diff;
    return !c->cold && diff > allowance_ms;
}

void mf_leader_clock_jump_reason(char *buf, size_t len, int64_t jump_ms, uint64_t allowance_ms)
{
    snprintf(buf, len,
             "clock skew: this node's wall clock is %" PRId64
             " ms off the cluster's time (the last applied time advanced by its monotonic "
             "clock; allowed %" PRIu64 " ms)",
             jump_ms, allowance_ms);
}
