/* /metrics (Prometheus text), /health and the pki CRLs (/v1/<mount>/crl,
 * DER, and /v1/<mount>/crl/pem, answered by crl.c) on an HTTP listener
 * (libmicrohttpd), loopback by default (config metrics_listen; port 0 picks a
 * free one).
 *
 * libmicrohttpd answers from its own thread, so it never touches the server:
 * the loop thread copies the figures into a snapshot under a mutex (every
 * housekeeping tick and whenever a lateness sample is added), and the HTTP
 * thread formats that snapshot. Nothing secret is exported. */
#include <inttypes.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "mayfly.pb-c.h"
#include "net/addr.h"
#include "server/crl.h"
#include "server/leader_clock.h"
#include "server/metrics.h"
#include "net/conn.h"
#include "server/proposer.h"
#include "server/reqstats.h"
#include "server/scheduler.h"
#include "server/storage.h"
#include "store/leases.h"

#define LOG_MOD "metrics"

/* Figures for /metrics, copied to the HTTP thread under a lock. */
struct snapshot {
    int role;
    bool sealed;
    bool failed;
    uint64_t term, commit, applied, leader;
    struct mf_sched_stats sched;
    uint64_t batches, entries_persisted, entries_applied;
    uint64_t leases[MF_LEASE_STATES]; /* replicated state: leases by state */
    struct mf_node_clock clock;       /* this node's clock against the voters' */
    uint64_t clock_refusals;
    struct mf_storage_figures storage; /* storage.c: used, limits, alarm */
    uint64_t state_map_bytes, log_map_bytes;
    /* leader only: each other member's replication */
    struct peer_fig {
        uint64_t id, match, lag;
        bool reachable;
    } peers[2 * MF_RAFT_NODES_MAX];
    size_t n_peers;
    uint64_t elections_started, leader_changes;
    uint64_t tls_failures_client, tls_failures_peer_in, tls_failures_peer_out;
    struct mf_reqstats req; /* requests by op and code, latency per op */
};

struct mf_metrics {
    struct mf_server *srv;
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    struct snapshot snap; /* guarded by lock */
    char *tls_cert, *tls_key; /* PEM, kept while the daemon runs; the key wiped after */
    size_t tls_key_len;
    char addr[MF_NET_HOST_MAX + 8];
};

#define TLS_FILE_MAX (1 << 20)

/* A whole PEM file, NUL-terminated (malloc'd), or NULL. */
static char *read_pem(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(TLS_FILE_MAX + 1) : NULL;
    size_t n = buf ? fread(buf, 1, TLS_FILE_MAX, f) : 0;
    bool whole = f && !ferror(f) && feof(f);
    if (f)
        fclose(f);
    if (!buf || !whole || n == 0) {
        if (buf)
            OPENSSL_cleanse(buf, TLS_FILE_MAX);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The leader's view of every other member's replication. */
static void peers_publish(struct mf_server *s, const struct mf_raft_status *st, struct snapshot *m)
{
    uint64_t now = mf_now_mono_ms(), e = (uint64_t)s->cfg->election_ticks * s->cfg->tick_ms;
    uint32_t total = st->conf.voters_len + st->conf.learners_len;
    for (uint32_t i = 0; i < total && m->n_peers < 2 * MF_RAFT_NODES_MAX; i++) {
        uint64_t id = i < st->conf.voters_len ? st->conf.voters[i]
                                               : st->conf.learners[i - st->conf.voters_len];
        struct mf_node_peer_view v = {0};
        if (id == st->id || mf_node_peer_view(s->node, id, &v))
            continue;
        struct peer_fig *p = &m->peers[m->n_peers++];
        p->id = id;
        p->match = v.match_index;
        p->lag = st->last_index > v.match_index ? st->last_index - v.match_index : 0;
        p->reachable = v.heard_mono_ms && now - v.heard_mono_ms <= 2 * e;
    }
}

void mf_metrics_publish(struct mf_server *s)
{
    if (!s->metrics)
        return;
    /* The request figures make it large: on the heap, not the loop's stack. */
    struct snapshot *mp = calloc(1, sizeof(*mp));
    if (!mp)
        return;

    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    mp->role = st.role;
    mp->term = st.term;
    mp->commit = st.commit;
    mp->applied = mf_node_applied(s->node);
    mp->leader = st.lead;
    mp->sealed = mf_barrier_sealed(s->barrier);
    mp->failed = s->failed != 0;
    mf_sched_stats(s, &mp->sched);
    MDB_txn *txn;
    if (s->fsm && mf_srv_read_begin(s, &txn) == 0) {
        if (mf_state_lease_counts(txn, mf_fsm_state(s->fsm), mp->leases))
            memset(mp->leases, 0, sizeof(mp->leases));
        mf_srv_read_end(s, txn);
    }
    struct mf_node_stats ns;
    mf_node_stats(s->node, &ns);
    mp->batches = ns.batches;
    mp->entries_persisted = ns.entries_persisted;
    mp->entries_applied = ns.entries_applied;
    mf_node_clock(s->node, &mp->clock);
    mp->clock_refusals = mf_proposer_clock_refusals(s->prop);
    mf_storage_figures(s, &mp->storage);
    mp->state_map_bytes = s->cfg->state_map_size_mb << 20;
    mp->log_map_bytes = s->cfg->log_map_size_mb << 20;
    if (st.role == MF_RAFT_LEADER)
        peers_publish(s, &st, mp);
    mp->elections_started = s->elections_started;
    mp->leader_changes = s->leader_changes;
    /* mayflyd accepts on two listeners: the peers' (the node counts its
     * own) and the clients' (the rest). */
    uint64_t accepted, dialed;
    mf_conn_tls_failures(&accepted, &dialed);
    mp->tls_failures_peer_in = ns.peer_tls_failures_in;
    mp->tls_failures_client =
        accepted > ns.peer_tls_failures_in ? accepted - ns.peer_tls_failures_in : 0;
    mp->tls_failures_peer_out = dialed;
    if (s->reqstats)
        mp->req = *s->reqstats;
    pthread_mutex_lock(&s->metrics->lock);
    s->metrics->snap = *mp;
    pthread_mutex_unlock(&s->metrics->lock);
    free(mp);
}

/* The request name of Request op field `op` ("kv_put"), or NULL. */
static const char *op_name(int op)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&mayfly__api__request__descriptor, (unsigned)op);
    return f ? f->name : NULL;
}

/* The figures of issue 13 item 6: replication per peer, elections, TLS
 * failures, map sizes, and requests by operation with their latency. */
static size_t format_new(const struct snapshot *m, char *out, size_t cap, size_t len)
{
#define EMIT(...) len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, __VA_ARGS__)
    EMIT("# HELP mayfly_raft_peer_lag_entries Entries the leader holds that a member has not "
         "acknowledged (reported by the leader only).\n"
         "# TYPE mayfly_raft_peer_lag_entries gauge\n");
    for (size_t i = 0; i < m->n_peers; i++)
        EMIT("mayfly_raft_peer_lag_entries{peer=\"%" PRIu64 "\"} %" PRIu64 "\n", m->peers[i].id,
             m->peers[i].lag);
    EMIT("# HELP mayfly_raft_peer_match_index The highest entry a member acknowledged, as the "
         "leader knows it.\n# TYPE mayfly_raft_peer_match_index gauge\n");
    for (size_t i = 0; i < m->n_peers; i++)
        EMIT("mayfly_raft_peer_match_index{peer=\"%" PRIu64 "\"} %" PRIu64 "\n", m->peers[i].id,
             m->peers[i].match);
    EMIT("# HELP mayfly_raft_peer_reachable 1 if the leader heard from the member within two "
         "election timeouts.\n# TYPE mayfly_raft_peer_reachable gauge\n");
    for (size_t i = 0; i < m->n_peers; i++)
        EMIT("mayfly_raft_peer_reachable{peer=\"%" PRIu64 "\"} %d\n", m->peers[i].id,
             m->peers[i].reachable ? 1 : 0);
    EMIT("# HELP mayfly_raft_elections_started_total Elections this node started (it became a "
         "candidate).\n# TYPE mayfly_raft_elections_started_total counter\n"
         "mayfly_raft_elections_started_total %" PRIu64 "\n", m->elections_started);
    EMIT("# HELP mayfly_raft_leader_changes_total Times the leader this node knows changed to "
         "another node.\n# TYPE mayfly_raft_leader_changes_total counter\n"
         "mayfly_raft_leader_changes_total %" PRIu64 "\n", m->leader_changes);
    EMIT("# HELP mayfly_tls_handshake_failures_total TLS handshakes (or certificate identity "
         "checks) that failed: client listener, peer listener, peer dials.\n"
         "# TYPE mayfly_tls_handshake_failures_total counter\n"
         "mayfly_tls_handshake_failures_total{listener=\"client\"} %" PRIu64 "\n"
         "mayfly_tls_handshake_failures_total{listener=\"peer_in\"} %" PRIu64 "\n"
         "mayfly_tls_handshake_failures_total{listener=\"peer_out\"} %" PRIu64 "\n",
         m->tls_failures_client, m->tls_failures_peer_in, m->tls_failures_peer_out);
    EMIT("# HELP mayfly_storage_map_bytes The configured LMDB map size (the most the database "
         "may use).\n# TYPE mayfly_storage_map_bytes gauge\n"
         "mayfly_storage_map_bytes{db=\"state\"} %" PRIu64 "\n"
         "mayfly_storage_map_bytes{db=\"log\"} %" PRIu64 "\n",
         m->state_map_bytes, m->log_map_bytes);
    const struct mf_reqstats *rq = &m->req;
    EMIT("# HELP mayfly_requests_total Client requests this node answered, by operation and "
         "result code.\n# TYPE mayfly_requests_total counter\n");
    for (int op = 1; op < MF_REQSTATS_OPS; op++) {
        const char *name = rq->total[op] ? op_name(op) : NULL;
        for (int c = 0; name && c < MF_REQSTATS_CODES; c++)
            if (rq->count[op][c])
                EMIT("mayfly_requests_total{op=\"%s\",code=\"%s\"} %" PRIu64 "\n", name,
                     mf_reqstats_code_name(c), rq->count[op][c]);
    }
    EMIT("# HELP mayfly_request_duration_seconds Time from a request's arrival to its answer "
         "on this node, by operation.\n# TYPE mayfly_request_duration_seconds histogram\n");
    for (int op = 1; op < MF_REQSTATS_OPS; op++) {
        const char *name = rq->total[op] ? op_name(op) : NULL;
        if (!name)
            continue;
        uint64_t cum = 0;
        for (int b = 0; b < MF_REQSTATS_BUCKETS; b++) {
            cum += rq->bucket[op][b];
            EMIT("mayfly_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                 name, mf_reqstats_bounds_s[b], cum);
        }
        EMIT("mayfly_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
             "mayfly_request_duration_seconds_sum{op=\"%s\"} %.6f\n"
             "mayfly_request_duration_seconds_count{op=\"%s\"} %" PRIu64 "\n",
             name, rq->total[op], name, (double)rq->sum_us[op] / 1e6, name, rq->total[op]);
    }
#undef EMIT
    return len;
}

/* A malloc'd copy of `text` with a newline. */
static char *line_dup(const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(n + 2);
    if (out) {
        memcpy(out, text, n);
        memcpy(out + n, "\n", 2);
    }
    return out;
}

static size_t format_new(const struct snapshot *m, char *out, size_t cap, size_t len);

/* Writes the figures into out[cap]; returns the length they need (more
 * than cap: call again with a larger buffer). */
static size_t format_body(const struct snapshot *m, uint64_t node_id, char *out, size_t cap)
{
    size_t len = 0;
#define EMIT(...) len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, __VA_ARGS__)
    EMIT("# HELP mayfly_up 1 while the node serves (0 after a fatal storage error).\n"
         "# TYPE mayfly_up gauge\nmayfly_up{node=\"%" PRIu64 "\"} %d\n", node_id, !m->failed);
    EMIT("# HELP mayfly_sealed 1 while this node is sealed.\n"
         "# TYPE mayfly_sealed gauge\nmayfly_sealed %d\n", m->sealed);
    EMIT("# HELP mayfly_raft_is_leader 1 while this node leads.\n"
         "# TYPE mayfly_raft_is_leader gauge\nmayfly_raft_is_leader %d\n",
         m->role == MF_RAFT_LEADER);
    EMIT("# HELP mayfly_raft_term This node's Raft term.\n# TYPE mayfly_raft_term gauge\nmayfly_raft_term %" PRIu64 "\n", m->term);
    EMIT("# HELP mayfly_raft_leader_id The leader this node knows (0: none).\n"
         "# TYPE mayfly_raft_leader_id gauge\nmayfly_raft_leader_id %" PRIu64 "\n", m->leader);
    EMIT("# HELP mayfly_raft_commit_index The commit index this node knows.\n"
         "# TYPE mayfly_raft_commit_index gauge\nmayfly_raft_commit_index %" PRIu64 "\n",
         m->commit);
    EMIT("# HELP mayfly_raft_applied_index The last entry this node applied.\n"
         "# TYPE mayfly_raft_applied_index gauge\nmayfly_raft_applied_index %" PRIu64 "\n",
         m->applied);
    EMIT("# HELP mayfly_raft_batches_total Ready batches (one log fsync, one apply "
         "transaction each).\n# TYPE mayfly_raft_batches_total counter\n"
         "mayfly_raft_batches_total %" PRIu64 "\n", m->batches);
    EMIT("# HELP mayfly_raft_entries_persisted_total Log entries this node wrote.\n"
         "# TYPE mayfly_raft_entries_persisted_total counter\n"
         "mayfly_raft_entries_persisted_total %" PRIu64 "\n", m->entries_persisted);
    EMIT("# HELP mayfly_raft_entries_applied_total Log entries this node applied.\n"
         "# TYPE mayfly_raft_entries_applied_total counter\n"
         "mayfly_raft_entries_applied_total %" PRIu64 "\n", m->entries_applied);
    EMIT("# HELP mayfly_leases_expired_total Leases this node (as leader) proposed to expire.\n"
         "# TYPE mayfly_leases_expired_total counter\nmayfly_leases_expired_total %" PRIu64 "\n",
         m->sched.expired);
    EMIT("# HELP mayfly_leases_revoked_total Leases this node (as leader) marked revoked.\n"
         "# TYPE mayfly_leases_revoked_total counter\nmayfly_leases_revoked_total %" PRIu64 "\n",
         m->sched.revoked);
    EMIT("# HELP mayfly_leases Leases by state in this node's replicated state (revoked ones "
         "until tidy drops them).\n# TYPE mayfly_leases gauge\n");
    for (int st = 1; st < MF_LEASE_STATES; st++)
        EMIT("mayfly_leases{state=\"%s\"} %" PRIu64 "\n", mf_lease_state_name(st), m->leases[st]);
    EMIT("# HELP mayfly_revocation_retries_total Engine revocations that failed and will be "
         "retried.\n# TYPE mayfly_revocation_retries_total counter\n"
         "mayfly_revocation_retries_total %" PRIu64 "\n", m->sched.retries);
    EMIT("# HELP mayfly_engine_revoke_leases_total Leases handed to an engine's revoke, repeats "
         "included (revoke is idempotent: a lease sent twice, e.g. across a failover, counts "
         "twice).\n# TYPE mayfly_engine_revoke_leases_total counter\n"
         "mayfly_engine_revoke_leases_total %" PRIu64 "\n", m->sched.engine_calls);
    EMIT("# HELP mayfly_leases_irrevocable_total Leases this node (as leader) marked "
         "irrevocable.\n# TYPE mayfly_leases_irrevocable_total counter\nmayfly_leases_irrevocable_total %"
         PRIu64 "\n", m->sched.irrevocable);
    EMIT("# HELP mayfly_reconciler_revoked_total Orphaned credentials the reconciler "
         "revoked.\n# TYPE mayfly_reconciler_revoked_total counter\nmayfly_reconciler_revoked_total %"
         PRIu64 "\n", m->sched.reconciled);
    EMIT("# HELP mayfly_tokens_expired_total Expired tokens this node (as leader) revoked, "
         "children included.\n# TYPE mayfly_tokens_expired_total counter\n"
         "mayfly_tokens_expired_total %" PRIu64 "\n", m->sched.tokens_revoked);
    EMIT("# HELP mayfly_revocation_lateness_ms Time from expire_at to the revocation "
         "proposed by this leader.\n# TYPE mayfly_revocation_lateness_ms histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < MF_SCHED_LATENESS_BUCKETS; i++) {
        cum += m->sched.lateness_buckets[i];
        EMIT("mayfly_revocation_lateness_ms_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n",
             mf_sched_lateness_bounds_ms[i], cum);
    }
    EMIT("mayfly_revocation_lateness_ms_bucket{le=\"+Inf\"} %" PRIu64 "\n", m->sched.lateness_count);
    EMIT("mayfly_revocation_lateness_ms_sum %" PRIu64 "\n", m->sched.lateness_sum_ms);
    EMIT("mayfly_revocation_lateness_ms_count %" PRIu64 "\n", m->sched.lateness_count);
    EMIT("# HELP mayfly_revocation_lateness_max_ms The largest revocation lateness seen.\n"
         "# TYPE mayfly_revocation_lateness_max_ms gauge\nmayfly_revocation_lateness_max_ms %"
         PRIu64 "\n", m->sched.lateness_max_ms);
    EMIT("# HELP mayfly_clock_offset_ms This node's wall clock minus the voters' median.\n"
         "# TYPE mayfly_clock_offset_ms gauge\nmayfly_clock_offset_ms %" PRId64 "\n",
         m->clock.offset_ms);
    EMIT("# HELP mayfly_clock_agrees 1 while this node's clock is within max_clock_skew_ms of a "
         "majority of voters (0: it refuses lease-bound reads and time-bearing writes).\n"
         "# TYPE mayfly_clock_agrees gauge\nmayfly_clock_agrees %d\n",
         m->clock.agrees || m->clock.voters <= 1);
    EMIT("# HELP mayfly_clock_refusals_total Reads and writes this node refused for its clock.\n"
         "# TYPE mayfly_clock_refusals_total counter\nmayfly_clock_refusals_total %" PRIu64 "\n",
         m->clock_refusals);
    const struct mf_storage_figures *sf = &m->storage;
    if (sf->measured) {
        EMIT("# HELP mayfly_storage_used_bytes Storage this node uses, as the quota counts it "
             "(used LMDB pages; snapshot file sizes).\n"
             "# TYPE mayfly_storage_used_bytes gauge\n"
             "mayfly_storage_used_bytes{db=\"state\"} %" PRIu64 "\n"
             "mayfly_storage_used_bytes{db=\"log\"} %" PRIu64 "\n"
             "mayfly_storage_used_bytes{db=\"snapshots\"} %" PRIu64 "\n",
             sf->usage.state_used_bytes, sf->usage.log_used_bytes, sf->usage.snapshots_bytes);
        EMIT("# HELP mayfly_storage_limit_bytes The storage quota's effective limits.\n"
             "# TYPE mayfly_storage_limit_bytes gauge\n"
             "mayfly_storage_limit_bytes{db=\"state\"} %" PRIu64 "\n"
             "mayfly_storage_limit_bytes{db=\"log\"} %" PRIu64 "\n"
             "mayfly_storage_limit_bytes{db=\"snapshots\"} %" PRIu64 "\n"
             "mayfly_storage_limit_bytes{db=\"free_floor\"} %" PRIu64 "\n",
             sf->limits.state_bytes, sf->limits.log_bytes, sf->limits.snapshots_bytes,
             sf->limits.free_floor_bytes);
        EMIT("# HELP mayfly_storage_fs_free_bytes Free space on the data directory's "
             "filesystem.\n# TYPE mayfly_storage_fs_free_bytes gauge\n"
             "mayfly_storage_fs_free_bytes %" PRIu64 "\n",
             sf->usage.fs_free_bytes);
    }
    EMIT("# HELP mayfly_storage_alarm 1 while a storage alarm is set in the replicated state "
         "(growing writes refused).\n# TYPE mayfly_storage_alarm gauge\n"
         "mayfly_storage_alarm %d\n",
         sf->alarm ? 1 : 0);
    EMIT("# HELP mayfly_storage_blocked 1 while this node cannot commit (full disk or LMDB "
         "map; it resumes by itself once there is room).\n# TYPE mayfly_storage_blocked gauge\n"
         "mayfly_storage_blocked %d\n",
         sf->blocked_cause[0] ? 1 : 0);
#undef EMIT
    return format_new(m, out, cap, len);
}

static char *format_metrics(const struct snapshot *m, uint64_t node_id)
{
    size_t cap = 32768;
    for (int tries = 0; tries < 4; tries++) {
        char *out = malloc(cap);
        if (!out)
            return NULL;
        size_t need = format_body(m, node_id, out, cap);
        if (need < cap)
            return out;
        free(out);
        cap = need + 1;
    }
    return NULL;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)version, (void)upload, (void)upload_len, (void)con_cls;
    struct mf_metrics *mx = cls;
    if (strcmp(method, "GET") != 0)
        return MHD_NO;
    struct snapshot snap;
    pthread_mutex_lock(&mx->lock);
    snap = mx->snap;
    pthread_mutex_unlock(&mx->lock);
    char *body;
    size_t body_len = 0;
    const char *type = "text/plain; version=0.0.4";
    unsigned status = MHD_HTTP_OK;
    if ((body = mf_crl_http_get(mx->srv->crl, url, &body_len, &type)) != NULL) {
        /* body_len set: a CRL (DER is binary) */
    } else if (strcmp(url, "/metrics") == 0) {
        body = format_metrics(&snap, mx->srv->cfg->node_id);
    } else if (strcmp(url, "/health") == 0) {
        /* 200 when this node can serve: up, unsealed, its clock agreeing, not
         * blocked by a full disk or map (it cannot apply the alarm then), no
         * storage alarm (writes that grow the data would be refused). */
        bool clock_ok = snap.clock.agrees || snap.clock.voters <= 1;
        bool blocked = snap.storage.blocked_cause[0] != 0;
        status = (!snap.failed && !snap.sealed && clock_ok && !blocked && !snap.storage.alarm)
                     ? MHD_HTTP_OK
                     : MHD_HTTP_SERVICE_UNAVAILABLE;
        char why[320];
        if (blocked)
            snprintf(why, sizeof(why), "storage blocked: %s", snap.storage.blocked_cause);
        if (!clock_ok)
            mf_leader_clock_reason(why, sizeof(why), snap.clock.measured, snap.clock.offset_ms,
                                   snap.clock.agreeing, snap.clock.voters,
                                   snap.clock.max_skew_ms);
        body = snap.failed   ? strdup("failed\n")
               : snap.sealed ? strdup("sealed\n")
               : !clock_ok   ? line_dup(why)
               : blocked     ? line_dup(why)
               : snap.storage.alarm ? line_dup(snap.storage.alarm_text)
                             : strdup("ok\n");
    } else {
        status = MHD_HTTP_NOT_FOUND;
        body = strdup("not found: try /metrics, /health or /v1/<pki mount>/crl[/pem]\n");
    }
    if (!body)
        return MHD_NO;
    if (!body_len)
        body_len = strlen(body);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body_len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

int mf_metrics_start(struct mf_server *s)
{
    const char *addr = s->cfg->metrics_listen;
    if (!addr || !*addr)
        return 0; /* disabled */
    char host[MF_NET_HOST_MAX];
    uint16_t port;
    struct sockaddr_storage ss;
    if (mf_net_split_hostport(addr, host, sizeof(host), &port) ||
        mf_net_sockaddr(host, port, &ss)) {
        MF_ERROR(LOG_MOD, "metrics_listen '%s' is not ip:port", addr);
        return MF_ECONFIG;
    }
    struct mf_metrics *mx = calloc(1, sizeof(*mx));
    if (!mx)
        return MF_EINTERNAL;
    pthread_mutex_init(&mx->lock, NULL);
    mx->srv = s;
    s->metrics = mx;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    const char *tls_cert_file = s->cfg->metrics_tls_cert_file;
    if (tls_cert_file) {
        size_t cert_len;
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            MF_ERROR(LOG_MOD, "this libmicrohttpd has no TLS: unset metrics_tls_*");
            mf_metrics_stop(s);
            return MF_ECONFIG;
        }
        mx->tls_cert = read_pem(tls_cert_file, &cert_len);
        mx->tls_key = read_pem(s->cfg->metrics_tls_key_file, &mx->tls_key_len);
        if (!mx->tls_cert || !mx->tls_key) {
            MF_ERROR(LOG_MOD, "cannot read metrics_tls_cert_file or metrics_tls_key_file");
            mf_metrics_stop(s);
            return MF_ECONFIG;
        }
        flags |= MHD_USE_TLS;
    }
    /* The HTTPS options only when TLS is on: MHD refuses them otherwise. */
    mx->daemon = tls_cert_file
                     ? MHD_start_daemon(flags, 0, NULL, NULL, answer, mx, MHD_OPTION_SOCK_ADDR,
                                        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                        (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
                                        (unsigned)10, MHD_OPTION_HTTPS_MEM_CERT, mx->tls_cert,
                                        MHD_OPTION_HTTPS_MEM_KEY, mx->tls_key, MHD_OPTION_END)
                     : MHD_start_daemon(flags, 0, NULL, NULL, answer, mx, MHD_OPTION_SOCK_ADDR,
                                        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                        (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
                                        (unsigned)10, MHD_OPTION_END);
    if (!mx->daemon) {
        MF_ERROR(LOG_MOD, "cannot listen on %s for metrics", addr);
        mf_metrics_stop(s);
        return MF_ECONFIG;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(mx->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(mx->addr, sizeof(mx->addr), "%s:%u", host, info ? info->port : port);
    mf_metrics_publish(s);
    return 0;
}

const char *mf_metrics_addr(const struct mf_server *s)
{
    return s->metrics ? s->metrics->addr : "";
}

void mf_metrics_stop(struct mf_server *s)
{
    struct mf_metrics *mx = s->metrics;
    if (!mx)
        return;
    if (mx->daemon)
        MHD_stop_daemon(mx->daemon);
    if (mx->tls_key)
        OPENSSL_cleanse(mx->tls_key, mx->tls_key_len);
    free(mx->tls_key);
    free(mx->tls_cert);
    pthread_mutex_destroy(&mx->lock);
    free(mx);
    s->metrics = NULL;
}
