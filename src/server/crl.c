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
 * version changed into this file's table (only when the applied
 * index moved); libmicrohttpd's thread answers from that table. A follower
 * thus serves what the cluster committed, never an older leader's memory. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/crl.h"
#include "server/records.h"
#include "store/kv.h"
#include "store/leases.h"

#define LOG_MOD "crl"
#define CRL_RETRY_MS 5000     /* after a failed publish */
#define CRL_MOUNTS_MAX 64     /* pki mounts served */

/* A pki mount's publishing, on the leader, for one opening of the mount. */
struct publishing {
    struct publishing *next;
    char mount[MF_LEASE_MOUNT_MAX + 1];
    uint64_t gen;           /* mf_mount_gen: a reopened mount starts afresh */
    bool inflight;          /* signing or storing one now */
    bool dirty;             /* something was revoked meanwhile: publish again */
    uint64_t refresh_at_ms; /* publish again by then (half the CRL's validity) */
};

/* A CRL served at /v1/<mount>/crl (DER) and /v1/<mount>/crl/pem. */
struct served {
    char mount[MF_LEASE_MOUNT_MAX + 1];
    uint64_t version; /* the KV version of sys/crl/<mount> copied (loop thread) */
    char *pem;
    unsigned char *der;
    size_t der_len;
};

struct mf_crl {
    struct publishing *pubs;  /* loop thread */
    pthread_mutex_t lock;     /* guards the served table's CRL bytes */
    struct served served[CRL_MOUNTS_MAX];
    size_t served_len;
    uint64_t checked_index;   /* applied index of the last full refresh */
};

int mf_crl_init(struct mf_server *s)
{
    struct mf_crl *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    s->crl = c;
    return 0;
}

void mf_crl_free(struct mf_server *s)
{
    struct mf_crl *c = s->crl;
    if (!c)
        return;
    while (c->pubs) {
        struct publishing *p = c->pubs;
        c->pubs = p->next;
        free(p);
    }
    for (size_t i = 0; i < c->served_len; i++) {
        free(c->served[i].pem);
        free(c->served[i].der);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
    s->crl = NULL;
}

/* ---- publishing (leader) ---- */

static void crl_path(const char *mount, char *buf, size_t len)
{
    snprintf(buf, len, MF_CRL_PREFIX "%s", mount);
}

/* The publishing state of open mount m (made fresh for a new opening). */
static struct publishing *publishing_of(struct mf_server *s, const struct mf_mount *m)
{
    struct publishing *p;
    for (p = s->crl->pubs; p; p = p->next)
        if (strcmp(p->mount, mf_mount_name(m)) == 0)
            break;
    if (!p) {
        if (!(p = calloc(1, sizeof(*p))))
            return NULL;
        snprintf(p->mount, sizeof(p->mount), "%s", mf_mount_name(m));
        p->next = s->crl->pubs;
        s->crl->pubs = p;
        p->gen = mf_mount_gen(m);
    }
    if (p->gen != mf_mount_gen(m)) {
        p->gen = mf_mount_gen(m);
        p->inflight = p->dirty = false;
        p->refresh_at_ms = 0;
    }
    return p;
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
    struct mf_mount *m = mf_mounts_find(s, mount);
    struct publishing *c = m ? publishing_of(s, m) : NULL;
    if (!c)
        return; /* dropped meanwhile (new config): it republishes when it reopens */
    c->inflight = false;
    if (rc) {
        MF_WARN(LOG_MOD, "cannot publish the CRL of '%s': %s", mount, mf_strerror(rc));
        c->refresh_at_ms = mf_now_wall_ms() + CRL_RETRY_MS;
    }
    if (c->dirty && mf_proposer_leading(s->prop))
        mf_crl_publish(s, m);
}

struct store_ctx {
    struct mf_server *s;
    char *mount;
};

static void on_stored(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    struct store_ctx *sc = arg;
    (void)res;
    publish_finished(sc->s, sc->mount, rc);
    free(sc->mount);
    free(sc);
}

static void on_signed(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    char *mount = arg;
    int rc = mf_mjob_rc(j);
    struct mf_mount *m = mf_mounts_find(s, mount);
    struct publishing *c = m ? publishing_of(s, m) : NULL;
    if (!rc && c) {
        const char *pem = mf_mjob_text(j);
        uint64_t at = half_life_ms(pem);
        c->refresh_at_ms = at ? at : mf_now_wall_ms() + CRL_RETRY_MS;
        json_t *rec = json_pack("{s:s}", "crl_pem", pem);
        struct store_ctx *sc = calloc(1, sizeof(*sc));
        char path[MF_KV_PATH_MAX];
        crl_path(mount, path, sizeof(path));
        rc = rec && sc ? mf_records_put(s, path, rec, on_stored, sc) : -ENOMEM;
        json_decref(rec);
        if (!rc) {
            sc->s = s;
            sc->mount = mount;
            return; /* on_stored finishes */
        }
        free(sc);
    }
    publish_finished(s, mount, rc ? rc : MF_ENOTFOUND);
    free(mount);
}

void mf_crl_publish(struct mf_server *s, struct mf_mount *m)
{
    if (strcmp(mf_mount_type(m), "pki") != 0)
        return;
    struct publishing *c = publishing_of(s, m);
    if (!c)
        return;
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
    if (mf_mounts_crl(m, mf_propose_now(s->prop), on_signed, mount)) {
        c->inflight = false;
        free(mount);
    }
}

void mf_crl_tick(struct mf_server *s, uint64_t now_ms)
{
    for (struct mf_mount *m = mf_mounts_first(s); m; m = mf_mounts_next(m)) {
        struct publishing *c = publishing_of(s, m);
        if (c && !c->inflight && now_ms >= c->refresh_at_ms)
            mf_crl_publish(s, m);
    }
}

/* ---- serving (every node) ---- */

/* The served slot of `mount` (made if new), or NULL when the table is full. */
static struct served *served_slot(struct mf_crl *c, const char *mount)
{
    for (size_t i = 0; i < c->served_len; i++)
        if (strcmp(c->served[i].mount, mount) == 0)
            return &c->served[i];
    if (c->served_len == CRL_MOUNTS_MAX || strlen(mount) > MF_LEASE_MOUNT_MAX)
        return NULL;
    struct served *e = &c->served[c->served_len];
    memset(e, 0, sizeof(*e));
    snprintf(e->mount, sizeof(e->mount), "%s", mount);
    pthread_mutex_lock(&c->lock);
    c->served_len++; /* the HTTP thread sees a slot only once it is filled */
    pthread_mutex_unlock(&c->lock);
    return e;
}

static void served_set(struct mf_crl *c, struct served *e, const char *pem,
                       const unsigned char *der, size_t der_len)
{
    char *p = strdup(pem);
    unsigned char *d = p ? malloc(der_len) : NULL;
    if (!d) {
        free(p);
        return;
    }
    memcpy(d, der, der_len);
    pthread_mutex_lock(&c->lock);
    char *old_p = e->pem;
    unsigned char *old_d = e->der;
    e->pem = p;
    e->der = d;
    e->der_len = der_len;
    pthread_mutex_unlock(&c->lock);
    free(old_p);
    free(old_d);
}

/* Copies the record at `path` to the table. 0, or an error to try again at
 * the next change. */
static int copy_record(struct mf_server *s, struct served *e, const char *path)
{
    json_t *rec = NULL;
    int rc = mf_records_read(s, path, &rec);
    if (rc)
        return rc;
    const char *pem = json_string_value(json_object_get(rec, "crl_pem"));
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int der_len = crl ? i2d_X509_CRL(crl, &der) : -1;
    if (der_len > 0)
        served_set(s->crl, e, pem, der, (size_t)der_len);
    else
        MF_WARN(LOG_MOD, "the CRL stored for '%s' does not parse", e->mount);
    OPENSSL_free(der);
    X509_CRL_free(crl);
    BIO_free(b);
    json_decref(rec);
    return der_len > 0 ? 0 : MF_ECORRUPT;
}

void mf_crl_refresh(struct mf_server *s)
{
    struct mf_crl *c = s->crl;
    uint64_t applied = mf_node_applied(s->node);
    if (!c || applied == c->checked_index || mf_barrier_sealed(s->barrier))
        return;
    /* Versions first, in one read transaction; records after it (reading a
     * record opens its own). */
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    uint64_t versions[CRL_MOUNTS_MAX];
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn))
        return;
    int rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_CRL_PREFIX, NULL, CRL_MOUNTS_MAX, &paths,
                        &n, &more);
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
        struct served *e = served_slot(c, paths[i] + strlen(MF_CRL_PREFIX));
        if (!e || !versions[i] || e->version == versions[i])
            continue;
        if (copy_record(s, e, paths[i]) == 0)
            e->version = versions[i];
        else
            all = false;
    }
    mf_kv_list_free(paths, n);
    if (all)
        c->checked_index = applied;
}

void *mf_crl_http_get(struct mf_crl *c, const char *url, size_t *len, const char **type)
{
    if (!c || strncmp(url, "/v1/", 4) != 0)
        return NULL;
    const char *rest = url + strlen("/v1/");
    size_t rl = strlen(rest);
    bool pem = rl > 8 && strcmp(rest + rl - 8, "/crl/pem") == 0;
    size_t mlen = pem ? rl - 8 : rl > 4 && strcmp(rest + rl - 4, "/crl") == 0 ? rl - 4 : 0;
    void *out = NULL;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; mlen && i < c->served_len; i++) {
        const struct served *e = &c->served[i];
        if (!e->pem || strlen(e->mount) != mlen || strncmp(e->mount, rest, mlen) != 0)
            continue;
        *len = pem ? strlen(e->pem) : e->der_len;
        if ((out = malloc(*len ? *len : 1)) != NULL)
            memcpy(out, pem ? (const void *)e->pem : (const void *)e->der, *len);
        *type = pem ? "application/x-pem-file" : "application/pkix-crl";
    }
    pthread_mutex_unlock(&c->lock);
    return out;
}
