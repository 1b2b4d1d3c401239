/* The dispatcher (dispatch.h): the operation table and each request's
 * route. Every request from api.c, from a client or forwarded by a peer,
 * enters at mf_dispatch. */
#include "server/dispatch.h"

#include "common/err.h"
#include "server/op_engines.h"
#include "server/op_kv.h"
#include "server/op_leases.h"
#include "server/op_policy.h"
#include "server/op_sys.h"
#include "server/op_tokens.h"

#define ROW(OP, name, fn, where, token, sealed_ok, cap, path)                                     \
    {MAYFLY__API__REQUEST__OP_##OP, name, fn, MF_WHERE_##where, token, sealed_ok, cap, path}

/* Paths follow CLI.md "Policy paths"; "(default)" marks operations on the
 * caller's own token or leases, which the default policy allows; "" marks
 * those that need no policy (no token, or shares instead). */
static const struct mf_op_def op_table[] = {
    ROW(STATUS, "status", mf_op_status, HERE, false, true, "read", "sys/status"),
    ROW(INIT, "operator.init", mf_op_init, LEADER, false, true, "", ""),
    ROW(UNSEAL, "operator.unseal", mf_op_unseal, HERE, false, true, "", ""),
    ROW(SEAL, "operator.seal", mf_op_seal, HERE, true, false, "sudo", "sys/seal"),
    ROW(LEASE_GRANT, "lease.grant", mf_op_lease_grant, LEADER, true, false, "update",
        "sys/leases/grant/{name}"),
    ROW(LEASE_RENEW, "lease.renew", mf_op_lease_renew, LEADER, true, false, "update",
        "sys/leases/renew/{lease_id}"),
    ROW(LEASE_REVOKE, "lease.revoke", mf_op_lease_revoke, LEADER, true, false, "update",
        "sys/leases/revoke/{lease_id}"),
    ROW(LEASE_LOOKUP, "lease.lookup", mf_op_lease_lookup, READ, true, false, "read",
        "sys/leases/lookup/{lease_id}"),
    ROW(LEASE_LIST, "lease.list", mf_op_lease_list, READ, true, false, "list",
        "sys/leases/lookup/{prefix}"),
    ROW(KV_PUT, "kv.put", mf_op_kv_put, LEADER, true, false, "create|update",
        "kv/data/{path}"),
    ROW(KV_GET, "kv.get", mf_op_kv_get, READ, true, false, "read", "kv/data/{path}"),
    ROW(KV_VERSIONS, "kv.versions", mf_op_kv_versions, LEADER, true, false,
        "delete|update|update", "kv/data/{path}|kv/undelete/{path}|kv/destroy/{path}"),
    ROW(KV_LIST, "kv.list", mf_op_kv_list, READ, true, false, "list", "kv/metadata/{prefix}"),
    ROW(KV_METADATA_GET, "kv.metadata.get", mf_op_kv_metadata_get, READ, true, false, "read",
        "kv/metadata/{path}"),
    ROW(KV_METADATA_PUT, "kv.metadata.put", mf_op_kv_metadata_put, LEADER, true, false,
        "update", "kv/metadata/{path}"),
    ROW(CREDS_ISSUE, "creds.issue", mf_op_creds_issue, LEADER, true, false, "read",
        "{mount}/creds/{role}"),
    ROW(TOKEN_CREATE, "token.create", mf_op_token_create, LEADER, true, false, "update|sudo",
        "auth/token/create|auth/token/create-orphan"),
    ROW(TOKEN_LOOKUP, "token.lookup", mf_op_token_lookup, READ, true, false, "update",
        "auth/token/lookup|auth/token/lookup-accessor"),
    ROW(TOKEN_REVOKE, "token.revoke", mf_op_token_revoke, LEADER, true, false, "update",
        "auth/token/revoke|auth/token/revoke-accessor"),
    ROW(ENGINE_ENABLE, "engine.enable", mf_op_engine_enable, LEADER, true, false, "sudo",
        "sys/engines/{mount}"),
    ROW(ENGINE_ROLE_PUT, "engine.role.put", mf_op_engine_role_put, LEADER, true, false,
        "update", "{mount}/roles/{role}"),
    ROW(ENGINE_LIST, "engine.list", mf_op_engine_list, READ, true, false, "read",
        "sys/engines"),
    ROW(ENGINE_ROTATE_ROOT, "engine.rotate-root", mf_op_engine_rotate_root, LEADER, true, false,
        "update", "{mount}/rotate-root"),
    /* The CRL is signed by the leader's engine. */
    ROW(ENGINE_CRL, "engine.crl", mf_op_engine_crl, LEADER, true, false, "read", "{mount}/crl"),
    ROW(POLICY_WRITE, "policy.write", mf_op_policy_write, LEADER, true, false, "update",
        "sys/policies/acl/{name}"),
    ROW(POLICY_READ, "policy.read", mf_op_policy_read, READ, true, false, "read",
        "sys/policies/acl/{name}"),
    ROW(POLICY_LIST, "policy.list", mf_op_policy_list, READ, true, false, "list",
        "sys/policies/acl"),
    ROW(POLICY_DELETE, "policy.delete", mf_op_policy_delete, LEADER, true, false, "delete",
        "sys/policies/acl/{name}"),
    ROW(POLICY_CHECK, "policy.check", mf_op_policy_check, READ, true, false, "read",
        "sys/policies/check"),
};
#undef ROW

const struct mf_op_def *mf_dispatch_table(size_t *n)
{
    *n = sizeof(op_table) / sizeof(op_table[0]);
    return op_table;
}

const struct mf_op_def *mf_dispatch_find(Mayfly__Api__Request__OpCase op_case)
{
    for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++)
        if (op_table[i].op_case == op_case)
            return &op_table[i];
    return NULL;
}

enum mf_route mf_dispatch_route(const struct mf_op_def *d, bool leading, bool from_peer,
                                bool stale)
{
    switch (d->where) {
    case MF_WHERE_HERE:
        return MF_ROUTE_RUN;
    case MF_WHERE_LEADER:
        /* Forwarded once at most: a forwarded request that lands on a node
         * that no longer leads is refused, so nothing loops. */
        if (leading)
            return MF_ROUTE_RUN;
        return from_peer ? MF_ROUTE_NOT_LEADER : MF_ROUTE_FORWARD;
    case MF_WHERE_READ:
        return stale ? MF_ROUTE_RUN : MF_ROUTE_BARRIER;
    }
    return MF_ROUTE_NOT_LEADER;
}

static void on_read_index(void *arg, int rc)
{
    struct req *r = arg;
    if (rc)
        return mf_api_reply_error(r, MF_EUNAVAIL,
                                  "cannot confirm a linearizable read (%s); retry, or ask for "
                                  "-consistency stale",
                                  mf_strerror(rc));
    mf_dispatch_find(r->pb->op_case)->run(r);
}

static void route(struct req *r, const struct mf_op_def *d)
{
    struct mf_server *s = r->srv;
    bool stale = r->pb->consistency == MAYFLY__API__CONSISTENCY__STALE;
    int rc;
    switch (mf_dispatch_route(d, mf_node_is_leader(s->node), r->peer != 0, stale)) {
    case MF_ROUTE_RUN:
        return d->run(r);
    case MF_ROUTE_BARRIER:
        rc = mf_node_read_index(s->node, on_read_index, r);
        if (rc)
            mf_api_reply_error(r, MF_EUNAVAIL, "cannot start a linearizable read (%s); retry",
                               mf_strerror(rc));
        return;
    case MF_ROUTE_FORWARD:
        rc = mf_api_forward(s, r);
        if (rc)
            mf_api_reply_error(r, MF_EUNAVAIL, "no leader to forward to (%s); retry",
                               mf_strerror(rc));
        return;
    case MF_ROUTE_NOT_LEADER:
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node is no longer the leader; retry");
    }
}

/* The wire format accepts any number for an enum: refuse what we do not know. */
static int validate_enums(const Mayfly__Api__Request *q)
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

void mf_dispatch(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__Request *q = r->pb;
    if (validate_enums(q))
        return mf_api_reply_error(r, MF_EINVAL, "a field has a value this server does not know");
    if (s->failed)
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node stopped after a storage failure");
    if (q->op_case == MAYFLY__API__REQUEST__OP__NOT_SET)
        return mf_api_reply_error(r, MF_EINVAL, "the request names no operation");
    const struct mf_op_def *d = mf_dispatch_find(q->op_case);
    if (!d)
        return mf_api_reply_error(r, MF_EINVAL, "unknown operation %d", q->op_case);
    bool sealed = mf_barrier_sealed(s->barrier);
    if (sealed && !d->sealed_ok && !r->peer) {
        if (!mf_srv_initialized(s))
            return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised");
        return mf_api_reply_error(r, MF_ESEALED, "this node is sealed: mayfly operator unseal");
    }
    if (d->token && mf_tokens_authenticate(r))
        return mf_api_reply_error(r, MF_EUNAUTH, "missing, unknown or expired token");
    /* A sealed leader cannot encrypt or decrypt: refuse rather than forward
     * (a request forwarded here from a follower, too). */
    if (sealed && !d->sealed_ok && d->where == MF_WHERE_LEADER && s->role == MF_RAFT_LEADER)
        return mf_api_reply_error(r, MF_ESEALED, "the leader is sealed");
    route(r, d);
}
