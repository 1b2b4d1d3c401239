/* The cluster feature version (cluster_version.h): members' reports to the
 * leader, the leader's ClusterVersion proposals, and the proposer's gate. */
#include "server/cluster_version.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "node/node.h"
#include "server/proposer.h"

#define LOG_MOD "upgrade"
#define REPORT_MAX 128 /* bytes of a member's report */
#define MEMBERS_MAX (2 * MF_RAFT_NODES_MAX)

struct mf_cluster_version {
    uv_timer_t timer;
    uint64_t sent_leader;   /* follower: the leader last reported to */
    bool inflight;          /* leader: a ClusterVersion proposal not yet applied */
    struct mf_feature_member reports[MEMBERS_MAX]; /* leader: last report per member */
    size_t n_reports;
};

uint32_t mf_cluster_version_applied(struct mf_server *s)
{
    uint32_t v = 1;
    MDB_txn *txn;
    if (s->fsm && mf_srv_read_begin(s, &txn) == 0) {
        if (mf_feature_cluster_version(txn, mf_fsm_state(s->fsm), &v))
            v = 1;
        mf_srv_read_end(s, txn);
    }
    return v;
}

uint32_t mf_cluster_version_member_level(struct mf_server *s, uint64_t id)
{
    if (id == s->cfg->node_id)
        return mf_feature_level();
    struct mf_cluster_version *cv = s->cluster_version;
    if (!cv || !s->node || !mf_node_is_leader(s->node))
        return 0;
    for (size_t i = 0; i < cv->n_reports; i++)
        if (cv->reports[i].id == id)
            return cv->reports[i].level;
    return 0;
}

/* Every member of the configuration with its level as this leader knows it. */
static size_t members(struct mf_server *s, struct mf_feature_member *out)
{
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    size_t n = 0;
    for (uint32_t i = 0; i < st.conf.voters_len && n < MEMBERS_MAX; i++, n++)
        out[n] = (struct mf_feature_member){st.conf.voters[i],
                                            mf_cluster_version_member_level(s, st.conf.voters[i])};
    for (uint32_t i = 0; i < st.conf.learners_len && n < MEMBERS_MAX; i++, n++)
        out[n] = (struct mf_feature_member){
            st.conf.learners[i], mf_cluster_version_member_level(s, st.conf.learners[i])};
    return n;
}

/* proposer.h's gate: ops above level 1 wait for the cluster version. */
static int gate(void *ctx, int op, char *why, size_t why_len)
{
    struct mf_server *s = ctx;
    /* ClusterVersion itself is how the version rises: its own rule holds. */
    if (op == MAYFLY__CMD__COMMAND__OP_CLUSTER_VERSION)
        return 0;
    struct mf_feature_member m[MEMBERS_MAX];
    size_t n = members(s, m);
    return mf_feature_refusal(mf_cluster_version_applied(s), op, m, n, why, why_len);
}

/* ---- the leader's proposal ---- */

static void on_applied(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    struct mf_server *s = arg;
    if (s->cluster_version)
        s->cluster_version->inflight = false;
    if (rc)
        MF_WARN(LOG_MOD, "cluster version not raised: %s",
                res && res->error && *res->error ? res->error : mf_strerror(rc));
}

static void maybe_raise(struct mf_server *s)
{
    struct mf_cluster_version *cv = s->cluster_version;
    if (cv->inflight || s->failed)
        return;
    struct mf_feature_member m[MEMBERS_MAX];
    size_t n = members(s, m);
    uint32_t cur = mf_cluster_version_applied(s);
    uint32_t next = mf_feature_next_version(cur, m, n);
    if (next <= cur)
        return;
    Mayfly__Cmd__ClusterVersion v = MAYFLY__CMD__CLUSTER_VERSION__INIT;
    v.level = next;
    Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_CLUSTER_VERSION;
    cmd.cluster_version = &v;
    MF_INFO(LOG_MOD, "every member supports feature level %" PRIu32 ": raising the cluster "
                     "version from %" PRIu32, next, cur);
    cv->inflight = true;
    if (mf_propose(s->prop, &cmd, on_applied, s))
        cv->inflight = false;
}

/* ---- members' reports ---- */

static void report(struct mf_server *s)
{
    struct mf_cluster_version *cv = s->cluster_version;
    uint64_t leader = s->leader;
    if (leader == 0 || leader == s->cfg->node_id)
        return;
    char text[64];
    int len = snprintf(text, sizeof(text), "{\"level\":%" PRIu32 "}", mf_feature_level());
    if (mf_node_send(s->node, leader, MF_CLUSTER_VERSION_PEER_TAG, text, (size_t)len) == 0)
        cv->sent_leader = leader;
}

void mf_cluster_version_peer_message(struct mf_server *s, uint64_t from, const uint8_t *data,
                                     size_t len)
{
    struct mf_cluster_version *cv = s->cluster_version;
    if (!cv || len > REPORT_MAX || from == 0 || from == s->cfg->node_id)
        return;
    json_error_t jerr;
    json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *level = json_object_get(o, "level");
    if (!json_is_integer(level) || json_integer_value(level) < 1 ||
        json_integer_value(level) > 255) {
        MF_WARN(LOG_MOD, "node %" PRIu64 " sent a malformed feature report", from);
        json_decref(o);
        return;
    }
    uint32_t lv = (uint32_t)json_integer_value(level);
    json_decref(o);
    size_t i = 0;
    while (i < cv->n_reports && cv->reports[i].id != from)
        i++;
    if (i == cv->n_reports) {
        if (cv->n_reports == MEMBERS_MAX)
            return;
        cv->n_reports++;
    }
    if (cv->reports[i].level != lv)
        MF_INFO(LOG_MOD, "node %" PRIu64 " supports feature level %" PRIu32, from, lv);
    cv->reports[i] = (struct mf_feature_member){from, lv};
    /* A new cluster reaches the version as soon as the last member
     * reports, not a tick later: level-2 commands wait that long. */
    if (s->node && mf_node_is_leader(s->node))
        maybe_raise(s);
}

void mf_cluster_version_role_changed(struct mf_server *s)
{
    struct mf_cluster_version *cv = s->cluster_version;
    if (cv && s->leader != cv->sent_leader)
        report(s);
}

static void on_tick(uv_timer_t *t)
{
    struct mf_server *s = t->data;
    if (s->failed || !s->node)
        return;
    if (mf_node_is_leader(s->node))
        maybe_raise(s);
    else
        report(s);
}

int mf_cluster_version_init(struct mf_server *s)
{
    struct mf_cluster_version *cv = calloc(1, sizeof(*cv));
    if (!cv)
        return -ENOMEM;
    s->cluster_version = cv;
    uv_timer_init(s->loop, &cv->timer);
    cv->timer.data = s;
    uv_timer_start(&cv->timer, on_tick, MF_CLUSTER_VERSION_TICK_MS / 4,
                   MF_CLUSTER_VERSION_TICK_MS);
    mf_proposer_feature_gate(s->prop, gate, s);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mf_server *s = h->data;
    free(s->cluster_version); /* h lives in it */
    s->cluster_version = NULL;
    mf_srv_handle_released(s);
}

void mf_cluster_version_close(struct mf_server *s)
{
    struct mf_cluster_version *cv = s->cluster_version;
    if (!cv)
        return;
    if (s->prop)
        mf_proposer_feature_gate(s->prop, NULL, NULL);
    uv_timer_stop(&cv->timer);
    s->handles_open++;
    uv_close((uv_handle_t *)&cv->timer, on_timer_closed);
}
