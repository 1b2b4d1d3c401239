/* Tokens: create and revoke (the revoke tree), and the read side. A token is
 * known only by the SHA-256 hash the proposer computed; the accessor is a
 * second, non-secret handle. Revoking a token revokes, in the same command,
 * every lease it owns (to revoking: the scheduler then asks the engines) and
 * every descendant token, walked with an explicit stack (no recursion depth
 * limit to hit). Part of the apply path: deterministic, no clock, no
 * randomness.
 */
#include "store/tokens.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "store/apply.h"

/* Identity metadata on a token (auth methods: src/auth/ident.h's limits). */
#define TOKEN_META_MAX 32
#define TOKEN_META_KEY_MAX 128    /* bytes */
#define TOKEN_META_VALUE_MAX 1024 /* bytes */

static int token_load(MDB_txn *txn, struct mf_state *st, const uint8_t *hash,
                      Mayfly__Cmd__TokenRecord **out)
{
    MDB_val k = {MF_TOKEN_HASH_LEN, (void *)hash}, d;
    *out = NULL; /* on every path (the Release build's maybe-uninitialized) */
    int rc = mdb_get(txn, st->dbi[MF_DB_TOKENS], &k, &d);
    if (rc)
        return mf_state_err(rc, "token get");
    *out = mayfly__cmd__token_record__unpack(NULL, d.mv_size, d.mv_data);
    return *out ? 0 : MF_ECORRUPT;
}

int mf_token_get(MDB_txn *txn, struct mf_state *st, const uint8_t hash[MF_TOKEN_HASH_LEN],
                 Mayfly__Cmd__TokenRecord **out)
{
    return token_load(txn, st, hash, out);
}

void mf_token_free(Mayfly__Cmd__TokenRecord *t)
{
    if (t)
        mayfly__cmd__token_record__free_unpacked(t, NULL);
}

int mf_token_by_accessor(MDB_txn *txn, struct mf_state *st, const char *accessor,
                         uint8_t hash[MF_TOKEN_HASH_LEN])
{
    size_t n = accessor ? strlen(accessor) : 0;
    if (n == 0 || n > MF_TOKEN_ACCESSOR_MAX)
        return MF_EINVAL;
    MDB_val k = {n, (void *)accessor}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_TOKEN_ACC], &k, &d);
    if (rc)
        return mf_state_err(rc, "accessor get");
    if (d.mv_size != MF_TOKEN_HASH_LEN)
        return MF_ECORRUPT;
    memcpy(hash, d.mv_data, MF_TOKEN_HASH_LEN);
    return 0;
}

int mf_token_children_count(MDB_txn *txn, struct mf_state *st,
                            const uint8_t hash[MF_TOKEN_HASH_LEN], size_t *count)
{
    MDB_cursor *cur;
    *count = 0;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_TOKEN_CHILD], &cur), "children");
    if (rc)
        return rc;
    MDB_val k = {MF_TOKEN_HASH_LEN, (void *)hash}, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
    if (x == 0) {
        size_t c;
        x = mdb_cursor_count(cur, &c);
        *count = c;
    }
    mdb_cursor_close(cur);
    return x == MDB_NOTFOUND ? 0 : mf_state_err(x, "children");
}

int mf_token_next_due(MDB_txn *txn, struct mf_state *st, uint64_t *expire_at_ms,
                      uint8_t hash[MF_TOKEN_HASH_LEN])
{
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_TOKEN_EXP], &cur), "token_exp");
    if (rc)
        return rc;
    MDB_val k, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    mdb_cursor_close(cur);
    if (x)
        return mf_state_err(x, "token next due");
    if (k.mv_size != 8 + MF_TOKEN_HASH_LEN)
        return MF_ECORRUPT;
    *expire_at_ms = mf_be64_get(k.mv_data);
    memcpy(hash, (uint8_t *)k.mv_data + 8, MF_TOKEN_HASH_LEN);
    return 0;
}

int mf_token_due(MDB_txn *txn, struct mf_state *st, uint64_t now_ms,
                 uint8_t (*hashes)[MF_TOKEN_HASH_LEN], size_t cap, size_t *n)
{
    *n = 0;
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_TOKEN_EXP], &cur), "token_exp");
    if (rc)
        return rc;
    MDB_val k, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    while (x == 0 && *n < cap) {
        if (k.mv_size != 8 + MF_TOKEN_HASH_LEN) {
            rc = MF_ECORRUPT;
            break;
        }
        if (mf_be64_get(k.mv_data) > now_ms)
            break; /* the index is ordered by expiry: nothing later is due */
        memcpy(hashes[(*n)++], (uint8_t *)k.mv_data + 8, MF_TOKEN_HASH_LEN);
        x = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "token due");
    return rc;
}

uint64_t mf_token_renew_expire_at(uint64_t now_ms, uint64_t increment_ms, uint64_t ttl_ms,
                                  uint64_t issued_ms, uint64_t max_ttl_ms,
                                  uint64_t parent_expire_at_ms)
{
    uint64_t inc = increment_ms ? increment_ms : ttl_ms;
    /* No increment and no TTL of its own (a child made without one lives as
     * long as its parent): only the caps below bound it. */
    uint64_t exp = inc == 0 || inc > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + inc;
    if (max_ttl_ms && issued_ms + max_ttl_ms < exp)
        exp = issued_ms + max_ttl_ms;
    if (parent_expire_at_ms && parent_expire_at_ms < exp)
        exp = parent_expire_at_ms;
    return exp;
}

static void exp_key(uint8_t *kb, uint64_t expire_at, const uint8_t *hash)
{
    mf_be64_put(kb, expire_at);
    memcpy(kb + 8, hash, MF_TOKEN_HASH_LEN);
}

int mf_token_apply_exists(struct mf_apply *a, const uint8_t *hash, size_t len)
{
    if (len != MF_TOKEN_HASH_LEN)
        return 0;
    MDB_val k = {len, (void *)hash}, d;
    int rc = mdb_get(a->txn, a->st->dbi[MF_DB_TOKENS], &k, &d);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? mf_state_err(rc, "token get") : 1;
}

int mf_token_apply_create(struct mf_apply *a, const Mayfly__Cmd__TokenCreate *m,
                          Mayfly__Cmd__Result *r)
{
    size_t alen = strlen(m->accessor);
    if (m->hash.len != MF_TOKEN_HASH_LEN)
        return mf_apply_fail(a, MF_EINVAL, "token hash must be 32 bytes");
    if (alen == 0 || alen > MF_TOKEN_ACCESSOR_MAX)
        return mf_apply_fail(a, MF_EINVAL, "token accessor must be 1-%d bytes",
                             MF_TOKEN_ACCESSOR_MAX);
    if (m->n_policies > MF_TOKEN_POLICIES_MAX)
        return mf_apply_fail(a, MF_EINVAL, "at most %d policies", MF_TOKEN_POLICIES_MAX);
    for (size_t i = 0; i < m->n_policies; i++)
        if (strlen(m->policies[i]) > MF_TOKEN_POLICY_NAME_MAX)
            return mf_apply_fail(a, MF_EINVAL, "policy name longer than %d bytes",
                                 MF_TOKEN_POLICY_NAME_MAX);
    if (strlen(m->display_name) > MF_TOKEN_ACCESSOR_MAX)
        return mf_apply_fail(a, MF_EINVAL, "display name too long");
    /* Identity metadata from an auth method (claims for policy conditions). */
    if (m->n_meta_keys != m->n_meta_values || m->n_meta_keys > TOKEN_META_MAX)
        return mf_apply_fail(a, MF_EINVAL, "token metadata: at most %d key/value pairs",
                             TOKEN_META_MAX);
    for (size_t i = 0; i < m->n_meta_keys; i++)
        if (strlen(m->meta_keys[i]) > TOKEN_META_KEY_MAX ||
            strlen(m->meta_values[i]) > TOKEN_META_VALUE_MAX)
            return mf_apply_fail(a, MF_EINVAL, "token metadata: a key or value too long");
    if (m->ttl_ms > UINT64_MAX / 4 || m->max_ttl_ms > UINT64_MAX / 4 ||
        a->now_ms > UINT64_MAX / 2)
        return mf_apply_fail(a, MF_EINVAL, "token ttl out of range");
    int has_parent = !m->orphan && m->parent_hash.len;
    if (has_parent && m->parent_hash.len != MF_TOKEN_HASH_LEN)
        return mf_apply_fail(a, MF_EINVAL, "parent token hash must be 32 bytes");
    int rc = mf_token_apply_exists(a, m->hash.data, m->hash.len);
    if (rc < 0)
        return rc;
    if (rc)
        return mf_apply_fail(a, MF_EEXISTS, "a token with this hash exists");
    MDB_val ak = {alen, m->accessor}, ad;
    rc = mdb_get(a->txn, a->st->dbi[MF_DB_TOKEN_ACC], &ak, &ad);
    if (rc == 0)
        return mf_apply_fail(a, MF_EEXISTS, "a token with this accessor exists");
    if (rc != MDB_NOTFOUND)
        return mf_state_err(rc, "accessor get");
    Mayfly__Cmd__TokenRecord *parent = NULL;
    if (has_parent) {
        rc = token_load(a->txn, a->st, m->parent_hash.data, &parent);
        if (rc == MF_ENOTFOUND)
            return mf_apply_fail(a, MF_ENOTFOUND, "the parent token does not exist");
        if (rc)
            return rc;
    }

    Mayfly__Cmd__TokenRecord t = MAYFLY__CMD__TOKEN_RECORD__INIT;
    t.accessor = m->accessor;
    t.n_policies = m->n_policies;
    t.policies = m->policies;
    /* The proposer capped the TTL already; the cap holds here too, so a
     * command from an older leader cannot outlive the maximum. */
    t.ttl_ms = m->max_ttl_ms && m->ttl_ms > m->max_ttl_ms ? m->max_ttl_ms : m->ttl_ms;
    t.max_ttl_ms = m->max_ttl_ms;
    t.no_default_policy = m->no_default_policy;
    t.issued_ms = a->now_ms;
    t.expire_at_ms = t.ttl_ms ? a->now_ms + t.ttl_ms : 0;
    /* A child never outlives its parent. */
    if (parent && parent->expire_at_ms &&
        (t.expire_at_ms == 0 || t.expire_at_ms > parent->expire_at_ms))
        t.expire_at_ms = parent->expire_at_ms;
    if (has_parent)
        t.parent_hash = m->parent_hash;
    t.orphan = !has_parent;
    t.display_name = m->display_name;
    t.n_meta_keys = m->n_meta_keys;
    t.meta_keys = m->meta_keys;
    t.n_meta_values = m->n_meta_values;
    t.meta_values = m->meta_values;
    mf_token_free(parent);
    MDB_val k = {MF_TOKEN_HASH_LEN, m->hash.data};
    rc = mf_state_put_msg(a->txn, a->st->dbi[MF_DB_TOKENS], &k, &t.base, 0);
    if (rc == 0) {
        MDB_val hv = {MF_TOKEN_HASH_LEN, m->hash.data};
        rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_TOKEN_ACC], &ak, &hv, 0),
                          "accessor put");
    }
    if (rc == 0 && t.expire_at_ms) {
        uint8_t kb[8 + MF_TOKEN_HASH_LEN];
        exp_key(kb, t.expire_at_ms, m->hash.data);
        MDB_val ek = {sizeof(kb), kb}, ev = {0, ""};
        rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_TOKEN_EXP], &ek, &ev, 0),
                          "token_exp put");
    }
    if (rc == 0 && has_parent) {
        MDB_val pk = {MF_TOKEN_HASH_LEN, m->parent_hash.data}, cv = {MF_TOKEN_HASH_LEN,
                                                                      m->hash.data};
        rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_TOKEN_CHILD], &pk, &cv, 0),
                          "child put");
    }
    r->issued_ms = t.issued_ms;
    r->expire_at_ms = t.expire_at_ms;
    r->ttl_ms = t.expire_at_ms ? t.expire_at_ms - a->now_ms : 0;
    return rc;
}

/* Remove one token's own records (record, accessor, its entry under its
 * parent if `unlink_parent`). */
static int token_remove(struct mf_apply *a, const uint8_t *hash, int unlink_parent)
{
    Mayfly__Cmd__TokenRecord *t = NULL;
    int rc = token_load(a->txn, a->st, hash, &t);
    if (rc == MF_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    MDB_val ak = {strlen(t->accessor), t->accessor};
    int x = mdb_del(a->txn, a->st->dbi[MF_DB_TOKEN_ACC], &ak, NULL);
    if (unlink_parent && !x && t->parent_hash.len == MF_TOKEN_HASH_LEN) {
        MDB_val pk = {MF_TOKEN_HASH_LEN, t->parent_hash.data}, cv = {MF_TOKEN_HASH_LEN,
                                                                      (void *)hash};
        x = mdb_del(a->txn, a->st->dbi[MF_DB_TOKEN_CHILD], &pk, &cv);
        if (x == MDB_NOTFOUND)
            x = 0;
    }
    if ((!x || x == MDB_NOTFOUND) && t->expire_at_ms) {
        uint8_t kb[8 + MF_TOKEN_HASH_LEN];
        exp_key(kb, t->expire_at_ms, hash);
        MDB_val ek = {sizeof(kb), kb};
        x = mdb_del(a->txn, a->st->dbi[MF_DB_TOKEN_EXP], &ek, NULL);
    }
    if (!x || x == MDB_NOTFOUND) {
        MDB_val k = {MF_TOKEN_HASH_LEN, (void *)hash};
        x = mdb_del(a->txn, a->st->dbi[MF_DB_TOKENS], &k, NULL);
    }
    mf_token_free(t);
    return x == MDB_NOTFOUND ? 0 : mf_state_err(x, "token remove");
}

/* Make every child of `hash` an orphan (orphan_children revoke). */
static int orphan_children(struct mf_apply *a, const uint8_t *hash)
{
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_TOKEN_CHILD], &cur), "child");
    if (rc)
        return rc;
    MDB_val k = {MF_TOKEN_HASH_LEN, (void *)hash}, d;
    int x = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
    while (x == 0 && rc == 0) {
        Mayfly__Cmd__TokenRecord *t = NULL;
        rc = token_load(a->txn, a->st, d.mv_data, &t);
        if (rc == 0) {
            t->orphan = 1;
            ProtobufCBinaryData saved = t->parent_hash;
            t->parent_hash.len = 0;
            MDB_val ck = {MF_TOKEN_HASH_LEN, d.mv_data};
            rc = mf_state_put_msg(a->txn, a->st->dbi[MF_DB_TOKENS], &ck, &t->base, 0);
            t->parent_hash = saved;
            mf_token_free(t);
        } else if (rc == MF_ENOTFOUND) {
            rc = 0;
        }
        if (rc == 0)
            x = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && x && x != MDB_NOTFOUND)
        rc = mf_state_err(x, "orphan children");
    if (rc == 0) {
        MDB_val dk = {MF_TOKEN_HASH_LEN, (void *)hash};
        x = mdb_del(a->txn, a->st->dbi[MF_DB_TOKEN_CHILD], &dk, NULL);
        rc = x == MDB_NOTFOUND ? 0 : mf_state_err(x, "children del");
    }
    return rc;
}

/* Revokes `root`, every descendant token and every lease they own (to
 * revoking), depth-first over the tree with a heap stack of hashes (no
 * recursion depth limit to hit). *tokens and *leases count what it did. */
static int revoke_tree(struct mf_apply *a, const uint8_t root[MF_TOKEN_HASH_LEN],
                       uint64_t *tokens, uint64_t *leases)
{
    size_t cap = 64, top = 0;
    uint8_t(*stack)[MF_TOKEN_HASH_LEN] = malloc(cap * MF_TOKEN_HASH_LEN);
    if (!stack)
        return -ENOMEM;
    memcpy(stack[top++], root, MF_TOKEN_HASH_LEN);
    int first = 1, rc = 0;
    while (top > 0 && rc == 0) {
        uint8_t h[MF_TOKEN_HASH_LEN];
        memcpy(h, stack[--top], MF_TOKEN_HASH_LEN);
        MDB_cursor *cur;
        rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_TOKEN_CHILD], &cur), "child");
        if (rc)
            break;
        MDB_val k = {MF_TOKEN_HASH_LEN, h}, d;
        int x = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
        while (x == 0) {
            if (top == cap) {
                void *n = realloc(stack, cap * 2 * MF_TOKEN_HASH_LEN);
                if (!n) {
                    rc = -ENOMEM;
                    break;
                }
                stack = n;
                cap *= 2;
            }
            memcpy(stack[top++], d.mv_data, MF_TOKEN_HASH_LEN);
            x = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
        }
        mdb_cursor_close(cur);
        if (rc == 0 && x && x != MDB_NOTFOUND)
            rc = mf_state_err(x, "children");
        if (rc == 0) {
            MDB_val dk = {MF_TOKEN_HASH_LEN, h};
            x = mdb_del(a->txn, a->st->dbi[MF_DB_TOKEN_CHILD], &dk, NULL);
            rc = x == MDB_NOTFOUND ? 0 : mf_state_err(x, "children del");
        }
        if (rc == 0)
            rc = mf_lease_apply_revoke_owned(a, h, leases);
        if (rc == 0)
            rc = token_remove(a, h, first);
        if (rc == 0)
            (*tokens)++;
        first = 0;
    }
    free(stack);
    return rc;
}

int mf_token_apply_revoke(struct mf_apply *a, const Mayfly__Cmd__TokenRevoke *m,
                          Mayfly__Cmd__Result *r)
{
    uint8_t root[MF_TOKEN_HASH_LEN];
    int rc;
    if (m->hash.len == MF_TOKEN_HASH_LEN) {
        memcpy(root, m->hash.data, MF_TOKEN_HASH_LEN);
        rc = mf_token_apply_exists(a, root, MF_TOKEN_HASH_LEN);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return mf_apply_fail(a, MF_ENOTFOUND, "no such token");
    } else if (m->hash.len == 0 && *m->accessor) {
        rc = mf_token_by_accessor(a->txn, a->st, m->accessor, root);
        if (rc == MF_ENOTFOUND || rc == MF_EINVAL)
            return mf_apply_fail(a, MF_ENOTFOUND, "no token with this accessor");
        if (rc)
            return rc;
    } else {
        return mf_apply_fail(a, MF_EINVAL, "token revoke needs a 32-byte hash or an accessor");
    }

    uint64_t leases = 0;
    if (m->orphan_children) {
        rc = mf_lease_apply_revoke_owned(a, root, &leases);
        if (rc == 0)
            rc = orphan_children(a, root);
        if (rc == 0)
            rc = token_remove(a, root, 1);
        r->count = rc == 0;
        r->leases = leases;
        return rc;
    }
    rc = revoke_tree(a, root, &r->count, &leases);
    r->leases = leases; /* leases moved to revoking */
    return rc;
}

int mf_token_apply_expire(struct mf_apply *a, const Mayfly__Cmd__TokenExpire *m,
                          Mayfly__Cmd__Result *r)
{
    if (m->n_hashes > MF_TOKEN_EXPIRE_BATCH_MAX)
        return mf_apply_fail(a, MF_EINVAL, "at most %d tokens per expire",
                             MF_TOKEN_EXPIRE_BATCH_MAX);
    for (size_t i = 0; i < m->n_hashes; i++)
        if (m->hashes[i].len != MF_TOKEN_HASH_LEN)
            return mf_apply_fail(a, MF_EINVAL, "token hash must be 32 bytes");
    uint64_t leases = 0;
    for (size_t i = 0; i < m->n_hashes; i++) {
        Mayfly__Cmd__TokenRecord *t = NULL;
        int rc = token_load(a->txn, a->st, m->hashes[i].data, &t);
        if (rc == MF_ENOTFOUND)
            continue; /* revoked meanwhile, or with a parent earlier in this batch */
        if (rc)
            return rc;
        /* Judged at the command's now: a renew committed in between wins. */
        bool due = t->expire_at_ms && t->expire_at_ms <= a->now_ms;
        mf_token_free(t);
        if (!due)
            continue;
        rc = revoke_tree(a, m->hashes[i].data, &r->count, &leases);
        if (rc)
            return rc;
    }
    r->leases = leases;
    return 0;
}

int mf_token_apply_renew(struct mf_apply *a, const Mayfly__Cmd__TokenRenew *m,
                         Mayfly__Cmd__Result *r)
{
    if (m->hash.len != MF_TOKEN_HASH_LEN)
        return mf_apply_fail(a, MF_EINVAL, "token hash must be 32 bytes");
    if (m->increment_ms > UINT64_MAX / 4)
        return mf_apply_fail(a, MF_EINVAL, "increment out of range");
    Mayfly__Cmd__TokenRecord *t, *parent = NULL;
    int rc = token_load(a->txn, a->st, m->hash.data, &t);
    if (rc == MF_ENOTFOUND)
        return mf_apply_fail(a, MF_ENOTFOUND, "no such token");
    if (rc)
        return rc;
    if (t->expire_at_ms && t->parent_hash.len == MF_TOKEN_HASH_LEN) {
        rc = token_load(a->txn, a->st, t->parent_hash.data, &parent);
        if (rc == MF_ENOTFOUND)
            rc = 0; /* gone with a revoke in this batch: the child goes too */
        if (rc) {
            mf_token_free(t);
            return rc;
        }
    }
    uint64_t exp = mf_token_renew_expire_at(a->now_ms, m->increment_ms, t->ttl_ms,
                                            t->issued_ms, t->max_ttl_ms,
                                            parent ? parent->expire_at_ms : 0);
    mf_token_free(parent);
    if (exp == UINT64_MAX)
        exp = t->expire_at_ms; /* nothing bounds it: it keeps its expiry */
    if (t->expire_at_ms && t->expire_at_ms <= a->now_ms)
        rc = mf_apply_fail(a, MF_EUNAUTH, "the token has expired: it cannot renew");
    else if (t->expire_at_ms && exp <= a->now_ms)
        rc = mf_apply_fail(a, MF_EUNAUTH, "the parent token has expired: it cannot renew");
    if (rc == 0 && t->expire_at_ms && exp != t->expire_at_ms) {
        uint8_t kb[8 + MF_TOKEN_HASH_LEN];
        exp_key(kb, t->expire_at_ms, m->hash.data);
        MDB_val ek = {sizeof(kb), kb}, ev = {0, ""};
        int x = mdb_del(a->txn, a->st->dbi[MF_DB_TOKEN_EXP], &ek, NULL);
        rc = x == MDB_NOTFOUND ? 0 : mf_state_err(x, "token_exp del");
        if (rc == 0) {
            exp_key(kb, exp, m->hash.data);
            rc = mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_TOKEN_EXP], &ek, &ev, 0),
                              "token_exp put");
        }
        t->expire_at_ms = exp;
        if (rc == 0) {
            MDB_val k = {MF_TOKEN_HASH_LEN, m->hash.data};
            rc = mf_state_put_msg(a->txn, a->st->dbi[MF_DB_TOKENS], &k, &t->base, 0);
        }
    }
    if (rc == 0) {
        r->issued_ms = t->issued_ms;
        r->expire_at_ms = t->expire_at_ms;
        r->ttl_ms = t->expire_at_ms ? t->expire_at_ms - a->now_ms : 0;
    }
    mf_token_free(t);
    return rc;
}
