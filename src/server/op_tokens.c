/* Tokens: authentication of every request, create, revoke, lookup.
 *
 * A token is "mf." + 64 hex digits from the CSPRNG; the store keeps only its
 * SHA-256. The new token travels back to a retried create (same request id)
 * through the idempotency entry, encrypted under the barrier. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include <openssl/sha.h>

#include "server/authz.h"
#include "server/handler.h"
#include "server/op_tokens.h"
#include "server/proposer.h"
#include "store/tokens.h"

#define LOG_MOD "tokens"
#define TOKEN_PREFIX "mf."
#define TOKEN_RANDOM_BYTES 32
#define ACCESSOR_RANDOM_BYTES 12
#define TOKEN_SECRET_PATH "sys/token"
#define TOKEN_TTL_DEFAULT_MS (UINT64_C(768) * 3600 * 1000) /* then capped by max_token_ttl_ms */
#define ROOT_POLICY "root"
#define DEFAULT_POLICY "default"
#define ORPHAN_PATH "auth/token/create-orphan"
#define LOOKUP_ACCESSOR_PATH "auth/token/lookup-accessor"

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

/* ---- authorisation ---- */

int mf_tokens_authenticate(struct req *r)
{
    struct mf_server *s = r->srv;
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
    /* The same rule as a lease-bound read (mf_lease_servable): refused from
     * expire_at - max_clock_skew_ms on by this node's clock, so a token is
     * never honoured after its expire_at in true time while clocks are
     * within the bound (README.md "Time model"). */
    uint64_t now = mf_now_wall_ms(), skew = s->cfg->max_clock_skew_ms;
    bool expired = t->expire_at_ms && !(now < t->expire_at_ms && skew < t->expire_at_ms - now);
    if (expired) {
        mf_token_free(t);
        return MF_EUNAUTH;
    }
    /* That rule needs a clock within the bound, as a lease-bound read does:
     * a node whose clock does not agree with the voters' cannot honour a
     * token that expires (one without an expiry needs no clock). */
    char why[160];
    if (t->expire_at_ms && mf_proposer_clock_check(s->prop, false, why, sizeof(why))) {
        mf_token_free(t);
        return MF_EUNAVAIL;
    }
    mf_token_free(r->token);
    r->token = t; /* its policies decide (authz.c) */
    r->has_token = true;
    return 0;
}

/* A new token: "mf." + 64 hex digits of CSPRNG output. */
static int make_token(char *token, size_t len, char *accessor, size_t acc_len)
{
    uint8_t raw[TOKEN_RANDOM_BYTES];
    if (len < sizeof(TOKEN_PREFIX) + 2 * TOKEN_RANDOM_BYTES ||
        acc_len < 2 * ACCESSOR_RANDOM_BYTES + 1 || mf_rand_bytes(raw, sizeof(raw)))
        return MF_ECRYPTO;
    memcpy(token, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
    hex(raw, sizeof(raw), token + sizeof(TOKEN_PREFIX) - 1);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (mf_rand_bytes(raw, ACCESSOR_RANDOM_BYTES))
        return MF_ECRYPTO;
    hex(raw, ACCESSOR_RANDOM_BYTES, accessor);
    return 0;
}

/* The write id (AAD) of a token create's kept secret: derived from the
 * request id when there is one, so the answer to a retried create (the first
 * command's result) opens with the retry's request; else the entry's index. */
uint64_t mf_tokens_write_id(const struct req *r)
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
int mf_tokens_secret_open(struct mf_server *s, const Result *res, uint64_t write_id,
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

static void finish_token_create(struct req *r, const Result *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    char *token = NULL, *accessor = NULL;
    /* The secret kept with the result is the first answer's (a retried create
     * gets the same token back); its write id is the first command's index. */
    int rc = mf_tokens_secret_open(r->srv, res, mf_tokens_write_id(r), &token, &accessor);
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

int mf_tokens_new(struct mf_server *s, const struct mf_token_spec *spec, uint64_t write_id,
                  struct mf_token_new *tn)
{
    memset(tn, 0, sizeof(*tn));
    int rc = make_token(tn->token, sizeof(tn->token), tn->accessor, sizeof(tn->accessor));
    if (rc)
        return rc;
    sha256(tn->token, strlen(tn->token), tn->hash);
    Mayfly__Cmd__TokenCreate *m = &tn->create;
    mayfly__cmd__token_create__init(m);
    m->hash.data = tn->hash;
    m->hash.len = 32;
    m->accessor = tn->accessor;
    m->policies = spec->policies;
    m->n_policies = spec->n_policies;
    m->ttl_ms = spec->ttl_ms;
    m->max_ttl_ms = spec->max_ttl_ms;
    m->no_default_policy = spec->no_default_policy;
    m->orphan = spec->parent_hash == NULL;
    if (spec->parent_hash) {
        m->parent_hash.data = (uint8_t *)spec->parent_hash;
        m->parent_hash.len = 32;
    }
    /* Keep "token accessor" encrypted with the idempotency entry, so a
     * retried create (same request id) answers the same token. */
    char secret[sizeof(tn->token) + sizeof(tn->accessor) + 1];
    snprintf(secret, sizeof(secret), "%s %s", tn->token, tn->accessor);
    size_t ct_len = 0;
    rc = mf_barrier_encrypt(s->barrier, TOKEN_SECRET_PATH, write_id, secret, strlen(secret),
                            &tn->secret_ct, &ct_len);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc) {
        mf_tokens_new_wipe(tn);
        return rc;
    }
    mayfly__cmd__command__init(&tn->cmd);
    tn->cmd.result_secret.data = tn->secret_ct;
    tn->cmd.result_secret.len = ct_len;
    tn->cmd.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE;
    tn->cmd.token_create = &tn->create;
    return 0;
}

void mf_tokens_new_wipe(struct mf_token_new *tn)
{
    OPENSSL_cleanse(tn->token, sizeof(tn->token));
    free(tn->secret_ct);
    tn->secret_ct = NULL;
}

void mf_tokens_propose_create(struct req *r, const struct mf_token_spec *spec,
                              mf_handler_finish_cb finish)
{
    struct mf_server *s = r->srv;
    r->write_id = mf_propose_next_index(s->prop);
    struct mf_token_new tn;
    int rc = mf_tokens_new(s, spec, mf_tokens_write_id(r), &tn);
    if (rc)
        return mf_api_reply_error(r, rc == MF_ECRYPTO ? MF_EINTERNAL : rc,
                                  "cannot make the token: %s", mf_strerror(rc));
    mf_handler_propose(r, &tn.cmd, finish);
    mf_tokens_new_wipe(&tn);
}

static bool lists(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* The caller's token record (r authenticated). @return 0; MF_EUNAUTH (gone
 * meanwhile); storage errors. */
static int caller_token(struct req *r, Mayfly__Cmd__TokenRecord **out)
{
    *out = NULL;
    if (!r->has_token)
        return MF_EUNAUTH;
    MDB_txn *txn;
    int rc = mf_srv_read_begin(r->srv, &txn);
    if (rc)
        return rc;
    rc = mf_token_get(txn, mf_fsm_state(r->srv->fsm), r->token_hash, out);
    mf_srv_read_end(r->srv, txn);
    return rc == MF_ENOTFOUND ? MF_EUNAUTH : rc;
}

/* Vault's rule: a child's policies are a subset of its parent's, unless the
 * parent holds `root` or the caller may create orphans; `default` is the
 * parent's when the parent carries it. The first policy refused, or NULL. */
static const char *policy_not_held(const Mayfly__Cmd__TokenRecord *parent, char *const *want,
                                   size_t n)
{
    if (lists(parent->policies, parent->n_policies, ROOT_POLICY))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        bool is_default = strcmp(want[i], DEFAULT_POLICY) == 0;
        if (!lists(parent->policies, parent->n_policies, want[i]) &&
            !(is_default && !parent->no_default_policy))
            return want[i];
    }
    return NULL;
}

/* The TTL a new token gets: asked (0: the default), never more than the
 * configured maximum nor, for a child, its parent's remaining TTL (a parent
 * without expiry sets no cap). The store caps a child at its parent's expiry
 * again at apply time, with the command's clock. 0: the parent has expired. */
static uint64_t token_ttl(const struct mf_server *s, uint64_t asked_ms,
                          const Mayfly__Cmd__TokenRecord *parent, uint64_t now_ms)
{
    uint64_t ttl = asked_ms ? asked_ms : TOKEN_TTL_DEFAULT_MS;
    if (ttl > s->cfg->max_token_ttl_ms)
        ttl = s->cfg->max_token_ttl_ms;
    if (parent && parent->expire_at_ms) {
        uint64_t left = parent->expire_at_ms > now_ms ? parent->expire_at_ms - now_ms : 0;
        if (ttl > left)
            ttl = left;
    }
    return ttl;
}

void mf_op_token_create(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__TokenCreateRequest *q = r->pb->token_create;
    Mayfly__Cmd__TokenRecord *caller = NULL;
    int rc = caller_token(r, &caller);
    if (rc)
        return mf_api_reply_error(r, rc, "%s", rc == MF_EUNAUTH ? "the caller's token is gone"
                                                                 : mf_strerror(rc));
    bool may_orphan = mf_authz_allows(r, MF_CAP_SUDO, ORPHAN_PATH);
    if (q->orphan && !may_orphan) {
        mf_token_free(caller);
        return mf_api_reply_error(r, MF_EPERM, "permission denied: 'sudo' on '%s' is needed "
                                               "for an orphan token", ORPHAN_PATH);
    }
    /* No policies asked: the parent's, as Vault does. */
    char **policies = q->n_policies ? q->policies : caller->policies;
    size_t n_policies = q->n_policies ? q->n_policies : caller->n_policies;
    const char *refused = may_orphan ? NULL : policy_not_held(caller, policies, n_policies);
    if (refused) {
        mf_api_reply_error(r, MF_EPERM, "permission denied: a child token's policies must "
                                        "be among its parent's; '%.128s' is not", refused);
        mf_token_free(caller); /* after the answer: `refused` may point into it */
        return;
    }
    /* An orphan is nobody's child: only the configured maximum caps it. */
    uint64_t ttl = token_ttl(s, q->ttl_ms, q->orphan ? NULL : caller, mf_now_wall_ms());
    if (ttl == 0) {
        mf_token_free(caller);
        return mf_api_reply_error(r, MF_EUNAUTH, "the caller's token has expired");
    }
    struct mf_token_spec spec = {
        .policies = policies,
        .n_policies = n_policies,
        .ttl_ms = ttl,
        .max_ttl_ms = s->cfg->max_token_ttl_ms,
        .no_default_policy = q->no_default_policy,
        .parent_hash = q->orphan ? NULL : r->token_hash,
    };
    mf_tokens_propose_create(r, &spec, finish_token_create);
    mf_token_free(caller); /* the command was packed: nothing borrows it now */
}

void mf_op_token_revoke(struct req *r)
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
    mf_handler_propose(r, &cmd, NULL);
}

void mf_op_token_lookup(struct req *r)
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
    /* Another token's parent accessor is a handle to revoke the parent with:
     * only for a caller that may look tokens up by accessor. */
    bool itself = r->has_token && CRYPTO_memcmp(hash, r->token_hash, 32) == 0;
    bool show_parent = itself || mf_authz_allows(r, MF_CAP_UPDATE, LOOKUP_ACCESSOR_PATH);
    out.parent_accessor = parent && show_parent ? parent->accessor : "";
    out.orphan = t->orphan;
    out.n_policies = t->n_policies;
    out.policies = t->policies;
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_TOKEN_LOOKUP;
    resp.token_lookup = &out;
    mf_api_reply(r, &resp);
    mf_token_free(t);
    mf_token_free(parent);
}

static void finish_token_renew(struct req *r, const Result *res, Resp *resp)
{
    Mayfly__Api__TokenRenewResponse out = MAYFLY__API__TOKEN_RENEW_RESPONSE__INIT;
    out.ttl_ms = res->ttl_ms;
    out.expire_at_ms = res->expire_at_ms;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_TOKEN_RENEW;
    resp->token_renew = &out;
    mf_api_reply(r, resp);
}

void mf_op_token_renew(struct req *r)
{
    const Mayfly__Api__TokenRenewRequest *q = r->pb->token_renew;
    uint8_t hash[32];
    if (q->token && q->token[0])
        sha256(q->token, strlen(q->token), hash);
    else if (r->has_token)
        memcpy(hash, r->token_hash, 32);
    else
        return mf_api_reply_error(r, MF_EUNAUTH, "no token to renew");
    Mayfly__Cmd__TokenRenew m = MAYFLY__CMD__TOKEN_RENEW__INIT;
    m.hash.data = hash;
    m.hash.len = 32;
    m.increment_ms = q->increment_ms;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_RENEW;
    cmd.token_renew = &m;
    mf_handler_propose(r, &cmd, finish_token_renew);
}
