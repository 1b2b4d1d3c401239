/* Where leadership goes (CLI.md "operator transfer-leader", "operator
 * step-down"): a pure module, no clock, no node.
 *
 * A hand-off goes to a voter other than the leader whose clock lets it
 * campaign (node.h "clock": a node whose clock disagrees with its quorum
 * starts no election, so a TimeoutNow sent to it is lost and leadership
 * would not move). Without a named target the most caught-up such voter
 * wins (the highest index it acknowledged: it needs the fewest entries
 * before TimeoutNow leaves), the lowest id on a tie, so the choice is
 * deterministic.
 *
 * Memory: everything is the caller's; nothing allocates. */
#ifndef MF_SERVER_LEADER_RULES_H
#define MF_SERVER_LEADER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MF_LEADER_WHY_MAX 160

/* One member of the configuration as the leader sees it. */
struct mf_leader_candidate {
    uint64_t id;
    bool voter;           /* false: a learner */
    uint64_t match_index; /* highest index it acknowledged to this leader */
    bool clock_ok;        /* a fresh clock measurement that says it may campaign */
};

/* The target of a hand-off by leader `self` among members c[0..n) (self may
 * be among them), to `to` when nonzero, else the best voter as above.
 * @return 0 with *target (== self when `to` is self: nothing to do);
 *         MF_ENOTFOUND  `to` is not a member;
 *         MF_EINVAL     `to` is a learner, or there is no other voter;
 *         MF_EUNAVAIL   no other voter (or not `to`) has a clock that lets it
 *                       campaign now (it may be measured later);
 * with a sentence for the operator in why (MF_LEADER_WHY_MAX bytes). */
int mf_leader_choose(uint64_t self, const struct mf_leader_candidate *c, size_t n, uint64_t to,
                     uint64_t *target, char *why, size_t why_len);

#endif
