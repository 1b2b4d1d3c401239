/* The pki CRL on plain HTTP from every node, as Vault's /v1/<mount>/crl:
 * what a relying party (a TLS server checking client certificates, a CRL
 * distribution point) fetches without a token.
 *
 * Publishing, on the leader: the leader's pki engine signs the CRL (its
 * revoked set is rebuilt from the replicated leases when it opens) and the
 * leader stores it in the replicated KV at sys/crl/<mount> (a reserved
 * record, encrypted like every value although a CRL is public). It publishes
 * after every applied LeaseRevoked of a pki mount, when it opens a pki mount
 * (a new leader opens them all), and again once half of the CRL's validity
 * (crl_ttl_ms, default 1 h) has passed. One publish per mount is in flight;
 * revocations meanwhile mark it dirty and it runs again after.
 *
 * Serving, on every node: the loop copies the sys/crl/ records whose KV
 * version changed into the metrics listener's table (only when the applied
 * index moved); libmicrohttpd's thread answers from that table. A follower
 * thus serves what the cluster committed, never an older leader's memory. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/srv_int.h"
#include "store/kv.h"
#include "store/leases.h"

_Static_assert(sizeof(((struct mf_crl_seen *)0)->mount) == MF_LEASE_MOUNT_MAX + 1,
               "a seen slot holds a mount name");

#define LOG_MOD "crl"
#define CRL_RETRY_MS 5000    /* after a failed publish */

/* ---- publishing (leader) ---- */

static void crl_path(const char *mount, char *buf, size_t len)
{
    snprintf(buf, len, MF_SRV_CRL_PREFIX "%s", mount);
}

/* thisUpdate + half the validity: when the next publish is due. 0 if the
 * PEM cannot be read (then the retry interval applies). */
static uint64_t half_life_ms(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    uint64_t at = 0;
    struct tm this_tm, next_tm;
    const ASN1_TIME *next = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
    if (crl && next && ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(crl), &this_tm) == 1 &&
        ASN1_TIME_to_tm(next, &next_tm) == 1) {
        uint64_t t0 = (uint64_t)timegm(&this_tm) * 1000, t1 = (uint64_t)timegm(&next_tm) * 1000;
        if (t1 > t0)
            at = t0 + (t1 - t0) / 2;
    }
    X509_CRL_free(crl);
    return at;
}

static void publish_finished(struct mf_server *s, const char *mount, int rc)
{
    struct mount *m = mf_mounts_find(s, mount);
    if (!m)
        return; /* dropped meanwhile (new config): it republishes when it reopens */
    struct mf_crl_state *c = mf_mount_crl(m);
    c->inflight = false;
    if (rc) {
        MF_WARN(LOG_MOD, "cannot publish the CRL of '%s': %s", mount, mf_strerror(rc));
        c->refresh_at_ms = mf_now_wall_ms() + CRL_RETRY_MS;
    }
    if (c->dirty && mf_node_is_leader(s->node))
        mf_crl_publish(s, m);
}

static void on_stored(struct mf_server *s, int rc, void *arg)
{
    char *mount = arg;
    publish_finished(s, mount, rc);
    free(mount);
}

static void on_signed(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    char *mount = arg;
    int rc = mf_mjob_rc(j);
    struct mount *m = mf_mounts_find(s, mount);
    if (!rc && m) {
        const char *pem = mf_mjob_text(j);
        uint64_t at = half_life_ms(pem);
        mf_mount_crl(m)->refresh_at_ms = at ? at : mf_now_wall_ms() + CRL_RETRY_MS;
        json_t *rec = json_pack("{s:s}", "crl_pem", pem);
        char path[MF_KV_PATH_MAX];
        crl_path(mount, path, sizeof(path));
        rc = rec ? mf_ops_propose_record_internal(s, path, rec, on_stored, mount) : -ENOMEM;
        json_decref(rec);
        if (!rc)
            return; /* on_stored finishes */
    }
    publish_finished(s, mount, rc ? rc : MF_ENOTFOUND);
    free(mount);
}

void mf_crl_publish(struct mf_server *s, struct mount *m)
{
    if (strcmp(mf_mount_type(m), "pki") != 0)
        return;
    struct mf_crl_state *c = mf_mount_crl(m);
    if (c->inflight) {
        c->dirty = true;
        return;
    }
    char *mount = strdup(mf_mount_name(m));
    if (!mount)
        return;
    c->inflight = true;
    c->dirty = false;
    /* CRL number = leader time in ms: it grows across leaders too. */
    if (mf_mounts_crl(m, mf_srv_leader_now(s), on_signed, mount)) {
        c->inflight = false;
        free(mount);
    }
}

void mf_crl_tick(struct mf_server *s, uint64_t now_ms)
{
    for (struct mount *m = mf_mounts_first(s); m; m = mf_mounts_next(m)) {
        struct mf_crl_state *c = mf_mount_crl(m);
        if (!c->inflight && now_ms >= c->refresh_at_ms)
            mf_crl_publish(s, m);
    }
}

/* ---- serving (every node) ---- */

/* The KV version last copied for `mount` (a slot of the server's table). */
static uint64_t *seen_version(struct mf_server *s, const char *mount)
{
    for (size_t i = 0; i < s->crl_seen_len; i++)
        if (strcmp(s->crl_seen[i].mount, mount) == 0)
            return &s->crl_seen[i].version;
    if (s->crl_seen_len == MF_SRV_CRL_MOUNTS_MAX || strlen(mount) > MF_LEASE_MOUNT_MAX)
        return NULL;
    struct mf_crl_seen *e = &s->crl_seen[s->crl_seen_len++];
    snprintf(e->mount, sizeof(e->mount), "%s", mount);
    e->version = 0;
    return &e->version;
}

/* Copies the record at `path` (now at KV version `version`) to the HTTP
 * table. 0, or an error to try again at the next change. */
static int copy_record(struct mf_server *s, const char *path)
{
    const char *mount = path + strlen(MF_SRV_CRL_PREFIX);
    json_t *rec = NULL;
    int rc = mf_ops_read_record(s, path, &rec);
    if (rc)
        return rc;
    const char *pem = json_string_value(json_object_get(rec, "crl_pem"));
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int der_len = crl ? i2d_X509_CRL(crl, &der) : -1;
    if (der_len > 0)
        mf_metrics_set_crl(s, mount, pem, der, (size_t)der_len);
    else
        MF_WARN(LOG_MOD, "the CRL stored for '%s' does not parse", mount);
    OPENSSL_free(der);
    X509_CRL_free(crl);
    BIO_free(b);
    json_decref(rec);
    return der_len > 0 ? 0 : MF_ECORRUPT;
}

void mf_crl_refresh(struct mf_server *s)
{
    uint64_t applied = mf_node_applied(s->node);
    if (!s->metrics || applied == s->crl_checked_index || mf_barrier_sealed(s->barrier))
        return;
    /* Versions first, in one read transaction; records after it (reading a
     * record opens its own). */
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    uint64_t versions[MF_SRV_CRL_MOUNTS_MAX];
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn))
        return;
    int rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_SRV_CRL_PREFIX, NULL,
                        MF_SRV_CRL_MOUNTS_MAX, &paths, &n, &more);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        Mayfly__Cmd__KvVersion *v = NULL;
        versions[i] = 0;
        if (mf_kv_get(txn, mf_fsm_state(s->fsm), paths[i], 0, &v, &versions[i]) == 0)
            mf_kv_version_free(v);
    }
    mf_srv_read_end(s, txn);
    if (rc)
        return;
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        uint64_t *have = seen_version(s, paths[i] + strlen(MF_SRV_CRL_PREFIX));
        if (!have || !versions[i] || *have == versions[i])
            continue;
        if (copy_record(s, paths[i]) == 0)
            *have = versions[i];
        else
            all = false;
    }
    mf_kv_list_free(paths, n);
    if (all)
        s->crl_checked_index = applied;
}
