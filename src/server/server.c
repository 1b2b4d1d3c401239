/* mayflyd's server: the top of the server's stack. It starts every concern
 * in order, connects the node's callbacks (the state machine, role changes,
 * peer messages) to them, and runs the housekeeping timer.
 *
 * The state machine (src/store/fsm.c) is applied on the node's writer thread;
 * results come back to the loop through node.h's callbacks. The barrier is
 * only touched on the loop thread: commands carry ciphertext made by the
 * leader at proposal, and the fsm stores it as it is. */
#include "server/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "net/tls.h"
#include "server/api.h"
#include "server/audit_anchor.h"
#include "server/cluster_version.h"
#include "server/auditlog.h"
#include "server/authz.h"
#include "server/ratelimit.h"
#include "server/reqstats.h"
#include "server/crl.h"
#include "server/dispatch.h"
#include "server/metrics.h"
#include "server/mounts.h"
#include "server/op_members.h"
#include "server/op_keys.h"
#include "server/op_quota.h"
#include "server/op_root.h"
#include "server/op_snapshot.h"
#include "server/op_sys.h"
#include "server/op_tokens.h"
#include "server/proposer.h"
#include "server/scheduler.h"
#include "server/srv.h"
#include "server/storage.h"
#include "store/snapshot.h"
#include "store/usage.h"

#define LOG_MOD "server"
#define HOUSEKEEPING_MS 100

/* ---- the state machine as the node sees it ---- */

static int sm_apply(void *ctx, const struct mf_raft_entry *ents, size_t n, void **results)
{
    struct mf_server *s = ctx;
    struct mf_fsm_entry *fe = calloc(n, sizeof(*fe));
    if (!fe)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        fe[i].index = ents[i].index;
        if (ents[i].type == MF_RAFT_ENTRY_NORMAL) {
            fe[i].data = ents[i].data;
            fe[i].len = ents[i].len;
        } else if (ents[i].type == MF_RAFT_ENTRY_CONF && ents[i].len) {
            fe[i].data = ents[i].data; /* the member registry (store/members.h) */
            fe[i].len = ents[i].len;
            fe[i].conf = true;
        }
    }
    int rc = mf_fsm_apply_batch(s->fsm, fe, n, (Mayfly__Cmd__Result **)results);
    free(fe);
    if (!rc)
        mf_proposer_applied_now(s->prop, mf_fsm_now(s->fsm));
    return rc;
}

static void sm_applied(void *ctx, const struct mf_raft_entry *e, void *result)
{
    struct mf_server *s = ctx;
    const Mayfly__Cmd__Result *res = result;
    if (res && res->code == 0 && res->seq && res->expire_at_ms)
        mf_sched_applied(s, res->expire_at_ms);
    if (res && res->code == 0 && res->policies_changed)
        mf_authz_reload(s); /* before any read waiting for this index runs */
    mf_auditlog_applied(s, e); /* an audit device enabled or disabled */
    mf_quota_applied(s, e);    /* a quota's rate set or deleted */
    mf_op_snapshot_applied(s, e, res); /* a restore replaced the state */
    mf_op_keys_applied(s, e, res); /* a keyring rotated or rekeyed: before later reads */
    mf_fsm_result_free(result);
    if (mf_barrier_sealed(s->barrier)) {
        mf_srv_try_auto_unseal(s);
        mf_metrics_publish(s);
    }
}

static void sm_role_changed(void *ctx, enum mf_raft_role role, uint64_t leader)
{
    struct mf_server *s = ctx;
    if (role == MF_RAFT_CANDIDATE && s->role != MF_RAFT_CANDIDATE)
        s->elections_started++;
    if (leader && leader != s->leader)
        s->leader_changes++;
    if (role != s->role || leader != s->leader)
        MF_INFO(LOG_MOD, "node %" PRIu64 ": %s, leader %" PRIu64, s->cfg->node_id,
                mf_raft_role_name(role), leader);
    s->role = role;
    s->leader = leader;
    if (leader)
        s->last_leader = leader;
    mf_metrics_publish(s);
    if (role == MF_RAFT_LEADER && s->dev && !s->dev_init_started)
        mf_op_dev_init(s);
    if (role == MF_RAFT_LEADER)
        mf_op_snapshot_load_id_base(s); /* ids above a restored backup's */
    if (role != MF_RAFT_LEADER)
        mf_mounts_drop_all(s); /* engines run on the leader only */
    mf_sched_role_changed(s);
    mf_cluster_version_role_changed(s);
}

static int sm_snapshot_create(void *ctx, const char *path, uint64_t *index)
{
    struct mf_server *s = ctx;
    char err[256] = "";
    /* The live state is synced first: the log is later compacted behind a
     * snapshot, never past what the state database holds durably. */
    /* Runs on the thread pool: hold the state lock as a reader so a snapshot
     * install (writer thread) cannot swap the file under the copy. */
    pthread_rwlock_rdlock(&s->state_lock);
    int rc = mf_state_err(mdb_env_sync(mf_fsm_state(s->fsm)->env, 1), "state sync");
    if (!rc)
        rc = mf_snapshot_create(mf_fsm_state(s->fsm), path, index, err, sizeof(err));
    pthread_rwlock_unlock(&s->state_lock);
    if (rc)
        MF_ERROR(LOG_MOD, "snapshot %s: %s", path, err[0] ? err : mf_strerror(rc));
    return rc;
}

static int sm_snapshot_install(void *ctx, const char *path, uint64_t *index)
{
    struct mf_server *s = ctx;
    char err[256] = "";
    /* No read transaction may be open on the state while it is swapped. */
    pthread_rwlock_wrlock(&s->state_lock);
    int rc = mf_snapshot_install(s->fsm, path, index, err, sizeof(err));
    pthread_rwlock_unlock(&s->state_lock);
    if (rc)
        MF_ERROR(LOG_MOD, "installing snapshot %s: %s", path, err[0] ? err : mf_strerror(rc));
    else
        mf_proposer_applied_now(s->prop, mf_fsm_now(s->fsm));
    if (!rc)
        /* Writer thread: the loop reloads before its next decision. */
        __atomic_store_n(&s->policies_stale, true, __ATOMIC_RELEASE);
    return rc;
}

static void sm_peer_message(void *ctx, uint64_t from, uint8_t tag, const uint8_t *data,
                            size_t len)
{
    if (tag == MF_AUDITLOG_PEER_TAG)
        return mf_audit_anchor_peer_message(ctx, from, data, len); /* an audit anchor */
    if (tag == MF_STORAGE_PEER_TAG)
        return mf_storage_peer_message(ctx, from, data, len); /* a follower's storage */
    if (tag == MF_CLUSTER_VERSION_PEER_TAG) /* a member's feature level */
        return mf_cluster_version_peer_message(ctx, from, data, len);
    mf_api_peer_message(ctx, from, tag, data, len);
}

/* The node recovers from a full map or disk (node.h "Storage pressure"):
 * the state environment is reopened, its map grown if configured larger.
 * No read transaction may be open meanwhile: the state lock as a writer. */
static int sm_storage_reopen(void *ctx, uint64_t state_map_bytes, uint64_t *applied)
{
    struct mf_server *s = ctx;
    pthread_rwlock_wrlock(&s->state_lock);
    int rc = mf_fsm_reopen(s->fsm, (size_t)state_map_bytes);
    pthread_rwlock_unlock(&s->state_lock);
    if (rc) {
        MF_ERROR(LOG_MOD, "reopening the state database: %s", mf_strerror(rc));
        return rc;
    }
    *applied = mf_fsm_applied(s->fsm);
    return 0;
}

static uint64_t sm_state_used_bytes(void *ctx)
{
    struct mf_server *s = ctx;
    struct mf_lmdb_usage u;
    return mf_state_usage(mf_fsm_state(s->fsm), &u) == 0 ? u.used_bytes : 0;
}

static void sm_fatal(void *ctx, int code, const char *what)
{
    struct mf_server *s = ctx;
    s->failed = code ? code : MF_EINTERNAL;
    MF_ERROR(LOG_MOD, "fatal: %s: %s; this node stops serving", what, mf_strerror(code));
    mf_api_fail_forwards(s, MF_EUNAVAIL);
    /* A command this build does not know (store/features.h): the process
     * stops (mayflyd exits nonzero) rather than serve a diverging replica. */
    const char *stop = s->fsm ? mf_fsm_stop_reason(s->fsm) : NULL;
    if (stop) {
        MF_ERROR(LOG_MOD, "stopping: %s", stop);
        uv_stop(s->loop);
    }
}

/* ---- lifecycle ---- */

static void on_housekeeping(uv_timer_t *t)
{
    struct mf_server *s = t->data;
    mf_api_expire_forwards(s);
    mf_auditlog_tick(s);
    if (++s->housekeeping_ticks % (MF_AUDITLOG_ANCHOR_EVERY_MS / HOUSEKEEPING_MS) == 0)
        mf_audit_anchor_round(s);
    mf_metrics_publish(s);
    if (s->metrics) /* the CRLs are served on the metrics listener */
        mf_crl_refresh(s);
    mf_members_tick(s); /* auto-promotion; the registry after a snapshot install */
    mf_op_keys_tick(s); /* automatic key rotation (leader) */
}

static int load_tls(struct mf_server *s)
{
    const struct mf_config *c = s->cfg;
    char err[512] = "";
    if (!c->tls_ca_file || !c->tls_cert_file || !c->tls_key_file) {
        MF_ERROR(LOG_MOD, "config: tls_ca_file, tls_cert_file and tls_key_file are required "
                          "(TLS is always on)");
        return MF_ECONFIG;
    }
    int rc = mf_tls_server_ctx_new(c->tls_ca_file, c->tls_cert_file, c->tls_key_file,
                                   MF_TLS_CLIENT_AUTH_REQUIRE, &s->peer_server_ctx, err,
                                   sizeof(err));
    if (!rc)
        rc = mf_tls_client_ctx_new(c->tls_ca_file, c->tls_cert_file, c->tls_key_file,
                                   &s->peer_client_ctx, err, sizeof(err));
    if (!rc)
        rc = mf_tls_server_ctx_new(c->tls_ca_file, c->tls_cert_file, c->tls_key_file,
                                   MF_TLS_CLIENT_AUTH_ANY, &s->client_ctx, err, sizeof(err));
    if (rc)
        MF_ERROR(LOG_MOD, "TLS: %s", err[0] ? err : mf_strerror(rc));
    return rc;
}

int mf_server_start(uv_loop_t *loop, const struct mf_server_opts *o, struct mf_server **out)
{
    struct mf_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = o->cfg;
    s->dev = o->dev;
    s->ready_cb = o->ready_cb;
    pthread_rwlock_init(&s->state_lock, NULL);
    s->reqstats = calloc(1, sizeof(*s->reqstats));
    if (!s->reqstats) {
        free(s);
        return -ENOMEM;
    }
    int rc = load_tls(s);
    if (!rc)
        rc = mf_barrier_new(&s->barrier);
    if (!rc)
        rc = mf_seal_new(s->barrier, &s->seal);
    if (!rc) {
        struct mf_state_opts so = {.map_size_bytes = (size_t)(s->cfg->state_map_size_mb << 20)};
        rc = mf_fsm_open(s->cfg->data_dir, &so, &s->fsm);
        if (rc)
            MF_ERROR(LOG_MOD, "cannot open the state database in %s: %s", s->cfg->data_dir,
                     mf_strerror(rc));
    }
    if (rc)
        goto fail;
    mf_srv_try_auto_unseal(s);
    struct mf_node_opts no = {
        .cfg = s->cfg,
        .peer_server_ctx = s->peer_server_ctx,
        .peer_client_ctx = s->peer_client_ctx,
        .applied_index = mf_fsm_applied(s->fsm),
        .config_path = o->config_path,
        .join = o->join,
        .sm = {.ctx = s,
               .apply = sm_apply,
               .applied = sm_applied,
               .role_changed = sm_role_changed,
               .peer_message = sm_peer_message,
               .snapshot_create = sm_snapshot_create,
               .snapshot_install = sm_snapshot_install,
               .fatal = sm_fatal,
               .storage_reopen = sm_storage_reopen,
               .state_used_bytes = sm_state_used_bytes},
    };
    /* The proposer exists before the node: the node's first callbacks (a
     * single node elects itself at once) may reach it. */
    rc = mf_authz_init(s);
    if (!rc)
        rc = mf_ratelimit_new(s->cfg->rate_limit_per_token, s->cfg->rate_limit_burst,
                              &s->ratelimit);
    if (!rc)
        rc = mf_proposer_node_new(NULL, s->barrier, mf_fsm_now(s->fsm), &s->prop);
    if (!rc)
        rc = mf_mounts_init(s);
    if (!rc)
        rc = mf_crl_init(s);
    if (!rc)
        rc = mf_sched_init(s);
    if (!rc)
        rc = mf_node_start(loop, &no, &s->node);
    if (rc)
        goto fail;
    mf_proposer_node_attach(s->prop, s->node);
    rc = mf_members_start(s); /* the replicated registry into the node's table */
    if (!rc)
        rc = mf_api_listen(s, mf_dispatch);
    if (!rc)
        mf_api_set_authenticator(s, mf_tokens_authenticate);
    if (!rc)
        rc = mf_metrics_start(s);
    if (!rc)
        rc = mf_storage_init(s);
    if (!rc)
        rc = mf_cluster_version_init(s);
    if (rc)
        goto fail;
    uv_timer_init(loop, &s->housekeeping);
    s->housekeeping.data = s;
    s->housekeeping_started = true;
    uv_timer_start(&s->housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
    if (!s->dev && s->ready_cb) {
        s->ready_sent = true;
        s->ready_cb(s, NULL);
    }
    *out = s;
    return 0;
fail:
    mf_server_stop(s);
    return rc;
}

void mf_server_stop(struct mf_server *s)
{
    if (!s)
        return;
    mf_api_close(s);
    mf_metrics_stop(s);
    mf_mounts_close_all(s);
    mf_node_stop(s->node);
    s->node = NULL;
    mf_crl_free(s);
    mf_authz_free(s);
    mf_auditlog_free(s);
    mf_ratelimit_free(s->ratelimit);
    mf_op_root_free(s);
    mf_op_keys_free(s);
    mf_quota_rates_free(s);
    mf_members_free(s);
    s->ratelimit = NULL;
    mf_fsm_close(s->fsm);
    mf_seal_free(s->seal);
    mf_barrier_free(s->barrier);
    mf_tls_ctx_free(s->peer_server_ctx);
    mf_tls_ctx_free(s->peer_client_ctx);
    mf_tls_ctx_free(s->client_ctx);
    mf_secmem_str_free(s->dev_root_token);
    free(s->reqstats);
    s->reqstats = NULL;
    pthread_rwlock_destroy(&s->state_lock);
    mf_sched_close(s);
    mf_storage_close(s);
    mf_cluster_version_close(s);
    mf_proposer_node_free(s->prop);
    s->prop = NULL;
    if (s->housekeeping_started) {
        uv_timer_stop(&s->housekeeping);
        s->handles_open++;
        uv_close((uv_handle_t *)&s->housekeeping, mf_srv_handle_closed);
    }
    if (s->handles_open == 0)
        free(s);
}

const char *mf_server_client_addr(const struct mf_server *s)
{
    return mf_api_client_addr(s);
}

const char *mf_server_metrics_addr(const struct mf_server *s)
{
    return mf_metrics_addr(s);
}

const char *mf_server_peer_addr(const struct mf_server *s)
{
    return mf_node_peer_addr(s->node);
}

void mf_server_reopen_logs(struct mf_server *s)
{
    mf_auditlog_reopen(s);
}

int mf_server_failed(const struct mf_server *s)
{
    return s->failed;
}
