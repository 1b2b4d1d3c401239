/* Policy operations (op_policy.h): write and delete propose PolicyPut and
 * PolicyDelete; read, list and check answer from the node's compiled policy
 * set (authz.h). */
#include "server/op_policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "auth/policy.h"
#include "common/env.h"
#include "common/err.h"
#include "server/authz.h"
#include "store/tokens.h"

#define BUILTIN_ROOT "root"
#define BUILTIN_DEFAULT "default"
#define PARSE_ERR_LEN 512

/* The parser's and the set's errors as the client's codes. */
static int public_code(int rc)
{
    return rc == MF_EINVAL || rc == MF_ETOOLARGE ? rc : MF_EINTERNAL;
}

void mf_op_policy_write(struct req *r)
{
    const Mayfly__Api__PolicyWriteRequest *q = r->pb->policy_write;
    if (strcmp(q->name, BUILTIN_ROOT) == 0)
        return mf_api_reply_error(r, MF_EINVAL, "policy 'root' is built in: it cannot be written");
    /* Compile it now, and into a copy of the current set, so that everything
     * the apply side will do with it (authz.h rebuilds the set from the
     * store) is known to succeed before anything is proposed. */
    char err[PARSE_ERR_LEN] = "";
    struct mf_policy *p = NULL;
    size_t len = strlen(q->body);
    int rc = mf_policy_parse(q->name, q->body, len, &p, err, sizeof(err));
    if (rc) /* the parser's message names the policy or the pattern at fault */
        return mf_api_reply_error(r, public_code(rc), "%s", err[0] ? err : mf_strerror(rc));
    struct mf_policy_set *next = NULL;
    rc = mf_policy_set_put(mf_authz_set(r->srv), p, &next, err, sizeof(err));
    mf_policy_release(p);
    mf_policy_set_release(next);
    if (rc)
        return mf_api_reply_error(r, public_code(rc), "policy %s: %s", q->name,
                                  err[0] ? err : mf_strerror(rc));
    Mayfly__Cmd__PolicyPut m = MAYFLY__CMD__POLICY_PUT__INIT;
    m.name = q->name;
    m.body.data = (uint8_t *)q->body;
    m.body.len = len;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_POLICY_PUT;
    cmd.policy_put = &m;
    mf_handler_propose(r, &cmd, NULL);
}

void mf_op_policy_delete(struct req *r)
{
    const char *name = r->pb->policy_delete->name;
    if (strcmp(name, BUILTIN_ROOT) == 0 || strcmp(name, BUILTIN_DEFAULT) == 0)
        return mf_api_reply_error(r, MF_EINVAL, "policy '%s' is built in: it cannot be deleted",
                                  name);
    /* An unknown name is the store's NOT_FOUND: it knows what has applied,
     * this node's set may not have been rebuilt yet. */
    Mayfly__Cmd__PolicyDelete m = MAYFLY__CMD__POLICY_DELETE__INIT;
    m.name = (char *)name;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_POLICY_DELETE;
    cmd.policy_delete = &m;
    mf_handler_propose(r, &cmd, NULL);
}

void mf_op_policy_read(struct req *r)
{
    const char *name = r->pb->policy_read->name;
    const struct mf_policy *p = mf_policy_set_find(mf_authz_set(r->srv), name);
    if (!p)
        return mf_api_reply_error(r, MF_ENOTFOUND, "no policy named '%s'", name);
    char *json = NULL;
    if (mf_policy_render(p, &json))
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    Mayfly__Api__PolicyReadResponse out = MAYFLY__API__POLICY_READ_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.name = (char *)mf_policy_name(p);
    out.policy_json = json;
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_POLICY_READ;
    resp.policy_read = &out;
    mf_api_reply(r, &resp);
    free(json);
}

void mf_op_policy_list(struct req *r)
{
    const struct mf_policy_set *set = mf_authz_set(r->srv);
    size_t n = mf_policy_set_count(set);
    char **names = calloc(n ? n : 1, sizeof(*names));
    if (!names)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = (char *)mf_policy_set_name_at(set, i);
    Mayfly__Api__PolicyListResponse out = MAYFLY__API__POLICY_LIST_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.n_names = n;
    out.names = names;
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_POLICY_LIST;
    resp.policy_list = &out;
    mf_api_reply(r, &resp);
    free(names);
}

/* ---- policy check ---- */

/* What a check decides with; everything borrowed from `claims_doc` and
 * `token` lives until check_free. */
struct check {
    const char **policies;
    size_t n_policies;
    struct mf_authz_claim *claims;
    size_t n_claims;
    json_t *claims_doc;
    Mayfly__Cmd__TokenRecord *token;
};

static void check_free(struct check *c)
{
    free(c->policies);
    free(c->claims);
    json_decref(c->claims_doc);
    mf_token_free(c->token);
}

/* The stored record of an unexpired token. @return 0; MF_ENOTFOUND; storage
 * errors. */
static int token_record(struct mf_server *s, const char *token, Mayfly__Cmd__TokenRecord **out)
{
    uint8_t hash[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), hash);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    rc = mf_token_get(txn, mf_fsm_state(s->fsm), hash, out);
    mf_srv_read_end(s, txn);
    if (rc)
        return rc;
    if ((*out)->expire_at_ms && mf_now_wall_ms() >= (*out)->expire_at_ms) {
        mf_token_free(*out);
        *out = NULL;
        return MF_ENOTFOUND;
    }
    return 0;
}

/* The names to decide with: `given` and `default` (once). */
static int policies_with_default(struct check *c, char **given, size_t n)
{
    c->policies = calloc(n + 1, sizeof(*c->policies));
    if (!c->policies)
        return -ENOMEM;
    bool has_default = false;
    for (size_t i = 0; i < n; i++) {
        c->policies[c->n_policies++] = given[i];
        has_default |= strcmp(given[i], BUILTIN_DEFAULT) == 0;
    }
    if (!has_default)
        c->policies[c->n_policies++] = BUILTIN_DEFAULT;
    return 0;
}

/* claims_json: a flat JSON object of strings. Answers r on an error. */
static bool refuse_claims(struct req *r, const char *text, struct check *c)
{
    if (!text[0])
        return false;
    if (strlen(text) > MF_OP_POLICY_CHECK_CLAIMS_MAX_BYTES) {
        mf_api_reply_error(r, MF_ETOOLARGE, "claims: over %d bytes",
                           MF_OP_POLICY_CHECK_CLAIMS_MAX_BYTES);
        return true;
    }
    json_error_t je;
    c->claims_doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!c->claims_doc) {
        mf_api_reply_error(r, MF_EINVAL, "claims: %s (line %d)", je.text, je.line);
        return true;
    }
    if (!json_is_object(c->claims_doc)) {
        mf_api_reply_error(r, MF_EINVAL, "claims: not a JSON object");
        return true;
    }
    size_t n = json_object_size(c->claims_doc);
    if (n > MF_OP_POLICY_CHECK_CLAIMS_MAX) {
        mf_api_reply_error(r, MF_ETOOLARGE, "claims: more than %d", MF_OP_POLICY_CHECK_CLAIMS_MAX);
        return true;
    }
    c->claims = calloc(n ? n : 1, sizeof(*c->claims));
    if (!c->claims) {
        mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
        return true;
    }
    const char *key;
    json_t *v;
    json_object_foreach(c->claims_doc, key, v) {
        if (!json_is_string(v)) {
            mf_api_reply_error(r, MF_EINVAL, "claims: '%s' is not a string", key);
            return true;
        }
        c->claims[c->n_claims].key = key;
        c->claims[c->n_claims].value = json_string_value(v);
        c->n_claims++;
    }
    return false;
}

static void reply_decision(struct req *r, const struct mf_authz_decision *d)
{
    const char *caps[8];
    size_t n_caps = 0;
    for (unsigned bit = MF_CAP_CREATE; bit <= MF_CAP_DENY; bit <<= 1)
        if ((d->caps & bit) && mf_cap_name(bit) && n_caps < sizeof(caps) / sizeof(caps[0]))
            caps[n_caps++] = mf_cap_name(bit);
    Mayfly__Api__PolicyCheckResponse out = MAYFLY__API__POLICY_CHECK_RESPONSE__INIT;
    out.allowed = d->allowed;
    out.policy = (char *)(d->policy ? d->policy : "");
    out.rule = (char *)(d->pattern ? d->pattern : "");
    out.n_capabilities = n_caps;
    out.capabilities = (char **)caps;
    out.reason = (char *)mf_authz_reason_text(d->reason);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_POLICY_CHECK;
    resp.policy_check = &out;
    mf_api_reply(r, &resp);
}

/* Answers r when the request is malformed; fills areq and ctx otherwise. */
static bool refuse_check(struct req *r, struct mf_authz_request *areq, struct mf_authz_ctx *ctx)
{
    const Mayfly__Api__PolicyCheckRequest *q = r->pb->policy_check;
    if (mf_cap_parse(q->capability, &areq->cap) || areq->cap == MF_CAP_DENY) {
        mf_api_reply_error(r, MF_EINVAL,
                           "'%s' is not a capability: read, create, update, delete, list or sudo",
                           q->capability);
        return true;
    }
    if (!q->path[0]) {
        mf_api_reply_error(r, MF_EINVAL, "policy check needs a path");
        return true;
    }
    areq->path = q->path;
    if (q->token[0] && q->n_policies) {
        mf_api_reply_error(r, MF_EINVAL, "policy check takes a token or policies, not both");
        return true;
    }
    if (q->n_policies > MF_OP_POLICY_CHECK_POLICIES_MAX) {
        mf_api_reply_error(r, MF_ETOOLARGE, "more than %d policies",
                           MF_OP_POLICY_CHECK_POLICIES_MAX);
        return true;
    }
    memset(ctx, 0, sizeof(*ctx));
    ctx->client.family = MF_AUTHZ_ADDR_NONE;
    if (q->remote_addr[0] && mf_authz_addr_parse(q->remote_addr, &ctx->client)) {
        mf_api_reply_error(r, MF_EINVAL, "'%s' is not an IP address", q->remote_addr);
        return true;
    }
    ctx->now_ms = mf_now_wall_ms();
    return false;
}

void mf_op_policy_check(struct req *r)
{
    const Mayfly__Api__PolicyCheckRequest *q = r->pb->policy_check;
    struct mf_authz_request areq;
    struct mf_authz_ctx ctx;
    if (refuse_check(r, &areq, &ctx))
        return;
    struct check c = {0};
    if (refuse_claims(r, q->claims_json, &c))
        return check_free(&c);
    ctx.claims = c.claims;
    ctx.claims_n = c.n_claims;
    int rc = 0;
    if (q->token[0]) {
        rc = token_record(r->srv, q->token, &c.token);
        if (rc == MF_ENOTFOUND) {
            check_free(&c);
            return mf_api_reply_error(r, MF_ENOTFOUND, "no such token (or it has expired)");
        }
        if (rc) {
            check_free(&c);
            return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
        }
        rc = policies_with_default(&c, c.token->policies, c.token->n_policies);
    } else {
        rc = policies_with_default(&c, q->policies, q->n_policies);
    }
    struct mf_authz_decision d;
    if (!rc)
        rc = mf_authz_decide_with(r->srv, c.policies, c.n_policies, &areq, &ctx, &d);
    if (rc)
        mf_api_reply_error(r, MF_EINTERNAL, "cannot decide: %s", mf_strerror(rc));
    else
        reply_decision(r, &d);
    check_free(&c);
}
