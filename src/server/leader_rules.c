/* Where leadership goes (leader_rules.h). */
#include "server/leader_rules.h"

#include <inttypes.h>
#include <stdio.h>

#include "common/err.h"

static int refuse(char *why, size_t why_len, int code, const char *fmt, uint64_t id)
{
    snprintf(why, why_len, fmt, id);
    return code;
}

static const struct mf_leader_candidate *find(const struct mf_leader_candidate *c, size_t n,
                                              uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].id == id)
            return &c[i];
    return NULL;
}

/* A better target than `best`: more caught up, or as caught up with a lower id. */
static bool better(const struct mf_leader_candidate *x, const struct mf_leader_candidate *best)
{
    if (!best)
        return true;
    if (x->match_index != best->match_index)
        return x->match_index > best->match_index;
    return x->id < best->id;
}

int mf_leader_choose(uint64_t self, const struct mf_leader_candidate *c, size_t n, uint64_t to,
                     uint64_t *target, char *why, size_t why_len)
{
    *target = 0;
    why[0] = '\0';
    if (to) {
        const struct mf_leader_candidate *m = find(c, n, to);
        if (to == self) {
            *target = self; /* already leads: nothing to move */
            return 0;
        }
        if (!m)
            return refuse(why, why_len, MF_ENOTFOUND,
                          "node %" PRIu64 " is not a member of the cluster", to);
        if (!m->voter)
            return refuse(why, why_len, MF_EINVAL,
                          "node %" PRIu64 " is a learner: only a voter can lead (promote it first)",
                          to);
        if (!m->clock_ok)
            return refuse(why, why_len, MF_EUNAVAIL,
                          "node %" PRIu64 " cannot campaign now: its clock is not measured or "
                          "does not agree with its quorum", to);
        *target = to;
        return 0;
    }
    const struct mf_leader_candidate *best = NULL;
    size_t others = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].id == self || !c[i].voter)
            continue;
        others++;
        if (c[i].clock_ok && better(&c[i], best))
            best = &c[i];
    }
    if (others == 0)
        return refuse(why, why_len, MF_EINVAL,
                      "no other voter: node %" PRIu64 " is the only voter, leadership cannot move",
                      self);
    if (!best)
        return refuse(why, why_len, MF_EUNAVAIL,
                      "no other voter can campaign now: none has a clock measured by leader %"
                      PRIu64 " that agrees with its quorum", self);
    *target = best->id;
    return 0;
}
