/* Clock agreement between nodes (issue 16): a pure module.
 *
 * Each node measures its wall-clock offset to every peer, NTP-style: it sends
 * a probe at its monotonic time m0, the peer answers at once with its wall
 * time t1, and the answer arrives at our monotonic m2 and our wall time w2.
 * Then
 *
 *     rtt    = m2 - m0
 *     offset = t1 - (w2 - rtt/2)      the peer's wall clock minus ours
 *
 * with an uncertainty of rtt/2 (the peer read its clock somewhere inside the
 * round trip). The monotonic clock times the round trip, so a jump of our own
 * wall clock between m0 and m2 cannot shrink or stretch it; a jump shows as
 * an offset to every peer at once.
 *
 * Rules (all times are arguments, no clock is read here):
 *   - a measurement is fresh while its age (now_mono - m2) <= MF_CLOCK_FRESH_MS;
 *   - a peer agrees when its measurement is fresh and
 *     |offset| + rtt/2 <= max_skew_ms;
 *   - this node agrees when the voters that agree (itself counted if it is a
 *     voter, learners never) reach a quorum of the voters; a single-voter
 *     cluster whose voter is this node always agrees (it trusts its clock);
 *   - our offset estimate is the median over the fresh voters of (our clock
 *     minus theirs), with 0 for ourselves.
 *
 * Probes in flight are remembered (MF_CLOCK_INFLIGHT per peer) so an answer
 * is trusted only if it echoes a sequence number we sent to that peer, in
 * time (rtt <= MF_CLOCK_RTT_MAX_MS): anything else is dropped.
 *
 * Memory: struct mf_clock is a plain value the caller owns; nothing here
 * allocates. Peers beyond MF_CLOCK_PEERS_MAX are not tracked (never agree).
 */
#ifndef MF_NODE_CLOCK_H
#define MF_NODE_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MF_CLOCK_PEERS_MAX 16       /* tracked peers (>= MF_RAFT_NODES_MAX) */
#define MF_CLOCK_INFLIGHT 4         /* probes remembered per peer */
#define MF_CLOCK_FRESH_MS 2000      /* a measurement older than this does not count */
#define MF_CLOCK_RTT_MAX_MS 1000    /* an answer later than this is dropped */
#define MF_CLOCK_PROBE_MS 250       /* probe period once measured */
#define MF_CLOCK_PROBE_FAST_MS 50   /* probe period until a quorum is measured */
/* Wall times above this are refused: offsets and their differences then fit
 * in int64_t whatever a broken peer says (2^62 ms is 146 million years). */
#define MF_CLOCK_WALL_MAX_MS (UINT64_C(1) << 62)

struct mf_clock_probe {
    uint64_t seq;     /* 0: free slot */
    uint64_t m0_ms;   /* our monotonic time when sent */
};

struct mf_clock_peer {
    uint64_t id;                       /* 0: free slot */
    struct mf_clock_probe inflight[MF_CLOCK_INFLIGHT];
    size_t inflight_next;              /* slot the next probe overwrites */
    bool measured;                     /* at least one answer */
    int64_t offset_ms;                 /* the peer's wall clock minus ours */
    uint64_t rtt_ms;
    uint64_t at_mono_ms;               /* m2 of the last measurement */
    bool says_agrees;                  /* its last answer: its clock agrees with its quorum */
};

struct mf_clock {
    uint64_t self_id;
    uint64_t max_skew_ms;
    uint64_t next_seq;
    struct mf_clock_peer peers[MF_CLOCK_PEERS_MAX];
};

/* The node's standing against a set of voters at one monotonic instant. */
struct mf_clock_view {
    bool agrees;          /* agreeing voters (self included) reach a quorum */
    bool measured;        /* voters with fresh measurements (self included) reach a quorum */
    int64_t offset_ms;    /* median of (ours - theirs) over fresh voters, self 0; 0 if none */
    uint32_t voters;
    uint32_t agreeing;    /* self included when a voter */
    uint32_t fresh;       /* voters with a fresh measurement, self included when a voter */
};

void mf_clock_init(struct mf_clock *c, uint64_t self_id, uint64_t max_skew_ms);

/* A probe to `peer` leaves at monotonic m0: returns the sequence number to
 * put in it (never 0). 0 if the peer cannot be tracked (table full). */
uint64_t mf_clock_probe(struct mf_clock *c, uint64_t peer, uint64_t m0_ms);

/* An answer from `peer` echoing `seq` with its wall time t1, received at our
 * monotonic m2 and wall w2, saying whether the peer's clock agrees with a
 * quorum as it sees them (`says_agrees`). Records the measurement.
 * @return 0; MF_EINVAL: unknown peer or seq, m2 before m0, or a wall time
 *         above MF_CLOCK_WALL_MAX_MS (dropped);
 *         MF_ETIMEOUT: rtt > MF_CLOCK_RTT_MAX_MS (dropped). */
int mf_clock_answer(struct mf_clock *c, uint64_t peer, uint64_t seq, uint64_t t1_ms,
                    uint64_t m2_ms, uint64_t w2_ms, bool says_agrees);

/* The last measurement of `peer` (NULL if none). */
const struct mf_clock_peer *mf_clock_peer(const struct mf_clock *c, uint64_t peer);

/* Whether `peer` has a fresh measurement at now / agrees within the bound. */
bool mf_clock_fresh(const struct mf_clock *c, uint64_t peer, uint64_t now_mono_ms);
bool mf_clock_agrees(const struct mf_clock *c, uint64_t peer, uint64_t now_mono_ms);

/* This node's view against `voters` (the current configuration's voters,
 * which may include self_id). */
void mf_clock_view(const struct mf_clock *c, const uint64_t *voters, size_t voters_len,
                   uint64_t now_mono_ms, struct mf_clock_view *out);

/* Where to hand leadership when our clock is off: a voter other than us with
 * a fresh measurement whose last answer said its own clock agrees (so it may
 * campaign: a TimeoutNow to a blocked node is lost, and proposals wait for the
 * transfer meanwhile), preferring the one whose offset is nearest the median
 * of the others. 0 if none: then we keep leading, and the server refuses
 * what needs the clock. */
uint64_t mf_clock_transfer_target(const struct mf_clock *c, const uint64_t *voters,
                                  size_t voters_len, uint64_t now_mono_ms);

#endif
