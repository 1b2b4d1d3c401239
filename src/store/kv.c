/* Versioned KV in the state database: the rules of put (check-and-set,
 * cas_required, lease binding, trimming to max_versions), soft delete,
 * undelete, destroy, metadata put and delete-all, the destruction of entries
 * bound to a revoked lease, and the read side. Values are opaque ciphertext.
 * Deterministic: time is the command's now; SHA-256 (for long paths) is a
 * pure function.
 */
#include "store/kv.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/assert.h"
#include "common/err.h"
#include "store/apply.h"

#define KEY_MAX (1 + SHA256_DIGEST_LENGTH > MF_KV_KEY_DIRECT_MAX ? 1 + SHA256_DIGEST_LENGTH \
                                                                  : MF_KV_KEY_DIRECT_MAX)

struct kvkey {
    uint8_t b[KEY_MAX + 8];
    size_t len; /* without the version suffix */
};

static void kvkey_make(struct kvkey *k, const char *path, size_t plen)
{
    if (plen <= MF_KV_KEY_DIRECT_MAX) {
        memcpy(k->b, path, plen);
        k->len = plen;
    } else {
        k->b[0] = 0;
        SHA256((const unsigned char *)path, plen, k->b + 1);
        k->len = 1 + SHA256_DIGEST_LENGTH;
    }
}

static MDB_val ver_key(struct kvkey *k, uint64_t version)
{
    mf_be64_put(k->b + k->len, version);
    MDB_val v = {k->len + 8, k->b};
    return v;
}

static int valid_path(const char *p, size_t *plen)
{
    size_t n = strlen(p);
    *plen = n;
    return n > 0 && n <= MF_KV_PATH_MAX;
}

static int meta_load(MDB_txn *txn, struct mf_state *st, const void *key, size_t klen,
                     Mayfly__Cmd__KvMeta **out)
{
    MDB_val k = {klen, (void *)key}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_KV_META], &k, &d);
    if (rc)
        return mf_state_err(rc, "kv meta get");
    *out = mayfly__cmd__kv_meta__unpack(NULL, d.mv_size, d.mv_data);
    return *out ? 0 : MF_ECORRUPT;
}

static int ver_load(MDB_txn *txn, struct mf_state *st, struct kvkey *kk, uint64_t version,
                    Mayfly__Cmd__KvVersion **out)
{
    MDB_val k = ver_key(kk, version), d;
    int rc = mdb_get(txn, st->dbi[MF_DB_KV_VER], &k, &d);
    if (rc)
        return mf_state_err(rc, "kv version get");
    *out = mayfly__cmd__kv_version__unpack(NULL, d.mv_size, d.mv_data);
    return *out ? 0 : MF_ECORRUPT;
}

void mf_kv_meta_free(Mayfly__Cmd__KvMeta *m)
{
    if (m)
        mayfly__cmd__kv_meta__free_unpacked(m, NULL);
}

void mf_kv_version_free(Mayfly__Cmd__KvVersion *v)
{
    if (v)
        mayfly__cmd__kv_version__free_unpacked(v, NULL);
}

static int meta_store(struct mf_apply *a, struct kvkey *kk, const Mayfly__Cmd__KvMeta *m)
{
    MDB_val k = {kk->len, kk->b};
    return mf_state_put_msg(a->txn, a->st->dbi[MF_DB_KV_META], &k, &m->base, 0);
}

static int ver_store(struct mf_apply *a, struct kvkey *kk, uint64_t version,
                     const Mayfly__Cmd__KvVersion *v)
{
    MDB_val k = ver_key(kk, version);
    return mf_state_put_msg(a->txn, a->st->dbi[MF_DB_KV_VER], &k, &v->base, 0);
}

static int ver_del(struct mf_apply *a, struct kvkey *kk, uint64_t version)
{
    MDB_val k = ver_key(kk, version);
    int rc = mdb_del(a->txn, a->st->dbi[MF_DB_KV_VER], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : mf_state_err(rc, "kv version del");
}

static int bind_del(struct mf_apply *a, uint64_t seq, struct kvkey *kk)
{
    uint8_t sb[8];
    mf_be64_put(sb, seq);
    MDB_val k = {8, sb}, d = {kk->len, kk->b};
    int rc = mdb_del(a->txn, a->st->dbi[MF_DB_LEASE_KV], &k, &d);
    return rc == MDB_NOTFOUND ? 0 : mf_state_err(rc, "kv unbind");
}

static int bind_put(struct mf_apply *a, uint64_t seq, struct kvkey *kk)
{
    uint8_t sb[8];
    mf_be64_put(sb, seq);
    MDB_val k = {8, sb}, d = {kk->len, kk->b};
    int rc = mdb_put(a->txn, a->st->dbi[MF_DB_LEASE_KV], &k, &d, MDB_NODUPDATA);
    return rc == MDB_KEYEXIST ? 0 : mf_state_err(rc, "kv bind");
}

/* Drop versions beyond max_versions, oldest first. */
static int trim(struct mf_apply *a, struct kvkey *kk, Mayfly__Cmd__KvMeta *m)
{
    while (m->current_version >= m->oldest_version &&
           m->current_version - m->oldest_version + 1 > m->max_versions) {
        int rc = ver_del(a, kk, m->oldest_version);
        if (rc)
            return rc;
        m->oldest_version++;
    }
    return 0;
}

int mf_kv_apply_put(struct mf_apply *a, const Mayfly__Cmd__KvPut *c, Mayfly__Cmd__Result *r)
{
    size_t plen;
    if (!valid_path(c->path, &plen))
        return mf_apply_fail(a, MF_EINVAL, "kv path must be 1-%d bytes", MF_KV_PATH_MAX);
    if (c->value.len > MF_KV_VALUE_MAX)
        return mf_apply_fail(a, MF_ETOOLARGE, "kv value larger than %d bytes", MF_KV_VALUE_MAX);
    struct kvkey kk;
    kvkey_make(&kk, c->path, plen);
    Mayfly__Cmd__KvMeta *m = NULL;
    int rc = meta_load(a->txn, a->st, kk.b, kk.len, &m);
    if (rc && rc != MF_ENOTFOUND)
        return rc;
    uint64_t cur = m ? m->current_version : 0;
    if (m && m->cas_required && !c->has_cas)
        rc = mf_apply_fail(a, MF_ECAS, "check-and-set is required for this path");
    else if (c->has_cas && c->cas != cur)
        rc = mf_apply_fail(a, MF_ECAS, "check-and-set: expected version %llu, current is %llu",
                           (unsigned long long)c->cas, (unsigned long long)cur);
    else if (c->lease_seq)
        rc = mf_lease_check_bindable(a, c->lease_seq);
    else
        rc = 0;
    if (rc)
        goto done;

    Mayfly__Cmd__KvMeta fresh = MAYFLY__CMD__KV_META__INIT;
    Mayfly__Cmd__KvMeta *w = m ? m : &fresh;
    if (!m) {
        fresh.path = (char *)c->path;
        fresh.oldest_version = 1;
        fresh.max_versions = MF_KV_VERSIONS_DEFAULT;
        fresh.created_ms = a->now_ms;
    }
    if (w->lease_seq != c->lease_seq) {
        if (w->lease_seq)
            rc = bind_del(a, w->lease_seq, &kk);
        if (rc == 0 && c->lease_seq)
            rc = bind_put(a, c->lease_seq, &kk);
        w->lease_seq = c->lease_seq;
    }
    uint64_t version = cur + 1;
    Mayfly__Cmd__KvVersion v = MAYFLY__CMD__KV_VERSION__INIT;
    v.created_ms = a->now_ms;
    v.value = c->value;
    v.write_id = c->write_id;
    v.lease_seq = c->lease_seq;
    if (rc == 0)
        rc = ver_store(a, &kk, version, &v);
    w->current_version = version;
    w->updated_ms = a->now_ms;
    if (rc == 0)
        rc = trim(a, &kk, w);
    if (rc == 0)
        rc = meta_store(a, &kk, w);
    r->version = version;
    r->seq = c->lease_seq;
done:
    mf_kv_meta_free(m);
    return rc;
}

int mf_kv_apply_versions(struct mf_apply *a, const Mayfly__Cmd__KvVersions *c,
                         Mayfly__Cmd__Result *r)
{
    size_t plen;
    if (!valid_path(c->path, &plen))
        return mf_apply_fail(a, MF_EINVAL, "kv path must be 1-%d bytes", MF_KV_PATH_MAX);
    if (c->op != MAYFLY__CMD__KV_VERSION_OP__KV_OP_DELETE &&
        c->op != MAYFLY__CMD__KV_VERSION_OP__KV_OP_UNDELETE &&
        c->op != MAYFLY__CMD__KV_VERSION_OP__KV_OP_DESTROY)
        return mf_apply_fail(a, MF_EINVAL, "unknown kv version operation %d", (int)c->op);
    if (c->n_versions > MF_KV_VERSION_OPS_MAX)
        return mf_apply_fail(a, MF_ETOOLARGE, "at most %d versions at once",
                             MF_KV_VERSION_OPS_MAX);
    struct kvkey kk;
    kvkey_make(&kk, c->path, plen);
    Mayfly__Cmd__KvMeta *m = NULL;
    int rc = meta_load(a->txn, a->st, kk.b, kk.len, &m);
    if (rc == MF_ENOTFOUND)
        return mf_apply_fail(a, MF_ENOTFOUND, "no kv entry at this path");
    if (rc)
        return rc;
    size_t nv = c->n_versions ? c->n_versions : 1;
    for (size_t i = 0; i < nv && rc == 0; i++) {
        uint64_t ver = c->n_versions ? c->versions[i] : m->current_version;
        if (ver < m->oldest_version || ver > m->current_version || ver == 0)
            continue;
        Mayfly__Cmd__KvVersion *v = NULL;
        rc = ver_load(a->txn, a->st, &kk, ver, &v);
        if (rc == MF_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        int changed = 0;
        if (!v->destroyed) {
            switch (c->op) {
            case MAYFLY__CMD__KV_VERSION_OP__KV_OP_DELETE:
                if (!v->deleted_ms) {
                    v->deleted_ms = a->now_ms;
                    changed = 1;
                }
                break;
            case MAYFLY__CMD__KV_VERSION_OP__KV_OP_UNDELETE:
                if (v->deleted_ms) {
                    v->deleted_ms = 0;
                    changed = 1;
                }
                break;
            default:
                v->destroyed = 1;
                v->value.len = 0;
                changed = 1;
                break;
            }
        }
        if (changed) {
            rc = ver_store(a, &kk, ver, v);
            r->count += rc == 0;
        }
        mf_kv_version_free(v);
    }
    mf_kv_meta_free(m);
    return rc;
}

int mf_kv_apply_metadata_put(struct mf_apply *a, const Mayfly__Cmd__KvMetadataPut *c,
                             Mayfly__Cmd__Result *r)
{
    size_t plen;
    if (!valid_path(c->path, &plen))
        return mf_apply_fail(a, MF_EINVAL, "kv path must be 1-%d bytes", MF_KV_PATH_MAX);
    if (c->max_versions > MF_KV_VERSIONS_MAX)
        return mf_apply_fail(a, MF_EINVAL, "max versions must be at most %d",
                             MF_KV_VERSIONS_MAX);
    struct kvkey kk;
    kvkey_make(&kk, c->path, plen);
    Mayfly__Cmd__KvMeta *m = NULL;
    int rc = meta_load(a->txn, a->st, kk.b, kk.len, &m);
    if (rc && rc != MF_ENOTFOUND)
        return rc;
    Mayfly__Cmd__KvMeta fresh = MAYFLY__CMD__KV_META__INIT;
    Mayfly__Cmd__KvMeta *w = m ? m : &fresh;
    if (!m) {
        fresh.path = (char *)c->path;
        fresh.oldest_version = 1;
        fresh.max_versions = MF_KV_VERSIONS_DEFAULT;
        fresh.created_ms = a->now_ms;
    }
    if (c->max_versions)
        w->max_versions = c->max_versions;
    if (c->set_cas_required)
        w->cas_required = c->cas_required;
    w->updated_ms = a->now_ms;
    rc = trim(a, &kk, w);
    if (rc == 0)
        rc = meta_store(a, &kk, w);
    r->version = w->current_version;
    mf_kv_meta_free(m);
    return rc;
}

/* Remove every trace of the entry at key `kk` (metadata, versions, binding). */
static int destroy_key(struct mf_apply *a, struct kvkey *kk, int unbind, uint64_t *destroyed)
{
    Mayfly__Cmd__KvMeta *m = NULL;
    int rc = meta_load(a->txn, a->st, kk->b, kk->len, &m);
    if (rc == MF_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    for (uint64_t v = m->oldest_version; v && v <= m->current_version && rc == 0; v++)
        rc = ver_del(a, kk, v);
    if (rc == 0 && unbind && m->lease_seq)
        rc = bind_del(a, m->lease_seq, kk);
    if (rc == 0) {
        MDB_val k = {kk->len, kk->b};
        rc = mf_state_err(mdb_del(a->txn, a->st->dbi[MF_DB_KV_META], &k, NULL), "kv meta del");
    }
    if (rc == 0)
        (*destroyed)++;
    mf_kv_meta_free(m);
    return rc;
}

int mf_kv_apply_delete_all(struct mf_apply *a, const Mayfly__Cmd__KvDeleteAll *c,
                           Mayfly__Cmd__Result *r)
{
    size_t plen;
    if (!valid_path(c->path, &plen))
        return mf_apply_fail(a, MF_EINVAL, "kv path must be 1-%d bytes", MF_KV_PATH_MAX);
    struct kvkey kk;
    kvkey_make(&kk, c->path, plen);
    return destroy_key(a, &kk, 1, &r->count);
}

int mf_kv_apply_destroy_bound(struct mf_apply *a, uint64_t seq, uint64_t *destroyed)
{
    uint8_t sb[8];
    mf_be64_put(sb, seq);
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_LEASE_KV], &cur), "lease_kv");
    if (rc)
        return rc;
    MDB_val k = {8, sb}, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
    int any = x == 0;
    while (x == 0) {
        struct kvkey kk;
        if (d.mv_size > KEY_MAX) {
            rc = MF_ECORRUPT;
            break;
        }
        memcpy(kk.b, d.mv_data, d.mv_size);
        kk.len = d.mv_size;
        rc = destroy_key(a, &kk, 0, destroyed);
        if (rc)
            break;
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "destroy bound");
    if (rc == 0 && any) {
        MDB_val dk = {8, sb};
        x = mdb_del(a->txn, a->st->dbi[MF_DB_LEASE_KV], &dk, NULL);
        rc = x == MDB_NOTFOUND ? 0 : mf_state_err(x, "lease_kv del");
    }
    return rc;
}

/* --- read side --- */

int mf_kv_meta_get(MDB_txn *txn, struct mf_state *st, const char *path,
                   Mayfly__Cmd__KvMeta **out)
{
    size_t plen;
    if (!path || !valid_path(path, &plen))
        return MF_EINVAL;
    struct kvkey kk;
    kvkey_make(&kk, path, plen);
    return meta_load(txn, st, kk.b, kk.len, out);
}

int mf_kv_get(MDB_txn *txn, struct mf_state *st, const char *path, uint64_t version,
              Mayfly__Cmd__KvVersion **out, uint64_t *version_out)
{
    size_t plen;
    if (!path || !valid_path(path, &plen))
        return MF_EINVAL;
    struct kvkey kk;
    kvkey_make(&kk, path, plen);
    if (version == 0) {
        Mayfly__Cmd__KvMeta *m = NULL;
        int rc = meta_load(txn, st, kk.b, kk.len, &m);
        if (rc)
            return rc;
        version = m->current_version;
        mf_kv_meta_free(m);
        if (version == 0)
            return MF_ENOTFOUND;
    }
    int rc = ver_load(txn, st, &kk, version, out);
    if (rc == 0 && version_out)
        *version_out = version;
    return rc;
}

void mf_kv_list_free(char **paths, size_t n)
{
    if (!paths)
        return;
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* Append path to the output, or set *more when the page is full. */
static int emit(char **out, size_t *n, size_t limit, int *more, const char *p, size_t len)
{
    if (*n == limit) {
        *more = 1;
        return 1;
    }
    out[*n] = strndup(p, len);
    if (!out[*n])
        return -ENOMEM;
    (*n)++;
    return 0;
}

int mf_kv_list(MDB_txn *txn, struct mf_state *st, const char *prefix, const char *after,
               size_t limit, char ***paths, size_t *n, int *more)
{
    *paths = NULL;
    *n = 0;
    *more = 0;
    if (limit == 0)
        return MF_EINVAL;
    const char *pfx = prefix ? prefix : "";
    size_t plen = strlen(pfx);
    char **out = calloc(limit, sizeof(*out));
    if (!out)
        return -ENOMEM;
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_KV_META], &cur), "kv list");
    if (rc) {
        free(out);
        return rc;
    }
    MDB_val k, d;
    int x, stop = 0;
    size_t alen = after ? strlen(after) : 0;
    int hashed_phase = after && alen > MF_KV_KEY_DIRECT_MAX;

    /* Phase 1: direct keys (never start with 0x00), in byte order. */
    if (!hashed_phase) {
        if (after) {
            k.mv_size = alen;
            k.mv_data = (void *)after;
            x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
            if (x == 0 && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0)
                x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
        } else if (plen) {
            k.mv_size = plen;
            k.mv_data = (void *)pfx;
            x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
        } else {
            /* Skip the hashed region at the front. */
            uint8_t one = 1;
            k.mv_size = 1;
            k.mv_data = &one;
            x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
        }
        while (x == 0 && !stop) {
            if (k.mv_size < plen || memcmp(k.mv_data, pfx, plen) != 0)
                break;
            int e = emit(out, n, limit, more, k.mv_data, k.mv_size);
            if (e < 0) {
                rc = e;
                goto done;
            }
            stop = e;
            if (!stop)
                x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
        }
        if (x && x != MDB_NOTFOUND) {
            rc = mf_state_err(x, "kv list");
            goto done;
        }
    }
    /* Phase 2: hashed keys (0x00 | SHA-256), whose path is in the record. */
    if (!stop && plen <= MF_KV_PATH_MAX) {
        struct kvkey ak;
        if (hashed_phase) {
            kvkey_make(&ak, after, alen);
            k.mv_size = ak.len;
            k.mv_data = ak.b;
            x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
            if (x == 0 && k.mv_size == ak.len && memcmp(k.mv_data, ak.b, ak.len) == 0)
                x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
        } else {
            x = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        }
        while (x == 0 && !stop && k.mv_size > 0 && ((uint8_t *)k.mv_data)[0] == 0) {
            Mayfly__Cmd__KvMeta *m = mayfly__cmd__kv_meta__unpack(NULL, d.mv_size, d.mv_data);
            if (!m) {
                rc = MF_ECORRUPT;
                goto done;
            }
            size_t ml = strlen(m->path);
            int e = 0;
            if (ml >= plen && memcmp(m->path, pfx, plen) == 0)
                e = emit(out, n, limit, more, m->path, ml);
            mf_kv_meta_free(m);
            if (e < 0) {
                rc = e;
                goto done;
            }
            stop = e;
            if (!stop)
                x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
        }
        if (x && x != MDB_NOTFOUND)
            rc = mf_state_err(x, "kv list");
    }
done:
    mdb_cursor_close(cur);
    if (rc) {
        mf_kv_list_free(out, *n);
        *n = 0;
        *more = 0;
        return rc;
    }
    *paths = out;
    return 0;
}
