/* The leader's clock: the `now` it stamps on commands, never poisoned by a
 * jump of its wall clock (issue 16; README.md "Time model").
 *
 * Pure: no clock is read here; the caller passes its wall and monotonic
 * times and the node's clock view. The rule:
 *
 * - An anchor (h_ms, h_mono_ms): the high-water `now` and the monotonic time
 *   at which it was observed, whether this leader stamped it or learnt it
 *   from an applied entry. The candidate at monotonic time m is
 *   h_ms + (m - h_mono_ms): the high-water now advanced by real elapsed
 *   time only, so it is never early if h_ms was not.
 * - The leader takes its wall clock as the new now only when its clock view
 *   agrees with a majority of voters AND |wall - candidate| <= the bound (a
 *   jump is (wall - h) - monotonic elapsed, never a comparison with the last
 *   committed time: an idle cluster's last command may be hours old).
 *   Otherwise it stamps the candidate.
 * - A cold anchor (loaded from disk at start: the time elapsed since it is
 *   unknown) accepts a wall clock ahead of it by any amount, if the view
 *   agrees; a wall clock behind it by more than the bound is still refused.
 * - A single-voter cluster trusts its own wall clock (nobody to compare
 *   with): it takes the wall clock whenever it is not behind.
 * - Always max() with the previous stamp and with the applied now: `now`
 *   never runs backwards.
 *
 * The caller owns the struct; no allocation, no errors. */
#ifndef MF_SERVER_LEADER_CLOCK_H
#define MF_SERVER_LEADER_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mf_leader_clock {
    uint64_t h_ms;      /* the high-water now */
    uint64_t h_mono_ms; /* monotonic time when h_ms was observed */
    bool cold;          /* h_ms came from disk: time since it unknown */
    uint64_t last_ms;   /* the greatest now stamped */
    bool wall_used;     /* the last stamp took the wall clock */
};

/* Starts from the applied now found at start (`now_ms`, cold) at monotonic
 * time `mono_ms`. */
void mf_leader_clock_init(struct mf_leader_clock *c, uint64_t now_ms, uint64_t mono_ms);

/* A now learnt from an applied entry at monotonic time `mono_ms`: it becomes
 * the anchor when it is ahead of the candidate (so the candidate never
 * falls). */
void mf_leader_clock_observe(struct mf_leader_clock *c, uint64_t now_ms, uint64_t mono_ms);

/* The anchor advanced by monotonic time (never below h_ms). */
uint64_t mf_leader_clock_candidate(const struct mf_leader_clock *c, uint64_t mono_ms);

/* The clock view the leader's node reports (node.h mf_node_clock). */
struct mf_leader_clock_view {
    bool agrees;          /* within the bound of a majority of voters */
    uint32_t voters;      /* 1: a single voter trusts its own clock */
    uint64_t max_skew_ms; /* the bound */
};

/* The now to stamp on a command at wall time `wall_ms` and monotonic time
 * `mono_ms`, with the applied now `applied_ms`; advances the anchor.
 * Never less than any previous stamp or `applied_ms`. */
uint64_t mf_leader_clock_stamp(struct mf_leader_clock *c, uint64_t wall_ms, uint64_t mono_ms,
                               uint64_t applied_ms, const struct mf_leader_clock_view *v);

/* May this node stamp time-bearing client commands (grants, renewals,
 * token creation)? Not when a multi-voter view disagrees. */
bool mf_leader_clock_trusted(const struct mf_leader_clock_view *v);

/* Has the wall clock jumped against the anchor (advanced by monotonic time)
 * by more than `allowance_ms`, either way? `*jump_ms` = wall - candidate.
 * Never for a cold anchor (the time since it is unknown). Any node may ask:
 * on a follower the anchor is the applied now, stamped by a leader. */
bool mf_leader_clock_jumped(const struct mf_leader_clock *c, uint64_t wall_ms, uint64_t mono_ms,
                            uint64_t allowance_ms, int64_t *jump_ms);
void mf_leader_clock_jump_reason(char *buf, size_t len, int64_t jump_ms, uint64_t allowance_ms);

/* Writes the user's reason a clock refused something into buf:
 * "clock skew: this node's clock is N ms off the voters' (bound B ms; A of V
 * voters agree)" or, without fresh measurements, "clock skew: this node's
 * clock offset is not measured (...)". */
void mf_leader_clock_reason(char *buf, size_t len, bool measured, int64_t offset_ms,
                            uint32_t agreeing, uint32_t voters, uint64_t max_skew_ms);

#endif
