/* Replicated alarms (alarms.h): their records in META, the rule of which
 * commands grow the data, and the refusal while a storage alarm is set. */
#include "store/alarms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/apply.h"

#define KEY_PREFIX "alarm/"
#define KEY_MAX (sizeof(KEY_PREFIX) - 1 + MF_ALARM_KIND_MAX + 1 + 8)

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

bool mf_alarm_cmd_grows(const Mayfly__Cmd__Command *c)
{
    switch (c->op_case) {
    case MAYFLY__CMD__COMMAND__OP_LEASE_GRANT:
    case MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE:
    case MAYFLY__CMD__COMMAND__OP_KV_METADATA_PUT:
    case MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE:
    case MAYFLY__CMD__COMMAND__OP_POLICY_PUT:
        return true;
    case MAYFLY__CMD__COMMAND__OP_KV_PUT: {
        /* The server's own records that replace themselves (one per mount,
         * one per node and audit device): a CRL must still be published
         * after revocations. */
        const char *p = c->kv_put->path ? c->kv_put->path : "";
        return !has_prefix(p, "sys/crl/") && !has_prefix(p, "sys/audit/anchors/");
    }
    case MAYFLY__CMD__COMMAND__OP_QUOTA_SET:
        return c->quota_set->max_leases != 0; /* 0 removes a quota */
    default:
        return false;
    }
}

static size_t alarm_key(uint8_t *out, const char *kind, uint64_t node)
{
    size_t kl = strlen(kind), pl = sizeof(KEY_PREFIX) - 1;
    memcpy(out, KEY_PREFIX, pl);
    memcpy(out + pl, kind, kl);
    out[pl + kl] = '/';
    mf_be64_put(out + pl + kl + 1, node);
    return pl + kl + 1 + 8;
}

static bool kind_ok(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n > MF_ALARM_KIND_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 'a' || k[i] > 'z')
            return false;
    return true;
}

int mf_alarm_apply_set(struct mf_apply *a, const Mayfly__Cmd__AlarmSet *m, Mayfly__Cmd__Result *r)
{
    if (m->node_id == 0 || !kind_ok(m->kind))
        return mf_apply_fail(a, MF_EINVAL, "an alarm needs a node id and a kind of 1..%d [a-z]",
                             MF_ALARM_KIND_MAX);
    if (m->detail && strlen(m->detail) > MF_ALARM_DETAIL_MAX)
        return mf_apply_fail(a, MF_EINVAL, "an alarm's detail is at most %d bytes",
                             MF_ALARM_DETAIL_MAX);
    uint8_t kb[KEY_MAX];
    MDB_val k = {alarm_key(kb, m->kind, m->node_id), kb}, cur;
    MDB_dbi meta = a->st->dbi[MF_DB_META];
    int rc = mdb_get(a->txn, meta, &k, &cur);
    if (rc && rc != MDB_NOTFOUND)
        return mf_state_err(rc, "alarm get");
    bool present = rc == 0;
    if (!m->active) {
        if (present && (rc = mf_state_err(mdb_del(a->txn, meta, &k, NULL), "alarm del")))
            return rc;
        r->count = present;
        return 0;
    }
    Mayfly__Cmd__AlarmRecord rec = MAYFLY__CMD__ALARM_RECORD__INIT;
    rec.node_id = m->node_id;
    rec.kind = m->kind;
    rec.detail = m->detail ? m->detail : (char *)"";
    rec.since_ms = m->since_ms ? m->since_ms : a->now_ms;
    if (present) {
        /* A repeated raise keeps the first since: the alarm did not restart. */
        Mayfly__Cmd__AlarmRecord *old =
            mayfly__cmd__alarm_record__unpack(NULL, cur.mv_size, cur.mv_data);
        if (!old)
            return mf_apply_fail(a, MF_ECORRUPT, "stored alarm does not decode");
        rec.since_ms = old->since_ms;
        bool same = strcmp(old->detail, rec.detail) == 0;
        mayfly__cmd__alarm_record__free_unpacked(old, NULL);
        if (same)
            return 0;
    }
    r->count = 1;
    return mf_state_put_msg(a->txn, meta, &k, &rec.base, 0);
}

/* The first storage alarm set, if any (*rec NULL when none). */
static int first_storage_alarm(MDB_txn *txn, struct mf_state *st, Mayfly__Cmd__AlarmRecord **rec)
{
    *rec = NULL;
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_META], &cur), "alarm cursor");
    if (rc)
        return rc;
    const char *p = KEY_PREFIX MF_ALARM_KIND_STORAGE "/";
    MDB_val k = {strlen(p), (void *)p}, d;
    rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == strlen(p) + 8 && memcmp(k.mv_data, p, strlen(p)) == 0) {
        *rec = mayfly__cmd__alarm_record__unpack(NULL, d.mv_size, d.mv_data);
        rc = *rec ? 0 : MF_ECORRUPT;
    } else {
        rc = rc == MDB_NOTFOUND ? 0 : mf_state_err(rc, "alarm cursor get");
    }
    mdb_cursor_close(cur);
    return rc;
}

int mf_alarm_apply_check(struct mf_apply *a, const Mayfly__Cmd__Command *c)
{
    if (!mf_alarm_cmd_grows(c))
        return 0;
    Mayfly__Cmd__AlarmRecord *rec;
    int rc = first_storage_alarm(a->txn, a->st, &rec);
    if (rc == MF_ECORRUPT)
        return mf_apply_fail(a, MF_ECORRUPT, "stored alarm does not decode");
    if (rc || !rec)
        return rc;
    char why[sizeof(a->err)];
    mf_alarm_refusal_text(why, sizeof(why), rec->node_id, rec->detail);
    rc = mf_apply_fail(a, MF_EQUOTA, "%s", why);
    mayfly__cmd__alarm_record__free_unpacked(rec, NULL);
    return rc;
}

void mf_alarm_refusal_text(char *buf, size_t len, uint64_t node, const char *detail)
{
    snprintf(buf, len,
             "storage alarm on node %llu: %s; writes that grow the data are refused until it "
             "clears (reads, renewals, revocations and deletes go on)",
             (unsigned long long)node, detail && *detail ? detail : "storage over its limit");
}

void mf_alarm_list_free(Mayfly__Cmd__AlarmRecord **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mayfly__cmd__alarm_record__free_unpacked(list[i], NULL);
    free(list);
}

int mf_alarm_list(MDB_txn *txn, struct mf_state *st, Mayfly__Cmd__AlarmRecord ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_META], &cur), "alarm cursor");
    if (rc)
        return rc;
    Mayfly__Cmd__AlarmRecord **list = NULL;
    size_t len = 0;
    size_t pl = sizeof(KEY_PREFIX) - 1;
    MDB_val k = {pl, (void *)KEY_PREFIX}, d;
    rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && len < MF_ALARMS_MAX && k.mv_size > pl &&
           memcmp(k.mv_data, KEY_PREFIX, pl) == 0) {
        Mayfly__Cmd__AlarmRecord **grown = realloc(list, (len + 1) * sizeof(*list));
        if (!grown) {
            rc = -ENOMEM;
            break;
        }
        list = grown;
        list[len] = mayfly__cmd__alarm_record__unpack(NULL, d.mv_size, d.mv_data);
        if (!list[len]) {
            rc = MF_ECORRUPT;
            break;
        }
        len++;
        rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND || (rc == 0))
        rc = 0;
    else if (rc > 0)
        rc = mf_state_err(rc, "alarm list");
    if (rc) {
        mf_alarm_list_free(list, len);
        return rc;
    }
    *out = list;
    *n = len;
    return 0;
}
