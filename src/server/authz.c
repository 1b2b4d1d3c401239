/* Authorization on this node (authz.h): the policy set compiled from the
 * replicated state, and decisions for requests. */
#include "server/authz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "net/addr.h"
#include "store/policies.h"

#define LOG_MOD "authz"
#define TOKEN_POLICIES_MAX 256 /* policies one decision considers (policy check allows as many) */
#define TOKEN_CLAIMS_MAX 32    /* metadata pairs a token carries (store/tokens.c) */

struct mf_authz {
    struct mf_policy_set *set;
};

struct build {
    struct mf_policy_set *set;
    int rc;
};

static int add_stored(void *arg, const char *name, const uint8_t *body, size_t len)
{
    struct build *b = arg;
    struct mf_policy_set *next = NULL;
    char err[256] = "";
    int rc = mf_policy_set_put_json(b->set, name, (const char *)body, len, &next, err,
                                    sizeof(err));
    if (rc == -ENOMEM)
        return b->rc = rc;
    if (rc) { /* written through the API, so it parsed then: a newer rule refuses it */
        MF_ERROR(LOG_MOD, "stored policy '%s' does not compile (%s): left out", name, err);
        return 0;
    }
    mf_policy_set_release(b->set);
    b->set = next;
    return 0;
}

/* A fresh set from the state database, or NULL (logged). */
static struct mf_policy_set *load(struct mf_server *s)
{
    struct build b = {0};
    if (mf_policy_set_new(&b.set))
        return NULL;
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (!rc) {
        rc = mf_policy_each(txn, mf_fsm_state(s->fsm), add_stored, &b);
        mf_srv_read_end(s, txn);
    }
    if (rc) {
        MF_ERROR(LOG_MOD, "cannot load the policies: %s", mf_strerror(rc));
        mf_policy_set_release(b.set);
        return NULL;
    }
    return b.set;
}

int mf_authz_init(struct mf_server *s)
{
    struct mf_authz *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->set = load(s);
    if (!a->set) {
        free(a);
        return MF_ESTORAGE;
    }
    s->authz = a;
    return 0;
}

void mf_authz_free(struct mf_server *s)
{
    if (!s->authz)
        return;
    mf_policy_set_release(s->authz->set);
    free(s->authz);
    s->authz = NULL;
}

void mf_authz_reload(struct mf_server *s)
{
    struct mf_policy_set *set = s->authz ? load(s) : NULL;
    if (!set)
        return; /* keep deciding with the last good set; logged */
    mf_policy_set_release(s->authz->set);
    s->authz->set = set;
}

/* A snapshot installed on the writer thread replaced the state's policies. */
static void refresh(struct mf_server *s)
{
    if (__atomic_exchange_n(&s->policies_stale, false, __ATOMIC_ACQ_REL))
        mf_authz_reload(s);
}

const struct mf_policy_set *mf_authz_set(struct mf_server *s)
{
    refresh(s);
    return s->authz->set;
}

/* With with_default, `default` joins the policies (every token carries it
 * unless it was made with -no-default-policy). */
static int decide(struct mf_server *s, const char *const *policies, size_t n, bool with_default,
                  const struct mf_authz_request *req, const struct mf_authz_ctx *ctx,
                  struct mf_authz_decision *out)
{
    refresh(s);
    const char *names[TOKEN_POLICIES_MAX + 1];
    size_t k = 0;
    bool has_default = false;
    for (size_t i = 0; i < n && k < TOKEN_POLICIES_MAX; i++) {
        names[k++] = policies[i];
        has_default |= strcmp(policies[i], "default") == 0;
    }
    if (n > TOKEN_POLICIES_MAX) /* more than any token gets: refuse, never drop one */
        return MF_ETOOLARGE;
    if (with_default && !has_default)
        names[k++] = "default";
    int rc = mf_policy_decide(s->authz->set, names, k, req, ctx, out);
    return rc == MF_EPERM ? 0 : rc;
}

int mf_authz_decide_with(struct mf_server *s, const char *const *policies, size_t n,
                         const struct mf_authz_request *req, const struct mf_authz_ctx *ctx,
                         struct mf_authz_decision *out)
{
    return decide(s, policies, n, true, req, ctx, out);
}

/* The client's address as the node it reached saw it. */
static void client_addr(const struct req *r, struct mf_authz_addr *out)
{
    char host[MF_NET_HOST_MAX];
    uint16_t port;
    memset(out, 0, sizeof(*out));
    if (!r->client_addr[0] || mf_net_split_hostport(r->client_addr, host, sizeof(host), &port))
        return;
    if (mf_authz_addr_parse(host, out))
        memset(out, 0, sizeof(*out));
}

int mf_authz_decide(struct req *r, unsigned cap, const char *path,
                    struct mf_authz_decision *out)
{
    memset(out, 0, sizeof(*out));
    if (!r->token) {
        out->reason = MF_AUTHZ_NO_RULE;
        return 0;
    }
    struct mf_authz_request q = {.cap = cap, .path = path};
    struct mf_authz_ctx ctx = {.now_ms = mf_now_wall_ms()};
    client_addr(r, &ctx.client);
    /* auth-methods: the token's identity metadata (a login role's mapped
     * claims) are the claims its policies' conditions test. */
    struct mf_authz_claim claims[TOKEN_CLAIMS_MAX];
    size_t n_claims = r->token->n_meta_keys < r->token->n_meta_values ? r->token->n_meta_keys
                                                                       : r->token->n_meta_values;
    if (n_claims > TOKEN_CLAIMS_MAX) /* the store refuses more: never drop one silently */
        return MF_ETOOLARGE;
    for (size_t i = 0; i < n_claims; i++)
        claims[i] = (struct mf_authz_claim){r->token->meta_keys[i], r->token->meta_values[i]};
    ctx.claims = claims;
    ctx.claims_n = n_claims;
    return decide(r->srv, (const char *const *)r->token->policies, r->token->n_policies,
                  !r->token->no_default_policy, &q, &ctx, out);
}

bool mf_authz_allows(struct req *r, unsigned cap, const char *path)
{
    struct mf_authz_decision d;
    return mf_authz_decide(r, cap, path, &d) == 0 && d.allowed;
}
