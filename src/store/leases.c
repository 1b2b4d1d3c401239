/* Leases in the state database: the rules of every lease command (grant,
 * activate, renew, revoke, revoke-prefix, expire, revoked, irrevocable,
 * force-revoke, tidy, quotas) and the read side (lookup, next due, due by T,
 * revoking set, listing).
 *
 * Indexes move with the state, in the same transaction as the record:
 *  - EXPIRY holds issuing and active leases, keyed expire_at|SEQ, so the next
 *    due lease is the first key (a cursor read, O(log n) at any count);
 *  - REVOKING holds the revoking set keyed ENGINE|NUL|SEQ, grouped by the
 *    engine mount that must revoke them ("" first: leases no engine has to
 *    revoke), so the scheduler serves each mount from its own group and a
 *    mount whose database is down cannot hold back the others; a new leader
 *    resumes from it: nothing needs restoring into memory;
 *  - REVOKED orders revoked leases by revoked time for tidy;
 *  - PREFIX lists leases by "MOUNT/NAME/" until tidy; OWNER maps a token to
 *    the leases it owns (while they are live).
 * An expire applies only if the lease's expire_at is still <= the command's
 * now: a renew committed in between wins and the expire does nothing.
 * Deterministic: time is the command's now; no clock, no randomness.
 */
#include "store/leases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/seq.h"
#include "store/apply.h"
#include "store/lease_rules.h"

#define LS(x) MAYFLY__CMD__LEASE_STATE__##x

int mf_lease_id_format(char *buf, size_t len, const char *mount, const char *name, uint64_t seq)
{
    char s[MF_SEQ_CHARS + 1];
    mf_seq_format(seq, s);
    int n = snprintf(buf, len, "%s/%s/%s", mount, name, s);
    if (n < 0 || (size_t)n >= len)
        return MF_ETOOLARGE;
    return n;
}

int mf_lease_id_parse(const char *id, size_t *prefix_len, uint64_t *seq)
{
    if (!id)
        return MF_EINVAL;
    size_t n = strlen(id);
    /* At least "M/N/" and a SEQ. */
    if (n < MF_SEQ_CHARS + 4 || id[n - MF_SEQ_CHARS - 1] != '/')
        return MF_EINVAL;
    if (mf_seq_parse(id + n - MF_SEQ_CHARS, MF_SEQ_CHARS, seq))
        return MF_EINVAL;
    *prefix_len = n - MF_SEQ_CHARS;
    return 0;
}

const char *mf_lease_state_name(int state)
{
    switch (state) {
    case LS(LEASE_ISSUING): return "issuing";
    case LS(LEASE_ACTIVE): return "active";
    case LS(LEASE_REVOKING): return "revoking";
    case LS(LEASE_REVOKED): return "revoked";
    case LS(LEASE_IRREVOCABLE): return "irrevocable";
    default: return "unknown";
    }
}

/* --- helpers --- */

static void seq_key(uint8_t b[8], uint64_t seq) { mf_be64_put(b, seq); }

#define REVOKING_KEY_MAX (MF_LEASE_MOUNT_MAX + 1 + 8)

/* ENGINE|NUL|SEQ; the length of the key. */
static size_t revoking_key(uint8_t b[REVOKING_KEY_MAX], const char *engine, uint64_t seq)
{
    size_t el = strlen(engine);
    MF_ASSERT(el <= MF_LEASE_MOUNT_MAX);
    memcpy(b, engine, el);
    b[el] = 0;
    seq_key(b + el + 1, seq);
    return el + 9;
}

static void pair_key(uint8_t b[16], uint64_t hi, uint64_t seq)
{
    mf_be64_put(b, hi);
    mf_be64_put(b + 8, seq);
}

static int in_expiry(int state) { return state == LS(LEASE_ISSUING) || state == LS(LEASE_ACTIVE); }

static int lease_load(MDB_txn *txn, struct mf_state *st, uint64_t seq,
                      Mayfly__Cmd__LeaseRecord **out)
{
    uint8_t kb[8];
    seq_key(kb, seq);
    MDB_val k = {8, kb}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_LEASES], &k, &d);
    if (rc)
        return mf_state_err(rc, "lease get");
    *out = mayfly__cmd__lease_record__unpack(NULL, d.mv_size, d.mv_data);
    if (!*out)
        return MF_ECORRUPT;
    return 0;
}

int mf_lease_get(MDB_txn *txn, struct mf_state *st, uint64_t seq, Mayfly__Cmd__LeaseRecord **out)
{
    MF_ASSERT(txn && st && out);
    return lease_load(txn, st, seq, out);
}

void mf_lease_free(Mayfly__Cmd__LeaseRecord *rec)
{
    if (rec)
        mayfly__cmd__lease_record__free_unpacked(rec, NULL);
}

static int lease_store(struct mf_apply *a, uint64_t seq, const Mayfly__Cmd__LeaseRecord *rec,
                       unsigned flags)
{
    uint8_t kb[8];
    seq_key(kb, seq);
    MDB_val k = {8, kb};
    return mf_state_put_msg(a->txn, a->st->dbi[MF_DB_LEASES], &k, &rec->base, flags);
}

static int put_empty(struct mf_apply *a, enum mf_state_db db, const void *key, size_t len,
                     unsigned flags)
{
    MDB_val k = {len, (void *)key}, d = {0, ""};
    int rc = mdb_put(a->txn, a->st->dbi[db], &k, &d, flags);
    if (rc == MDB_KEYEXIST && (flags & MDB_APPEND))
        rc = mdb_put(a->txn, a->st->dbi[db], &k, &d, flags & ~MDB_APPEND);
    return mf_state_err(rc, mf_state_db_name(db));
}

static int del_key(struct mf_apply *a, enum mf_state_db db, const void *key, size_t len,
                   const void *val, size_t vlen)
{
    MDB_val k = {len, (void *)key}, d = {vlen, (void *)val};
    int rc = mdb_del(a->txn, a->st->dbi[db], &k, val ? &d : NULL);
    if (rc == MDB_NOTFOUND)
        return 0;
    return mf_state_err(rc, mf_state_db_name(db));
}

static int expiry_put(struct mf_apply *a, uint64_t expire_at, uint64_t seq)
{
    uint8_t kb[16];
    pair_key(kb, expire_at, seq);
    return put_empty(a, MF_DB_EXPIRY, kb, 16, MDB_APPEND);
}

static int expiry_del(struct mf_apply *a, uint64_t expire_at, uint64_t seq)
{
    uint8_t kb[16];
    pair_key(kb, expire_at, seq);
    return del_key(a, MF_DB_EXPIRY, kb, 16, NULL, 0);
}

static size_t prefix_of(char *buf, const char *mount, const char *name)
{
    int n = snprintf(buf, MF_LEASE_PREFIX_MAX + 1, "%s/%s/", mount, name);
    MF_ASSERT(n > 0 && n <= MF_LEASE_PREFIX_MAX);
    return (size_t)n;
}

/* --- quotas --- */

static void quota_key(uint8_t *kb, const char *prefix, size_t plen)
{
    kb[0] = 'q';
    memcpy(kb + 1, prefix, plen);
}

/* Check (delta > 0, no writes) or adjust every quota whose prefix covers the
 * lease prefix `lp`. */
static int quota_walk(struct mf_apply *a, const char *lp, size_t lplen, int delta, int check_only)
{
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_QUOTA], &cur), "quota");
    if (rc)
        return rc;
    MDB_val k, d;
    int r = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    while (r == 0) {
        size_t qlen = k.mv_size - 1;
        const char *qp = (const char *)k.mv_data + 1;
        if (d.mv_size != 16) {
            rc = MF_ECORRUPT;
            break;
        }
        if (qlen <= lplen && memcmp(qp, lp, qlen) == 0) {
            uint64_t max = mf_be64_get(d.mv_data), count = mf_be64_get((uint8_t *)d.mv_data + 8);
            if (check_only) {
                if (count >= max) {
                    rc = mf_apply_fail(a, MF_EQUOTA,
                                       "lease quota exceeded for %s%.*s%s: %llu of %llu live leases",
                                       qlen ? "prefix '" : "the cluster", (int)qlen, qp,
                                       qlen ? "'" : "", (unsigned long long)count,
                                       (unsigned long long)max);
                    break;
                }
            } else {
                uint8_t nb[16];
                memcpy(nb, d.mv_data, 8);
                count = delta < 0 ? (count > 0 ? count - 1 : 0) : count + 1;
                mf_be64_put(nb + 8, count);
                MDB_val nd = {16, nb};
                rc = mf_state_err(mdb_cursor_put(cur, &k, &nd, MDB_CURRENT), "quota put");
                if (rc)
                    break;
            }
        }
        r = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    if (rc == 0 && r != MDB_NOTFOUND)
        rc = mf_state_err(r, "quota walk");
    mdb_cursor_close(cur);
    return rc;
}

int mf_lease_quota_get(MDB_txn *txn, struct mf_state *st, const char *prefix, uint64_t *max,
                       uint64_t *count)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen > MF_LEASE_PREFIX_MAX)
        return MF_EINVAL;
    uint8_t kb[1 + MF_LEASE_PREFIX_MAX];
    quota_key(kb, prefix ? prefix : "", plen);
    MDB_val k = {plen + 1, kb}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_QUOTA], &k, &d);
    if (rc)
        return mf_state_err(rc, "quota get");
    if (d.mv_size != 16)
        return MF_ECORRUPT;
    *max = mf_be64_get(d.mv_data);
    *count = mf_be64_get((uint8_t *)d.mv_data + 8);
    return 0;
}

int mf_lease_apply_quota_set(struct mf_apply *a, const Mayfly__Cmd__QuotaSet *m,
                             Mayfly__Cmd__Result *r)
{
    size_t plen = strlen(m->prefix);
    if (plen > MF_LEASE_PREFIX_MAX)
        return mf_apply_fail(a, MF_EINVAL, "quota prefix longer than %d bytes",
                             MF_LEASE_PREFIX_MAX);
    uint8_t kb[1 + MF_LEASE_PREFIX_MAX];
    quota_key(kb, m->prefix, plen);
    MDB_val k = {plen + 1, kb}, d;
    int exists = mdb_get(a->txn, a->st->dbi[MF_DB_QUOTA], &k, &d) == 0;
    if (m->max_leases == 0)
        return exists ? del_key(a, MF_DB_QUOTA, kb, plen + 1, NULL, 0) : 0;
    uint64_t count = 0;
    if (exists) {
        if (d.mv_size != 16)
            return MF_ECORRUPT;
        count = mf_be64_get((uint8_t *)d.mv_data + 8);
    } else {
        MDB_stat ms;
        int rc = mf_state_err(mdb_stat(a->txn, a->st->dbi[MF_DB_QUOTA], &ms), "quota stat");
        if (rc)
            return rc;
        if (ms.ms_entries >= MF_LEASE_QUOTAS_MAX)
            return mf_apply_fail(a, MF_EINVAL, "at most %d lease quotas", MF_LEASE_QUOTAS_MAX);
        if (plen == 0) {
            rc = mf_apply_live_add(a, 0);
            if (rc)
                return rc;
            count = a->live;
        } else {
            /* Count the live leases under the prefix once; grants and
             * revocations keep the count from now on. */
            MDB_cursor *cur;
            rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_PREFIX], &cur), "prefix");
            if (rc)
                return rc;
            MDB_val pk = {plen, (void *)m->prefix}, pd;
            int x = mdb_cursor_get(cur, &pk, &pd, MDB_SET_RANGE);
            while (x == 0 && pk.mv_size >= plen && memcmp(pk.mv_data, m->prefix, plen) == 0) {
                Mayfly__Cmd__LeaseRecord *rec = NULL;
                rc = lease_load(a->txn, a->st, mf_be64_get(pd.mv_data), &rec);
                if (rc && rc != MF_ENOTFOUND)
                    break;
                if (rc == 0) {
                    count += rec->state != LS(LEASE_REVOKED);
                    mf_lease_free(rec);
                }
                rc = 0;
                x = mdb_cursor_get(cur, &pk, &pd, MDB_NEXT);
            }
            mdb_cursor_close(cur);
            if (rc)
                return rc;
            if (x && x != MDB_NOTFOUND)
                return mf_state_err(x, "quota count");
        }
    }
    uint8_t vb[16];
    mf_be64_put(vb, m->max_leases);
    mf_be64_put(vb + 8, count);
    MDB_val v = {16, vb};
    r->count = count;
    return mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_QUOTA], &k, &v, 0), "quota put");
}

/* --- state moves --- */

/* Move `rec` (lease `seq`) to state `to`, keeping every index in step, and
 * store it. On revoked: the owner index entry goes, bound KV entries are
 * destroyed, the credential is dropped, quotas and the live count go down. */
static int lease_move(struct mf_apply *a, uint64_t seq, Mayfly__Cmd__LeaseRecord *rec, int to)
{
    int from = rec->state;
    uint8_t kb[16];
    int rc = 0;
    MF_ASSERT(from != to);
    if (in_expiry(from) && !in_expiry(to))
        rc = expiry_del(a, rec->expire_at_ms, seq);
    uint8_t rk[REVOKING_KEY_MAX];
    if (rc == 0 && from == LS(LEASE_REVOKING))
        rc = del_key(a, MF_DB_REVOKING, rk, revoking_key(rk, rec->engine, seq), NULL, 0);
    if (rc == 0 && to == LS(LEASE_REVOKING))
        rc = put_empty(a, MF_DB_REVOKING, rk, revoking_key(rk, rec->engine, seq), 0);
    if (rc == 0 && to == LS(LEASE_REVOKED)) {
        pair_key(kb, a->now_ms, seq);
        rc = put_empty(a, MF_DB_REVOKED, kb, 16, MDB_APPEND);
        if (rc == 0 && rec->owner_token_hash.len == MF_LEASE_OWNER_HASH_LEN) {
            uint8_t sb[8];
            seq_key(sb, seq);
            rc = del_key(a, MF_DB_OWNER, rec->owner_token_hash.data, MF_LEASE_OWNER_HASH_LEN, sb,
                         8);
        }
        if (rc == 0) {
            uint64_t destroyed;
            rc = mf_kv_apply_destroy_bound(a, seq, &destroyed);
        }
        if (rc == 0) {
            char lp[MF_LEASE_PREFIX_MAX + 1];
            size_t lplen = prefix_of(lp, rec->mount, rec->name);
            rc = quota_walk(a, lp, lplen, -1, 0);
        }
        if (rc == 0)
            rc = mf_apply_live_add(a, -1);
        rec->revoked_ms = a->now_ms;
        rec->credential.len = 0; /* the credential is gone with the lease */
    }
    if (rc == 0)
        rc = mf_apply_lease_moved(a, from, to);
    if (rc)
        return rc;
    rec->state = to;
    return lease_store(a, seq, rec, 0);
}

/* Position a PREFIX cursor on the first entry after lease id `after`; *x is
 * LMDB's answer. MF_EINVAL if `after` is not a lease id. */
static int prefix_seek_after(MDB_cursor *cur, const char *after, MDB_val *k, MDB_val *d, int *x)
{
    size_t alen;
    uint64_t aseq;
    if (mf_lease_id_parse(after, &alen, &aseq))
        return MF_EINVAL;
    uint8_t sb[8];
    seq_key(sb, aseq);
    k->mv_size = alen;
    k->mv_data = (void *)after;
    d->mv_size = 8;
    d->mv_data = sb;
    *x = mdb_cursor_get(cur, k, d, MDB_GET_BOTH_RANGE);
    if (*x == MDB_NOTFOUND) {
        /* No dup >= aseq under that key (or no such key): next key. */
        k->mv_size = alen;
        k->mv_data = (void *)after;
        *x = mdb_cursor_get(cur, k, d, MDB_SET_RANGE);
        if (*x == 0 && k->mv_size == alen && memcmp(k->mv_data, after, alen) == 0)
            *x = mdb_cursor_get(cur, k, d, MDB_NEXT_NODUP);
    } else if (*x == 0 && mf_be64_get(d->mv_data) == aseq) {
        *x = mdb_cursor_get(cur, k, d, MDB_NEXT);
    }
    return 0;
}

/* --- commands --- */

static int valid_component(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && !memchr(s, '/', n);
}

int mf_lease_apply_grant(struct mf_apply *a, const Mayfly__Cmd__LeaseGrant *m,
                         Mayfly__Cmd__Result *r)
{
    if (m->seq == 0)
        return mf_apply_fail(a, MF_EINVAL, "lease seq must be > 0");
    if (!valid_component(m->mount, MF_LEASE_MOUNT_MAX) ||
        !valid_component(m->name, MF_LEASE_NAME_MAX))
        return mf_apply_fail(a, MF_EINVAL,
                             "lease mount and name must be 1-%d and 1-%d bytes without '/'",
                             MF_LEASE_MOUNT_MAX, MF_LEASE_NAME_MAX);
    uint64_t expire_at, max_expire_at;
    if (mf_lease_grant_expiry(a->now_ms, m->ttl_ms, m->max_ttl_ms, &expire_at, &max_expire_at))
        return mf_apply_fail(a, MF_EINVAL, "lease ttl must be > 0 and <= max ttl");
    if (m->state != LS(LEASE_ISSUING) && m->state != LS(LEASE_ACTIVE))
        return mf_apply_fail(a, MF_EINVAL, "a lease is granted issuing or active");
    if (m->owner_token_hash.len != 0 && m->owner_token_hash.len != MF_LEASE_OWNER_HASH_LEN)
        return mf_apply_fail(a, MF_EINVAL, "owner token hash must be 32 bytes");
    if (m->credential.len > MF_LEASE_BLOB_MAX || strlen(m->engine) > MF_LEASE_MOUNT_MAX ||
        strlen(m->owner_accessor) > 128)
        return mf_apply_fail(a, MF_ETOOLARGE, "lease credential, engine or accessor too large");

    uint8_t kb[8];
    seq_key(kb, m->seq);
    MDB_val k = {8, kb}, d;
    int rc = mdb_get(a->txn, a->st->dbi[MF_DB_LEASES], &k, &d);
    if (rc == 0)
        return mf_apply_fail(a, MF_EEXISTS, "lease seq %llu already exists",
                             (unsigned long long)m->seq);
    if (rc != MDB_NOTFOUND)
        return mf_state_err(rc, "lease get");
    if (m->owner_token_hash.len) {
        rc = mf_token_apply_exists(a, m->owner_token_hash.data, m->owner_token_hash.len);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return mf_apply_fail(a, MF_EUNAUTH, "the owner token does not exist (revoked?)");
    }
    char lp[MF_LEASE_PREFIX_MAX + 1];
    size_t lplen = prefix_of(lp, m->mount, m->name);
    rc = quota_walk(a, lp, lplen, +1, 1);
    if (rc)
        return rc;

    /* Checks done: write. */
    Mayfly__Cmd__LeaseRecord rec = MAYFLY__CMD__LEASE_RECORD__INIT;
    rec.state = m->state;
    rec.mount = m->mount;
    rec.name = m->name;
    rec.issued_ms = a->now_ms;
    rec.ttl_ms = m->ttl_ms;
    rec.expire_at_ms = expire_at;
    rec.max_expire_at_ms = max_expire_at;
    rec.owner_token_hash = m->owner_token_hash;
    rec.owner_accessor = m->owner_accessor;
    rec.engine = m->engine;
    rec.credential = m->credential;
    rc = lease_store(a, m->seq, &rec, MDB_APPEND);
    if (rc == 0)
        rc = expiry_put(a, rec.expire_at_ms, m->seq);
    if (rc == 0) {
        MDB_val pk = {lplen, lp}, pv = {8, kb};
        rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_PREFIX], &pk, &pv, 0), "prefix put");
    }
    if (rc == 0 && m->owner_token_hash.len) {
        MDB_val ok = {MF_LEASE_OWNER_HASH_LEN, m->owner_token_hash.data}, ov = {8, kb};
        rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_OWNER], &ok, &ov, 0), "owner put");
    }
    if (rc == 0)
        rc = quota_walk(a, lp, lplen, +1, 0);
    if (rc == 0)
        rc = mf_apply_live_add(a, +1);
    if (rc == 0)
        rc = mf_apply_lease_moved(a, 0, rec.state);
    if (rc)
        return rc;
    r->seq = m->seq;
    r->issued_ms = rec.issued_ms;
    r->expire_at_ms = rec.expire_at_ms;
    r->max_expire_at_ms = rec.max_expire_at_ms;
    r->ttl_ms = m->ttl_ms;
    return 0;
}

static int load_for(struct mf_apply *a, uint64_t seq, Mayfly__Cmd__LeaseRecord **rec)
{
    int rc = lease_load(a->txn, a->st, seq, rec);
    if (rc == MF_ENOTFOUND)
        return mf_apply_fail(a, MF_ENOTFOUND, "no lease with seq %llu", (unsigned long long)seq);
    return rc;
}

/* Move lease `seq` to a new expire_at (issuing or active). */
static int move_expiry(struct mf_apply *a, uint64_t seq, Mayfly__Cmd__LeaseRecord *rec,
                       uint64_t expire_at)
{
    if (expire_at == rec->expire_at_ms)
        return 0;
    int rc = expiry_del(a, rec->expire_at_ms, seq);
    if (rc == 0)
        rc = expiry_put(a, expire_at, seq);
    rec->expire_at_ms = expire_at;
    return rc;
}

int mf_lease_apply_activate(struct mf_apply *a, const Mayfly__Cmd__LeaseActivate *m,
                            Mayfly__Cmd__Result *r)
{
    if (m->credential.len > MF_LEASE_BLOB_MAX)
        return mf_apply_fail(a, MF_ETOOLARGE, "credential larger than %d bytes",
                             MF_LEASE_BLOB_MAX);
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = load_for(a, m->seq, &rec);
    if (rc)
        return rc;
    if (rec->state != LS(LEASE_ISSUING))
        rc = mf_apply_fail(a, MF_ELEASENOTACTIVE, "lease is %s, not issuing",
                           mf_lease_state_name(rec->state));
    else if (rec->expire_at_ms <= a->now_ms)
        rc = mf_apply_fail(a, MF_ELEASEEXPIRED, "lease passed its issuing deadline");
    if (rc == 0) {
        uint64_t exp = rec->expire_at_ms;
        if (m->ttl_ms) {
            exp = mf_lease_expire_at(a->now_ms, m->ttl_ms, rec->max_expire_at_ms);
            rec->ttl_ms = m->ttl_ms;
        }
        rc = move_expiry(a, m->seq, rec, exp);
        if (rc == 0)
            rc = mf_apply_lease_moved(a, LS(LEASE_ISSUING), LS(LEASE_ACTIVE));
        if (rc == 0) {
            /* Borrow the command's bytes: stored before rec is freed. */
            ProtobufCBinaryData saved = rec->credential;
            rec->credential = m->credential;
            rec->state = LS(LEASE_ACTIVE);
            rc = lease_store(a, m->seq, rec, 0);
            rec->credential = saved;
        }
        r->seq = m->seq;
        r->issued_ms = rec->issued_ms;
        r->expire_at_ms = rec->expire_at_ms;
        r->max_expire_at_ms = rec->max_expire_at_ms;
        r->ttl_ms = rec->expire_at_ms - a->now_ms;
    }
    mf_lease_free(rec);
    return rc;
}

int mf_lease_apply_renew(struct mf_apply *a, const Mayfly__Cmd__LeaseRenew *m,
                         Mayfly__Cmd__Result *r)
{
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = load_for(a, m->seq, &rec);
    if (rc)
        return rc;
    if (rec->state != LS(LEASE_ACTIVE))
        rc = mf_apply_fail(a, MF_ELEASENOTACTIVE, "lease is %s: only an active lease renews",
                           mf_lease_state_name(rec->state));
    else if (rec->expire_at_ms <= a->now_ms)
        rc = mf_apply_fail(a, MF_ELEASEEXPIRED, "lease expired before the renewal");
    if (rc == 0) {
        uint64_t exp = mf_lease_renew_expire_at(a->now_ms, m->increment_ms, rec->ttl_ms,
                                                rec->expire_at_ms, rec->max_expire_at_ms);
        rc = move_expiry(a, m->seq, rec, exp);
        if (rc == 0)
            rc = lease_store(a, m->seq, rec, 0);
        r->seq = m->seq;
        r->issued_ms = rec->issued_ms;
        r->expire_at_ms = rec->expire_at_ms;
        r->max_expire_at_ms = rec->max_expire_at_ms;
        r->ttl_ms = rec->expire_at_ms - a->now_ms;
    }
    mf_lease_free(rec);
    return rc;
}

/* issuing/active -> revoking; *moved += 1 if it moved. Missing: not found. */
static int to_revoking(struct mf_apply *a, uint64_t seq, Mayfly__Cmd__LeaseRecord *rec,
                       uint64_t *moved)
{
    if (!in_expiry(rec->state))
        return 0;
    int rc = lease_move(a, seq, rec, LS(LEASE_REVOKING));
    if (rc == 0)
        (*moved)++;
    return rc;
}

int mf_lease_apply_revoke(struct mf_apply *a, const Mayfly__Cmd__LeaseRevoke *m,
                          Mayfly__Cmd__Result *r)
{
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = load_for(a, m->seq, &rec);
    if (rc)
        return rc;
    rc = to_revoking(a, m->seq, rec, &r->count);
    mf_lease_free(rec);
    return rc;
}

int mf_lease_apply_revoke_prefix(struct mf_apply *a, const Mayfly__Cmd__LeaseRevokePrefix *m,
                                 Mayfly__Cmd__Result *r)
{
    size_t plen = strlen(m->prefix);
    if (plen == 0 || plen > MF_LEASE_PREFIX_MAX)
        return mf_apply_fail(a, MF_EINVAL, "revoke-prefix needs a prefix of 1-%d bytes",
                             MF_LEASE_PREFIX_MAX);
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_PREFIX], &cur), "prefix");
    if (rc)
        return rc;
    uint32_t limit = m->limit && m->limit < MF_LEASE_REVOKE_PREFIX_MAX ? m->limit
                                                                        : MF_LEASE_REVOKE_PREFIX_MAX;
    /* Scanned entries are bounded too (revoked ones stay in the index until
     * tidy), with a cursor so the next command starts where this one ended. */
    uint64_t scanned = 0, scan_max = (uint64_t)limit * 8;
    char last[MF_LEASE_ID_MAX] = "";
    MDB_val k = {plen, m->prefix}, d;
    int x;
    if (*m->after) {
        if (strncmp(m->after, m->prefix, plen) != 0 ||
            prefix_seek_after(cur, m->after, &k, &d, &x)) {
            mdb_cursor_close(cur);
            return mf_apply_fail(a, MF_EINVAL, "revoke-prefix cursor is not a lease id under the prefix");
        }
    } else {
        x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    }
    while (x == 0 && k.mv_size >= plen && memcmp(k.mv_data, m->prefix, plen) == 0) {
        if (r->count == limit || scanned == scan_max) {
            r->more = 1; /* the rest goes in the next command, after r->cursor */
            break;
        }
        scanned++;
        Mayfly__Cmd__LeaseRecord *rec = NULL;
        uint64_t seq = mf_be64_get(d.mv_data);
        rc = lease_load(a->txn, a->st, seq, &rec);
        if (rc == MF_ENOTFOUND)
            rc = 0;
        else if (rc == 0) {
            mf_lease_id_format(last, sizeof(last), rec->mount, rec->name, seq);
            rc = to_revoking(a, seq, rec, &r->count);
            mf_lease_free(rec);
        }
        if (rc)
            break;
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && r->more) {
        r->cursor = strdup(last);
        if (!r->cursor)
            rc = -ENOMEM;
    }
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "revoke-prefix");
    return rc;
}

int mf_lease_apply_expire(struct mf_apply *a, const Mayfly__Cmd__LeaseExpire *m,
                          Mayfly__Cmd__Result *r)
{
    if (m->n_seqs > MF_LEASE_EXPIRE_MAX)
        return mf_apply_fail(a, MF_ETOOLARGE, "at most %d leases per expire",
                             MF_LEASE_EXPIRE_MAX);
    for (size_t i = 0; i < m->n_seqs; i++) {
        Mayfly__Cmd__LeaseRecord *rec = NULL;
        int rc = lease_load(a->txn, a->st, m->seqs[i], &rec);
        if (rc == MF_ENOTFOUND)
            continue;
        if (rc)
            return rc;
        /* Check again: a renew committed after the scheduler looked wins. */
        if (rec->expire_at_ms <= a->now_ms)
            rc = to_revoking(a, m->seqs[i], rec, &r->count);
        mf_lease_free(rec);
        if (rc)
            return rc;
    }
    return 0;
}

int mf_lease_apply_revoked(struct mf_apply *a, const Mayfly__Cmd__LeaseRevoked *m,
                           Mayfly__Cmd__Result *r)
{
    if (m->n_seqs > MF_LEASE_EXPIRE_MAX)
        return mf_apply_fail(a, MF_ETOOLARGE, "at most %d leases per revoked",
                             MF_LEASE_EXPIRE_MAX);
    for (size_t i = 0; i < m->n_seqs; i++) {
        Mayfly__Cmd__LeaseRecord *rec = NULL;
        int rc = lease_load(a->txn, a->st, m->seqs[i], &rec);
        if (rc == MF_ENOTFOUND)
            continue;
        if (rc)
            return rc;
        if (rec->state == LS(LEASE_REVOKING)) {
            rc = lease_move(a, m->seqs[i], rec, LS(LEASE_REVOKED));
            r->count += rc == 0;
        }
        mf_lease_free(rec);
        if (rc)
            return rc;
    }
    return 0;
}

int mf_lease_apply_irrevocable(struct mf_apply *a, const Mayfly__Cmd__LeaseIrrevocable *m,
                               Mayfly__Cmd__Result *r)
{
    if (m->last_error.len > MF_LEASE_BLOB_MAX)
        return mf_apply_fail(a, MF_ETOOLARGE, "last error larger than %d bytes",
                             MF_LEASE_BLOB_MAX);
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = load_for(a, m->seq, &rec);
    if (rc)
        return rc;
    if (rec->state != LS(LEASE_REVOKING)) {
        rc = mf_apply_fail(a, MF_ELEASENOTACTIVE, "lease is %s, not revoking",
                           mf_lease_state_name(rec->state));
    } else {
        ProtobufCBinaryData saved = rec->last_error;
        rec->last_error = m->last_error;
        rc = lease_move(a, m->seq, rec, LS(LEASE_IRREVOCABLE));
        rec->last_error = saved;
        r->count = rc == 0;
    }
    mf_lease_free(rec);
    return rc;
}

int mf_lease_apply_force_revoke(struct mf_apply *a, const Mayfly__Cmd__LeaseForceRevoke *m,
                                Mayfly__Cmd__Result *r)
{
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = load_for(a, m->seq, &rec);
    if (rc)
        return rc;
    if (rec->state != LS(LEASE_REVOKED)) {
        rc = lease_move(a, m->seq, rec, LS(LEASE_REVOKED));
        r->count = rc == 0;
    }
    mf_lease_free(rec);
    return rc;
}

int mf_lease_apply_tidy(struct mf_apply *a, const Mayfly__Cmd__LeaseTidy *m,
                        Mayfly__Cmd__Result *r)
{
    uint32_t limit = m->limit && m->limit < MF_LEASE_TIDY_MAX ? m->limit : MF_LEASE_TIDY_MAX;
    if (m->retention_ms > a->now_ms)
        return 0;
    uint64_t cutoff = a->now_ms - m->retention_ms; /* revoked_ms <= cutoff goes */
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_REVOKED], &cur), "revoked");
    if (rc)
        return rc;
    MDB_val k, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    while (x == 0 && r->count < limit) {
        if (k.mv_size != 16) {
            rc = MF_ECORRUPT;
            break;
        }
        if (mf_be64_get(k.mv_data) > cutoff)
            break;
        uint64_t seq = mf_be64_get((uint8_t *)k.mv_data + 8);
        Mayfly__Cmd__LeaseRecord *rec = NULL;
        rc = lease_load(a->txn, a->st, seq, &rec);
        if (rc && rc != MF_ENOTFOUND)
            break;
        if (rc == 0) {
            char lp[MF_LEASE_PREFIX_MAX + 1];
            size_t lplen = prefix_of(lp, rec->mount, rec->name);
            uint8_t sb[8];
            seq_key(sb, seq);
            rc = del_key(a, MF_DB_PREFIX, lp, lplen, sb, 8);
            if (rc == 0)
                rc = del_key(a, MF_DB_LEASES, sb, 8, NULL, 0);
            if (rc == 0)
                rc = mf_apply_lease_moved(a, rec->state, 0);
            mf_lease_free(rec);
            if (rc)
                break;
        }
        rc = mf_state_err(mdb_cursor_del(cur, 0), "tidy");
        if (rc)
            break;
        r->count++;
        /* After a delete, MDB_NEXT yields the record that followed. */
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "tidy");
    return rc;
}

int mf_lease_apply_revoke_owned(struct mf_apply *a, const uint8_t hash[32], uint64_t *moved)
{
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_OWNER], &cur), "owner");
    if (rc)
        return rc;
    MDB_val k = {MF_LEASE_OWNER_HASH_LEN, (void *)hash}, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
    while (x == 0) {
        uint64_t seq = mf_be64_get(d.mv_data);
        Mayfly__Cmd__LeaseRecord *rec = NULL;
        rc = lease_load(a->txn, a->st, seq, &rec);
        if (rc == MF_ENOTFOUND)
            rc = 0;
        else if (rc == 0) {
            rc = to_revoking(a, seq, rec, moved);
            mf_lease_free(rec);
        }
        if (rc)
            break;
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "revoke owned");
    if (rc == 0)
        rc = del_key(a, MF_DB_OWNER, hash, MF_LEASE_OWNER_HASH_LEN, NULL, 0);
    return rc;
}

int mf_lease_check_bindable(struct mf_apply *a, uint64_t seq)
{
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = load_for(a, seq, &rec);
    if (rc)
        return rc;
    if (!in_expiry(rec->state))
        rc = mf_apply_fail(a, MF_ELEASENOTACTIVE, "lease is %s: cannot bind a KV entry",
                           mf_lease_state_name(rec->state));
    else if (rec->expire_at_ms <= a->now_ms)
        rc = mf_apply_fail(a, MF_ELEASEEXPIRED, "lease has expired");
    mf_lease_free(rec);
    return rc;
}

/* --- read side --- */

int mf_lease_next_due(MDB_txn *txn, struct mf_state *st, uint64_t *expire_at_ms, uint64_t *seq)
{
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_EXPIRY], &cur), "expiry");
    if (rc)
        return rc;
    MDB_val k, d;
    rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    mdb_cursor_close(cur);
    if (rc)
        return mf_state_err(rc, "next due");
    if (k.mv_size != 16)
        return MF_ECORRUPT;
    *expire_at_ms = mf_be64_get(k.mv_data);
    *seq = mf_be64_get((uint8_t *)k.mv_data + 8);
    return 0;
}

int mf_lease_due(MDB_txn *txn, struct mf_state *st, uint64_t by_ms,
                 const struct mf_lease_due_cursor *after, uint64_t *seqs, size_t max, size_t *n,
                 struct mf_lease_due_cursor *next)
{
    MDB_cursor *cur;
    *n = 0;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_EXPIRY], &cur), "expiry");
    if (rc)
        return rc;
    uint8_t kb[16];
    MDB_val k, d;
    int x;
    if (after) {
        pair_key(kb, after->expire_at_ms, after->seq);
        k.mv_size = 16;
        k.mv_data = kb;
        x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
        if (x == 0 && memcmp(k.mv_data, kb, 16) == 0)
            x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    } else {
        x = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    }
    while (x == 0 && *n < max) {
        if (k.mv_size != 16) {
            rc = MF_ECORRUPT;
            break;
        }
        uint64_t exp = mf_be64_get(k.mv_data);
        if (exp > by_ms)
            break;
        seqs[(*n)++] = mf_be64_get((uint8_t *)k.mv_data + 8);
        if (next) {
            next->expire_at_ms = exp;
            next->seq = seqs[*n - 1];
        }
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "due");
    return rc;
}

int mf_lease_revoking(MDB_txn *txn, struct mf_state *st, const char *engine, uint64_t after_seq,
                      uint64_t *seqs, size_t max, size_t *n)
{
    MDB_cursor *cur;
    *n = 0;
    if (strlen(engine) > MF_LEASE_MOUNT_MAX || after_seq == UINT64_MAX)
        return 0; /* no lease can be in such a group */
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_REVOKING], &cur), "revoking");
    if (rc)
        return rc;
    uint8_t kb[REVOKING_KEY_MAX];
    size_t group = strlen(engine) + 1; /* ENGINE|NUL: the group's key prefix */
    MDB_val k = {revoking_key(kb, engine, after_seq + 1), kb}, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    while (x == 0 && *n < max && k.mv_size == group + 8 && memcmp(k.mv_data, kb, group) == 0) {
        seqs[(*n)++] = mf_be64_get((const uint8_t *)k.mv_data + group);
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "revoking");
    return rc;
}

int mf_lease_revoking_next_engine(MDB_txn *txn, struct mf_state *st, const char *after,
                                  char *engine, size_t len)
{
    MDB_cursor *cur;
    if (after && strlen(after) > MF_LEASE_MOUNT_MAX)
        return MF_EINVAL;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_REVOKING], &cur), "revoking");
    if (rc)
        return rc;
    /* Past every key of `after`'s group: names hold no NUL, so any later
     * group's key is >= after|0x01. */
    uint8_t kb[REVOKING_KEY_MAX];
    size_t al = after ? strlen(after) : 0;
    if (after)
        memcpy(kb, after, al);
    kb[al] = 1;
    MDB_val k = {al + 1, kb}, d;
    int x = after ? mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE)
                  : mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    if (x == 0) {
        size_t el = k.mv_size - 9;
        if (k.mv_size < 9 || el >= len)
            rc = MF_ECORRUPT;
        else {
            memcpy(engine, k.mv_data, el);
            engine[el] = '\0';
        }
    } else {
        rc = x == MDB_NOTFOUND ? MF_ENOTFOUND : mf_state_err(x, "revoking");
    }
    mdb_cursor_close(cur);
    return rc;
}

void mf_lease_list_free(struct mf_lease_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        mf_lease_free(items[i].rec);
    free(items);
}

int mf_lease_list(MDB_txn *txn, struct mf_state *st, const char *prefix, int state,
                  const char *after, size_t limit, struct mf_lease_item **items, size_t *n,
                  int *more)
{
    *items = NULL;
    *n = 0;
    *more = 0;
    if (limit == 0)
        return MF_EINVAL;
    size_t plen = prefix ? strlen(prefix) : 0;
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_PREFIX], &cur), "prefix");
    if (rc)
        return rc;
    struct mf_lease_item *out = calloc(limit, sizeof(*out));
    if (!out) {
        mdb_cursor_close(cur);
        return -ENOMEM;
    }
    MDB_val k, d;
    int x;
    if (after) {
        rc = prefix_seek_after(cur, after, &k, &d, &x);
        if (rc)
            goto fail;
    } else if (plen) {
        k.mv_size = plen;
        k.mv_data = (void *)prefix;
        x = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    } else {
        x = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    }
    while (x == 0) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        uint64_t seq = mf_be64_get(d.mv_data);
        Mayfly__Cmd__LeaseRecord *rec = NULL;
        rc = lease_load(txn, st, seq, &rec);
        if (rc && rc != MF_ENOTFOUND)
            goto fail;
        if (rc == 0 && (state == 0 || (int)rec->state == state)) {
            if (*n == limit) {
                mf_lease_free(rec);
                *more = 1;
                break;
            }
            out[*n].seq = seq;
            out[*n].rec = rec;
            mf_lease_id_format(out[*n].id, sizeof(out[*n].id), rec->mount, rec->name, seq);
            (*n)++;
        } else if (rc == 0) {
            mf_lease_free(rec);
        }
        rc = 0;
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    if (x && x != MDB_NOTFOUND) {
        rc = mf_state_err(x, "list");
        goto fail;
    }
    mdb_cursor_close(cur);
    *items = out;
    return 0;

fail:
    mdb_cursor_close(cur);
    mf_lease_list_free(out, *n);
    *n = 0;
    return rc;
}
