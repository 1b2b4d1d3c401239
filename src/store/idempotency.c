/* Idempotency entries: request id -> first result, with an expiry index
 * (expire_at | request id) so pruning is a cursor walk from the front. Every
 * entry lives MF_IDEM_TTL_MS of command time, so the front of the index is
 * also the oldest entry, which goes first when the table is full. Part of the
 * apply path: deterministic, time is the command's now.
 */
#include "store/idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "store/apply.h"

int mf_idem_count(MDB_txn *txn, struct mf_state *st, uint64_t *count)
{
    MDB_stat s;
    int rc = mdb_stat(txn, st->dbi[MF_DB_IDEM], &s);
    if (rc)
        return mf_state_err(rc, "idem stat");
    *count = s.ms_entries;
    return 0;
}

int mf_idem_apply_prune(struct mf_apply *a)
{
    uint64_t count = 0;
    int rc = mf_idem_count(a->txn, a->st, &count);
    if (rc || count == 0)
        return rc;
    MDB_cursor *cur;
    rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_IDEM_EXP], &cur), "idem_exp");
    if (rc)
        return rc;
    MDB_val k, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_FIRST), expired = 0;
    while (x == 0) {
        if (k.mv_size < 9) {
            rc = MF_ECORRUPT;
            break;
        }
        int is_expired = mf_be64_get(k.mv_data) <= a->now_ms;
        if (!(is_expired && expired < MF_IDEM_PRUNE_PER_CMD) && count <= MF_IDEM_MAX)
            break;
        expired += is_expired;
        MDB_val rk = {k.mv_size - 8, (uint8_t *)k.mv_data + 8};
        int y = mdb_del(a->txn, a->st->dbi[MF_DB_IDEM], &rk, NULL);
        if (y && y != MDB_NOTFOUND) {
            rc = mf_state_err(y, "idem del");
            break;
        }
        count -= y == 0;
        rc = mf_state_err(mdb_cursor_del(cur, 0), "idem_exp del");
        if (rc)
            break;
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "idem prune");
    return rc;
}

static int load(struct mf_apply *a, const uint8_t *rid, size_t len, Mayfly__Cmd__IdemRecord **out)
{
    MDB_val k = {len, (void *)rid}, d;
    int rc = mdb_get(a->txn, a->st->dbi[MF_DB_IDEM], &k, &d);
    if (rc)
        return mf_state_err(rc, "idem get");
    *out = mayfly__cmd__idem_record__unpack(NULL, d.mv_size, d.mv_data);
    return *out ? 0 : MF_ECORRUPT;
}

int mf_idem_apply_lookup(struct mf_apply *a, const uint8_t *rid, size_t len,
                         Mayfly__Cmd__Result **out)
{
    MF_ASSERT(len > 0 && len <= MF_IDEM_RID_MAX);
    Mayfly__Cmd__IdemRecord *rec;
    int rc = load(a, rid, len, &rec);
    if (rc)
        return rc;
    if (rec->expire_at_ms <= a->now_ms || !rec->result) {
        mayfly__cmd__idem_record__free_unpacked(rec, NULL);
        return MF_ENOTFOUND;
    }
    *out = rec->result;
    rec->result = NULL;
    mayfly__cmd__idem_record__free_unpacked(rec, NULL);
    return 0;
}

int mf_idem_get(MDB_txn *txn, struct mf_state *st, const uint8_t *rid, size_t len,
                uint64_t now_ms, Mayfly__Cmd__Result **out)
{
    if (len == 0 || len > MF_IDEM_RID_MAX)
        return MF_EINVAL;
    MDB_val k = {len, (void *)rid}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_IDEM], &k, &d);
    if (rc)
        return mf_state_err(rc, "idem get");
    Mayfly__Cmd__IdemRecord *rec = mayfly__cmd__idem_record__unpack(NULL, d.mv_size, d.mv_data);
    if (!rec)
        return MF_ECORRUPT;
    if (rec->expire_at_ms <= now_ms || !rec->result) {
        mayfly__cmd__idem_record__free_unpacked(rec, NULL);
        return MF_ENOTFOUND;
    }
    *out = rec->result;
    rec->result = NULL;
    mayfly__cmd__idem_record__free_unpacked(rec, NULL);
    return 0;
}

static void exp_key(uint8_t *kb, uint64_t expire_at, const uint8_t *rid, size_t len)
{
    mf_be64_put(kb, expire_at);
    memcpy(kb + 8, rid, len);
}

int mf_idem_apply_store(struct mf_apply *a, const uint8_t *rid, size_t len,
                        const Mayfly__Cmd__Result *r)
{
    MF_ASSERT(len > 0 && len <= MF_IDEM_RID_MAX);
    uint8_t kb[8 + MF_IDEM_RID_MAX];
    /* An expired entry not yet pruned: drop its index key first. */
    Mayfly__Cmd__IdemRecord *old;
    int rc = load(a, rid, len, &old);
    if (rc == 0) {
        exp_key(kb, old->expire_at_ms, rid, len);
        mayfly__cmd__idem_record__free_unpacked(old, NULL);
        MDB_val ek = {8 + len, kb};
        int x = mdb_del(a->txn, a->st->dbi[MF_DB_IDEM_EXP], &ek, NULL);
        if (x && x != MDB_NOTFOUND)
            return mf_state_err(x, "idem_exp del");
    } else if (rc != MF_ENOTFOUND) {
        return rc;
    }
    Mayfly__Cmd__IdemRecord rec = MAYFLY__CMD__IDEM_RECORD__INIT;
    rec.expire_at_ms = a->now_ms + MF_IDEM_TTL_MS;
    rec.result = (Mayfly__Cmd__Result *)r;
    MDB_val k = {len, (void *)rid};
    rc = mf_state_put_msg(a->txn, a->st->dbi[MF_DB_IDEM], &k, &rec.base, 0);
    if (rc)
        return rc;
    exp_key(kb, rec.expire_at_ms, rid, len);
    MDB_val ek = {8 + len, kb}, ev = {0, ""};
    return mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_IDEM_EXP], &ek, &ev, 0), "idem_exp put");
}
