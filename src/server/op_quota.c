/* Lease quotas (op_quota.h): set, delete, list. */
#include "server/op_quota.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "raft/storage.h"
#include "server/ratelimit.h"
#include "server/records.h"
#include "store/kv.h"
#include "store/leases.h"

#define QUOTAS_MAX (MF_LEASE_QUOTAS_MAX + 1) /* records listed, with room to spot excess */
#define LOG_MOD "quota"

/* A quota name: 1..64 of [a-z0-9_-] (one record, no '/'). */
static bool valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > MF_OP_QUOTA_NAME_MAX)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* A mount or role as a lease id carries it: non-empty, no '/', printable. */
static bool valid_part(const char *p, size_t max)
{
    size_t len = strlen(p);
    if (len == 0 || len > max)
        return false;
    for (; *p; p++)
        if (*p == '/' || (unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* The scope q names as a lease-id prefix. @return 0, or MF_EINVAL with a
 * message in err. */
static int scope_of(const Mayfly__Api__QuotaSetRequest *q, char *out, size_t len, char *err,
                    size_t err_len)
{
    if (q->prefix[0]) {
        bool ok = !q->mount[0] && !q->role[0] && strlen(q->prefix) <= MF_LEASE_PREFIX_MAX;
        for (const char *p = q->prefix; *p && ok; p++)
            ok = (unsigned char)*p >= ' ' && *p != 0x7f;
        if (!ok)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "-prefix is a scope of its own (no -mount or -role): at most %d "
                              "printable bytes", MF_LEASE_PREFIX_MAX);
        snprintf(out, len, "%s", q->prefix);
        return 0;
    }
    if ((q->role[0] && !q->mount[0]) ||
        (q->mount[0] && !valid_part(q->mount, MF_LEASE_MOUNT_MAX)) ||
        (q->role[0] && !valid_part(q->role, MF_LEASE_NAME_MAX)))
        return mf_err_set(err, err_len, MF_EINVAL,
                          "-role needs -mount; a mount (%d bytes at most) or role (%d) is a "
                          "name without '/'", MF_LEASE_MOUNT_MAX, MF_LEASE_NAME_MAX);
    if (!q->mount[0])
        snprintf(out, len, "%s", "");
    else if (!q->role[0])
        snprintf(out, len, "%s/", q->mount);
    else
        snprintf(out, len, "%s/%s/", q->mount, q->role);
    return 0;
}

static void record_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, MF_OP_QUOTA_PREFIX "%s", name);
}

/* A quota record's prefix (malloc'd) and max. @return 0; MF_ENOTFOUND;
 * MF_ECORRUPT; read errors. */
static int read_quota(struct mf_server *s, const char *name, char **prefix, uint64_t *max,
                      uint32_t *rate)
{
    char path[MF_KV_PATH_MAX];
    record_path(path, sizeof(path), name);
    json_t *rec = NULL;
    int rc = mf_records_read(s, path, &rec);
    if (rc)
        return rc;
    const char *p = json_string_value(json_object_get(rec, "prefix"));
    json_t *m = json_object_get(rec, "max_leases");
    json_t *rt = json_object_get(rec, "rate"); /* absent in records older than -rate */
    rc = p && json_is_integer(m) && json_integer_value(m) >= 0 &&
                 (!rt || (json_is_integer(rt) && json_integer_value(rt) >= 0 &&
                          json_integer_value(rt) <= UINT32_MAX))
             ? 0
             : MF_ECORRUPT;
    if (!rc) {
        *max = (uint64_t)json_integer_value(m);
        *rate = rt ? (uint32_t)json_integer_value(rt) : 0;
        *prefix = strdup(p);
        rc = *prefix ? 0 : -ENOMEM;
    }
    json_decref(rec);
    return rc;
}

/* The names of every quota record (mf_kv_list_free). */
static int list_names(struct mf_server *s, char ***paths, size_t *n)
{
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    int more = 0;
    rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_OP_QUOTA_PREFIX, NULL, QUOTAS_MAX, paths, n,
                    &more);
    mf_srv_read_end(s, txn);
    return rc;
}

/* ---- set ---- */

static void finish_set_record(struct req *r, const Result *res, Resp *resp)
{
    (void)res;
    (void)resp;
    mf_handler_reply_empty(r);
}

/* The store's quota is in place: now the record that names it. */
static void finish_set_quota(struct req *r, const Result *res, Resp *resp)
{
    (void)res;
    (void)resp;
    const Mayfly__Api__QuotaSetRequest *q = r->pb->quota_set;
    char prefix[MF_LEASE_PREFIX_MAX + 1];
    char err[256];
    scope_of(q, prefix, sizeof(prefix), err, sizeof(err)); /* checked before the first command */
    json_t *rec = json_pack("{s:s, s:I, s:I}", "prefix", prefix, "max_leases",
                            (json_int_t)q->max_leases, "rate", (json_int_t)q->rate);
    char *text = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(rec);
    if (!text)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    char path[MF_KV_PATH_MAX];
    record_path(path, sizeof(path), q->name);
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = path;
    r->rid_suffix = 1; /* the second command of this request */
    mf_handler_propose_put(r, &m, text, finish_set_record);
}

/* Refuses (answering r) a set whose prefix another quota already limits, or
 * that would move an existing quota to another prefix. */
static bool refuse_conflict(struct req *r, const char *name, const char *prefix)
{
    char **paths = NULL;
    size_t n = 0;
    int rc = list_names(r->srv, &paths, &n);
    if (rc) {
        mf_api_reply_error(r, MF_EINTERNAL, "cannot list quotas: %s", mf_strerror(rc));
        return true;
    }
    bool refused = false;
    for (size_t i = 0; i < n && !refused; i++) {
        const char *other = paths[i] + strlen(MF_OP_QUOTA_PREFIX);
        char *p = NULL;
        uint64_t max = 0;
        uint32_t rate = 0;
        if (read_quota(r->srv, other, &p, &max, &rate))
            continue;
        bool same = strcmp(other, name) == 0;
        if (same && strcmp(p, prefix) != 0) {
            mf_api_reply_error(r, MF_EINVAL,
                               "quota '%s' limits prefix '%s': delete it to give it another "
                               "scope", name, p);
            refused = true;
        } else if (!same && strcmp(p, prefix) == 0) {
            mf_api_reply_error(r, MF_EINVAL, "prefix '%s' is already limited by quota '%s'",
                               prefix, other);
            refused = true;
        }
        free(p);
    }
    mf_kv_list_free(paths, n);
    return refused;
}

void mf_op_quota_set(struct req *r)
{
    const Mayfly__Api__QuotaSetRequest *q = r->pb->quota_set;
    if (!valid_name(q->name))
        return mf_api_reply_error(r, MF_EINVAL, "a quota name is 1..%d of [a-z0-9_-]",
                                  MF_OP_QUOTA_NAME_MAX);
    if (q->max_leases == 0 && q->rate == 0)
        return mf_api_reply_error(r, MF_EINVAL,
                                  "a quota needs -max-leases N or -rate R (N, R >= 1)");
    if (q->max_leases > INT64_MAX)
        return mf_api_reply_error(r, MF_EINVAL, "-max-leases is too large");
    char prefix[MF_LEASE_PREFIX_MAX + 1];
    char err[256];
    if (scope_of(q, prefix, sizeof(prefix), err, sizeof(err)))
        return mf_api_reply_error(r, MF_EINVAL, "%s", err);
    if (refuse_conflict(r, q->name, prefix))
        return;
    Mayfly__Cmd__QuotaSet m = MAYFLY__CMD__QUOTA_SET__INIT;
    m.prefix = prefix;
    m.max_leases = q->max_leases;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_QUOTA_SET;
    cmd.quota_set = &m;
    mf_handler_propose(r, &cmd, finish_set_quota);
}

/* ---- delete ---- */

static void finish_delete_quota(struct req *r, const Result *res, Resp *resp)
{
    (void)res;
    (void)resp;
    char path[MF_KV_PATH_MAX];
    record_path(path, sizeof(path), r->pb->quota_delete->name);
    Mayfly__Cmd__KvDeleteAll m = MAYFLY__CMD__KV_DELETE_ALL__INIT;
    m.path = path;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_DELETE_ALL;
    cmd.kv_delete_all = &m;
    r->rid_suffix = 1;
    mf_handler_propose(r, &cmd, finish_set_record);
}

void mf_op_quota_delete(struct req *r)
{
    const char *name = r->pb->quota_delete->name;
    if (!valid_name(name))
        return mf_api_reply_error(r, MF_EINVAL, "a quota name is 1..%d of [a-z0-9_-]",
                                  MF_OP_QUOTA_NAME_MAX);
    char *prefix = NULL;
    uint64_t max = 0;
    uint32_t rate = 0;
    int rc = read_quota(r->srv, name, &prefix, &max, &rate);
    if (rc == MF_ENOTFOUND)
        return mf_api_reply_error(r, MF_ENOTFOUND, "no quota named '%s'", name);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "quota '%s': %s", name, mf_strerror(rc));
    Mayfly__Cmd__QuotaSet m = MAYFLY__CMD__QUOTA_SET__INIT;
    m.prefix = prefix;
    m.max_leases = 0; /* the store's "no quota on this prefix" */
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_QUOTA_SET;
    cmd.quota_set = &m;
    mf_handler_propose(r, &cmd, finish_delete_quota);
    free(prefix);
}

/* ---- list ---- */

void mf_op_quota_list(struct req *r)
{
    struct mf_server *s = r->srv;
    char **paths = NULL;
    size_t n = 0;
    int rc = list_names(s, &paths, &n);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot list quotas: %s", mf_strerror(rc));
    size_t cap = n ? n : 1;
    Mayfly__Api__QuotaInfo *infos = calloc(cap, sizeof(*infos));
    Mayfly__Api__QuotaInfo **ptrs = calloc(cap, sizeof(*ptrs));
    char **prefixes = calloc(cap, sizeof(*prefixes));
    size_t k = 0;
    rc = infos && ptrs && prefixes ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name = paths[i] + strlen(MF_OP_QUOTA_PREFIX);
        uint64_t max = 0;
        uint32_t rate = 0;
        if (read_quota(s, name, &prefixes[k], &max, &rate))
            continue; /* not readable: not a quota to show */
        mayfly__api__quota_info__init(&infos[k]);
        infos[k].name = (char *)name;
        infos[k].prefix = prefixes[k];
        infos[k].max_leases = max;
        ptrs[k] = &infos[k];
        k++;
    }
    /* The live counts, in one read of the store after the records' reads
     * (each of which is a read transaction of its own). */
    MDB_txn *txn = NULL;
    if (!rc && k)
        rc = mf_srv_read_begin(s, &txn);
    for (size_t i = 0; i < k && txn; i++) {
        uint64_t store_max = 0, live = 0;
        if (mf_lease_quota_get(txn, mf_fsm_state(s->fsm), prefixes[i], &store_max, &live) == 0)
            infos[i].live_leases = live;
    }
    if (txn)
        mf_srv_read_end(s, txn);
    if (rc) {
        mf_api_reply_error(r, MF_EINTERNAL, "cannot list quotas: %s", mf_strerror(rc));
    } else {
        Mayfly__Api__QuotaListResponse out = MAYFLY__API__QUOTA_LIST_RESPONSE__INIT;
        Mayfly__Api__ReadInfo ri;
        out.n_quotas = k;
        out.quotas = ptrs;
        out.read = mf_handler_read_info(r, &ri);
        Resp resp = MAYFLY__API__RESPONSE__INIT;
        resp.result_case = MAYFLY__API__RESPONSE__RESULT_QUOTA_LIST;
        resp.quota_list = &out;
        mf_api_reply(r, &resp);
    }
    for (size_t i = 0; i < k; i++)
        free(prefixes[i]);
    free(prefixes);
    free(infos);
    free(ptrs);
    mf_kv_list_free(paths, n);
}

/* ---- grant rates ---- */

/* The rates of the quota records, in memory (the server's quota_rates,
 * made at the first grant or applied entry). Rebuilt from the records at
 * the next grant once `dirty`: at start, after an applied entry that names
 * sys/quotas/, and after a gap in applied indices (a snapshot installed). A
 * rebuild keeps the bucket of a quota whose prefix and rate are unchanged. */
struct rate_quota {
    char prefix[MF_LEASE_PREFIX_MAX + 1];
    struct mf_rate_bucket b;
};

struct mf_quota_rates {
    bool dirty;
    uint64_t last_index;
    size_t n;
    struct rate_quota q[MF_LEASE_QUOTAS_MAX];
    struct rate_quota next[MF_LEASE_QUOTAS_MAX]; /* a rebuild's scratch */
};

static struct mf_quota_rates *rates_of(struct mf_server *s)
{
    if (!s->quota_rates) {
        s->quota_rates = calloc(1, sizeof(*s->quota_rates));
        if (s->quota_rates)
            s->quota_rates->dirty = true;
    }
    return s->quota_rates;
}

void mf_quota_rates_free(struct mf_server *s)
{
    free(s->quota_rates);
    s->quota_rates = NULL;
}

static struct rate_quota *rate_find(struct rate_quota *q, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(q[i].prefix, prefix) == 0)
            return &q[i];
    return NULL;
}

static int rates_rebuild(struct mf_server *s, struct mf_quota_rates *rates)
{
    char **paths = NULL;
    size_t n = 0;
    int rc = list_names(s, &paths, &n);
    if (rc)
        return rc;
    struct rate_quota *next = rates->next;
    size_t k = 0;
    uint64_t now = mf_now_mono_ms();
    for (size_t i = 0; i < n && k < MF_LEASE_QUOTAS_MAX; i++) {
        char *p = NULL;
        uint64_t max = 0;
        uint32_t rate = 0;
        if (read_quota(s, paths[i] + strlen(MF_OP_QUOTA_PREFIX), &p, &max, &rate))
            continue; /* not readable: not a quota (as list shows them) */
        if (rate && strlen(p) <= MF_LEASE_PREFIX_MAX) {
            struct rate_quota *old = rate_find(rates->q, rates->n, p);
            snprintf(next[k].prefix, sizeof(next[k].prefix), "%s", p);
            if (old && old->b.per_second == rate)
                next[k].b = old->b;
            else
                mf_rate_bucket_init(&next[k].b, rate, 0, now);
            k++;
        }
        free(p);
    }
    mf_kv_list_free(paths, n);
    memcpy(rates->q, next, k * sizeof(next[0]));
    rates->n = k;
    return 0;
}

void mf_quota_applied(struct mf_server *s, const struct mf_raft_entry *e)
{
    static const char pre[] = MF_OP_QUOTA_PREFIX;
    struct mf_quota_rates *rates = rates_of(s);
    if (!rates)
        return; /* out of memory: the next grant answers it */
    if (!e)
        rates->dirty = true;
    else if ((rates->last_index && e->index != rates->last_index + 1) ||
             (e->len && e->data && memmem(e->data, e->len, pre, sizeof(pre) - 1)))
        rates->dirty = true; /* paths travel in clear in a KV command */
    if (e)
        rates->last_index = e->index;
}

bool mf_quota_rate_take(struct req *r, const char *mount, const char *name)
{
    struct mf_server *s = r->srv;
    struct mf_quota_rates *rates = rates_of(s);
    if (!rates) {
        mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
        return false;
    }
    if (rates->dirty) {
        int rc = rates_rebuild(s, rates);
        if (rc) {
            mf_api_reply_error(r, MF_EUNAVAIL, "cannot read the quotas' rates (%s); retry",
                               mf_strerror(rc));
            return false;
        }
        rates->dirty = false;
    }
    char id[MF_LEASE_PREFIX_MAX + 2];
    snprintf(id, sizeof(id), "%s/%s/", mount, name);
    uint64_t now = mf_now_mono_ms(), retry = 0;
    /* Every quota over this lease must have room before any is charged. */
    for (size_t i = 0; i < rates->n; i++) {
        struct rate_quota *q = &rates->q[i];
        if (strncmp(id, q->prefix, strlen(q->prefix)) == 0 &&
            !mf_rate_bucket_ready(&q->b, now, &retry)) {
            mf_api_reply_error(r, MF_ERATELIMIT,
                               "too many grants under '%s' (its quota's -rate); retry after "
                               "%llu ms", q->prefix, (unsigned long long)retry);
            return false;
        }
    }
    for (size_t i = 0; i < rates->n; i++)
        if (strncmp(id, rates->q[i].prefix, strlen(rates->q[i].prefix)) == 0)
            mf_rate_bucket_take(&rates->q[i].b);
    return true;
}
