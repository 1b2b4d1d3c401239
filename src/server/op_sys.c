/* The cluster's life: init (keyring, then the root token), unseal, seal,
 * status, and dev mode's own init. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "auth/policy.h"
#include "server/authz.h"
#include "server/cluster_version.h"
#include "server/handler.h"
#include "server/metrics.h"
#include "server/op_sys.h"
#include "server/op_alarms.h"
#include "server/op_snapshot.h"
#include "server/op_tokens.h"
#include "server/proposer.h"
#include "store/idempotency.h"

#define LOG_MOD "sys"

/* ---- init, unseal, seal ---- */

struct init_state {
    char **shares;
    size_t n_shares;
    unsigned threshold;
};

static void init_state_free(void *p)
{
    struct init_state *is = p;
    mf_seal_shares_free(is->shares, is->n_shares);
    free(is);
}

static void finish_root_token(struct req *r, const Result *res_ptr, Resp *resp)
{
    struct mf_server *s = r->srv;
    const Result *res = res_ptr;
    char *token = NULL, *accessor = NULL;
    int rc = mf_tokens_secret_open(s, res, mf_tokens_write_id(r), &token, &accessor);
    free(accessor);
    if (rc) {
        free(token);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot open the root token");
    }
    struct init_state *is = r->op_state;
    Mayfly__Api__InitResponse out = MAYFLY__API__INIT_RESPONSE__INIT;
    out.n_shares = is ? is->n_shares : 0;
    out.shares = is ? is->shares : NULL;
    out.threshold = is ? is->threshold : 0;
    out.root_token = token;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_INIT;
    resp->init = &out;
    mf_api_reply(r, resp); /* frees r and with it the shares */
    OPENSSL_cleanse(token, strlen(token));
    free(token);
}

static char *root_policies[] = {"root"};
static const struct mf_token_spec root_spec = {.policies = root_policies, .n_policies = 1};

static void finish_keyring(struct req *r, const Result *res_ptr, Resp *resp)
{
    (void)res_ptr, (void)resp;
    r->has_token = false; /* the root token has no parent */
    r->rid_suffix = 1;
    mf_tokens_propose_create(r, &root_spec, finish_root_token);
}

#define INIT_SHARES_PATH "sys/init-shares" /* AAD of the shares kept for a retried init */

static void keyring_cmd(Cmd *cmd, Mayfly__Cmd__KeyringPut *m, uint8_t *blob, size_t len)
{
    mayfly__cmd__keyring_put__init(m);
    m->keyring.data = blob;
    m->keyring.len = len;
    mayfly__cmd__command__init(cmd);
    cmd->op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_PUT;
    cmd->keyring_put = m;
}

static void propose_keyring(struct req *r, uint8_t *blob, size_t len)
{
    Mayfly__Cmd__KeyringPut m;
    Cmd cmd;
    keyring_cmd(&cmd, &m, blob, len);
    /* The shares are shown once; kept encrypted with the idempotency entry
     * so an init retried after a lost answer (same request id) can show them. */
    struct init_state *is = r->op_state;
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    if (is && r->pb && r->pb->request_key.len) {
        json_t *arr = json_array();
        for (size_t i = 0; i < is->n_shares; i++)
            json_array_append_new(arr, json_string(is->shares[i]));
        char *text = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        if (text && mf_barrier_encrypt(r->srv->barrier, INIT_SHARES_PATH, mf_tokens_write_id(r), text,
                                       strlen(text), &ct, &ct_len) == 0) {
            cmd.result_secret.data = ct;
            cmd.result_secret.len = ct_len;
        }
        if (text) {
            OPENSSL_cleanse(text, strlen(text));
            free(text);
        }
    }
    mf_handler_propose(r, &cmd, finish_keyring);
    free(ct);
}

/* The shares kept with a first init's result (see propose_keyring). */
static struct init_state *init_state_from_result(struct mf_server *s, struct req *r,
                                                 const Result *res)
{
    if (!res->secret.len)
        return NULL;
    uint8_t *plain = NULL;
    size_t len = 0;
    if (mf_barrier_decrypt(s->barrier, INIT_SHARES_PATH, mf_tokens_write_id(r), res->secret.data,
                           res->secret.len, &plain, &len))
        return NULL;
    json_error_t je;
    json_t *arr = json_loadb((const char *)plain, len, 0, &je);
    mf_barrier_wipe_free(plain, len);
    struct init_state *is = calloc(1, sizeof(*is));
    size_t n = json_array_size(arr);
    if (is)
        is->shares = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; is && is->shares && i < n; i++)
        is->shares[is->n_shares++] = strdup(json_string_value(json_array_get(arr, i)));
    json_decref(arr);
    return is;
}

/* An init retried with the same request id after its answer was lost: finish
 * what the first attempt started (the store remembers each step's result).
 * The shares are shown once: the entry is keyed by the client's address
 * (mf_handler_idem), so only the same client, presenting the same request id
 * within MF_IDEM_TTL_MS, sees them again; a retry from anywhere else, or a
 * lost answer not retried in time, is refused as "already initialised". */
static int resume_init(struct req *r)
{
    struct mf_server *s = r->srv;
    struct mf_handler_idem first_id, second_id;
    int rc = mf_handler_idem(r, 0, &first_id);
    if (!rc)
        rc = mf_handler_idem(r, 1, &second_id); /* the root token step (rid_suffix 1) */
    if (rc)
        return rc;
    MDB_txn *txn;
    rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    Result *first = NULL, *second = NULL;
    uint64_t now = mf_now_wall_ms();
    rc = mf_idem_get(txn, mf_fsm_state(s->fsm), first_id.rid, sizeof(first_id.rid),
                     first_id.fingerprint, sizeof(first_id.fingerprint), now, &first);
    if (!rc && mf_idem_get(txn, mf_fsm_state(s->fsm), second_id.rid, sizeof(second_id.rid),
                           second_id.fingerprint, sizeof(second_id.fingerprint), now, &second))
        second = NULL;
    mf_srv_read_end(s, txn);
    if (rc)
        return rc;
    struct init_state *is = init_state_from_result(s, r, first);
    mf_fsm_result_free(first);
    if (is) {
        is->threshold = r->pb->init->threshold ? r->pb->init->threshold : 3;
        r->op_state = is;
        r->op_state_free = init_state_free;
    }
    MF_INFO(LOG_MOD, "init retried with the same request id: resuming");
    if (second) {
        Resp resp = MAYFLY__API__RESPONSE__INIT;
        finish_root_token(r, second, &resp);
        mf_fsm_result_free(second);
    } else {
        finish_keyring(r, NULL, NULL);
    }
    return 0;
}

void mf_op_init(struct req *r)
{
    struct mf_server *s = r->srv;
    if (mf_srv_initialized(s)) {
        int rc = resume_init(r);
        if (rc == 0)
            return;
        if (rc == MF_EINVAL)
            return mf_api_reply_error(r, MF_EINVAL, "request id reused with a different request");
        return mf_api_reply_error(r, MF_EINVAL, "the cluster is already initialised");
    }
    if (mf_op_snapshot_staged())
        return mf_api_reply_error(r, MF_EINVAL, "%s (not init)", MF_OP_SNAPSHOT_STAGED_MSG);
    const Mayfly__Api__InitRequest *q = r->pb->init;
    char err[MF_SEAL_ERR_LEN] = "";
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    int rc;
    if (s->cfg->auto_unseal_key_file) {
        rc = mf_seal_init_keyfile(s->seal, s->cfg->auto_unseal_key_file, mf_now_wall_ms(), &blob,
                                  &blob_len, err, sizeof(err));
    } else {
        struct init_state *is = calloc(1, sizeof(*is));
        if (!is)
            return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
        unsigned shares = q->shares ? q->shares : 5, threshold = q->threshold ? q->threshold : 3;
        rc = mf_seal_init_shamir(s->seal, shares, threshold, mf_now_wall_ms(), &is->shares,
                                 &blob, &blob_len, err, sizeof(err));
        if (rc) {
            free(is);
        } else {
            is->n_shares = shares;
            is->threshold = threshold;
            r->op_state = is; /* freed with r */
            r->op_state_free = init_state_free;
        }
    }
    if (rc)
        return mf_api_reply_error(r, rc, "init failed: %s", err[0] ? err : mf_strerror(rc));
    propose_keyring(r, blob, blob_len);
    free(blob);
}

/* ---- dev mode: init with the key file, then a root token to print ---- */

struct dev_init {
    struct mf_server *s;
    char token[sizeof(((struct mf_token_new *)0)->token)];
};

static void dev_init_free(struct dev_init *d)
{
    OPENSSL_cleanse(d->token, sizeof(d->token));
    free(d);
}

static void dev_on_root_token(void *arg, int rc, const Result *res)
{
    struct dev_init *d = arg;
    struct mf_server *s = d->s;
    (void)res;
    if (rc) {
        MF_ERROR(LOG_MOD, "dev init: cannot create the root token: %s", mf_strerror(rc));
        return dev_init_free(d);
    }
    s->dev_root_token = mf_secmem_strdup(d->token); /* locked, out of dumps */
    if (s->dev_root_token && s->ready_cb && !s->ready_sent) {
        s->ready_sent = true;
        s->ready_cb(s, s->dev_root_token);
    }
    dev_init_free(d);
}

static void dev_on_keyring(void *arg, int rc, const Result *res)
{
    struct dev_init *d = arg;
    struct mf_server *s = d->s;
    (void)res;
    struct mf_token_new tn;
    if (!rc)
        rc = mf_tokens_new(s, &root_spec, mf_propose_next_index(s->prop), &tn);
    if (rc) {
        MF_ERROR(LOG_MOD, "dev init failed: %s", mf_strerror(rc));
        return dev_init_free(d);
    }
    memcpy(d->token, tn.token, sizeof(d->token));
    tn.cmd.result_secret.len = 0; /* printed here: nobody asks for it again */
    rc = mf_propose(s->prop, &tn.cmd, dev_on_root_token, d);
    mf_tokens_new_wipe(&tn);
    if (rc)
        dev_on_root_token(d, rc, NULL);
}

void mf_op_dev_init(struct mf_server *s)
{
    s->dev_init_started = true;
    if (mf_srv_initialized(s)) {
        MF_INFO(LOG_MOD, "dev: already initialised");
        return;
    }
    struct dev_init *d = calloc(1, sizeof(*d));
    if (!d)
        return;
    d->s = s;
    char err[MF_SEAL_ERR_LEN] = "";
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    int rc = mf_seal_init_keyfile(s->seal, s->cfg->auto_unseal_key_file, mf_now_wall_ms(), &blob,
                                  &blob_len, err, sizeof(err));
    if (rc) {
        MF_ERROR(LOG_MOD, "dev init failed: %s", err[0] ? err : mf_strerror(rc));
        return dev_init_free(d);
    }
    Mayfly__Cmd__KeyringPut m;
    Cmd cmd;
    keyring_cmd(&cmd, &m, blob, blob_len);
    rc = mf_propose(s->prop, &cmd, dev_on_keyring, d);
    free(blob);
    if (rc)
        dev_on_keyring(d, rc, NULL);
}

static void unseal_now(struct req *r)
{
    struct mf_server *s = r->srv;
    if (mf_op_snapshot_unseal(r))
        return; /* a staged restore took the share (op_snapshot.h) */
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc = mf_srv_keyring_blob(s, &blob, &len);
    if (rc == MF_ENOTFOUND || (!rc && len == 0)) {
        free(blob);
        return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised: run "
                                                  "mayfly operator init");
    }
    if (rc)
        return mf_api_reply_error(r, rc, "cannot read the keyring: %s", mf_strerror(rc));
    struct mf_seal_status st;
    char err[MF_SEAL_ERR_LEN] = "";
    rc = mf_seal_unseal(s->seal, r->pb->unseal->share, blob, len, &st, err, sizeof(err));
    free(blob);
    mf_metrics_publish(s); /* /health follows at once */
    if (rc)
        return mf_api_reply_error(r, rc, "unseal: %s", err[0] ? err : mf_strerror(rc));
    Mayfly__Api__UnsealResponse out = MAYFLY__API__UNSEAL_RESPONSE__INIT;
    out.sealed = st.sealed;
    out.progress = st.progress;
    out.threshold = st.threshold;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_UNSEAL;
    resp.unseal = &out;
    mf_api_reply(r, &resp);
}

/* A node of a cluster takes shares only once it has applied everything the
 * leader committed (a ReadIndex barrier): a node that was down during a
 * rekey would otherwise open its stale keyring with the old shares. */
static void unseal_caught_up(void *arg, int rc)
{
    struct req *r = arg;
    if (rc)
        return mf_api_reply_error(r, MF_EUNAVAIL, "cannot unseal yet: this node has not caught "
                                                  "up with the cluster (applied %" PRIu64
                                                  ", commit %" PRIu64 "): %s",
                                  mf_node_applied(r->srv->node),
                                  mf_node_known_commit(r->srv->node), mf_strerror(rc));
    unseal_now(r);
}

void mf_op_unseal(struct req *r)
{
    struct mf_raft_status st;
    mf_node_status(r->srv->node, &st);
    if (st.conf.voters_len + st.conf.learners_len <= 1 || !mf_barrier_sealed(r->srv->barrier))
        return unseal_now(r);
    int rc = mf_node_read_index(r->srv->node, unseal_caught_up, r);
    if (rc)
        unseal_caught_up(r, rc);
}

void mf_op_seal(struct req *r)
{
    mf_seal_seal(r->srv->seal);
    mf_metrics_publish(r->srv); /* /health says sealed from now on */
    MF_INFO(LOG_MOD, "sealed by request");
    mf_handler_reply_empty(r);
}

/* ---- reads ---- */

/* Without a token allowed to read sys/status, status says only whether the
 * node is initialised, sealed and has a leader (and which): enough for
 * clients and probes to find the leader, nothing about the cluster. */
static bool status_in_full(struct req *r)
{
    return r->pb->token[0] && mf_tokens_authenticate(r) == 0 &&
           mf_authz_allows(r, MF_CAP_READ, "sys/status");
}

/* A member's replication as this node knows it: the leader knows each
 * member's match index (so its lag) and every member's reported feature
 * level; any node knows when it last heard from a peer. */
static void member_replication(struct mf_server *s, const struct mf_raft_status *st, uint64_t id,
                               bool voter, Mayfly__Api__Member *m)
{
    bool self = id == st->id, leading = st->role == MF_RAFT_LEADER;
    m->role = (char *)(id == st->lead ? "leader" : voter ? "voter" : "learner");
    m->feature_level = mf_cluster_version_member_level(s, id);
    if (self) {
        m->reachable = true;
        m->match_index = leading ? st->last_index : 0;
        return;
    }
    struct mf_node_peer_view v = {0};
    if (mf_node_peer_view(s->node, id, &v))
        v = (struct mf_node_peer_view){0};
    uint64_t now = mf_now_mono_ms(), e = (uint64_t)s->cfg->election_ticks * s->cfg->tick_ms;
    m->reachable = v.heard_mono_ms && now - v.heard_mono_ms <= 2 * e;
    if (leading) {
        m->match_index = v.match_index;
        m->lag_entries = st->last_index > v.match_index ? st->last_index - v.match_index : 0;
    }
}

void mf_op_status(struct req *r)
{
    struct mf_server *s = r->srv;
    bool full = status_in_full(r);
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    Mayfly__Api__StatusResponse out = MAYFLY__API__STATUS_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.node_id = s->cfg->node_id;
    out.role = (char *)(st.role == MF_RAFT_LEADER      ? "leader"
                        : st.role == MF_RAFT_FOLLOWER ? "follower"
                                                      : "candidate");
    out.leader_id = st.lead;
    const char *la = NULL;
    if (st.lead == s->cfg->node_id)
        la = mf_api_client_addr(s);
    else if (st.lead)
        la = mf_node_member_api_addr(s->node, st.lead);
    out.leader_addr = (char *)(la ? la : "");
    out.term = st.term;
    out.commit_index = st.commit;
    out.applied_index = mf_node_applied(s->node);
    out.sealed = mf_barrier_sealed(s->barrier);
    out.initialized = mf_srv_initialized(s);
    out.read = mf_handler_read_info(r, &ri);
    Mayfly__Api__Member members[2 * MF_RAFT_NODES_MAX];
    Mayfly__Api__Member *ptrs[2 * MF_RAFT_NODES_MAX];
    size_t n = 0;
    for (uint32_t i = 0; i < st.conf.voters_len + st.conf.learners_len; i++) {
        bool voter = i < st.conf.voters_len;
        uint64_t id = voter ? st.conf.voters[i] : st.conf.learners[i - st.conf.voters_len];
        mayfly__api__member__init(&members[n]);
        members[n].id = id;
        const char *addr = mf_node_member_addr(s->node, id);
        members[n].addr = (char *)(addr ? addr : "");
        members[n].voter = voter;
        const char *zone = id == s->cfg->node_id ? s->cfg->zone : mf_node_member_zone(s->node, id);
        members[n].zone = (char *)(zone ? zone : "");
        member_replication(s, &st, id, voter, &members[n]);
        ptrs[n] = &members[n];
        n++;
        if (!voter && id == s->cfg->node_id)
            out.role = "learner";
    }
    /* Not in the configuration: joining (mayflyd --join) or removed. */
    enum mf_node_membership ms = mf_node_membership(s->node);
    if (ms == MF_NODE_MEMBER_JOINING)
        out.role = "joining";
    else if (ms == MF_NODE_MEMBER_REMOVED)
        out.role = "removed";
    out.n_members = n;
    out.members = ptrs;
    out.cluster_version = mf_cluster_version_applied(s);
    out.feature_level = mf_feature_level();
    struct mf_node_clock nc;
    mf_node_clock(s->node, &nc);
    Mayfly__Api__ClockStatus clock = MAYFLY__API__CLOCK_STATUS__INIT;
    clock.agrees = nc.agrees;
    clock.measured = nc.measured;
    clock.offset_ms = nc.offset_ms;
    clock.agreeing = nc.agreeing;
    clock.voters = nc.voters;
    clock.max_skew_ms = nc.max_skew_ms;
    clock.refusals = mf_proposer_clock_refusals(s->prop);
    out.clock = &clock;
    struct mf_node_storage ns;
    mf_node_storage(s->node, &ns);
    out.storage_blocked = ns.blocked ? ns.cause : "";
    Mayfly__Api__AlarmInfo **alarms = NULL;
    size_t n_alarms = 0;
    if (full && mf_op_alarms_read(s, &alarms, &n_alarms) == 0) {
        out.alarms = alarms;
        out.n_alarms = n_alarms;
    }
    if (!full) {
        out.term = out.commit_index = out.applied_index = 0;
        out.n_members = 0;
        out.read = NULL;
        out.clock = NULL;
        out.storage_blocked = "";
        out.cluster_version = out.feature_level = 0;
    }
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_STATUS;
    resp.status = &out;
    mf_api_reply(r, &resp);
    mf_op_alarms_free(alarms, n_alarms);
}
