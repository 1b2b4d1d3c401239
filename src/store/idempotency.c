/* Idempotency entries: request id -> first result, with an expiry index
 * (expire_at | request id) so pruning is a cursor walk from the front. Every
 * entry lives MF_IDEM_TTL_MS of command time, so the front of the index is
 * also the oldest entry, which goes first when the table is full. Each
 * entry is also counted for its caller (IDEM_CALLER: a count, and an index
 * in expiry order so the caller's own oldest entry goes first when it holds
 * too many). Part of the apply path: deterministic, time is the command's now.
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

static int fp_differs(const Mayfly__Cmd__IdemRecord *rec, const uint8_t *fp, size_t fp_len)
{
    if (!rec->fingerprint.len || !fp_len)
        return 0; /* an entry or a command from before fingerprints */
    return rec->fingerprint.len != fp_len || memcmp(rec->fingerprint.data, fp, fp_len) != 0;
}

/* IDEM_CALLER: caller -> count, and caller | expire_at | rid -> "". */
static size_t caller_key(uint8_t *kb, const uint8_t *caller, uint64_t expire_at,
                         const uint8_t *rid, size_t len)
{
    memcpy(kb, caller, MF_IDEM_CALLER_LEN);
    mf_be64_put(kb + MF_IDEM_CALLER_LEN, expire_at);
    memcpy(kb + MF_IDEM_CALLER_LEN + 8, rid, len);
    return MF_IDEM_CALLER_LEN + 8 + len;
}

static int caller_count_get(MDB_txn *txn, struct mf_state *st, const uint8_t *caller,
                            uint64_t *count)
{
    MDB_val k = {MF_IDEM_CALLER_LEN, (void *)caller}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_IDEM_CALLER], &k, &d);
    *count = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return mf_state_err(rc, "idem caller get");
    if (d.mv_size != 8)
        return MF_ECORRUPT;
    *count = mf_be64_get(d.mv_data);
    return 0;
}

int mf_idem_caller_count(MDB_txn *txn, struct mf_state *st, const uint8_t *caller,
                         uint64_t *count)
{
    return caller_count_get(txn, st, caller, count);
}

static int caller_count_set(struct mf_apply *a, const uint8_t *caller, uint64_t count)
{
    MDB_val k = {MF_IDEM_CALLER_LEN, (void *)caller};
    if (count == 0) {
        int rc = mdb_del(a->txn, a->st->dbi[MF_DB_IDEM_CALLER], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : mf_state_err(rc, "idem caller del");
    }
    uint8_t b[8];
    mf_be64_put(b, count);
    MDB_val d = {8, b};
    return mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_IDEM_CALLER], &k, &d, 0),
                        "idem caller put");
}

/* Forgets that rec (the entry of rid) counts for its caller. */
static int unlink_caller(struct mf_apply *a, const Mayfly__Cmd__IdemRecord *rec,
                         const uint8_t *rid, size_t len)
{
    if (rec->caller.len != MF_IDEM_CALLER_LEN)
        return 0;
    uint8_t kb[MF_IDEM_CALLER_LEN + 8 + MF_IDEM_RID_MAX];
    MDB_val k = {caller_key(kb, rec->caller.data, rec->expire_at_ms, rid, len), kb};
    int rc = mdb_del(a->txn, a->st->dbi[MF_DB_IDEM_CALLER], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return mf_state_err(rc, "idem caller del");
    uint64_t count;
    rc = caller_count_get(a->txn, a->st, rec->caller.data, &count);
    if (rc)
        return rc;
    return caller_count_set(a, rec->caller.data, count ? count - 1 : 0);
}

static int load(struct mf_apply *a, const uint8_t *rid, size_t len, Mayfly__Cmd__IdemRecord **out);

static int unlink_caller_of(struct mf_apply *a, const uint8_t *rid, size_t len)
{
    Mayfly__Cmd__IdemRecord *rec = NULL;
    int rc = load(a, rid, len, &rec);
    if (rc == MF_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    rc = unlink_caller(a, rec, rid, len);
    mayfly__cmd__idem_record__free_unpacked(rec, NULL);
    return rc;
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
        rc = unlink_caller_of(a, rk.mv_data, rk.mv_size);
        if (rc)
            break;
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
                         ProtobufCBinaryData fingerprint, Mayfly__Cmd__Result **out)
{
    MF_ASSERT(len > 0 && len <= MF_IDEM_RID_MAX);
    Mayfly__Cmd__IdemRecord *rec = NULL;
    int rc = load(a, rid, len, &rec);
    if (rc)
        return rc;
    if (rec->expire_at_ms <= a->now_ms || !rec->result) {
        mayfly__cmd__idem_record__free_unpacked(rec, NULL);
        return MF_ENOTFOUND;
    }
    if (fp_differs(rec, fingerprint.data, fingerprint.len)) {
        mayfly__cmd__idem_record__free_unpacked(rec, NULL);
        return MF_EINVAL;
    }
    *out = rec->result;
    rec->result = NULL;
    mayfly__cmd__idem_record__free_unpacked(rec, NULL);
    return 0;
}

int mf_idem_get(MDB_txn *txn, struct mf_state *st, const uint8_t *rid, size_t len,
                const uint8_t *fp, size_t fp_len, uint64_t now_ms, Mayfly__Cmd__Result **out)
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
    if (fp_differs(rec, fp, fp_len)) {
        mayfly__cmd__idem_record__free_unpacked(rec, NULL);
        return MF_EINVAL;
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

/* Drops the entry of rid (both indexes, its caller's count). */
static int drop_entry(struct mf_apply *a, const uint8_t *rid, size_t len)
{
    Mayfly__Cmd__IdemRecord *rec = NULL;
    int rc = load(a, rid, len, &rec);
    if (rc)
        return rc == MF_ENOTFOUND ? 0 : rc;
    uint8_t kb[8 + MF_IDEM_RID_MAX];
    exp_key(kb, rec->expire_at_ms, rid, len);
    rc = unlink_caller(a, rec, rid, len);
    mayfly__cmd__idem_record__free_unpacked(rec, NULL);
    if (rc)
        return rc;
    MDB_val ek = {8 + len, kb}, k = {len, (void *)rid};
    int x = mdb_del(a->txn, a->st->dbi[MF_DB_IDEM_EXP], &ek, NULL);
    if (x && x != MDB_NOTFOUND)
        return mf_state_err(x, "idem_exp del");
    x = mdb_del(a->txn, a->st->dbi[MF_DB_IDEM], &k, NULL);
    return x == MDB_NOTFOUND ? 0 : mf_state_err(x, "idem del");
}

/* The caller holds one entry too many: its oldest other than `keep` goes. */
static int evict_callers_oldest(struct mf_apply *a, const uint8_t *caller, const uint8_t *keep,
                                size_t keep_len)
{
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_IDEM_CALLER], &cur),
                          "idem_caller");
    if (rc)
        return rc;
    uint8_t victim[MF_IDEM_RID_MAX];
    size_t victim_len = 0;
    MDB_val k = {MF_IDEM_CALLER_LEN, (void *)caller}, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY); /* the count; entries follow */
    while (x == 0 && (x = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) == 0) {
        if (k.mv_size <= MF_IDEM_CALLER_LEN + 8 || memcmp(k.mv_data, caller, MF_IDEM_CALLER_LEN))
            break;
        size_t len = k.mv_size - MF_IDEM_CALLER_LEN - 8;
        const uint8_t *rid = (const uint8_t *)k.mv_data + MF_IDEM_CALLER_LEN + 8;
        if (len > MF_IDEM_RID_MAX) {
            rc = MF_ECORRUPT;
            break;
        }
        if (len == keep_len && memcmp(rid, keep, len) == 0)
            continue;
        memcpy(victim, rid, len);
        victim_len = len;
        break;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "idem caller walk");
    if (rc || victim_len == 0)
        return rc;
    return drop_entry(a, victim, victim_len);
}

int mf_idem_apply_store(struct mf_apply *a, const uint8_t *rid, size_t len,
                        ProtobufCBinaryData caller, ProtobufCBinaryData fingerprint,
                        const Mayfly__Cmd__Result *r)
{
    MF_ASSERT(len > 0 && len <= MF_IDEM_RID_MAX);
    /* An expired entry not yet pruned: drop it (and its indexes) first. */
    int rc = drop_entry(a, rid, len);
    if (rc)
        return rc;
    uint8_t kb[MF_IDEM_CALLER_LEN + 8 + MF_IDEM_RID_MAX];
    Mayfly__Cmd__IdemRecord rec = MAYFLY__CMD__IDEM_RECORD__INIT;
    rec.expire_at_ms = a->now_ms + MF_IDEM_TTL_MS;
    rec.result = (Mayfly__Cmd__Result *)r;
    rec.fingerprint = fingerprint;
    if (caller.len == MF_IDEM_CALLER_LEN)
        rec.caller = caller;
    MDB_val k = {len, (void *)rid};
    rc = mf_state_put_msg(a->txn, a->st->dbi[MF_DB_IDEM], &k, &rec.base, 0);
    if (rc)
        return rc;
    exp_key(kb, rec.expire_at_ms, rid, len);
    MDB_val ek = {8 + len, kb}, ev = {0, ""};
    rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_IDEM_EXP], &ek, &ev, 0), "idem_exp put");
    if (rc || !rec.caller.len)
        return rc;
    MDB_val ck = {caller_key(kb, caller.data, rec.expire_at_ms, rid, len), kb};
    rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_IDEM_CALLER], &ck, &ev, 0),
                      "idem caller put");
    uint64_t count = 0;
    if (!rc)
        rc = caller_count_get(a->txn, a->st, caller.data, &count);
    if (!rc)
        rc = caller_count_set(a, caller.data, ++count);
    if (!rc && count > MF_IDEM_PER_CALLER_MAX)
        rc = evict_callers_oldest(a, caller.data, rid, len);
    return rc;
}
