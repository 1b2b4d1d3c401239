/* Helpers for the state machine's tests (included by the test_store_ files in
 * tests/unit and by the programs in tests/store): a temporary store, and one function per command that
 * packs a Command protobuf and applies it at the next log index. Each helper
 * returns the command's result code; the full result stays in t->last until
 * the next command. */
#ifndef MF_TESTS_STORE_FSM_TESTLIB_H
#define MF_TESTS_STORE_FSM_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.pb-c.h"
#include "common/assert.h"
#include "store/fsm.h"
#include "store/kv.h"
#include "store/leases.h"
#include "store/state.h"
#include "store/tokens.h"
#include "tmpdir.h"

struct tf {
    struct mf_fsm *fsm;
    char dir[128];
    uint64_t index;
    const char *rid;           /* request id of the next command (then cleared) */
    uint32_t key_term;         /* counted with key_encryptions on the next command */
    uint64_t key_encryptions;
    Mayfly__Cmd__Result *last;
    /* When record is set, every packed command is also kept here. */
    int record;
    uint8_t **rec;
    size_t *rec_len;
    size_t nrec, caprec;
};

static inline void tf_open(struct tf *t)
{
    memset(t, 0, sizeof(*t));
    /* tmpfs when there is one: these tests check rules, not fsync. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
    MF_ASSERT(mf_tmpdir_make_in(base, "fsm-test", t->dir, sizeof(t->dir)) == 0);
    struct mf_state_opts o = {.map_size_bytes = (size_t)4 << 30};
    MF_ASSERT(mf_fsm_open(t->dir, &o, &t->fsm) == 0);
    t->index = mf_fsm_applied(t->fsm);
}

static inline void tf_rm(const char *dir)
{
    MF_ASSERT(mf_tmpdir_remove(dir) == 0);
}

static inline void tf_close(struct tf *t)
{
    for (size_t i = 0; i < t->nrec; i++)
        free(t->rec[i]);
    free(t->rec);
    free(t->rec_len);
    mf_fsm_result_free(t->last);
    t->last = NULL;
    mf_fsm_close(t->fsm);
    t->fsm = NULL;
    tf_rm(t->dir);
}

static inline struct mf_state *tf_st(struct tf *t) { return mf_fsm_state(t->fsm); }

/* Apply raw bytes at the next index; returns the result code. */
static inline int tf_raw(struct tf *t, const uint8_t *data, size_t len)
{
    mf_fsm_result_free(t->last);
    t->last = NULL;
    int rc = mf_fsm_apply(t->fsm, ++t->index, data, len, &t->last);
    MF_ASSERT(rc == 0 && t->last);
    return t->last->code;
}

static inline int tf_cmd(struct tf *t, Mayfly__Cmd__Command *c, uint64_t now)
{
    c->now_ms = now;
    if (t->rid) {
        c->request_id.data = (uint8_t *)t->rid;
        c->request_id.len = strlen(t->rid);
        t->rid = NULL;
    }
    c->key_term = t->key_term;
    c->key_encryptions = t->key_encryptions;
    t->key_encryptions = 0;
    size_t n = mayfly__cmd__command__get_packed_size(c);
    uint8_t *buf = malloc(n ? n : 1);
    MF_ASSERT(buf);
    mayfly__cmd__command__pack(c, buf);
    int code = tf_raw(t, buf, n);
    if (t->record) {
        if (t->nrec == t->caprec) {
            t->caprec = t->caprec ? t->caprec * 2 : 256;
            t->rec = realloc(t->rec, t->caprec * sizeof(*t->rec));
            t->rec_len = realloc(t->rec_len, t->caprec * sizeof(*t->rec_len));
            MF_ASSERT(t->rec && t->rec_len);
        }
        t->rec[t->nrec] = buf;
        t->rec_len[t->nrec++] = n;
    } else {
        free(buf);
    }
    return code;
}

static inline void tf_hash(uint8_t h[32], int who)
{
    memset(h, 0, 32);
    h[0] = (uint8_t)who;
    h[31] = 0xA5;
}

static inline int tf_grant_full(struct tf *t, uint64_t now, uint64_t seq, const char *mount,
                                const char *name, uint64_t ttl, uint64_t max_ttl, int state,
                                int owner)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
    uint8_t h[32];
    g.seq = seq;
    g.mount = (char *)mount;
    g.name = (char *)name;
    g.ttl_ms = ttl;
    g.max_ttl_ms = max_ttl;
    g.state = state;
    if (owner) {
        tf_hash(h, owner);
        g.owner_token_hash.data = h;
        g.owner_token_hash.len = 32;
    }
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    return tf_cmd(t, &c, now);
}

/* An engine-issued lease (state issuing, as the server grants them). */
static inline int tf_grant_engine(struct tf *t, uint64_t now, uint64_t seq, const char *engine,
                                  uint64_t ttl)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
    g.seq = seq;
    g.mount = (char *)engine;
    g.name = "role";
    g.ttl_ms = ttl;
    g.state = MAYFLY__CMD__LEASE_STATE__LEASE_ISSUING;
    g.engine = (char *)engine;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    return tf_cmd(t, &c, now);
}

static inline int tf_grant(struct tf *t, uint64_t now, uint64_t seq, uint64_t ttl, uint64_t max_ttl)
{
    return tf_grant_full(t, now, seq, "lease", "default", ttl, max_ttl,
                         MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE, 0);
}

#define TF_SEQ_CMD(fn, Type, TYPE, field, CASE)                                  \
    static inline int fn(struct tf *t, uint64_t now, uint64_t seq)                \
    {                                                                            \
        Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;                     \
        Mayfly__Cmd__##Type m = MAYFLY__CMD__##TYPE##__INIT;                     \
        m.seq = seq;                                                             \
        c.op_case = MAYFLY__CMD__COMMAND__OP_##CASE;                             \
        c.field = &m;                                                            \
        return tf_cmd(t, &c, now);                                               \
    }
TF_SEQ_CMD(tf_revoke, LeaseRevoke, LEASE_REVOKE, lease_revoke, LEASE_REVOKE)
TF_SEQ_CMD(tf_force, LeaseForceRevoke, LEASE_FORCE_REVOKE, lease_force_revoke, LEASE_FORCE_REVOKE)

static inline int tf_renew(struct tf *t, uint64_t now, uint64_t seq, uint64_t inc)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseRenew m = MAYFLY__CMD__LEASE_RENEW__INIT;
    m.seq = seq;
    m.increment_ms = inc;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_RENEW;
    c.lease_renew = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_activate(struct tf *t, uint64_t now, uint64_t seq, const char *cred,
                              uint64_t ttl)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseActivate m = MAYFLY__CMD__LEASE_ACTIVATE__INIT;
    m.seq = seq;
    m.credential.data = (uint8_t *)cred;
    m.credential.len = strlen(cred);
    m.ttl_ms = ttl;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE;
    c.lease_activate = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_expire(struct tf *t, uint64_t now, uint64_t *seqs, size_t n)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseExpire m = MAYFLY__CMD__LEASE_EXPIRE__INIT;
    m.seqs = seqs;
    m.n_seqs = n;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_EXPIRE;
    c.lease_expire = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_revoked(struct tf *t, uint64_t now, uint64_t *seqs, size_t n)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseRevoked m = MAYFLY__CMD__LEASE_REVOKED__INIT;
    m.seqs = seqs;
    m.n_seqs = n;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKED;
    c.lease_revoked = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_irrevocable(struct tf *t, uint64_t now, uint64_t seq, const char *err)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseIrrevocable m = MAYFLY__CMD__LEASE_IRREVOCABLE__INIT;
    m.seq = seq;
    m.last_error.data = (uint8_t *)err;
    m.last_error.len = strlen(err);
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_IRREVOCABLE;
    c.lease_irrevocable = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_prefix_after(struct tf *t, uint64_t now, const char *prefix,
                                  uint32_t limit, const char *after)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseRevokePrefix m = MAYFLY__CMD__LEASE_REVOKE_PREFIX__INIT;
    m.prefix = (char *)prefix;
    m.limit = limit;
    if (after)
        m.after = (char *)after;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE_PREFIX;
    c.lease_revoke_prefix = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_prefix(struct tf *t, uint64_t now, const char *prefix)
{
    return tf_prefix_after(t, now, prefix, 0, NULL);
}

static inline int tf_tidy(struct tf *t, uint64_t now, uint64_t retention, uint32_t limit)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseTidy m = MAYFLY__CMD__LEASE_TIDY__INIT;
    m.retention_ms = retention;
    m.limit = limit;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_TIDY;
    c.lease_tidy = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_quota(struct tf *t, uint64_t now, const char *prefix, uint64_t max)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__QuotaSet m = MAYFLY__CMD__QUOTA_SET__INIT;
    m.prefix = (char *)prefix;
    m.max_leases = max;
    c.op_case = MAYFLY__CMD__COMMAND__OP_QUOTA_SET;
    c.quota_set = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_kv_put(struct tf *t, uint64_t now, const char *path, const char *value,
                            int has_cas, uint64_t cas, uint64_t lease)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = (char *)path;
    m.value.data = (uint8_t *)value;
    m.value.len = strlen(value);
    m.has_cas = has_cas;
    m.cas = cas;
    m.lease_seq = lease;
    m.write_id = t->index + 1;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    c.kv_put = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_kv_op(struct tf *t, uint64_t now, const char *path, int op, uint64_t *vers,
                           size_t n)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KvVersions m = MAYFLY__CMD__KV_VERSIONS__INIT;
    m.path = (char *)path;
    m.op = op;
    m.versions = vers;
    m.n_versions = n;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_VERSIONS;
    c.kv_versions = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_kv_meta(struct tf *t, uint64_t now, const char *path, uint32_t maxv,
                             int set_cas, int cas_required)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KvMetadataPut m = MAYFLY__CMD__KV_METADATA_PUT__INIT;
    m.path = (char *)path;
    m.max_versions = maxv;
    m.set_cas_required = set_cas;
    m.cas_required = cas_required;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_METADATA_PUT;
    c.kv_metadata_put = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_kv_delete_all(struct tf *t, uint64_t now, const char *path)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KvDeleteAll m = MAYFLY__CMD__KV_DELETE_ALL__INIT;
    m.path = (char *)path;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_DELETE_ALL;
    c.kv_delete_all = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_token(struct tf *t, uint64_t now, int who, const char *accessor, int parent,
                           uint64_t ttl)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__TokenCreate m = MAYFLY__CMD__TOKEN_CREATE__INIT;
    uint8_t h[32], p[32];
    char *pol[] = {"default"};
    tf_hash(h, who);
    m.hash.data = h;
    m.hash.len = 32;
    m.accessor = (char *)accessor;
    m.policies = pol;
    m.n_policies = 1;
    m.ttl_ms = ttl;
    if (parent) {
        tf_hash(p, parent);
        m.parent_hash.data = p;
        m.parent_hash.len = 32;
    }
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE;
    c.token_create = &m;
    return tf_cmd(t, &c, now);
}

/* A token with a renewal cap and without `default` when no_default is set. */
static inline int tf_token_max(struct tf *t, uint64_t now, int who, const char *accessor,
                               int parent, uint64_t ttl, uint64_t max_ttl, int no_default)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__TokenCreate m = MAYFLY__CMD__TOKEN_CREATE__INIT;
    uint8_t h[32], p[32];
    char *pol[] = {"app"};
    tf_hash(h, who);
    m.hash.data = h;
    m.hash.len = 32;
    m.accessor = (char *)accessor;
    m.policies = pol;
    m.n_policies = 1;
    m.ttl_ms = ttl;
    m.max_ttl_ms = max_ttl;
    m.no_default_policy = no_default;
    if (parent) {
        tf_hash(p, parent);
        m.parent_hash.data = p;
        m.parent_hash.len = 32;
    }
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE;
    c.token_create = &m;
    return tf_cmd(t, &c, now);
}

static inline int tf_token_renew(struct tf *t, uint64_t now, int who, uint64_t inc)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__TokenRenew m = MAYFLY__CMD__TOKEN_RENEW__INIT;
    uint8_t h[32];
    tf_hash(h, who);
    m.hash.data = h;
    m.hash.len = 32;
    m.increment_ms = inc;
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_RENEW;
    c.token_renew = &m;
    return tf_cmd(t, &c, now);
}

/* The scheduler's TokenExpire for tokens who[0..n). */
static inline int tf_token_expire(struct tf *t, uint64_t now, const int *who, size_t n)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__TokenExpire m = MAYFLY__CMD__TOKEN_EXPIRE__INIT;
    uint8_t h[16][32];
    ProtobufCBinaryData b[16];
    MF_ASSERT(n <= 16);
    for (size_t i = 0; i < n; i++) {
        tf_hash(h[i], who[i]);
        b[i].data = h[i];
        b[i].len = 32;
    }
    m.hashes = b;
    m.n_hashes = n;
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_EXPIRE;
    c.token_expire = &m;
    return tf_cmd(t, &c, now);
}

/* Token `who`'s record (NULL if none); the caller frees it (mf_token_free). */
static inline Mayfly__Cmd__TokenRecord *tf_token_get(struct tf *t, int who)
{
    MDB_txn *txn;
    uint8_t h[32];
    Mayfly__Cmd__TokenRecord *rec = NULL;
    tf_hash(h, who);
    MF_ASSERT(mf_state_read_begin(tf_st(t), &txn) == 0);
    if (mf_token_get(txn, tf_st(t), h, &rec) != 0)
        rec = NULL;
    mf_state_read_end(txn);
    return rec;
}

static inline int tf_token_revoke(struct tf *t, uint64_t now, int who, int orphan_children)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__TokenRevoke m = MAYFLY__CMD__TOKEN_REVOKE__INIT;
    uint8_t h[32];
    tf_hash(h, who);
    m.hash.data = h;
    m.hash.len = 32;
    m.orphan_children = orphan_children;
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_REVOKE;
    c.token_revoke = &m;
    return tf_cmd(t, &c, now);
}

/* State of lease seq (0 if missing). */
static inline int tf_lease_state(struct tf *t, uint64_t seq, uint64_t *expire_at)
{
    MDB_txn *txn;
    MF_ASSERT(mf_state_read_begin(tf_st(t), &txn) == 0);
    Mayfly__Cmd__LeaseRecord *rec;
    int s = 0;
    if (mf_lease_get(txn, tf_st(t), seq, &rec) == 0) {
        s = rec->state;
        if (expire_at)
            *expire_at = rec->expire_at_ms;
        mf_lease_free(rec);
    }
    mf_state_read_end(txn);
    return s;
}

static inline int tf_next_due(struct tf *t, uint64_t *exp, uint64_t *seq)
{
    MDB_txn *txn;
    MF_ASSERT(mf_state_read_begin(tf_st(t), &txn) == 0);
    int rc = mf_lease_next_due(txn, tf_st(t), exp, seq);
    mf_state_read_end(txn);
    return rc;
}

static inline void tf_digest(struct tf *t, int skip_applied, uint8_t out[32])
{
    MF_ASSERT(mf_state_digest(tf_st(t), skip_applied, out) == 0);
}

#define LSTATE(x) MAYFLY__CMD__LEASE_STATE__LEASE_##x
#define KVOP(x) MAYFLY__CMD__KV_VERSION_OP__KV_OP_##x

#endif
