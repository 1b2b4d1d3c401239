/* Policies: named blobs put and deleted by replicated commands. Part of the
 * apply path: deterministic, no clock, no randomness. */
#include "store/policies.h"

#include <stdbool.h>
#include <string.h>

#include "common/err.h"
#include "store/apply.h"

static int valid_name(const char *n)
{
    size_t l = strlen(n);
    return l > 0 && l <= MF_POLICY_NAME_MAX;
}

int mf_policy_apply_put(struct mf_apply *a, const Mayfly__Cmd__PolicyPut *m,
                        Mayfly__Cmd__Result *r)
{
    if (!valid_name(m->name))
        return mf_apply_fail(a, MF_EINVAL, "policy name must be 1-%d bytes", MF_POLICY_NAME_MAX);
    if (m->body.len > MF_POLICY_BODY_MAX)
        return mf_apply_fail(a, MF_ETOOLARGE, "policy larger than %d bytes", MF_POLICY_BODY_MAX);
    MDB_val k = {strlen(m->name), m->name}, d = {m->body.len, m->body.data ? m->body.data : (uint8_t *)""};
    r->policies_changed = true;
    return mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_POLICIES], &k, &d, 0), "policy put");
}

int mf_policy_apply_delete(struct mf_apply *a, const Mayfly__Cmd__PolicyDelete *m,
                           Mayfly__Cmd__Result *r)
{
    if (!valid_name(m->name))
        return mf_apply_fail(a, MF_EINVAL, "policy name must be 1-%d bytes", MF_POLICY_NAME_MAX);
    MDB_val k = {strlen(m->name), m->name};
    int rc = mdb_del(a->txn, a->st->dbi[MF_DB_POLICIES], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return mf_apply_fail(a, MF_ENOTFOUND, "no policy named %s", m->name);
    r->count = rc == 0;
    r->policies_changed = rc == 0;
    return mf_state_err(rc, "policy delete");
}

int mf_policy_get(MDB_txn *txn, struct mf_state *st, const char *name, const uint8_t **body,
                  size_t *len)
{
    if (!name || !valid_name(name))
        return MF_EINVAL;
    MDB_val k = {strlen(name), (void *)name}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_POLICIES], &k, &d);
    if (rc)
        return mf_state_err(rc, "policy get");
    *body = d.mv_data;
    *len = d.mv_size;
    return 0;
}

int mf_policy_each(MDB_txn *txn, struct mf_state *st, mf_policy_each_cb cb, void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, st->dbi[MF_DB_POLICIES], &c);
    if (rc)
        return mf_state_err(rc, "policy cursor");
    MDB_val k, d;
    char name[MF_POLICY_NAME_MAX + 1];
    for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        if (k.mv_size > MF_POLICY_NAME_MAX)
            continue; /* not written by mf_policy_apply_put */
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        int stop = cb(arg, name, d.mv_data, d.mv_size);
        if (stop) {
            mdb_cursor_close(c);
            return stop;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : mf_state_err(rc, "policy cursor");
}
