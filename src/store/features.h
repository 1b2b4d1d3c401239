/* Feature levels for rolling upgrades (issue 13, item 5).
 *
 * Every Command op (proto/command.proto) was introduced at a feature level.
 * A build supports the levels up to the one it was compiled with
 * (mf_feature_level(): MF_FEATURE_LEVEL, the CMake option
 * MAYFLY_FEATURE_LEVEL; a test builds level 1 to stand in for the older
 * version). The cluster agrees on a feature version, replicated as META
 * "cluster_version" (u64; absent = 1) and raised only by the ClusterVersion
 * command (op 45), which the leader proposes once every member of the
 * configuration reported it supports the new level (mf_feature_next_version).
 *
 * Two rules keep mixed versions from diverging:
 * - the proposer refuses a command whose op needs a level above the cluster
 *   version (mf_feature_refusal: UNAVAILABLE with the members still behind);
 * - a node whose state machine meets an op it does not know (an op field
 *   its proto lacks, or one above its build's level) stops with a clear
 *   error (mf_feature_unknown_text) instead of applying or skipping it.
 *
 * The table, the version rule and the refusal are pure; the META read and
 * the ClusterVersion apply take a transaction (the store's apply path). */
#ifndef MF_STORE_FEATURES_H
#define MF_STORE_FEATURES_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"
#include "store/state.h"

#define MF_FEATURE_LEVEL_LATEST 2 /* the newest level this source tree knows */
#define MF_FEATURE_OP_MAX 63      /* highest op field number the table covers */
#define MF_FEATURE_META_KEY "cluster_version"

/* The level this binary was built with (1..MF_FEATURE_LEVEL_LATEST). */
uint32_t mf_feature_level(void);

/* The level that introduced Command op field `op` (10..44: 1; 45
 * ClusterVersion, 46 keys, 47 membership, 48-49 restore: 2); 0 for a number
 * that is no op this tree knows. Pure. */
uint32_t mf_feature_op_level(int op);

/* Does this build apply `c`? false with *op set when its op is a field this
 * proto lacks (an unknown field of number >= 10, op_case not set) or an op
 * above mf_feature_level(). A command with no op and no unknown field is
 * known (it applies as a deterministic error, as before). Pure. */
bool mf_feature_cmd_known(const Mayfly__Cmd__Command *c, int *op);

/* "entry N holds command type OP, unknown to this build (feature level L):
 * upgrade this node before it rejoins". */
void mf_feature_unknown_text(char *buf, size_t len, uint64_t index, int op);

/* A member's reported level (0: not reported yet). */
struct mf_feature_member {
    uint64_t id;
    uint32_t level;
};

/* The version the leader should propose: the lowest level reported by
 * `members` (all of the configuration, the leader included) if above
 * `current`, else `current` (never lower; a member not reported holds it
 * back). Pure. */
uint32_t mf_feature_next_version(uint32_t current, const struct mf_feature_member *members,
                                 size_t n);

/* Before proposing: 0 if `op` is allowed at cluster version `cluster`; else
 * MF_EUNAVAIL with `why` = "cluster feature version 1: this command needs 2;
 * members not yet upgraded: 3 (level 1)" (members below the op's level; "not
 * reported" for level 0). Pure. */
int mf_feature_refusal(uint32_t cluster, int op, const struct mf_feature_member *members,
                       size_t n, char *why, size_t why_len);

/* The applied cluster version (1 when absent). Errors: those of
 * mf_state_meta_get_u64. */
int mf_feature_cluster_version(MDB_txn *txn, struct mf_state *st, uint32_t *out);

struct mf_apply;
/* ClusterVersion: raises the stored version to m->level (1..LATEST). Rule
 * errors (MF_EINVAL): a level below the stored one (never lowered) or 0.
 * The same level again succeeds with count 0. Result.count: 1 if raised. */
int mf_feature_apply_version(struct mf_apply *a, const Mayfly__Cmd__ClusterVersion *m,
                             Mayfly__Cmd__Result *r);

#endif
