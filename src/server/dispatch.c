/* The dispatcher (dispatch.h): the operation table and each request's
 * route. Every request from api.c, from a client or forwarded by a peer,
 * enters at mf_dispatch. */
#include "server/dispatch.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "common/err.h"
#include "common/log.h"
#include "node/node.h"
#include "server/auditlog.h"
#include "server/authz.h"
#include "server/op_auth.h"
#include "server/op_alarms.h"
#include "server/op_audit.h"
#include "server/op_engines.h"
#include "server/op_keys.h"
#include "server/op_kv.h"
#include "server/op_leases.h"
#include "server/op_members.h"
#include "server/op_policy.h"
#include "server/op_quota.h"
#include "server/op_raft.h"
#include "server/op_root.h"
#include "server/op_snapshot.h"
#include "server/op_sys.h"
#include "server/op_tokens.h"
#include "server/ratelimit.h"

#define ROW(OP, name, fn, where, token, sealed_ok, cap, path)                                     \
    {MAYFLY__API__REQUEST__OP_##OP, name, fn, MF_WHERE_##where, token, sealed_ok, cap, path, NULL}
/* A row whose capability or path depends on the request (`describe`). */
#define ROWD(OP, name, fn, where, cap, path, describe)                                            \
    {MAYFLY__API__REQUEST__OP_##OP, name, fn, MF_WHERE_##where, true, false, cap, path, describe}

#define LOG_MOD "dispatch"

/* Token operations on the caller's own token use the -self paths (the
 * default policy grants them); on another token, the caller needs update on
 * the operation's path (CLI.md "Policy paths"). */
static bool names_own_token(const struct req *r, const char *token, bool by_accessor)
{
    if (!token[0])
        return true;
    if (by_accessor)
        return r->token && strcmp(token, r->token->accessor) == 0;
    uint8_t hash[32];
    SHA256((const unsigned char *)token, strlen(token), hash);
    return CRYPTO_memcmp(hash, r->token_hash, 32) == 0;
}

static int token_op_authz(struct req *r, const char *token, bool by_accessor, const char *op,
                          unsigned self_cap, unsigned *cap, char *path, size_t len)
{
    if (names_own_token(r, token, by_accessor)) {
        *cap = self_cap;
        snprintf(path, len, "auth/token/%s-self", op);
    } else {
        *cap = MF_CAP_UPDATE;
        snprintf(path, len, "auth/token/%s%s", op, by_accessor ? "-accessor" : "");
    }
    return 0;
}

static int token_lookup_authz(struct req *r, unsigned *cap, char *path, size_t len)
{
    const Mayfly__Api__TokenLookupRequest *q = r->pb->token_lookup;
    return token_op_authz(r, q->token, q->by_accessor, "lookup", MF_CAP_READ, cap, path, len);
}

static int token_renew_authz(struct req *r, unsigned *cap, char *path, size_t len)
{
    const Mayfly__Api__TokenRenewRequest *q = r->pb->token_renew;
    return token_op_authz(r, q->token, false, "renew", MF_CAP_UPDATE, cap, path, len);
}

static int token_revoke_authz(struct req *r, unsigned *cap, char *path, size_t len)
{
    const Mayfly__Api__TokenRevokeRequest *q = r->pb->token_revoke;
    return token_op_authz(r, q->token, q->by_accessor, "revoke", MF_CAP_UPDATE, cap, path, len);
}

/* Paths follow CLI.md "Policy paths"; "(default)" marks operations on the
 * caller's own token or leases, which the default policy allows; "" marks
 * those that need no policy (no token, or shares instead). */
static const struct mf_op_def op_table[] = {
    ROW(STATUS, "status", mf_op_status, HERE, false, true, "read", "sys/status"),
    ROW(INIT, "operator.init", mf_op_init, LEADER, false, true, "", ""),
    ROW(UNSEAL, "operator.unseal", mf_op_unseal, HERE, false, true, "", ""),
    ROW(SEAL, "operator.seal", mf_op_seal, HERE, true, false, "sudo", "sys/seal"),
    ROWD(LEASE_GRANT, "lease.grant", mf_op_lease_grant, LEADER, "update",
         "sys/leases/grant/{name}", mf_op_lease_grant_authz),
    ROWD(LEASE_RENEW, "lease.renew", mf_op_lease_renew, LEADER, "update",
         "sys/leases/renew/{lease_id}|sys/leases/self/renew/{lease_id}", mf_op_lease_authz),
    ROWD(LEASE_REVOKE, "lease.revoke", mf_op_lease_revoke, LEADER, "update|sudo",
         "sys/leases/revoke/{lease_id}|sys/leases/self/revoke/{lease_id}|"
         "sys/leases/revoke-prefix/{lease_id}|sys/leases/revoke-force/{lease_id}",
         mf_op_lease_authz),
    ROWD(LEASE_LOOKUP, "lease.lookup", mf_op_lease_lookup, READ, "read",
         "sys/leases/lookup/{lease_id}|sys/leases/self/lookup/{lease_id}", mf_op_lease_authz),
    ROW(LEASE_LIST, "lease.list", mf_op_lease_list, READ, true, false, "list",
        "sys/leases/lookup/{prefix}"),
    ROWD(KV_PUT, "kv.put", mf_op_kv_put, LEADER, "create|update", "kv/data/{path}",
         mf_op_kv_put_authz),
    ROW(KV_GET, "kv.get", mf_op_kv_get, READ, true, false, "read", "kv/data/{path}"),
    ROWD(KV_VERSIONS, "kv.versions", mf_op_kv_versions, LEADER, "delete|update|update",
         "kv/data/{path}|kv/undelete/{path}|kv/destroy/{path}", mf_op_kv_versions_authz),
    ROW(KV_LIST, "kv.list", mf_op_kv_list, READ, true, false, "list", "kv/metadata/{prefix}"),
    ROW(KV_METADATA_GET, "kv.metadata.get", mf_op_kv_metadata_get, READ, true, false, "read",
        "kv/metadata/{path}"),
    ROW(KV_METADATA_PUT, "kv.metadata.put", mf_op_kv_metadata_put, LEADER, true, false,
        "update", "kv/metadata/{path}"),
    ROW(CREDS_ISSUE, "creds.issue", mf_op_creds_issue, LEADER, true, false, "read",
        "{mount}/creds/{role}"),
    /* -orphan also needs sudo on auth/token/create-orphan (op_tokens.c). */
    ROW(TOKEN_CREATE, "token.create", mf_op_token_create, LEADER, true, false, "update",
        "auth/token/create"),
    ROWD(TOKEN_LOOKUP, "token.lookup", mf_op_token_lookup, READ, "read|update",
         "auth/token/lookup-self|auth/token/lookup|auth/token/lookup-accessor",
         token_lookup_authz),
    ROWD(TOKEN_RENEW, "token.renew", mf_op_token_renew, LEADER, "update",
         "auth/token/renew-self|auth/token/renew", token_renew_authz),
    ROWD(TOKEN_REVOKE, "token.revoke", mf_op_token_revoke, LEADER, "update",
         "auth/token/revoke-self|auth/token/revoke|auth/token/revoke-accessor",
         token_revoke_authz),
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
    ROW(AUTH_ENABLE, "auth.enable", mf_op_auth_enable, LEADER, true, false, "sudo",
        "sys/auth/{mount}"),
    ROW(AUTH_ROLE_PUT, "auth.role.put", mf_op_auth_role_put, LEADER, true, false, "update",
        "auth/{mount}/role/{role}"),
    ROW(AUTH_LIST, "auth.list", mf_op_auth_list, READ, true, false, "read", "sys/auth"),
    /* No token: the credential is the login's; the leader creates the token. */
    ROW(LOGIN, "login", mf_op_login, LEADER, false, false, "", ""),
    /* Shares instead of a token; the attempt lives in the leader's memory. */
    ROW(GENERATE_ROOT, "operator.generate-root", mf_op_generate_root, LEADER, false, false, "",
        ""),
    ROW(AUDIT_ENABLE, "audit.enable", mf_op_audit_enable, LEADER, true, false, "sudo",
        "sys/audit/{name}"),
    ROW(AUDIT_DISABLE, "audit.disable", mf_op_audit_disable, LEADER, true, false, "sudo",
        "sys/audit/{name}"),
    ROW(AUDIT_LIST, "audit.list", mf_op_audit_list, READ, true, false, "read", "sys/audit"),
    ROW(AUDIT_HASH, "audit.hash", mf_op_audit_hash, READ, true, false, "sudo", "sys/audit-hash"),
    ROW(AUDIT_VERIFY_KEY, "audit.verify-key", mf_op_audit_verify_key, READ, true, false, "sudo",
        "sys/audit"),
    ROW(QUOTA_SET, "quota.set", mf_op_quota_set, LEADER, true, false, "sudo", "sys/quotas/{name}"),
    ROW(QUOTA_LIST, "quota.list", mf_op_quota_list, READ, true, false, "read", "sys/quotas"),
    ROW(QUOTA_DELETE, "quota.delete", mf_op_quota_delete, LEADER, true, false, "sudo",
        "sys/quotas/{name}"),
    ROW(ALARM_LIST, "operator.alarm.list", mf_op_alarm_list, READ, true, false, "read",
        "sys/alarms"),
    ROW(ALARM_DISARM, "operator.alarm.disarm", mf_op_alarm_disarm, LEADER, true, false, "sudo",
        "sys/alarms"),
    ROW(TRANSFER_LEADER, "operator.transfer-leader", mf_op_transfer_leader, LEADER, true, false,
        "sudo", "sys/raft/transfer-leader"),
    ROW(STEP_DOWN, "operator.step-down", mf_op_step_down, LEADER, true, false, "sudo",
        "sys/raft/step-down"),
    ROW(MEMBERS_LIST, "operator.members-list", mf_op_members_list, LEADER, true, false, "read",
        "sys/raft/members"),
    ROW(SNAPSHOT_SAVE, "operator.snapshot-save", mf_op_snapshot_save, LEADER, true, false, "sudo",
        "sys/raft/snapshot"),
    /* No token, like init: only an uninitialised cluster takes it, and the
     * backup's own shares unlock it (op_snapshot.h). */
    ROW(SNAPSHOT_RESTORE, "operator.snapshot-restore", mf_op_snapshot_restore, LEADER, false, true,
        "", ""),
    ROW(MEMBERS_ADD, "operator.members-add", mf_op_members_add, LEADER, true, false, "sudo",
        "sys/raft/members"),
    ROW(MEMBERS_PROMOTE, "operator.members-promote", mf_op_members_promote, LEADER, true, false,
        "sudo", "sys/raft/members"),
    ROW(MEMBERS_REMOVE, "operator.members-remove", mf_op_members_remove, LEADER, true, false,
        "sudo", "sys/raft/members"),
    ROW(ROTATE, "operator.rotate", mf_op_rotate, LEADER, true, false, "sudo", "sys/rotate"),
    ROW(KEY_STATUS, "operator.key-status", mf_op_key_status, READ, true, false, "read",
        "sys/key-status"),
    /* Old shares and a nonce instead of a token, like generate-root. */
    ROW(REKEY, "operator.rekey", mf_op_rekey, LEADER, false, false, "", ""),
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

/* The operation's own message (the member of Request's `op` oneof). */
static const ProtobufCMessage *op_message(const Mayfly__Api__Request *q)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&mayfly__api__request__descriptor, q->op_case);
    return f ? *(const ProtobufCMessage *const *)((const char *)q + f->offset) : NULL;
}

/* Expands "kv/data/{path}" with the string fields of message m. */
static int expand(const ProtobufCMessage *m, const char *tmpl, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = tmpl; *p; p++) {
        const char *piece = p;
        size_t piece_len = 1;
        if (*p == '{') {
            const char *end = strchr(p, '}');
            char name[64];
            if (!m || !end || (size_t)(end - p - 1) >= sizeof(name))
                return MF_EINVAL;
            memcpy(name, p + 1, (size_t)(end - p - 1));
            name[end - p - 1] = '\0';
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
            if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
                return MF_EINVAL;
            piece = *(const char *const *)((const char *)m + f->offset);
            piece_len = strlen(piece);
            p = end;
        }
        if (n + piece_len >= len)
            return MF_ETOOLARGE;
        memcpy(out + n, piece, piece_len);
        n += piece_len;
    }
    out[n] = '\0';
    return 0;
}

int mf_dispatch_describe(struct req *r, const struct mf_op_def *d, unsigned *cap, char *path,
                         size_t len)
{
    if (d->describe)
        return d->describe(r, cap, path, len);
    if (mf_cap_parse(d->capability, cap))
        return MF_EINVAL;
    return expand(op_message(r->pb), d->policy_path, path, len);
}

/* The request's record could not be written: refuse it before it runs.
 * Disabling a device is let through, or a broken device could never be
 * removed. */
static bool audit_refused(struct req *r, const char *err)
{
    if (r->pb->op_case == MAYFLY__API__REQUEST__OP_AUDIT_DISABLE)
        return false;
    mf_api_reply_error(r, MF_EUNAVAIL, "%s", err);
    return true;
}

/* Records an allowed request (auditlog.h): written to the files before it
 * runs unless a read (a read's only effect is its answer). Its answer waits
 * for the one group sync covering both records, and is refused if that sync
 * fails. True to go on now; false once refused. */
static bool audited(struct req *r, const struct mf_op_def *d, const char *path,
                    const struct mf_authz_decision *dec, bool write_now)
{
    char err[128] = "";
    int rc = mf_auditlog_request(r, d->name, path, dec, write_now, err, sizeof(err));
    if (rc == 1 && r->pb->op_case != MAYFLY__API__REQUEST__OP_AUDIT_DISABLE)
        r->audit_withhold = true; /* its answer leaves only once both records are durable */
    if (rc >= 0)
        return true;
    return !audit_refused(r, err);
}

/* Authorises r under row d (DESIGN.md "Authorization"): on the node it
 * entered, again on the leader for a forwarded write, and for a read after
 * its read index applied. True to go on now; false once r is answered. */
static bool authorize(struct req *r, const struct mf_op_def *d, bool write_now)
{
    if (!d->token || !d->capability[0])
        return audited(r, d, NULL, NULL, write_now); /* status, init, unseal: no policy */
    unsigned cap = 0;
    char path[MF_DISPATCH_PATH_MAX];
    int rc = mf_dispatch_describe(r, d, &cap, path, sizeof(path));
    if (rc == MF_EPERM) {
        mf_api_reply_error(r, MF_EPERM, "permission denied: %s names a lease of another token",
                           d->name);
        return false;
    }
    if (rc) {
        mf_api_reply_error(r, rc, /* TOO_LARGE is final: clients do not retry it */
                           rc == MF_ETOOLARGE ? "the request's path is too long" : "%s",
                           mf_strerror(rc));
        return false;
    }
    struct mf_authz_decision dec;
    if (mf_authz_decide(r, cap, path, &dec))
        dec = (struct mf_authz_decision){.allowed = false};
    if (dec.allowed) {
        r->policy_max_ttl_ms = dec.max_ttl_ms; /* caps what this request issues */
        return audited(r, d, path, &dec, write_now);
    }
    /* Denied: the answer waits for the batch that holds this record. */
    char err[128];
    mf_auditlog_request(r, d->name, path, &dec, false, err, sizeof(err));
    mf_api_reply_error(r, MF_EPERM, "permission denied: %s needs '%s' on '%s'", d->name,
                       mf_cap_name(cap), path);
    return false;
}

/* Authenticates r's token; false to go on, true once r is answered. */
static bool refuse_token(struct req *r)
{
    int rc = mf_tokens_authenticate(r);
    if (rc == 0)
        return false;
    if (rc == MF_EUNAVAIL) {
        struct mf_node_clock c;
        mf_node_clock(r->srv->node, &c);
        mf_api_reply_error(r, MF_EUNAVAIL,
                           "clock skew: this node's clock is %lld ms off the voters' (bound "
                           "%llu ms; %u of %u voters agree), so it cannot judge the token's "
                           "expiry; retry on another node",
                           (long long)c.offset_ms, (unsigned long long)c.max_skew_ms,
                           c.agreeing, c.voters);
        return true;
    }
    mf_api_reply_error(r, MF_EUNAUTH, "missing, unknown or expired token");
    return true;
}

/* One fdatasync wait per request: the handler runs once the request's record
 * is written (staged only for a read), its answer waits for the sync. */
static void run(struct req *r, const struct mf_op_def *d)
{
    if (authorize(r, d, d->where != MF_WHERE_READ))
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
    /* Authorised now, on the state this read reads: a token revoked a moment
     * ago is refused here even by a lagging follower. */
    const struct mf_op_def *d = mf_dispatch_find(r->pb->op_case);
    if (d->token && refuse_token(r))
        return;
    run(r, d);
}

/* A storage-blocked node (node.h "Storage pressure") refuses writes and
 * linearizable reads with the true cause (UNAVAILABLE on the wire: another
 * node may have room); stale reads never get here. */
static bool refuse_blocked(struct req *r)
{
    struct mf_node_storage st;
    mf_node_storage(r->srv->node, &st);
    if (!st.blocked)
        return false;
    mf_api_reply_error(r, st.code, "%s", st.cause);
    return true;
}

static void forward(struct req *r)
{
    int rc = mf_api_forward(r->srv, r);
    if (rc == MF_ETOOLARGE) /* the client's certificate chain: not worth a retry */
        return mf_api_reply_error(r, MF_ETOOLARGE, "the client certificate chain is too long "
                                                "to forward (at most 8 intermediates)");
    if (rc && !refuse_blocked(r))
        mf_api_reply_error(r, MF_EUNAVAIL, "no leader to forward to (%s); retry",
                           mf_strerror(rc));
}

static void route(struct req *r, const struct mf_op_def *d)
{
    struct mf_server *s = r->srv;
    bool stale = r->pb->consistency == MAYFLY__API__CONSISTENCY__STALE;
    int rc;
    switch (mf_dispatch_route(d, mf_node_is_leader(s->node), r->peer != 0, stale)) {
    case MF_ROUTE_RUN:
        return run(r, d);
    case MF_ROUTE_BARRIER:
        rc = mf_node_read_index(s->node, on_read_index, r);
        if (rc && !refuse_blocked(r))
            mf_api_reply_error(r, MF_EUNAVAIL, "cannot start a linearizable read (%s); retry",
                               mf_strerror(rc));
        return;
    case MF_ROUTE_FORWARD:
        if (authorize(r, d, true)) /* on entry; the leader decides again */
            forward(r);
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

int mf_dispatch_check(const Mayfly__Api__Request *q, const struct mf_op_def **d,
                      const char **why)
{
    *d = NULL;
    *why = NULL;
    if (validate_enums(q))
        *why = "a field has a value this server does not know";
    else if (q->op_case == MAYFLY__API__REQUEST__OP__NOT_SET)
        *why = "the request names no operation";
    else if (!(*d = mf_dispatch_find(q->op_case)))
        *why = "unknown operation";
    return *why ? MF_EINVAL : 0;
}

void mf_dispatch(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__Request *q = r->pb;
    const struct mf_op_def *d;
    const char *why;
    if (mf_dispatch_check(q, &d, &why))
        return mf_api_reply_error(r, MF_EINVAL, "%s", why);
    if (s->failed)
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node stopped after a storage failure");
    bool sealed = mf_barrier_sealed(s->barrier);
    if (sealed && !d->sealed_ok && !r->peer) {
        if (!mf_srv_initialized(s))
            return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised%s%s",
                                      mf_op_snapshot_staged() ? ": " : "",
                                      mf_op_snapshot_staged() ? MF_OP_SNAPSHOT_STAGED_MSG : "");
        return mf_api_reply_error(r, MF_ESEALED, "this node is sealed: mayfly operator unseal");
    }
    if (d->token && refuse_token(r))
        return;
    uint64_t retry_ms;
    if (d->token && !mf_ratelimit_take(s, r, &retry_ms))
        return mf_api_reply_error(r, MF_ERATELIMIT,
                                  "too many requests from this identity (token, or auth role); "
                                  "retry after %llu ms",
                                  (unsigned long long)retry_ms);
    /* A sealed leader cannot encrypt or decrypt: refuse rather than forward
     * (a request forwarded here from a follower, too). */
    if (sealed && !d->sealed_ok && d->where == MF_WHERE_LEADER && s->role == MF_RAFT_LEADER)
        return mf_api_reply_error(r, MF_ESEALED, "the leader is sealed");
    route(r, d);
}
