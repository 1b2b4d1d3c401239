/* Feature levels (features.h): which level introduced each Command op, the
 * leader's version rule, the proposer's refusal, and the replicated
 * cluster version in META. */
#include "store/features.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "store/apply.h"

#ifndef MF_FEATURE_LEVEL
#define MF_FEATURE_LEVEL MF_FEATURE_LEVEL_LATEST
#endif
#if MF_FEATURE_LEVEL < 1 || MF_FEATURE_LEVEL > MF_FEATURE_LEVEL_LATEST
#error "MF_FEATURE_LEVEL must be 1..MF_FEATURE_LEVEL_LATEST"
#endif

uint32_t mf_feature_level(void) { return MF_FEATURE_LEVEL; }

/* One row per op field number of proto/command.proto's `oneof op`. Ops that
 * other work adds this round are listed by number already, so they are
 * gated the moment they land. */
static const uint8_t op_levels[MF_FEATURE_OP_MAX + 1] = {
    [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1, /* lease grant .. revoke prefix */
    [15] = 1, [16] = 1, [17] = 1, [18] = 1, [19] = 1, /* lease expire .. tidy */
    [20] = 1, [21] = 1, [22] = 1, [23] = 1,           /* kv */
    [30] = 1, [31] = 1, [32] = 1, [33] = 1,           /* tokens */
    [40] = 1, [41] = 1, [42] = 1, [43] = 1, [44] = 1, /* policy, keyring, quota, alarm */
    [45] = 2, /* ClusterVersion */
    [46] = 2, /* keys (rotation, rekey) */
    [47] = 2, /* membership */
    [48] = 2, [49] = 2, /* restore */
};

uint32_t mf_feature_op_level(int op)
{
    return op >= 0 && op <= MF_FEATURE_OP_MAX ? op_levels[op] : 0;
}

bool mf_feature_cmd_known(const Mayfly__Cmd__Command *c, int *op)
{
    if (c->op_case == MAYFLY__CMD__COMMAND__OP__NOT_SET) {
        /* An op field this proto lacks lands among the unknown fields
         * (field numbers below 10 are the envelope's). */
        for (unsigned i = 0; i < c->base.n_unknown_fields; i++)
            if (c->base.unknown_fields[i].tag >= 10) {
                *op = (int)c->base.unknown_fields[i].tag;
                return false;
            }
        return true;
    }
    *op = (int)c->op_case;
    uint32_t need = mf_feature_op_level(*op);
    if (need == 0 || need > mf_feature_level())
        return false;
    /* A version above this build's means ops it cannot know follow. */
    if (c->op_case == MAYFLY__CMD__COMMAND__OP_CLUSTER_VERSION &&
        c->cluster_version->level > mf_feature_level())
        return false;
    return true;
}

void mf_feature_unknown_text(char *buf, size_t len, uint64_t index, int op)
{
    snprintf(buf, len,
             "entry %" PRIu64 " holds command type %d, unknown to this build (feature level %" PRIu32
             "): upgrade this node before it rejoins",
             index, op, mf_feature_level());
}

uint32_t mf_feature_next_version(uint32_t current, const struct mf_feature_member *members,
                                 size_t n)
{
    if (n == 0)
        return current;
    uint32_t low = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        if (members[i].level < low)
            low = members[i].level;
    return low > current ? low : current;
}

int mf_feature_refusal(uint32_t cluster, int op, const struct mf_feature_member *members,
                       size_t n, char *why, size_t why_len)
{
    uint32_t need = mf_feature_op_level(op);
    if (need <= cluster)
        return 0;
    int len = snprintf(why, why_len,
                       "cluster feature version %" PRIu32 ": this command needs %" PRIu32
                       "; members not yet upgraded:",
                       cluster, need);
    bool any = false;
    for (size_t i = 0; i < n && len >= 0 && (size_t)len < why_len; i++) {
        if (members[i].level >= need)
            continue;
        char lv[32];
        if (members[i].level)
            snprintf(lv, sizeof(lv), "level %" PRIu32, members[i].level);
        else
            snprintf(lv, sizeof(lv), "not reported");
        len += snprintf(why + len, why_len - (size_t)len, "%s %" PRIu64 " (%s)", any ? "," : "",
                        members[i].id, lv);
        any = true;
    }
    if (!any && len >= 0 && (size_t)len < why_len)
        snprintf(why + len, why_len - (size_t)len, " none (the version is being raised: retry)");
    return MF_EUNAVAIL;
}

int mf_feature_cluster_version(MDB_txn *txn, struct mf_state *st, uint32_t *out)
{
    uint64_t v = 0;
    int rc = mf_state_meta_get_u64(txn, st, MF_FEATURE_META_KEY, &v);
    if (rc)
        return rc;
    *out = v == 0 ? 1 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return 0;
}

int mf_feature_apply_version(struct mf_apply *a, const Mayfly__Cmd__ClusterVersion *m,
                             Mayfly__Cmd__Result *r)
{
    uint32_t cur;
    int rc = mf_feature_cluster_version(a->txn, a->st, &cur);
    if (rc)
        return rc;
    if (m->level == 0 || m->level < cur)
        return mf_apply_fail(a, MF_EINVAL,
                             "cluster version %" PRIu32 " refused: the cluster is at %" PRIu32
                             " and never goes back",
                             m->level, cur);
    if (m->level == cur)
        return 0;
    r->count = 1;
    return mf_state_meta_put_u64(a->txn, a->st, MF_FEATURE_META_KEY, m->level);
}
