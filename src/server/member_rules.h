/* Membership rules (CLI.md "operator members"): a pure module, no clock, no
 * node. The zone guard and when a learner is ready to vote.
 *
 * Zone tolerance: the largest k such that losing any k whole zones (the
 * worst k: the zones with the most voters) leaves a majority of the voters
 * of the configuration. Voters without a zone are each their own zone. With
 * no voter the tolerance is 0.
 *
 * The zone guard: once the configuration has MF_MEMBER_GUARD_VOTERS voters
 * or more, a change whose new voter set has a lower zone tolerance than the
 * current one is refused unless forced, with a sentence that says the
 * before and after and the voters per zone.
 *
 * Promotion readiness: a learner is ready to vote once its acknowledged
 * index has stayed within MF_MEMBER_CATCHUP_ENTRIES of the leader's last
 * index for MF_MEMBER_CATCHUP_HOLD_MS (a caller's clock, passed in), so a
 * node that caught up once but falls behind again is not counted into the
 * quorum while it would slow every commit.
 *
 * Memory: everything is the caller's; nothing allocates. */
#ifndef MF_SERVER_MEMBER_RULES_H
#define MF_SERVER_MEMBER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MF_MEMBER_GUARD_VOTERS 3       /* the guard applies from this many voters */
#define MF_MEMBER_CATCHUP_ENTRIES 64   /* "caught up": this close to the leader's last index */
#define MF_MEMBER_CATCHUP_HOLD_MS 1000 /* ... for this long */
#define MF_MEMBER_WHY_MAX 512
#define MF_MEMBER_VOTERS_MAX 32

/* A voter and its zone (NULL or "": a zone of its own). */
struct mf_member_voter {
    uint64_t id;
    const char *zone;
};

/* Zone tolerance of voters v[0..n) (above). Pure. */
unsigned mf_member_zone_tolerance(const struct mf_member_voter *v, size_t n);

/* "a=2 b=1 node5=1": voters per zone, zones sorted by name, voters without a
 * zone as "node<ID>"; truncated to len. */
void mf_member_zone_text(const struct mf_member_voter *v, size_t n, char *buf, size_t len);

/* The zone guard for a change from voters before[0..nb) to after[0..na),
 * described by `what` ("removing node 3", "promoting node 4").
 * @return 0 (allowed: fewer than MF_MEMBER_GUARD_VOTERS voters before, no
 *         lower tolerance, or force); MF_EINVAL with the reason in why:
 *         "removing node 3 lowers the zones this cluster can lose from 1 to 0
 *         (voters per zone: a=2 b=1 c=1 -> a=1 b=1 c=1); use -force". */
int mf_member_zone_guard(const struct mf_member_voter *before, size_t nb,
                         const struct mf_member_voter *after, size_t na, const char *what,
                         bool force, char *why, size_t why_len);

/* A learner's catch-up as the leader tracks it (zero it when it starts). */
struct mf_member_catchup {
    uint64_t since_ms; /* when it came within reach and stayed (0: not now) */
};

/* Updates c with the learner's acknowledged index `match` against the
 * leader's `last_index` at `now_ms`; true once it is ready (above). A match
 * of 0 (never acknowledged) is never ready. Pure. */
bool mf_member_catchup_ready(struct mf_member_catchup *c, uint64_t last_index, uint64_t match,
                             uint64_t now_ms);

/* What members add accepts (store/members.h MF_MEMBER_ADDR_MAX and
 * MF_MEMBER_ZONE_MAX, checked equal in op_members.c): an address is
 * "HOST:PORT", 3..255 printable ASCII bytes without spaces, a decimal port;
 * a zone is 0..64 bytes of [A-Za-z0-9._-]. Pure. */
#define MF_MEMBER_RULES_ADDR_MAX 255
#define MF_MEMBER_RULES_ZONE_MAX 64
bool mf_member_addr_ok(const char *a);
bool mf_member_zone_ok(const char *z);

#endif
