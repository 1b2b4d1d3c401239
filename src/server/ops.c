/* The client API's operations: authorisation, writes as Raft commands, reads
 * from the local state database after a ReadIndex barrier (or stale).
 *
 * Writes run on the leader (a follower forwards them, api.c). The leader
 * stamps each command with its clock (never backwards), derives ids from the
 * index the entry will get (a lease's SEQ and a KV write id: unique and
 * increasing by construction), and encrypts secret values with the barrier
 * before proposing, so the Raft log and every replica hold only ciphertext.
 *
 * Reads check lease expiry with the local clock and the configured skew bound
 * (DESIGN.md guarantee 4): a secret bound to a lease is refused once
 * local_now + max_clock_skew >= expire_at. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/srv_int.h"
#include "store/idempotency.h"
#include "store/kv.h"
#include "store/leases.h"
#include "store/tokens.h"
#include "engines/pki.h"

#define LOG_MOD "ops"
#define TOKEN_RANDOM_BYTES 32
#define ACCESSOR_RANDOM_BYTES 12
#define TOKEN_SECRET_PATH "sys/token"

typedef Mayfly__Api__Request Req;
typedef Mayfly__Api__Response Resp;
typedef Mayfly__Cmd__Command Cmd;
typedef Mayfly__Cmd__Result Result;

/* ---- small helpers ---- */

static void sha256(const void *data, size_t len, uint8_t out[32])
{
    SHA256(data, len, out);
}

static void hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static Mayfly__Api__ReadInfo *read_info(struct mf_server *s, const Req *q,
                                        Mayfly__Api__ReadInfo *ri)
{
    mayfly__api__read_info__init(ri);
    ri->node = s->cfg->node_id;
    ri->consistency = q->consistency;
    ri->applied_index = mf_node_applied(s->node);
    if (q->consistency == MAYFLY__API__CONSISTENCY__STALE) {
        uint64_t commit = mf_node_known_commit(s->node);
        ri->lag_entries = commit > ri->applied_index ? commit - ri->applied_index : 0;
    }
    return ri;
}

/* ---- proposals ---- */

struct proposal {
    struct req *r;
    mf_ops_finish_cb finish;
};

static void on_proposed(void *arg, int rc, uint64_t index, void *result_ptr)
{
    struct proposal *p = arg;
    struct req *r = p->r;
    mf_ops_finish_cb finish = p->finish;
    free(p);
    (void)index;
    if (rc) {
        if (rc == MF_EUNKNOWN)
            mf_api_reply_error(r, MF_EUNKNOWN, "the write was not applied in time: it may or "
                                               "may not have been applied");
        else
            mf_api_reply_error(r, MF_EUNAVAIL, "leadership changed before the write applied; "
                                               "retry (%s)", mf_strerror(rc));
        return;
    }
    const Result *res = result_ptr;
    if (!res) {
        mf_api_reply_error(r, MF_EINTERNAL, "the state machine gave no result");
        return;
    }
    if (res->code) {
        mf_api_reply_error(r, res->code, "%s", res->error[0] ? res->error : mf_strerror(res->code));
        return;
    }
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    Mayfly__Api__Empty empty = MAYFLY__API__EMPTY__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_EMPTY;
    resp.empty = &empty;
    if (finish)
        finish(r, res, &resp); /* replies itself (and may chain another proposal) */
    else
        mf_api_reply(r, &resp);
}

void mf_ops_propose(struct req *r, void *cmd_ptr, mf_ops_finish_cb finish)
{
    struct mf_server *s = r->srv;
    Cmd *cmd = cmd_ptr;
    uint8_t rid[64];
    if (r->pb && r->pb->request_key.len && r->pb->request_key.len < sizeof(rid)) {
        /* A chained second command of one request (init: keyring, then the
         * root token) gets its own id, or the fsm would call it a duplicate. */
        memcpy(rid, r->pb->request_key.data, r->pb->request_key.len);
        cmd->request_id.data = rid;
        cmd->request_id.len = r->pb->request_key.len;
        if (r->rid_suffix)
            rid[cmd->request_id.len++] = r->rid_suffix;
    } else if (cmd->result_secret.len) {
        /* The fsm hands a kept secret back only with an idempotency entry. */
        if (mf_rand_bytes(rid, 16))
            return mf_api_reply_error(r, MF_EINTERNAL, "random source failed");
        cmd->request_id.data = rid;
        cmd->request_id.len = 16;
    }
    if (!cmd->now_ms)
        cmd->now_ms = mf_srv_leader_now(s);
    if (!mf_barrier_sealed(s->barrier))
        mf_barrier_uses_take_command(s->barrier, &cmd->key_term, &cmd->key_encryptions);
    size_t len = mayfly__cmd__command__get_packed_size(cmd);
    if (len > MF_FSM_COMMAND_MAX) {
        mf_api_reply_error(r, MF_ETOOLARGE, "the command is %zu bytes; at most %d", len,
                           MF_FSM_COMMAND_MAX);
        return;
    }
    uint8_t *buf = malloc(len ? len : 1);
    struct proposal *p = malloc(sizeof(*p));
    if (!buf || !p) {
        free(buf);
        free(p);
        mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
        return;
    }
    mayfly__cmd__command__pack(cmd, buf);
    p->r = r;
    p->finish = finish;
    int rc = mf_node_propose(s->node, buf, len, on_proposed, p);
    free(buf);
    if (rc) {
        free(p);
        mf_api_reply_error(r, rc == -ENOBUFS ? MF_ERATELIMIT : MF_EUNAVAIL,
                           "cannot propose: %s", mf_strerror(rc));
    }
}

/* ---- authorisation ---- */

static int check_token(struct mf_server *s, struct req *r)
{
    const char *token = r->pb->token;
    if (!token || !*token)
        return MF_EUNAUTH;
    sha256(token, strlen(token), r->token_hash);
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    Mayfly__Cmd__TokenRecord *t = NULL;
    rc = mf_token_get(txn, st, r->token_hash, &t);
    mf_srv_read_end(s, txn);
    if (rc)
        return rc == MF_ENOTFOUND ? MF_EUNAUTH : rc;
    bool expired = t->expire_at_ms && mf_now_wall_ms() >= t->expire_at_ms;
    mf_token_free(t);
    if (expired)
        return MF_EUNAUTH;
    r->has_token = true;
    return 0;
}

/* ---- lease ids ---- */

static int parse_lease_id(const char *id, uint64_t *seq)
{
    size_t prefix_len;
    return mf_lease_id_parse(id, &prefix_len, seq);
}

/* ---- writes ---- */

static void finish_lease_grant(struct req *r, const void *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    const Mayfly__Api__LeaseGrantRequest *g = r->pb->lease_grant;
    char id[MF_LEASE_ID_MAX];
    mf_lease_id_format(id, sizeof(id), "lease", g->name[0] ? g->name : "default", res->seq);
    Mayfly__Api__LeaseGrantResponse out = MAYFLY__API__LEASE_GRANT_RESPONSE__INIT;
    out.lease_id = id;
    out.ttl_ms = res->ttl_ms;
    out.issued_ms = res->issued_ms;
    out.expire_at_ms = res->expire_at_ms;
    out.max_ttl_ms = res->max_expire_at_ms - res->issued_ms;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_GRANT;
    resp->lease_grant = &out;
    mf_api_reply(r, resp);
}

static void op_lease_grant(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__LeaseGrantRequest *g = r->pb->lease_grant;
    uint64_t max_cluster = s->cfg->max_lease_ttl_ms;
    uint64_t ttl = g->ttl_ms ? g->ttl_ms : s->cfg->default_lease_ttl_ms;
    uint64_t max_ttl = g->max_ttl_ms ? g->max_ttl_ms : max_cluster;
    if (max_ttl > max_cluster)
        max_ttl = max_cluster;
    if (ttl > max_ttl)
        ttl = max_ttl;
    if (strlen(g->name) > MF_LEASE_NAME_MAX || strchr(g->name, '/'))
        return mf_api_reply_error(r, MF_EINVAL, "lease name must be at most %d bytes, no '/'",
                                  MF_LEASE_NAME_MAX);
    Mayfly__Cmd__LeaseGrant lg = MAYFLY__CMD__LEASE_GRANT__INIT;
    lg.seq = mf_node_next_index(s->node);
    lg.mount = "lease";
    lg.name = g->name[0] ? g->name : "default";
    lg.ttl_ms = ttl;
    lg.max_ttl_ms = max_ttl;
    lg.state = MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE;
    lg.owner_token_hash.data = r->token_hash;
    lg.owner_token_hash.len = 32;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    cmd.lease_grant = &lg;
    mf_ops_propose(r, &cmd, finish_lease_grant);
}

static void finish_lease_renew(struct req *r, const void *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    Mayfly__Api__LeaseRenewResponse out = MAYFLY__API__LEASE_RENEW_RESPONSE__INIT;
    out.lease_id = r->pb->lease_renew->lease_id;
    out.ttl_ms = res->ttl_ms;
    out.expire_at_ms = res->expire_at_ms;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_RENEW;
    resp->lease_renew = &out;
    mf_api_reply(r, resp);
}

static void op_lease_renew(struct req *r)
{
    Mayfly__Cmd__LeaseRenew m = MAYFLY__CMD__LEASE_RENEW__INIT;
    if (parse_lease_id(r->pb->lease_renew->lease_id, &m.seq))
        return mf_api_reply_error(r, MF_EINVAL, "'%s' is not a lease id",
                                  r->pb->lease_renew->lease_id);
    m.increment_ms = r->pb->lease_renew->increment_ms;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_RENEW;
    cmd.lease_renew = &m;
    mf_ops_propose(r, &cmd, finish_lease_renew);
}

static void propose_revoke_prefix(struct req *r, const char *after);

static void finish_count(struct req *r, const void *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    r->count_acc += res->count;
    if (res->more && r->pb->lease_revoke->prefix) {
        /* A bounded command left leases behind: continue after its cursor,
         * as a new command (its own request id). */
        if (r->rid_suffix == UINT8_MAX)
            return mf_api_reply_error(r, MF_ETOOLARGE, "revoke-prefix matched too many "
                                                       "leases; run it again");
        r->rid_suffix++;
        return propose_revoke_prefix(r, res->cursor);
    }
    Mayfly__Api__LeaseRevokeResponse out = MAYFLY__API__LEASE_REVOKE_RESPONSE__INIT;
    out.revoked = r->count_acc;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_REVOKE;
    resp->lease_revoke = &out;
    mf_api_reply(r, resp);
}

static void propose_revoke_prefix(struct req *r, const char *after)
{
    Mayfly__Cmd__LeaseRevokePrefix pre = MAYFLY__CMD__LEASE_REVOKE_PREFIX__INIT;
    pre.prefix = r->pb->lease_revoke->lease_id;
    pre.after = (char *)(after ? after : "");
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE_PREFIX;
    cmd.lease_revoke_prefix = &pre;
    mf_ops_propose(r, &cmd, finish_count);
}

static void op_lease_revoke(struct req *r)
{
    const Mayfly__Api__LeaseRevokeRequest *q = r->pb->lease_revoke;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseRevoke one = MAYFLY__CMD__LEASE_REVOKE__INIT;
    Mayfly__Cmd__LeaseForceRevoke force = MAYFLY__CMD__LEASE_FORCE_REVOKE__INIT;
    if (q->prefix) {
        if (q->force)
            return mf_api_reply_error(r, MF_EINVAL, "-force takes one lease id, not a prefix");
        return propose_revoke_prefix(r, NULL);
    } else {
        uint64_t seq;
        if (parse_lease_id(q->lease_id, &seq))
            return mf_api_reply_error(r, MF_EINVAL, "'%s' is not a lease id", q->lease_id);
        if (q->force) {
            force.seq = seq;
            cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_FORCE_REVOKE;
            cmd.lease_force_revoke = &force;
        } else {
            one.seq = seq;
            cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE;
            cmd.lease_revoke = &one;
        }
    }
    mf_ops_propose(r, &cmd, finish_count);
}

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

/* Encrypts `plain` (then wiped and freed) as the value of m->path under a
 * write id that is the index the entry will get, and proposes the KV put. */
static void propose_kv_put(struct req *r, Mayfly__Cmd__KvPut *m, char *plain,
                           mf_ops_finish_cb finish)
{
    struct mf_server *s = r->srv;
    m->write_id = mf_node_next_index(s->node);
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    int rc = mf_barrier_encrypt(s->barrier, m->path, m->write_id, plain, strlen(plain), &ct,
                                &ct_len);
    OPENSSL_cleanse(plain, strlen(plain));
    free(plain);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot encrypt the value: %s", mf_strerror(rc));
    m->value.data = ct;
    m->value.len = ct_len;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    cmd.kv_put = m;
    mf_ops_propose(r, &cmd, finish);
    free(ct);
}

static void finish_kv_put(struct req *r, const void *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    Mayfly__Api__KvPutResponse out = MAYFLY__API__KV_PUT_RESPONSE__INIT;
    out.path = r->pb->kv_put->path;
    out.version = res->version;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_KV_PUT;
    resp->kv_put = &out;
    mf_api_reply(r, resp);
}

static int check_path(const char *path)
{
    size_t len = strlen(path);
    return len == 0 || len > MF_KV_PATH_MAX ? MF_EINVAL : 0;
}

static bool reserved_path(const char *path);

/* A path a client names: not under the reserved prefix, 1..MF_KV_PATH_MAX
 * bytes. Answers r and returns true when it is refused. */
static bool refuse_client_path(struct req *r, const char *path)
{
    if (reserved_path(path)) {
        mf_api_reply_error(r, MF_EPERM, "paths under '%s' are reserved", MF_SRV_RESERVED_PREFIX);
        return true;
    }
    if (check_path(path)) {
        mf_api_reply_error(r, MF_EINVAL, "a path is 1..%d bytes", MF_KV_PATH_MAX);
        return true;
    }
    return false;
}

static void op_kv_put(struct req *r)
{
    const Mayfly__Api__KvPutRequest *p = r->pb->kv_put;
    if (refuse_client_path(r, p->path))
        return;
    if (p->n_data == 0)
        return mf_api_reply_error(r, MF_EINVAL, "kv put needs at least one KEY=VALUE");
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = p->path;
    m.has_cas = p->has_cas;
    m.cas = p->cas;
    if (p->lease_id[0] && parse_lease_id(p->lease_id, &m.lease_seq))
        return mf_api_reply_error(r, MF_EINVAL, "'%s' is not a lease id", p->lease_id);
    char *json = kv_data_json(p);
    if (!json)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    propose_kv_put(r, &m, json, finish_kv_put);
}

static void op_kv_versions(struct req *r)
{
    const Mayfly__Api__KvVersionsRequest *q = r->pb->kv_versions;
    if (refuse_client_path(r, q->path))
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
    mf_ops_propose(r, &cmd, NULL);
}

static void op_kv_metadata_put(struct req *r)
{
    const Mayfly__Api__KvMetadataPutRequest *q = r->pb->kv_metadata_put;
    if (refuse_client_path(r, q->path))
        return;
    Mayfly__Cmd__KvMetadataPut m = MAYFLY__CMD__KV_METADATA_PUT__INIT;
    m.path = q->path;
    m.max_versions = q->max_versions;
    m.set_cas_required = q->has_cas_required;
    m.cas_required = q->cas_required;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_METADATA_PUT;
    cmd.kv_metadata_put = &m;
    mf_ops_propose(r, &cmd, NULL);
}

/* A new token: "mf." + 64 hex digits of CSPRNG output. */
static int make_token(char *token, size_t len, char *accessor, size_t acc_len)
{
    uint8_t raw[TOKEN_RANDOM_BYTES];
    if (len < sizeof(MF_SRV_TOKEN_PREFIX) + 2 * TOKEN_RANDOM_BYTES ||
        acc_len < 2 * ACCESSOR_RANDOM_BYTES + 1 || mf_rand_bytes(raw, sizeof(raw)))
        return MF_ECRYPTO;
    memcpy(token, MF_SRV_TOKEN_PREFIX, sizeof(MF_SRV_TOKEN_PREFIX) - 1);
    hex(raw, sizeof(raw), token + sizeof(MF_SRV_TOKEN_PREFIX) - 1);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (mf_rand_bytes(raw, ACCESSOR_RANDOM_BYTES))
        return MF_ECRYPTO;
    hex(raw, ACCESSOR_RANDOM_BYTES, accessor);
    return 0;
}

/* The write id (AAD) of a token create's kept secret: derived from the
 * request id when there is one, so the answer to a retried create (the first
 * command's result) opens with the retry's request; else the entry's index. */
static uint64_t token_write_id(const struct req *r)
{
    if (r->pb && r->pb->request_key.len >= 8) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | r->pb->request_key.data[i];
        return v;
    }
    return r->write_id;
}

/* Decrypts the kept "token accessor" secret of a token create result. */
static int token_secret_open(struct mf_server *s, const Result *res, uint64_t write_id,
                             char **token, char **accessor)
{
    uint8_t *plain = NULL;
    size_t len = 0;
    int rc = mf_barrier_decrypt(s->barrier, TOKEN_SECRET_PATH, write_id, res->secret.data,
                                res->secret.len, &plain, &len);
    if (rc)
        return rc;
    char *text = malloc(len + 1);
    if (!text) {
        mf_barrier_wipe_free(plain, len);
        return -ENOMEM;
    }
    if (len)
        memcpy(text, plain, len);
    text[len] = '\0';
    mf_barrier_wipe_free(plain, len);
    char *sp = strchr(text, ' ');
    if (!sp) {
        mf_barrier_wipe_free(text, len + 1);
        return MF_ECORRUPT;
    }
    *sp = '\0';
    *token = strdup(text);
    *accessor = strdup(sp + 1);
    mf_barrier_wipe_free(text, len + 1);
    return (*token && *accessor) ? 0 : -ENOMEM;
}

static void finish_token_create(struct req *r, const void *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    char *token = NULL, *accessor = NULL;
    /* The secret kept with the result is the first answer's (a retried create
     * gets the same token back); its write id is the first command's index. */
    int rc = token_secret_open(r->srv, res, token_write_id(r), &token, &accessor);
    if (rc) {
        free(token);
        free(accessor);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot open the new token: %s",
                                  mf_strerror(rc));
    }
    Mayfly__Api__TokenCreateResponse out = MAYFLY__API__TOKEN_CREATE_RESPONSE__INIT;
    out.token = token;
    out.accessor = accessor;
    out.ttl_ms = res->ttl_ms;
    out.expire_at_ms = res->expire_at_ms;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_TOKEN_CREATE;
    resp->token_create = &out;
    mf_api_reply(r, resp);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(accessor);
}

/* Builds and proposes a TokenCreate; `finish` answers. */
static void propose_token_create(struct req *r, char **policies, size_t n_policies, uint64_t ttl,
                                 bool orphan, mf_ops_finish_cb finish)
{
    struct mf_server *s = r->srv;
    char token[sizeof(MF_SRV_TOKEN_PREFIX) + 2 * TOKEN_RANDOM_BYTES];
    char accessor[2 * ACCESSOR_RANDOM_BYTES + 1];
    if (make_token(token, sizeof(token), accessor, sizeof(accessor)))
        return mf_api_reply_error(r, MF_EINTERNAL, "random source failed");
    uint8_t hash[32];
    sha256(token, strlen(token), hash);
    Mayfly__Cmd__TokenCreate m = MAYFLY__CMD__TOKEN_CREATE__INIT;
    m.hash.data = hash;
    m.hash.len = 32;
    m.accessor = accessor;
    m.policies = policies;
    m.n_policies = n_policies;
    m.ttl_ms = ttl;
    m.orphan = orphan || !r->has_token;
    if (!m.orphan) {
        m.parent_hash.data = r->token_hash;
        m.parent_hash.len = 32;
    }
    /* Keep "token accessor" encrypted with the idempotency entry; its write id
     * is token_write_id(). */
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    r->write_id = mf_node_next_index(s->node);
    uint64_t write_id = token_write_id(r);
    char secret[sizeof(token) + sizeof(accessor) + 1];
    snprintf(secret, sizeof(secret), "%s %s", token, accessor);
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    int rc = mf_barrier_encrypt(s->barrier, TOKEN_SECRET_PATH, write_id, secret, strlen(secret),
                                &ct, &ct_len);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(token, sizeof(token));
    if (rc)
        return mf_api_reply_error(r, rc, "cannot encrypt the token: %s", mf_strerror(rc));
    cmd.result_secret.data = ct;
    cmd.result_secret.len = ct_len;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE;
    cmd.token_create = &m;
    mf_ops_propose(r, &cmd, finish);
    free(ct);
}

static void op_token_create(struct req *r)
{
    const Mayfly__Api__TokenCreateRequest *q = r->pb->token_create;
    uint64_t ttl = q->ttl_ms ? q->ttl_ms : MF_SRV_TOKEN_TTL_DEFAULT_MS;
    propose_token_create(r, q->policies, q->n_policies, ttl, q->orphan, finish_token_create);
}

static void op_token_revoke(struct req *r)
{
    const Mayfly__Api__TokenRevokeRequest *q = r->pb->token_revoke;
    Mayfly__Cmd__TokenRevoke m = MAYFLY__CMD__TOKEN_REVOKE__INIT;
    uint8_t hash[32];
    if (q->by_accessor) {
        m.accessor = q->token;
    } else {
        sha256(q->token, strlen(q->token), hash);
        m.hash.data = hash;
        m.hash.len = 32;
    }
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_REVOKE;
    cmd.token_revoke = &m;
    mf_ops_propose(r, &cmd, NULL);
}

/* ---- init, unseal, seal ---- */

struct init_state {
    char **shares;
    size_t n_shares;
    unsigned threshold;
};

static void init_state_free(void *p)
{
    struct init_state *is = p;
    mf_seal_shares_free(is->shares, is->n_shares);
    free(is);
}

static void finish_root_token(struct req *r, const void *res_ptr, Resp *resp)
{
    struct mf_server *s = r->srv;
    const Result *res = res_ptr;
    char *token = NULL, *accessor = NULL;
    int rc = token_secret_open(s, res, token_write_id(r), &token, &accessor);
    free(accessor);
    if (rc) {
        free(token);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot open the root token");
    }
    if (s->dev && !r->cc && !r->peer) { /* dev mode: print it, nobody to answer */
        s->dev_root_token = token;
        if (s->ready_cb && !s->ready_sent) {
            s->ready_sent = true;
            s->ready_cb(s, token);
        }
        mf_req_free(r);
        return;
    }
    struct init_state *is = r->op_state;
    Mayfly__Api__InitResponse out = MAYFLY__API__INIT_RESPONSE__INIT;
    out.n_shares = is ? is->n_shares : 0;
    out.shares = is ? is->shares : NULL;
    out.threshold = is ? is->threshold : 0;
    out.root_token = token;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_INIT;
    resp->init = &out;
    mf_api_reply(r, resp); /* frees r and with it the shares */
    OPENSSL_cleanse(token, strlen(token));
    free(token);
}

static void finish_keyring(struct req *r, const void *res_ptr, Resp *resp)
{
    (void)res_ptr, (void)resp;
    static char *root_policies[] = {"root"};
    r->has_token = false; /* the root token has no parent */
    r->rid_suffix = 1;
    propose_token_create(r, root_policies, 1, 0, true, finish_root_token);
}

#define INIT_SHARES_PATH "sys/init-shares" /* AAD of the shares kept for a retried init */

static void propose_keyring(struct req *r, uint8_t *blob, size_t len)
{
    Mayfly__Cmd__KeyringPut m = MAYFLY__CMD__KEYRING_PUT__INIT;
    m.keyring.data = blob;
    m.keyring.len = len;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_PUT;
    cmd.keyring_put = &m;
    /* The shares are shown once; kept encrypted with the idempotency entry
     * so an init retried after a lost answer (same request id) can show them. */
    struct init_state *is = r->op_state;
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    if (is && r->pb && r->pb->request_key.len) {
        json_t *arr = json_array();
        for (size_t i = 0; i < is->n_shares; i++)
            json_array_append_new(arr, json_string(is->shares[i]));
        char *text = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        if (text && mf_barrier_encrypt(r->srv->barrier, INIT_SHARES_PATH, token_write_id(r), text,
                                       strlen(text), &ct, &ct_len) == 0) {
            cmd.result_secret.data = ct;
            cmd.result_secret.len = ct_len;
        }
        if (text) {
            OPENSSL_cleanse(text, strlen(text));
            free(text);
        }
    }
    mf_ops_propose(r, &cmd, finish_keyring);
    free(ct);
}

/* The shares kept with a first init's result (see propose_keyring). */
static struct init_state *init_state_from_result(struct mf_server *s, struct req *r,
                                                 const Result *res)
{
    if (!res->secret.len)
        return NULL;
    uint8_t *plain = NULL;
    size_t len = 0;
    if (mf_barrier_decrypt(s->barrier, INIT_SHARES_PATH, token_write_id(r), res->secret.data,
                           res->secret.len, &plain, &len))
        return NULL;
    json_error_t je;
    json_t *arr = json_loadb((const char *)plain, len, 0, &je);
    mf_barrier_wipe_free(plain, len);
    struct init_state *is = calloc(1, sizeof(*is));
    size_t n = json_array_size(arr);
    if (is)
        is->shares = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; is && is->shares && i < n; i++)
        is->shares[is->n_shares++] = strdup(json_string_value(json_array_get(arr, i)));
    json_decref(arr);
    return is;
}

/* An init retried with the same request id after its answer was lost: finish
 * what the first attempt started (the store remembers each step's result). */
static int resume_init(struct req *r)
{
    struct mf_server *s = r->srv;
    const ProtobufCBinaryData *key = &r->pb->request_key;
    uint8_t rid[MF_IDEM_RID_MAX];
    if (key->len == 0 || key->len >= sizeof(rid))
        return MF_ENOTFOUND;
    memcpy(rid, key->data, key->len);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    Result *first = NULL, *second = NULL;
    uint64_t now = mf_now_wall_ms();
    rc = mf_idem_get(txn, mf_fsm_state(s->fsm), rid, key->len, now, &first);
    if (!rc) {
        rid[key->len] = 1; /* the root token step's id (rid_suffix 1) */
        if (mf_idem_get(txn, mf_fsm_state(s->fsm), rid, key->len + 1, now, &second))
            second = NULL;
    }
    mf_srv_read_end(s, txn);
    if (rc)
        return rc;
    struct init_state *is = init_state_from_result(s, r, first);
    mf_fsm_result_free(first);
    if (is) {
        is->threshold = r->pb->init->threshold ? r->pb->init->threshold : 3;
        r->op_state = is;
        r->op_state_free = init_state_free;
    }
    MF_INFO(LOG_MOD, "init retried with the same request id: resuming");
    if (second) {
        Resp resp = MAYFLY__API__RESPONSE__INIT;
        finish_root_token(r, second, &resp);
        mf_fsm_result_free(second);
    } else {
        finish_keyring(r, NULL, NULL);
    }
    return 0;
}

static void op_init(struct req *r)
{
    struct mf_server *s = r->srv;
    if (mf_srv_initialized(s)) {
        if (resume_init(r) == 0)
            return;
        return mf_api_reply_error(r, MF_EINVAL, "the cluster is already initialised");
    }
    const Mayfly__Api__InitRequest *q = r->pb->init;
    char err[MF_SEAL_ERR_LEN] = "";
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    int rc;
    if (s->cfg->auto_unseal_key_file) {
        rc = mf_seal_init_keyfile(s->seal, s->cfg->auto_unseal_key_file, mf_now_wall_ms(), &blob,
                                  &blob_len, err, sizeof(err));
    } else {
        struct init_state *is = calloc(1, sizeof(*is));
        if (!is)
            return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
        unsigned shares = q->shares ? q->shares : 5, threshold = q->threshold ? q->threshold : 3;
        rc = mf_seal_init_shamir(s->seal, shares, threshold, mf_now_wall_ms(), &is->shares,
                                 &blob, &blob_len, err, sizeof(err));
        if (rc) {
            free(is);
        } else {
            is->n_shares = shares;
            is->threshold = threshold;
            r->op_state = is; /* freed with r */
            r->op_state_free = init_state_free;
        }
    }
    if (rc)
        return mf_api_reply_error(r, rc, "init failed: %s", err[0] ? err : mf_strerror(rc));
    propose_keyring(r, blob, blob_len);
    free(blob);
}

void mf_ops_dev_init(struct mf_server *s)
{
    s->dev_init_started = true;
    if (mf_srv_initialized(s)) {
        MF_INFO(LOG_MOD, "dev: already initialised");
        return;
    }
    struct req *r = mf_req_internal(s, NULL);
    if (!r)
        return;
    char err[MF_SEAL_ERR_LEN] = "";
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    int rc = mf_seal_init_keyfile(s->seal, s->cfg->auto_unseal_key_file, mf_now_wall_ms(), &blob,
                                  &blob_len, err, sizeof(err));
    if (rc) {
        MF_ERROR(LOG_MOD, "dev init failed: %s", err[0] ? err : mf_strerror(rc));
        free(r);
        return;
    }
    propose_keyring(r, blob, blob_len);
    free(blob);
}

static void op_unseal(struct req *r)
{
    struct mf_server *s = r->srv;
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc = mf_srv_keyring_blob(s, &blob, &len);
    if (rc == MF_ENOTFOUND || (!rc && len == 0)) {
        free(blob);
        return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised: run "
                                                  "mayfly operator init");
    }
    if (rc)
        return mf_api_reply_error(r, rc, "cannot read the keyring: %s", mf_strerror(rc));
    struct mf_seal_status st;
    char err[MF_SEAL_ERR_LEN] = "";
    rc = mf_seal_unseal(s->seal, r->pb->unseal->share, blob, len, &st, err, sizeof(err));
    free(blob);
    mf_metrics_publish(s);
    if (rc)
        return mf_api_reply_error(r, rc, "unseal: %s", err[0] ? err : mf_strerror(rc));
    Mayfly__Api__UnsealResponse out = MAYFLY__API__UNSEAL_RESPONSE__INIT;
    out.sealed = st.sealed;
    out.progress = st.progress;
    out.threshold = st.threshold;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_UNSEAL;
    resp.unseal = &out;
    mf_api_reply(r, &resp);
}

static void reply_empty(struct req *r)
{
    Mayfly__Api__Empty empty = MAYFLY__API__EMPTY__INIT;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_EMPTY;
    resp.empty = &empty;
    mf_api_reply(r, &resp);
}

static void op_seal(struct req *r)
{
    mf_seal_seal(r->srv->seal);
    mf_metrics_publish(r->srv); /* /health says sealed from now on */
    MF_INFO(LOG_MOD, "sealed by request");
    reply_empty(r);
}


/* ---- engines: enable, roles, list, credentials ---- */

static bool reserved_path(const char *path)
{
    return strncmp(path, MF_SRV_RESERVED_PREFIX, strlen(MF_SRV_RESERVED_PREFIX)) == 0;
}

static bool valid_mount_name(const char *m)
{
    size_t len = strlen(m);
    if (len == 0 || len > MF_LEASE_MOUNT_MAX || m[0] == '/' || m[len - 1] == '/' ||
        strcmp(m, "lease") == 0 || strncmp(m, "sys", 3) == 0)
        return false;
    for (const char *p = m; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '/'))
            return false;
    return true;
}

static bool valid_role_name(const char *r)
{
    size_t len = strlen(r);
    if (len == 0 || len > 64)
        return false;
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Proposes an internal KV put of a reserved record (a JSON object, encrypted
 * like any value); `finish` answers r. */
static void propose_record(struct req *r, const char *path, json_t *obj, mf_ops_finish_cb finish)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = (char *)path;
    propose_kv_put(r, &m, text, finish);
}

static void finish_internal_record(struct req *r, const void *res_ptr, Resp *resp)
{
    (void)res_ptr;
    mf_api_reply(r, resp); /* no client: calls the request's internal done */
}

int mf_ops_propose_record_internal(struct mf_server *s, const char *path, json_t *obj,
                                   void (*done)(struct mf_server *, int, void *), void *arg)
{
    struct req *r = mf_req_internal(s, done);
    if (!r)
        return -ENOMEM;
    r->internal_arg = arg;
    propose_record(r, path, obj, finish_internal_record);
    return 0;
}

static void finish_record(struct req *r, const void *res_ptr, Resp *resp)
{
    (void)res_ptr;
    char path[MF_KV_PATH_MAX];
    if (r->pb->op_case == MAYFLY__API__REQUEST__OP_ENGINE_ENABLE)
        snprintf(path, sizeof(path), "sys/engines/%s", r->pb->engine_enable->mount);
    else if (r->pb->op_case == MAYFLY__API__REQUEST__OP_ENGINE_ROTATE_ROOT)
        snprintf(path, sizeof(path), "sys/engines/%s", r->pb->engine_rotate_root->mount);
    else
        snprintf(path, sizeof(path), "sys/engines/%s/roles/%s", r->pb->engine_role_put->mount,
                 r->pb->engine_role_put->role);
    mf_mounts_record_changed(r->srv, path); /* an open mount follows the new record */
    mf_api_reply(r, resp);
}

static void on_probe(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    const Mayfly__Api__EngineEnableRequest *q = r->pb->engine_enable;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_ENOTLEADER ? MF_EUNAVAIL : MF_EINVAL,
                                  "engine %s at '%s': %s", q->type, q->mount, mf_mjob_err(j));
    char *config = NULL;
    if (strcmp(q->type, "pki") == 0) {
        /* Store the CA it made (or loaded), so every leader signs with it. */
        if (mf_pki_export(mf_mjob_engine(j), &config))
            return mf_api_reply_error(r, MF_EINTERNAL, "cannot export the pki CA");
    }
    json_t *rec = json_pack("{s:s, s:s}", "type", q->type, "config", config ? config : q->config_json);
    if (config)
        mf_pki_secret_free(config);
    char path[MF_KV_PATH_MAX];
    snprintf(path, sizeof(path), "sys/engines/%s", q->mount);
    (void)s;
    propose_record(r, path, rec, finish_record);
    json_decref(rec);
}

static void op_engine_enable(struct req *r)
{
    const Mayfly__Api__EngineEnableRequest *q = r->pb->engine_enable;
    if (!valid_mount_name(q->mount))
        return mf_api_reply_error(r, MF_EINVAL, "a mount is [a-z0-9_-/], not 'lease' or 'sys...'");
    if (!mf_engine_find(q->type))
        return mf_api_reply_error(r, MF_EINVAL, "unknown engine type '%s' (postgres, pki)",
                                  q->type);
    int rc = mf_mounts_probe(r->srv, q->type, q->config_json[0] ? q->config_json : "{}",
                             on_probe, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

static void on_role_checked(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    const Mayfly__Api__EngineRolePutRequest *q = r->pb->engine_role_put;
    (void)s;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_ENOTLEADER ? MF_EUNAVAIL : MF_EINVAL,
                                  "role '%s' at '%s': %s", q->role, q->mount, mf_mjob_err(j));
    json_t *rec = json_pack("{s:s}", "role", q->role_json);
    char path[MF_KV_PATH_MAX];
    snprintf(path, sizeof(path), "sys/engines/%s/roles/%s", q->mount, q->role);
    propose_record(r, path, rec, finish_record);
    json_decref(rec);
}

/* The mount `name` (opened if need be), of engine `type` unless NULL; NULL
 * after answering r when there is none, or of another type (`wrong_type`). */
static struct mount *mount_for(struct req *r, const char *name, const char *type,
                               const char *wrong_type)
{
    struct mount *m;
    int rc = mf_mounts_get(r->srv, name, &m);
    if (rc) {
        mf_api_reply_error(r, rc, "no secrets engine is mounted at '%s'", name);
        return NULL;
    }
    if (type && strcmp(mf_mount_type(m), type) != 0) {
        mf_api_reply_error(r, MF_EINVAL, "%s", wrong_type);
        return NULL;
    }
    return m;
}

static void op_engine_role_put(struct req *r)
{
    const Mayfly__Api__EngineRolePutRequest *q = r->pb->engine_role_put;
    if (!valid_role_name(q->role))
        return mf_api_reply_error(r, MF_EINVAL, "a role name is 1..64 of [a-z0-9_-]");
    struct mount *m = mount_for(r, q->mount, NULL, NULL);
    if (!m)
        return;
    int rc = mf_mounts_role_put(m, q->role, q->role_json, on_role_checked, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

static void on_rotated(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    const char *mount = r->pb->engine_rotate_root->mount;
    (void)s;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_EINVAL ? MF_EINVAL : MF_EUNAVAIL,
                                  "rotate-root at '%s': %s", mount, mf_mjob_err(j));
    /* The database already takes only the new password: store it now. */
    json_t *rec = json_pack("{s:s, s:s}", "type", "postgres", "config", mf_mjob_text(j));
    char path[MF_KV_PATH_MAX];
    snprintf(path, sizeof(path), "sys/engines/%s", mount);
    propose_record(r, path, rec, finish_record);
    json_decref(rec);
}

static void op_engine_rotate_root(struct req *r)
{
    struct mount *m = mount_for(r, r->pb->engine_rotate_root->mount, "postgres",
                                "rotate-root applies to postgres engines");
    if (!m)
        return;
    int rc = mf_mounts_rotate_root(m, on_rotated, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

static void on_crl(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    (void)s;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_EINVAL ? MF_EINVAL : MF_EUNAVAIL, "%s",
                                  mf_mjob_err(j));
    Mayfly__Api__EngineCrlResponse out = MAYFLY__API__ENGINE_CRL_RESPONSE__INIT;
    out.crl_pem = (char *)mf_mjob_text(j);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_ENGINE_CRL;
    resp.engine_crl = &out;
    mf_api_reply(r, &resp);
}

/* The CRL is signed by the leader's pki engine (its revoked set is rebuilt
 * from the replicated leases when it opens), so any node forwards it there. */
static void op_engine_crl(struct req *r)
{
    struct mount *m = mount_for(r, r->pb->engine_crl->mount, "pki",
                                "a CRL comes from a pki engine");
    if (!m)
        return;
    int rc = mf_mounts_crl(m, mf_now_wall_ms(), on_crl, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

static void read_engine_list(struct req *r)
{
    struct mf_server *s = r->srv;
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    rc = mf_kv_list(txn, mf_fsm_state(s->fsm), "sys/engines/", NULL, MF_SRV_LIST_LIMIT_MAX,
                    &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
    Mayfly__Api__EngineInfo *infos = calloc(n ? n : 1, sizeof(*infos));
    Mayfly__Api__EngineInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    char **types = calloc(n ? n : 1, sizeof(char *));
    char ***roles = calloc(n ? n : 1, sizeof(char **));
    size_t k = 0;
    for (size_t i = 0; i < n && infos && ptrs && types && roles; i++) {
        const char *rest = paths[i] + strlen("sys/engines/");
        if (strstr(rest, "/roles/"))
            continue;
        mayfly__api__engine_info__init(&infos[k]);
        infos[k].mount = (char *)rest;
        json_t *rec = NULL;
        types[k] = (mf_ops_read_record(s, paths[i], &rec) == 0 &&
                    json_string_value(json_object_get(rec, "type")))
                       ? strdup(json_string_value(json_object_get(rec, "type")))
                       : strdup("?");
        json_decref(rec);
        infos[k].type = types[k];
        roles[k] = calloc(n, sizeof(char *));
        size_t plen = strlen(paths[i]);
        for (size_t x = 0; x < n && roles[k]; x++)
            if (strncmp(paths[x], paths[i], plen) == 0 && strncmp(paths[x] + plen, "/roles/", 7) == 0)
                roles[k][infos[k].n_roles++] = paths[x] + plen + 7;
        infos[k].roles = roles[k];
        ptrs[k] = &infos[k];
        k++;
    }
    Mayfly__Api__EngineListResponse out = MAYFLY__API__ENGINE_LIST_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.n_engines = k;
    out.engines = ptrs;
    out.read = read_info(s, r->pb, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_ENGINE_LIST;
    resp.engine_list = &out;
    mf_api_reply(r, &resp);
    for (size_t i = 0; i < k; i++) {
        free(types[i]);
        free(roles[i]);
    }
    free(types);
    free(roles);
    free(infos);
    free(ptrs);
    mf_kv_list_free(paths, n);
}

static void format_creds_lease_id(const struct req *r, char *id, size_t len)
{
    mf_lease_id_format(id, len, r->pb->creds_issue->mount, r->pb->creds_issue->role, r->seq);
}

static void finish_creds_activate(struct req *r, const void *res_ptr, Resp *resp)
{
    (void)res_ptr;
    char id[MF_LEASE_ID_MAX];
    format_creds_lease_id(r, id, sizeof(id));
    json_error_t je;
    json_t *fields = json_loads(r->secret_plain, 0, &je);
    size_t n = json_object_size(fields), i = 0;
    Mayfly__Api__CredsIssueResponse__DataEntry *e = calloc(n ? n : 1, sizeof(*e));
    Mayfly__Api__CredsIssueResponse__DataEntry **ep = calloc(n ? n : 1, sizeof(*ep));
    const char *key;
    json_t *val;
    json_object_foreach(fields, key, val) {
        if (!e || !ep)
            break;
        mayfly__api__creds_issue_response__data_entry__init(&e[i]);
        e[i].key = (char *)key;
        e[i].value = (char *)json_string_value(val);
        ep[i] = &e[i];
        i++;
    }
    Mayfly__Api__CredsIssueResponse out = MAYFLY__API__CREDS_ISSUE_RESPONSE__INIT;
    out.lease_id = id;
    out.expire_at_ms = r->expire_at_ms;
    out.n_data = i;
    out.data = ep;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_CREDS_ISSUE;
    resp->creds_issue = &out;
    mf_api_reply(r, resp);
    free(e);
    free(ep);
    json_decref(fields);
}

/* After a failed issue: the lease goes to revoking now, so the scheduler
 * revokes by name whatever the engine may have half-created. */
static void cleanup_failed_issue(struct mf_server *s, uint64_t seq)
{
    struct req *c = mf_req_internal(s, NULL);
    if (!c)
        return;
    Mayfly__Cmd__LeaseRevoke m = MAYFLY__CMD__LEASE_REVOKE__INIT;
    m.seq = seq;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE;
    cmd.lease_revoke = &m;
    mf_ops_propose(c, &cmd, NULL);
}

static void on_issued(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    if (mf_mjob_rc(j)) {
        cleanup_failed_issue(s, r->seq);
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_EINVAL ? MF_EINVAL : MF_EUNAVAIL,
                                  "the engine could not issue: %s", mf_mjob_err(j));
    }
    const struct mf_engine_cred *cred = mf_mjob_cred(j);
    json_t *fields = json_object();
    for (size_t i = 0; i < cred->fields_len; i++)
        json_object_set_new(fields, cred->fields[i].key, json_string(cred->fields[i].value));
    r->secret_plain = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(fields);
    if (!r->secret_plain) {
        cleanup_failed_issue(s, r->seq);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    char id[MF_LEASE_ID_MAX];
    format_creds_lease_id(r, id, sizeof(id));
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    int rc = mf_barrier_encrypt(s->barrier, id, r->seq, r->secret_plain,
                                strlen(r->secret_plain), &ct, &ct_len);
    if (rc) {
        cleanup_failed_issue(s, r->seq);
        return mf_api_reply_error(r, rc, "cannot encrypt the credential");
    }
    Mayfly__Cmd__LeaseActivate m = MAYFLY__CMD__LEASE_ACTIVATE__INIT;
    m.seq = r->seq;
    m.credential.data = ct;
    m.credential.len = ct_len;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE;
    cmd.lease_activate = &m;
    r->rid_suffix = 1; /* the second command of this request */
    mf_ops_propose(r, &cmd, finish_creds_activate);
    free(ct);
}

/* A retried creds issue (same request id: its answer was lost): the first
 * attempt's lease answers. If it is active, its credential (stored encrypted
 * with the lease) is the answer; if it is still issuing, the outcome is not
 * known yet. Never a second engine call for one lease. */
static void answer_retried_creds(struct req *r)
{
    struct mf_server *s = r->srv;
    MDB_txn *txn;
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = mf_srv_read_begin(s, &txn);
    if (!rc) {
        rc = mf_lease_get(txn, mf_fsm_state(s->fsm), r->seq, &rec);
        mf_srv_read_end(s, txn);
    }
    if (rc || rec->state != MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE || !rec->credential.len) {
        mf_lease_free(rec);
        return mf_api_reply_error(r, MF_EUNKNOWN, "an earlier attempt of this request has not "
                                                  "finished issuing; its lease will expire");
    }
    char id[MF_LEASE_ID_MAX];
    format_creds_lease_id(r, id, sizeof(id));
    uint8_t *plain = NULL;
    size_t len = 0;
    rc = mf_barrier_decrypt(s->barrier, id, r->seq, rec->credential.data, rec->credential.len,
                            &plain, &len);
    r->expire_at_ms = rec->expire_at_ms;
    mf_lease_free(rec);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot open the stored credential");
    r->secret_plain = malloc(len + 1);
    if (!r->secret_plain) {
        mf_barrier_wipe_free(plain, len);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    if (len)
        memcpy(r->secret_plain, plain, len);
    r->secret_plain[len] = '\0';
    mf_barrier_wipe_free(plain, len);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    finish_creds_activate(r, NULL, &resp);
}

static void finish_creds_grant(struct req *r, const void *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    (void)resp;
    r->seq = res->seq;
    r->expire_at_ms = res->expire_at_ms;
    if (res->duplicate)
        return answer_retried_creds(r);
    struct mount *m;
    int rc = mf_mounts_get(r->srv, r->pb->creds_issue->mount, &m);
    if (!rc)
        rc = mf_mounts_issue(m, r->pb->creds_issue->role, r->seq, r->expire_at_ms, on_issued, r);
    if (rc) {
        cleanup_failed_issue(r->srv, r->seq);
        mf_api_reply_error(r, MF_EUNAVAIL, "engine unavailable: %s", mf_strerror(rc));
    }
}

static void op_creds_issue(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__CredsIssueRequest *q = r->pb->creds_issue;
    struct mount *m;
    int rc = mf_mounts_get(s, q->mount, &m);
    if (rc)
        return mf_api_reply_error(r, MF_ENOTFOUND, "no secrets engine is mounted at '%s'",
                                  q->mount);
    uint64_t def = 0, max = 0;
    if (!mf_mounts_role_ttl(m, q->role, &def, &max))
        return mf_api_reply_error(r, MF_ENOTFOUND, "no role '%s' at '%s'", q->role, q->mount);
    uint64_t ttl = q->ttl_ms ? q->ttl_ms : def ? def : s->cfg->default_lease_ttl_ms;
    uint64_t cap = max && max < s->cfg->max_lease_ttl_ms ? max : s->cfg->max_lease_ttl_ms;
    if (ttl > cap)
        ttl = cap;
    Mayfly__Cmd__LeaseGrant lg = MAYFLY__CMD__LEASE_GRANT__INIT;
    lg.seq = mf_node_next_index(s->node);
    lg.mount = (char *)q->mount;
    lg.name = (char *)q->role;
    lg.ttl_ms = ttl;
    lg.max_ttl_ms = cap;
    lg.state = MAYFLY__CMD__LEASE_STATE__LEASE_ISSUING;
    lg.engine = (char *)q->mount;
    lg.owner_token_hash.data = r->token_hash;
    lg.owner_token_hash.len = 32;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    cmd.lease_grant = &lg;
    mf_ops_propose(r, &cmd, finish_creds_grant);
}

/* ---- reads ---- */

static void op_status(struct req *r)
{
    struct mf_server *s = r->srv;
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    Mayfly__Api__StatusResponse out = MAYFLY__API__STATUS_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.node_id = s->cfg->node_id;
    out.role = (char *)(st.role == MF_RAFT_LEADER      ? "leader"
                        : st.role == MF_RAFT_FOLLOWER ? "follower"
                                                      : "candidate");
    out.leader_id = st.lead;
    const char *la = NULL;
    if (st.lead == s->cfg->node_id)
        la = s->client_addr;
    else if (st.lead)
        la = mf_node_member_api_addr(s->node, st.lead);
    out.leader_addr = (char *)(la ? la : "");
    out.term = st.term;
    out.commit_index = st.commit;
    out.applied_index = mf_node_applied(s->node);
    out.sealed = mf_barrier_sealed(s->barrier);
    out.initialized = mf_srv_initialized(s);
    out.read = read_info(s, r->pb, &ri);
    Mayfly__Api__Member members[2 * MF_RAFT_NODES_MAX];
    Mayfly__Api__Member *ptrs[2 * MF_RAFT_NODES_MAX];
    size_t n = 0;
    for (uint32_t i = 0; i < st.conf.voters_len + st.conf.learners_len; i++) {
        bool voter = i < st.conf.voters_len;
        uint64_t id = voter ? st.conf.voters[i] : st.conf.learners[i - st.conf.voters_len];
        mayfly__api__member__init(&members[n]);
        members[n].id = id;
        const char *addr = mf_node_member_addr(s->node, id);
        members[n].addr = (char *)(addr ? addr : "");
        members[n].voter = voter;
        const char *zone = id == s->cfg->node_id ? s->cfg->zone : mf_node_member_zone(s->node, id);
        members[n].zone = (char *)(zone ? zone : "");
        ptrs[n] = &members[n];
        n++;
        if (!voter && id == s->cfg->node_id)
            out.role = "learner";
    }
    out.n_members = n;
    out.members = ptrs;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_STATUS;
    resp.status = &out;
    mf_api_reply(r, &resp);
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
    bool live = rec->state == MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE ||
                rec->state == MAYFLY__CMD__LEASE_STATE__LEASE_ISSUING;
    bool expiring = mf_now_wall_ms() + s->cfg->max_clock_skew_ms >= rec->expire_at_ms;
    mf_lease_free(rec);
    return live && !expiring ? 0 : MF_ELEASEEXPIRED;
}

static void read_kv_get(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__KvGetRequest *q = r->pb->kv_get;
    if (refuse_client_path(r, q->path))
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
    if (!rc && v->lease_seq)
        rc = lease_servable(s, txn, v->lease_seq, lease_id, sizeof(lease_id));
    mf_srv_read_end(s, txn);
    if (rc) {
        mf_kv_version_free(v);
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
    out.read = read_info(s, r->pb, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_KV_GET;
    resp.kv_get = &out;
    mf_api_reply(r, &resp);
    free(entries);
    free(ptrs);
    json_decref(obj); /* jansson does not wipe: values passed through TLS only */
}

static void read_kv_list(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__KvListRequest *q = r->pb->kv_list;
    if (reserved_path(q->prefix))
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
        if (reserved_path(paths[i]))
            free(paths[i]);
        else
            paths[kept++] = paths[i];
    }
    Mayfly__Api__KvListResponse out = MAYFLY__API__KV_LIST_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.n_keys = kept;
    out.keys = paths;
    out.next = (char *)(more && kept ? paths[kept - 1] : "");
    out.read = read_info(s, r->pb, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_KV_LIST;
    resp.kv_list = &out;
    mf_api_reply(r, &resp);
    mf_kv_list_free(paths, kept);
}

static void read_kv_metadata(struct req *r)
{
    struct mf_server *s = r->srv;
    const char *path = r->pb->kv_metadata_get->path;
    if (refuse_client_path(r, path))
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
    out.read = read_info(s, r->pb, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_KV_METADATA_GET;
    resp.kv_metadata_get = &out;
    mf_api_reply(r, &resp);
    mf_kv_meta_free(m);
    free(vm);
    free(ve);
    free(vp);
}

/* last_error is stored encrypted (error texts may name secrets): shown to
 * operators decrypted, into buf. */
static const char *lease_error_text(struct mf_server *s, uint64_t seq,
                                    const Mayfly__Cmd__LeaseRecord *rec, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!rec->last_error.len)
        return buf;
    uint8_t *plain = NULL;
    size_t plen = 0;
    if (mf_barrier_decrypt(s->barrier, MF_SRV_LEASE_ERROR_PATH, seq, rec->last_error.data,
                           rec->last_error.len, &plain, &plen) == 0) {
        snprintf(buf, len, "%.*s", (int)plen, (const char *)plain);
        mf_barrier_wipe_free(plain, plen);
    } else {
        snprintf(buf, len, "(cannot decrypt the stored error)");
    }
    return buf;
}

static void lease_info_fill(Mayfly__Api__LeaseInfo *li, const char *id,
                            const Mayfly__Cmd__LeaseRecord *rec)
{
    mayfly__api__lease_info__init(li);
    li->lease_id = (char *)id;
    li->state = (Mayfly__Api__LeaseState)rec->state; /* same numbering by design */
    li->issued_ms = rec->issued_ms;
    li->expire_at_ms = rec->expire_at_ms;
    li->max_expire_at_ms = rec->max_expire_at_ms;
    li->renewable = rec->state == MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE &&
                    rec->expire_at_ms < rec->max_expire_at_ms;
    li->engine = rec->engine;
}

static void read_lease_lookup(struct req *r)
{
    struct mf_server *s = r->srv;
    const char *id = r->pb->lease_lookup->lease_id;
    uint64_t seq;
    if (parse_lease_id(id, &seq))
        return mf_api_reply_error(r, MF_EINVAL, "'%s' is not a lease id", id);
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    rc = mf_lease_get(txn, st, seq, &rec);
    mf_srv_read_end(s, txn);
    char canonical[MF_LEASE_ID_MAX];
    if (!rc) {
        mf_lease_id_format(canonical, sizeof(canonical), rec->mount, rec->name, seq);
        if (strcmp(canonical, id) != 0) /* same SEQ, other mount/name: not this lease */
            rc = MF_ENOTFOUND;
    }
    if (rc) {
        mf_lease_free(rec);
        return mf_api_reply_error(r, rc, "no lease '%s'", id);
    }
    Mayfly__Api__LeaseInfo li;
    char errbuf[512];
    lease_info_fill(&li, canonical, rec);
    li.last_error = (char *)lease_error_text(s, seq, rec, errbuf, sizeof(errbuf));
    Mayfly__Api__LeaseLookupResponse out = MAYFLY__API__LEASE_LOOKUP_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.lease = &li;
    out.read = read_info(s, r->pb, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_LOOKUP;
    resp.lease_lookup = &out;
    mf_api_reply(r, &resp);
    mf_lease_free(rec);
}

static void read_lease_list(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__LeaseListRequest *q = r->pb->lease_list;
    size_t limit = q->limit ? q->limit : MF_SRV_LIST_LIMIT_DEFAULT;
    if (limit > MF_SRV_LIST_LIMIT_MAX)
        limit = MF_SRV_LIST_LIMIT_MAX;
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    struct mf_lease_item *items = NULL;
    size_t n = 0;
    int more = 0;
    rc = mf_lease_list(txn, st, q->prefix, (int)q->state, q->after[0] ? q->after : NULL, limit,
                       &items, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
    Mayfly__Api__LeaseInfo *infos = calloc(n ? n : 1, sizeof(*infos));
    Mayfly__Api__LeaseInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    if (!infos || !ptrs) {
        free(infos);
        free(ptrs);
        mf_lease_list_free(items, n);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    char (*errs)[256] = calloc(n ? n : 1, sizeof(*errs));
    for (size_t i = 0; i < n; i++) {
        lease_info_fill(&infos[i], items[i].id, items[i].rec);
        if (errs)
            infos[i].last_error =
                (char *)lease_error_text(s, items[i].seq, items[i].rec, errs[i], sizeof(errs[i]));
        ptrs[i] = &infos[i];
    }
    Mayfly__Api__LeaseListResponse out = MAYFLY__API__LEASE_LIST_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.n_leases = n;
    out.leases = ptrs;
    out.next = (char *)(more && n ? items[n - 1].id : "");
    out.read = read_info(s, r->pb, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_LIST;
    resp.lease_list = &out;
    mf_api_reply(r, &resp);
    free(infos);
    free(ptrs);
    free(errs);
    mf_lease_list_free(items, n);
}

static void read_token_lookup(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__TokenLookupRequest *q = r->pb->token_lookup;
    uint8_t hash[32];
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    if (q->by_accessor)
        rc = mf_token_by_accessor(txn, st, q->token, hash);
    else if (q->token[0])
        sha256(q->token, strlen(q->token), hash);
    else
        memcpy(hash, r->token_hash, 32);
    Mayfly__Cmd__TokenRecord *t = NULL, *parent = NULL;
    if (!rc)
        rc = mf_token_get(txn, st, hash, &t);
    if (!rc && t->parent_hash.len == 32)
        mf_token_get(txn, st, t->parent_hash.data, &parent);
    mf_srv_read_end(s, txn);
    if (rc)
        return mf_api_reply_error(r, rc == MF_ENOTFOUND ? MF_ENOTFOUND : rc, "no such token");
    Mayfly__Api__TokenLookupResponse out = MAYFLY__API__TOKEN_LOOKUP_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    uint64_t now = mf_now_wall_ms();
    out.accessor = t->accessor;
    out.expire_at_ms = t->expire_at_ms;
    out.ttl_ms = t->expire_at_ms > now ? t->expire_at_ms - now : 0;
    out.parent_accessor = parent ? parent->accessor : "";
    out.orphan = t->orphan;
    out.n_policies = t->n_policies;
    out.policies = t->policies;
    out.read = read_info(s, r->pb, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_TOKEN_LOOKUP;
    resp.token_lookup = &out;
    mf_api_reply(r, &resp);
    mf_token_free(t);
    mf_token_free(parent);
}

/* Every operation behind the auth check: writes run on the leader (a
 * follower forwards them), reads on any node after a read barrier. Status,
 * unseal, init and seal are dispatched before this table. */
struct op_def {
    Mayfly__Api__Request__OpCase op_case;
    void (*run)(struct req *r);
    bool leader; /* runs on the leader (writes, and engine calls) */
};

#define OP(name, fn, leader) {MAYFLY__API__REQUEST__OP_##name, fn, leader}
static const struct op_def op_table[] = {
    OP(LEASE_GRANT, op_lease_grant, true),
    OP(LEASE_RENEW, op_lease_renew, true),
    OP(LEASE_REVOKE, op_lease_revoke, true),
    OP(KV_PUT, op_kv_put, true),
    OP(KV_VERSIONS, op_kv_versions, true),
    OP(KV_METADATA_PUT, op_kv_metadata_put, true),
    OP(TOKEN_CREATE, op_token_create, true),
    OP(TOKEN_REVOKE, op_token_revoke, true),
    OP(INIT, op_init, true),
    OP(CREDS_ISSUE, op_creds_issue, true),
    OP(ENGINE_ENABLE, op_engine_enable, true),
    OP(ENGINE_ROLE_PUT, op_engine_role_put, true),
    OP(ENGINE_ROTATE_ROOT, op_engine_rotate_root, true),
    OP(ENGINE_CRL, op_engine_crl, true), /* signed by the leader's engine */
    OP(KV_GET, read_kv_get, false),
    OP(KV_LIST, read_kv_list, false),
    OP(KV_METADATA_GET, read_kv_metadata, false),
    OP(LEASE_LOOKUP, read_lease_lookup, false),
    OP(LEASE_LIST, read_lease_list, false),
    OP(TOKEN_LOOKUP, read_token_lookup, false),
    OP(ENGINE_LIST, read_engine_list, false),
};
#undef OP

static const struct op_def *op_find(Mayfly__Api__Request__OpCase op_case)
{
    for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++)
        if (op_table[i].op_case == op_case)
            return &op_table[i];
    return NULL;
}

static void run_op(struct req *r)
{
    const struct op_def *d = op_find(r->pb->op_case);
    if (!d)
        return mf_api_reply_error(r, MF_EINVAL, "unknown operation %d", r->pb->op_case);
    d->run(r);
}

static void on_read_index(void *arg, int rc)
{
    struct req *r = arg;
    if (rc)
        return mf_api_reply_error(r, MF_EUNAVAIL,
                                  "cannot confirm a linearizable read (%s); retry, or ask for "
                                  "-consistency stale",
                                  mf_strerror(rc));
    run_op(r);
}

/* Writes run on the leader: forward from a follower (once: a forwarded
 * request that lands on a non-leader is refused, so nothing loops). */
static void route_write(struct req *r)
{
    struct mf_server *s = r->srv;
    if (mf_node_is_leader(s->node))
        return run_op(r);
    if (r->peer)
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node is no longer the leader; retry");
    int rc = mf_api_forward(s, r);
    if (rc)
        mf_api_reply_error(r, MF_EUNAVAIL, "no leader to forward to (%s); retry",
                           mf_strerror(rc));
}

/* The wire format accepts any number for an enum: refuse what we do not know. */
static int validate_enums(const Req *q)
{
    if (q->consistency != MAYFLY__API__CONSISTENCY__LINEARIZABLE &&
        q->consistency != MAYFLY__API__CONSISTENCY__STALE)
        return MF_EINVAL;
    if (q->op_case == MAYFLY__API__REQUEST__OP_LEASE_LIST &&
        (q->lease_list->state < MAYFLY__API__LEASE_STATE__LEASE_STATE_UNSPECIFIED ||
         q->lease_list->state > MAYFLY__API__LEASE_STATE__IRREVOCABLE))
        return MF_EINVAL;
    if (q->op_case == MAYFLY__API__REQUEST__OP_KV_VERSIONS &&
        (q->kv_versions->op < MAYFLY__API__KV_VERSION_OP__KV_DELETE ||
         q->kv_versions->op > MAYFLY__API__KV_VERSION_OP__KV_DESTROY))
        return MF_EINVAL;
    return 0;
}

void mf_ops_dispatch(struct req *r)
{
    struct mf_server *s = r->srv;
    const Req *q = r->pb;
    if (validate_enums(q))
        return mf_api_reply_error(r, MF_EINVAL, "a field has a value this server does not know");
    if (s->failed)
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node stopped after a storage failure");
    switch (q->op_case) {
    case MAYFLY__API__REQUEST__OP__NOT_SET:
        return mf_api_reply_error(r, MF_EINVAL, "the request names no operation");
    case MAYFLY__API__REQUEST__OP_STATUS:
        return op_status(r);
    case MAYFLY__API__REQUEST__OP_UNSEAL:
        return op_unseal(r);
    case MAYFLY__API__REQUEST__OP_INIT:
        return route_write(r);
    default:
        break;
    }
    bool sealed = mf_barrier_sealed(s->barrier);
    if (sealed && !r->peer) {
        if (!mf_srv_initialized(s))
            return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised");
        return mf_api_reply_error(r, MF_ESEALED, "this node is sealed: mayfly operator unseal");
    }
    int rc = check_token(s, r);
    if (rc)
        return mf_api_reply_error(r, MF_EUNAUTH, "missing, unknown or expired token");
    if (q->op_case == MAYFLY__API__REQUEST__OP_SEAL)
        return op_seal(r);
    const struct op_def *d = op_find(q->op_case);
    if (!d)
        return mf_api_reply_error(r, MF_EINVAL, "unknown operation %d", q->op_case);
    if (d->leader) {
        if (sealed && s->role == MF_RAFT_LEADER)
            return mf_api_reply_error(r, MF_ESEALED, "the leader is sealed");
        return route_write(r);
    }
    if (q->consistency == MAYFLY__API__CONSISTENCY__STALE)
        return run_op(r);
    rc = mf_node_read_index(s->node, on_read_index, r);
    if (rc)
        mf_api_reply_error(r, MF_EUNAVAIL, "cannot start a linearizable read (%s); retry",
                           mf_strerror(rc));
}
