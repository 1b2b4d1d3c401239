/* /metrics (Prometheus text), /health and the pki CRLs (/v1/<mount>/crl,
 * DER, and /v1/<mount>/crl/pem; see crl.c) on a plain HTTP listener
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

#include "common/err.h"
#include "common/log.h"
#include "net/addr.h"
#include "server/srv_int.h"
#include "store/leases.h"

#define LOG_MOD "metrics"

static const uint64_t lateness_bounds_ms[MF_METRICS_BUCKETS] = {10,  25,   50,   100,  250,
                                                                 500, 1000, 2500, 5000, 10000};

/* A CRL served at /v1/<mount>/crl (DER) and /v1/<mount>/crl/pem (crl.c). */
struct served_crl {
    char mount[MF_LEASE_MOUNT_MAX + 1];
    char *pem;
    unsigned char *der;
    size_t der_len;
};

struct mf_metrics {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    struct mf_metrics_snapshot snap; /* guarded by lock */
    struct served_crl crls[MF_SRV_CRL_MOUNTS_MAX]; /* guarded by lock */
    size_t crls_len;
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

void mf_metrics_set_crl(struct mf_server *s, const char *mount, const char *pem,
                        const unsigned char *der, size_t der_len)
{
    struct mf_metrics *mx = s->metrics;
    char *p = mx ? strdup(pem) : NULL;
    unsigned char *d = p ? malloc(der_len) : NULL;
    if (!d) {
        free(p);
        return;
    }
    memcpy(d, der, der_len);
    pthread_mutex_lock(&mx->lock);
    struct served_crl *c = NULL;
    for (size_t i = 0; i < mx->crls_len && !c; i++)
        if (strcmp(mx->crls[i].mount, mount) == 0)
            c = &mx->crls[i];
    if (!c && mx->crls_len < MF_SRV_CRL_MOUNTS_MAX) {
        c = &mx->crls[mx->crls_len++];
        snprintf(c->mount, sizeof(c->mount), "%s", mount);
        c->pem = NULL;
        c->der = NULL;
    }
    if (c) {
        free(c->pem);
        free(c->der);
        c->pem = p;
        c->der = d;
        c->der_len = der_len;
        p = NULL;
        d = NULL;
    }
    pthread_mutex_unlock(&mx->lock);
    free(p);
    free(d);
}

/* GET /v1/<mount>/crl or /v1/<mount>/crl/pem: a copy of the CRL (mount names
 * may hold '/'), or NULL if none is published for that mount. */
static void *crl_copy(struct mf_metrics *mx, const char *url, size_t *len, const char **type)
{
    const char *rest = url + strlen("/v1/");
    size_t rl = strlen(rest);
    bool pem = rl > 8 && strcmp(rest + rl - 8, "/crl/pem") == 0;
    size_t mlen = pem ? rl - 8 : rl > 4 && strcmp(rest + rl - 4, "/crl") == 0 ? rl - 4 : 0;
    void *out = NULL;
    pthread_mutex_lock(&mx->lock);
    for (size_t i = 0; mlen && i < mx->crls_len; i++) {
        const struct served_crl *c = &mx->crls[i];
        if (strlen(c->mount) != mlen || strncmp(c->mount, rest, mlen) != 0)
            continue;
        *len = pem ? strlen(c->pem) : c->der_len;
        if ((out = malloc(*len ? *len : 1)) != NULL)
            memcpy(out, pem ? (const void *)c->pem : (const void *)c->der, *len);
        *type = pem ? "application/x-pem-file" : "application/pkix-crl";
    }
    pthread_mutex_unlock(&mx->lock);
    return out;
}

void mf_metrics_lateness(struct mf_server *s, uint64_t late_ms)
{
    struct mf_metrics_snapshot *m = &s->mstats;
    size_t i = 0;
    while (i < MF_METRICS_BUCKETS && late_ms > lateness_bounds_ms[i])
        i++;
    if (i < MF_METRICS_BUCKETS)
        m->lateness_buckets[i]++;
    m->lateness_count++;
    m->lateness_sum_ms += late_ms;
    if (late_ms > m->lateness_max_ms)
        m->lateness_max_ms = late_ms;
}

void mf_metrics_publish(struct mf_server *s)
{
    if (!s->metrics)
        return;
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    s->mstats.role = st.role;
    s->mstats.term = st.term;
    s->mstats.commit = st.commit;
    s->mstats.applied = mf_node_applied(s->node);
    s->mstats.leader = st.lead;
    s->mstats.sealed = mf_barrier_sealed(s->barrier);
    s->mstats.failed = s->failed != 0;
    s->mstats.expired = s->sched_expired;
    s->mstats.revoked = s->sched_revoked;
    s->mstats.retries = s->sched_retries;
    s->mstats.irrevocable = s->sched_irrevocable;
    s->mstats.reconciled = s->sched_reconciled;
    s->mstats.engine_calls = s->sched_engine_calls;
    MDB_txn *txn;
    if (s->fsm && mf_srv_read_begin(s, &txn) == 0) {
        if (mf_state_lease_counts(txn, mf_fsm_state(s->fsm), s->mstats.leases))
            memset(s->mstats.leases, 0, sizeof(s->mstats.leases));
        mf_srv_read_end(s, txn);
    }
    struct mf_node_stats ns;
    mf_node_stats(s->node, &ns);
    s->mstats.batches = ns.batches;
    s->mstats.entries_persisted = ns.entries_persisted;
    s->mstats.entries_applied = ns.entries_applied;
    pthread_mutex_lock(&s->metrics->lock);
    s->metrics->snap = s->mstats;
    pthread_mutex_unlock(&s->metrics->lock);
}

static char *format_metrics(const struct mf_metrics_snapshot *m, uint64_t node_id)
{
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
#define EMIT(...) len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, __VA_ARGS__)
    EMIT("# HELP mayfly_up 1 while the node serves (0 after a fatal storage error).\n"
         "# TYPE mayfly_up gauge\nmayfly_up{node=\"%" PRIu64 "\"} %d\n", node_id, !m->failed);
    EMIT("# TYPE mayfly_sealed gauge\nmayfly_sealed %d\n", m->sealed);
    EMIT("# TYPE mayfly_raft_is_leader gauge\nmayfly_raft_is_leader %d\n",
         m->role == MF_RAFT_LEADER);
    EMIT("# TYPE mayfly_raft_term gauge\nmayfly_raft_term %" PRIu64 "\n", m->term);
    EMIT("# TYPE mayfly_raft_leader_id gauge\nmayfly_raft_leader_id %" PRIu64 "\n", m->leader);
    EMIT("# TYPE mayfly_raft_commit_index gauge\nmayfly_raft_commit_index %" PRIu64 "\n",
         m->commit);
    EMIT("# TYPE mayfly_raft_applied_index gauge\nmayfly_raft_applied_index %" PRIu64 "\n",
         m->applied);
    EMIT("# HELP mayfly_raft_batches_total Ready batches (one log fsync, one apply "
         "transaction each).\n# TYPE mayfly_raft_batches_total counter\n"
         "mayfly_raft_batches_total %" PRIu64 "\n", m->batches);
    EMIT("# TYPE mayfly_raft_entries_persisted_total counter\n"
         "mayfly_raft_entries_persisted_total %" PRIu64 "\n", m->entries_persisted);
    EMIT("# TYPE mayfly_raft_entries_applied_total counter\n"
         "mayfly_raft_entries_applied_total %" PRIu64 "\n", m->entries_applied);
    EMIT("# HELP mayfly_leases_expired_total Leases this node (as leader) proposed to expire.\n"
         "# TYPE mayfly_leases_expired_total counter\nmayfly_leases_expired_total %" PRIu64 "\n",
         m->expired);
    EMIT("# HELP mayfly_leases_revoked_total Leases this node (as leader) marked revoked.\n"
         "# TYPE mayfly_leases_revoked_total counter\nmayfly_leases_revoked_total %" PRIu64 "\n",
         m->revoked);
    EMIT("# HELP mayfly_leases Leases by state in this node's replicated state (revoked ones "
         "until tidy drops them).\n# TYPE mayfly_leases gauge\n");
    for (int st = 1; st < MF_LEASE_STATES; st++)
        EMIT("mayfly_leases{state=\"%s\"} %" PRIu64 "\n", mf_lease_state_name(st), m->leases[st]);
    EMIT("# HELP mayfly_revocation_retries_total Engine revocations that failed and will be "
         "retried.\n# TYPE mayfly_revocation_retries_total counter\n"
         "mayfly_revocation_retries_total %" PRIu64 "\n", m->retries);
    EMIT("# HELP mayfly_engine_revoke_leases_total Leases handed to an engine's revoke, repeats "
         "included (revoke is idempotent: a lease sent twice, e.g. across a failover, counts "
         "twice).\n# TYPE mayfly_engine_revoke_leases_total counter\n"
         "mayfly_engine_revoke_leases_total %" PRIu64 "\n", m->engine_calls);
    EMIT("# TYPE mayfly_leases_irrevocable_total counter\nmayfly_leases_irrevocable_total %"
         PRIu64 "\n", m->irrevocable);
    EMIT("# TYPE mayfly_reconciler_revoked_total counter\nmayfly_reconciler_revoked_total %"
         PRIu64 "\n", m->reconciled);
    EMIT("# HELP mayfly_revocation_lateness_ms Time from expire_at to the revocation "
         "proposed by this leader.\n# TYPE mayfly_revocation_lateness_ms histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < MF_METRICS_BUCKETS; i++) {
        cum += m->lateness_buckets[i];
        EMIT("mayfly_revocation_lateness_ms_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n",
             lateness_bounds_ms[i], cum);
    }
    EMIT("mayfly_revocation_lateness_ms_bucket{le=\"+Inf\"} %" PRIu64 "\n", m->lateness_count);
    EMIT("mayfly_revocation_lateness_ms_sum %" PRIu64 "\n", m->lateness_sum_ms);
    EMIT("mayfly_revocation_lateness_ms_count %" PRIu64 "\n", m->lateness_count);
    EMIT("# TYPE mayfly_revocation_lateness_max_ms gauge\nmayfly_revocation_lateness_max_ms %"
         PRIu64 "\n", m->lateness_max_ms);
#undef EMIT
    if (len >= cap) {
        free(out);
        return NULL;
    }
    return out;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)version, (void)upload, (void)upload_len, (void)con_cls;
    struct mf_server *s = cls;
    struct mf_metrics *mx = s->metrics;
    if (strcmp(method, "GET") != 0)
        return MHD_NO;
    struct mf_metrics_snapshot snap;
    pthread_mutex_lock(&mx->lock);
    snap = mx->snap;
    pthread_mutex_unlock(&mx->lock);
    char *body;
    size_t body_len = 0;
    const char *type = "text/plain; version=0.0.4";
    unsigned status = MHD_HTTP_OK;
    if (strncmp(url, "/v1/", 4) == 0 && (body = crl_copy(mx, url, &body_len, &type)) != NULL) {
        /* body_len set: a CRL (DER is binary) */
    } else if (strcmp(url, "/metrics") == 0) {
        body = format_metrics(&snap, s->cfg->node_id);
    } else if (strcmp(url, "/health") == 0) {
        /* 200 when this node can serve: up and unsealed. */
        status = (!snap.failed && !snap.sealed) ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        body = strdup(snap.failed ? "failed\n" : snap.sealed ? "sealed\n" : "ok\n");
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
                     ? MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR,
                                        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                        (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
                                        (unsigned)10, MHD_OPTION_HTTPS_MEM_CERT, mx->tls_cert,
                                        MHD_OPTION_HTTPS_MEM_KEY, mx->tls_key, MHD_OPTION_END)
                     : MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR,
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
    for (size_t i = 0; i < mx->crls_len; i++) {
        free(mx->crls[i].pem);
        free(mx->crls[i].der);
    }
    if (mx->tls_key)
        OPENSSL_cleanse(mx->tls_key, mx->tls_key_len);
    free(mx->tls_key);
    free(mx->tls_cert);
    pthread_mutex_destroy(&mx->lock);
    free(mx);
    s->metrics = NULL;
}
