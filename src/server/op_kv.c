/* KV operations: put (values encrypted by the leader before proposing),
 * version operations (delete, undelete, destroy), metadata, and the reads
 * get, list and metadata get.
 *
 * A read of a value bound to a lease checks the lease with the local clock
 * and the skew bound (DESIGN.md guarantee 4): refused once
 * local_now + max_clock_skew >= expire_at. That rule holds only while this
 * node's clock is within the bound: a node whose clock view does not agree
 * with a majority of voters (or has no fresh measurement) refuses such reads
 * with the skew instead (README.md "Time model"). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "auth/policy.h"
#include "server/authz.h"
#include "server/handler.h"
#include "server/op_kv.h"
#include "server/proposer.h"
#include "store/kv.h"
#include "store/lease_rules.h"
#include "store/leases.h"

#define LOG_MOD "kv"

/* The KV value on the wire is a map; at rest it is the JSON object of that
 * map, encrypted. */
static char *kv_data_json(const Mayfly__Api__KvPutRequest *p)
{
    json_t *o = json_object();
    for (size_t i = 0; i < p->n_data; i++)
        json_object_set_new(o, p->data[i]->key, json_string(p->data[i]->value));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return text;
}

static void finish_kv_put(struct req *r, const Result *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    Mayfly__Api__KvPutResponse out = MAYFLY__API__KV_PUT_RESPONSE__INIT;
    out.path = r->pb->kv_put->path;
    out.version = res->version;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_KV_PUT;
    resp->kv_put = &out;
    mf_api_reply(r, resp);
}

int mf_op_kv_put_authz(struct req *r, unsigned *cap, char *path, size_t len)
{
    /* update covers any write; create alone only a new path, enforced at
     * apply as CAS 0 (a soft-deleted path has a version: it exists). */
    const Mayfly__Api__KvPutRequest *q = r->pb->kv_put;
    if (q->lease_id[0]) {
        /* The lease's end destroys every version of the path: binding needs
         * the lease to be the caller's and the right to destroy the path. */
        if (!mf_handler_owns_lease(r, q->lease_id))
            return MF_EPERM;
        if ((size_t)snprintf(path, len, "kv/destroy/%s", q->path) >= len)
            return MF_ETOOLARGE;
        if (!mf_authz_allows(r, MF_CAP_UPDATE, path)) {
            *cap = MF_CAP_UPDATE;
            return 0; /* denied, naming kv/destroy/PATH */
        }
    }
    if ((size_t)snprintf(path, len, "kv/data/%s", q->path) >= len)
        return MF_ETOOLARGE;
    *cap = MF_CAP_UPDATE;
    if (!mf_authz_allows(r, MF_CAP_UPDATE, path) && mf_authz_allows(r, MF_CAP_CREATE, path)) {
        *cap = MF_CAP_CREATE;
        r->create_only = true;
    }
    return 0;
}

int mf_op_kv_versions_authz(struct req *r, unsigned *cap, char *path, size_t len)
{
    const Mayfly__Api__KvVersionsRequest *q = r->pb->kv_versions;
    const char *area = "data";
    *cap = MF_CAP_DELETE;
    if (q->op != MAYFLY__API__KV_VERSION_OP__KV_DELETE) {
        *cap = MF_CAP_UPDATE;
        area = q->op == MAYFLY__API__KV_VERSION_OP__KV_UNDELETE ? "undelete" : "destroy";
    }
    return (size_t)snprintf(path, len, "kv/%s/%s", area, q->path) < len ? 0 : MF_ETOOLARGE;
}

void mf_op_kv_put(struct req *r)
{
    const Mayfly__Api__KvPutRequest *p = r->pb->kv_put;
    if (mf_handler_refuse_path(r, p->path))
        return;
    if (p->n_data == 0)
        return mf_api_reply_error(r, MF_EINVAL, "kv put needs at least one KEY=VALUE");
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = p->path;
    m.has_cas = p->has_cas || r->create_only;
    m.cas = r->create_only ? 0 : p->cas;
    if (p->lease_id[0] && mf_handler_lease_seq(p->lease_id, &m.lease_seq))
        return mf_api_reply_error(r, MF_EINVAL, "'%s' is not a lease id", p->lease_id);
    char *json = kv_data_json(p);
    if (!json)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    mf_handler_propose_put(r, &m, json, finish_kv_put);
}

void mf_op_kv_versions(struct req *r)
{
    const Mayfly__Api__KvVersionsRequest *q = r->pb->kv_versions;
    if (mf_handler_refuse_path(r, q->path))
        return;
    Mayfly__Cmd__KvVersions m = MAYFLY__CMD__KV_VERSIONS__INIT;
    m.path = q->path;
    switch (q->op) {
    case MAYFLY__API__KV_VERSION_OP__KV_DELETE: m.op = MAYFLY__CMD__KV_VERSION_OP__KV_OP_DELETE; break;
    case MAYFLY__API__KV_VERSION_OP__KV_UNDELETE: m.op = MAYFLY__CMD__KV_VERSION_OP__KV_OP_UNDELETE; break;
    case MAYFLY__API__KV_VERSION_OP__KV_DESTROY: m.op = MAYFLY__CMD__KV_VERSION_OP__KV_OP_DESTROY; break;
    default: return mf_api_reply_error(r, MF_EINVAL, "unknown version operation %d", q->op);
    }
    m.n_versions = q->n_versions;
    m.versions = q->versions;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_VERSIONS;
    cmd.kv_versions = &m;
    mf_handler_propose(r, &cmd, NULL);
}

void mf_op_kv_metadata_put(struct req *r)
{
    const Mayfly__Api__KvMetadataPutRequest *q = r->pb->kv_metadata_put;
    if (mf_handler_refuse_path(r, q->path))
        return;
    Mayfly__Cmd__KvMetadataPut m = MAYFLY__CMD__KV_METADATA_PUT__INIT;
    m.path = q->path;
    m.max_versions = q->max_versions;
    m.set_cas_required = q->has_cas_required;
    m.cas_required = q->cas_required;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_METADATA_PUT;
    cmd.kv_metadata_put = &m;
    mf_handler_propose(r, &cmd, NULL);
}

/* Guarantee 4: may this lease's secret be served now, by this node's clock? */
static int lease_servable(struct mf_server *s, MDB_txn *txn, uint64_t seq, char *id, size_t id_len)
{
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = mf_lease_get(txn, mf_fsm_state(s->fsm), seq, &rec);
    if (rc == MF_ENOTFOUND)
        return MF_ELEASEEXPIRED;
    if (rc)
        return rc;
    if (id)
        mf_lease_id_format(id, id_len, rec->mount, rec->name, seq);
    bool servable = mf_lease_servable(rec->state, rec->expire_at_ms, mf_now_wall_ms(),
                                      s->cfg->max_clock_skew_ms);
    mf_lease_free(rec);
    return servable ? 0 : MF_ELEASEEXPIRED;
}

void mf_op_kv_get(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__KvGetRequest *q = r->pb->kv_get;
    if (mf_handler_refuse_path(r, q->path))
        return;
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    Mayfly__Cmd__KvVersion *v = NULL;
    uint64_t version = 0;
    char lease_id[MF_LEASE_ID_MAX] = "";
    rc = mf_kv_get(txn, st, q->path, q->version, &v, &version);
    if (!rc && (v->deleted_ms || v->destroyed))
        rc = MF_ENOTFOUND;
    char why[256] = "";
    if (!rc && v->lease_seq) {
        rc = lease_servable(s, txn, v->lease_seq, lease_id, sizeof(lease_id));
        /* Serving needs a trusted clock; so does calling a lease expired
         * (proposer.h mf_proposer_clock_check). */
        if ((!rc || rc == MF_ELEASEEXPIRED) &&
            mf_proposer_clock_check(s->prop, rc == MF_ELEASEEXPIRED, why, sizeof(why)))
            rc = MF_EUNAVAIL;
    }
    mf_srv_read_end(s, txn);
    if (rc) {
        mf_kv_version_free(v);
        if (why[0])
            return mf_api_reply_error(r, rc, "'%s' is bound to a lease and this node cannot "
                                      "tell when it ends: %s", q->path, why);
        if (rc == MF_ENOTFOUND)
            return mf_api_reply_error(r, rc, "no value at '%s'", q->path);
        if (rc == MF_ELEASEEXPIRED)
            return mf_api_reply_error(r, rc, "the lease of '%s' has expired or is about to",
                                      q->path);
        return mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
    }
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    rc = mf_barrier_decrypt(s->barrier, q->path, v->write_id, v->value.data, v->value.len, &plain,
                            &plain_len);
    uint64_t created = v->created_ms;
    mf_kv_version_free(v);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot decrypt '%s': %s", q->path, mf_strerror(rc));
    json_error_t je;
    json_t *obj = json_loadb((const char *)plain, plain_len, 0, &je);
    mf_barrier_wipe_free(plain, plain_len);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return mf_api_reply_error(r, MF_EINTERNAL, "stored value of '%s' is not a map", q->path);
    }
    size_t n = json_object_size(obj), i = 0;
    Mayfly__Api__KvGetResponse__DataEntry *entries = calloc(n ? n : 1, sizeof(*entries));
    Mayfly__Api__KvGetResponse__DataEntry **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        mayfly__api__kv_get_response__data_entry__init(&entries[i]);
        entries[i].key = (char *)key;
        entries[i].value = (char *)(json_is_string(val) ? json_string_value(val) : "");
        ptrs[i] = &entries[i];
        i++;
    }
    Mayfly__Api__KvGetResponse out = MAYFLY__API__KV_GET_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.path = q->path;
    out.version = version;
    out.created_ms = created;
    out.lease_id = lease_id;
    out.n_data = n;
    out.data = ptrs;
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_KV_GET;
    resp.kv_get = &out;
    mf_api_reply(r, &resp);
    free(entries);
    free(ptrs);
    json_decref(obj); /* mayflyd makes jansson wipe what it frees (mf_secmem_json_wipe) */
}

void mf_op_kv_list(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__KvListRequest *q = r->pb->kv_list;
    if (mf_srv_reserved_path(q->prefix))
        return mf_api_reply_error(r, MF_EPERM, "paths under '%s' are reserved",
                                  MF_SRV_RESERVED_PREFIX);
    size_t limit = q->limit ? q->limit : MF_SRV_LIST_LIMIT_DEFAULT;
    if (limit > MF_SRV_LIST_LIMIT_MAX)
        limit = MF_SRV_LIST_LIMIT_MAX;
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    rc = mf_kv_list(txn, st, q->prefix, q->after[0] ? q->after : NULL, limit, &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
    /* An empty prefix must not show the reserved records. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (mf_srv_reserved_path(paths[i]))
            free(paths[i]);
        else
            paths[kept++] = paths[i];
    }
    Mayfly__Api__KvListResponse out = MAYFLY__API__KV_LIST_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.n_keys = kept;
    out.keys = paths;
    out.next = (char *)(more && kept ? paths[kept - 1] : "");
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_KV_LIST;
    resp.kv_list = &out;
    mf_api_reply(r, &resp);
    mf_kv_list_free(paths, kept);
}

void mf_op_kv_metadata_get(struct req *r)
{
    struct mf_server *s = r->srv;
    const char *path = r->pb->kv_metadata_get->path;
    if (mf_handler_refuse_path(r, path))
        return;
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    Mayfly__Cmd__KvMeta *m = NULL;
    rc = mf_kv_meta_get(txn, st, path, &m);
    if (rc) {
        mf_srv_read_end(s, txn);
        return mf_api_reply_error(r, rc, "no metadata at '%s'", path);
    }
    size_t cap = m->current_version >= m->oldest_version && m->oldest_version
                     ? (size_t)(m->current_version - m->oldest_version + 1)
                     : 0;
    if (cap > MF_KV_VERSIONS_MAX)
        cap = MF_KV_VERSIONS_MAX;
    Mayfly__Api__KvVersionMeta *vm = calloc(cap ? cap : 1, sizeof(*vm));
    Mayfly__Api__KvMetadataGetResponse__VersionsEntry *ve = calloc(cap ? cap : 1, sizeof(*ve));
    Mayfly__Api__KvMetadataGetResponse__VersionsEntry **vp = calloc(cap ? cap : 1, sizeof(*vp));
    size_t n = 0;
    for (uint64_t ver = m->oldest_version; vm && ve && vp && n < cap; ver++) {
        Mayfly__Cmd__KvVersion *v = NULL;
        uint64_t got;
        if (mf_kv_get(txn, st, path, ver, &v, &got) == 0) {
            mayfly__api__kv_version_meta__init(&vm[n]);
            vm[n].created_ms = v->created_ms;
            vm[n].deleted_ms = v->deleted_ms;
            vm[n].destroyed = v->destroyed;
            mayfly__api__kv_metadata_get_response__versions_entry__init(&ve[n]);
            ve[n].key = ver;
            ve[n].value = &vm[n];
            vp[n] = &ve[n];
            n++;
            mf_kv_version_free(v);
        } else if (ver >= m->current_version) {
            break;
        }
        if (ver >= m->current_version)
            break;
    }
    mf_srv_read_end(s, txn);
    Mayfly__Api__KvMetadataGetResponse out = MAYFLY__API__KV_METADATA_GET_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.path = (char *)path;
    out.current_version = m->current_version;
    out.oldest_version = m->oldest_version;
    out.max_versions = m->max_versions;
    out.cas_required = m->cas_required;
    out.n_versions = n;
    out.versions = vp;
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_KV_METADATA_GET;
    resp.kv_metadata_get = &out;
    mf_api_reply(r, &resp);
    mf_kv_meta_free(m);
    free(vm);
    free(ve);
    free(vp);
}
