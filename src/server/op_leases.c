/* Lease operations: grant, renew, revoke (one, by prefix, forced), and the
 * reads lookup and list. Grants stamp the lease with its owner's token. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "auth/policy.h"
#include "server/handler.h"
#include "server/op_leases.h"
#include "server/op_quota.h"
#include "server/proposer.h"
#include "store/lease_rules.h"
#include "store/leases.h"

#define LOG_MOD "leases"

/* ---- writes ---- */

static void finish_lease_grant(struct req *r, const Result *res_ptr, Resp *resp)
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

int mf_op_lease_grant_authz(struct req *r, unsigned *cap, char *path, size_t len)
{
    const char *name = r->pb->lease_grant->name;
    *cap = MF_CAP_UPDATE;
    return (size_t)snprintf(path, len, "sys/leases/grant/%s", name[0] ? name : "default") < len
               ? 0
               : MF_ETOOLARGE;
}

int mf_op_lease_authz(struct req *r, unsigned *cap, char *path, size_t len)
{
    const char *id, *op;
    *cap = MF_CAP_UPDATE;
    switch (r->pb->op_case) {
    case MAYFLY__API__REQUEST__OP_LEASE_RENEW:
        id = r->pb->lease_renew->lease_id;
        op = "renew";
        break;
    case MAYFLY__API__REQUEST__OP_LEASE_LOOKUP:
        id = r->pb->lease_lookup->lease_id;
        op = "lookup";
        *cap = MF_CAP_READ;
        break;
    case MAYFLY__API__REQUEST__OP_LEASE_REVOKE:
        id = r->pb->lease_revoke->lease_id;
        op = "revoke";
        if (r->pb->lease_revoke->prefix || r->pb->lease_revoke->force) {
            *cap = MF_CAP_SUDO;
            op = r->pb->lease_revoke->prefix ? "revoke-prefix" : "revoke-force";
            return (size_t)snprintf(path, len, "sys/leases/%s/%s", op, id) < len ? 0
                                                                                : MF_ETOOLARGE;
        }
        break;
    default:
        return MF_EINVAL;
    }
    /* The caller's own lease: the default policy's sys/leases/self/ paths. */
    const char *self = mf_handler_owns_lease(r, id) ? "self/" : "";
    return (size_t)snprintf(path, len, "sys/leases/%s%s/%s", self, op, id) < len ? 0
                                                                                : MF_ETOOLARGE;
}

void mf_op_lease_grant(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__LeaseGrantRequest *g = r->pb->lease_grant;
    struct mf_lease_ttl_inputs in = {
        .requested_ttl_ms = g->ttl_ms,
        .requested_max_ttl_ms = g->max_ttl_ms,
        .policy_max_ttl_ms = r->policy_max_ttl_ms,
        .cluster_default_ttl_ms = s->cfg->default_lease_ttl_ms,
        .cluster_max_ttl_ms = s->cfg->max_lease_ttl_ms,
    };
    uint64_t ttl, max_ttl;
    mf_lease_ttl_clamp(&in, &ttl, &max_ttl);
    if (strlen(g->name) > MF_LEASE_NAME_MAX || strchr(g->name, '/'))
        return mf_api_reply_error(r, MF_EINVAL, "lease name must be at most %d bytes, no '/'",
                                  MF_LEASE_NAME_MAX);
    if (!mf_quota_rate_take(r, "lease", g->name[0] ? g->name : "default"))
        return;
    Mayfly__Cmd__LeaseGrant lg = MAYFLY__CMD__LEASE_GRANT__INIT;
    lg.seq = mf_propose_next_index(s->prop);
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
    mf_handler_propose(r, &cmd, finish_lease_grant);
}

static void finish_lease_renew(struct req *r, const Result *res_ptr, Resp *resp)
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

void mf_op_lease_renew(struct req *r)
{
    Mayfly__Cmd__LeaseRenew m = MAYFLY__CMD__LEASE_RENEW__INIT;
    if (mf_handler_lease_seq(r->pb->lease_renew->lease_id, &m.seq))
        return mf_api_reply_error(r, MF_EINVAL, "'%s' is not a lease id",
                                  r->pb->lease_renew->lease_id);
    m.increment_ms = r->pb->lease_renew->increment_ms;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_RENEW;
    cmd.lease_renew = &m;
    mf_handler_propose(r, &cmd, finish_lease_renew);
}

static void propose_revoke_prefix(struct req *r, const char *after);

static void finish_count(struct req *r, const Result *res_ptr, Resp *resp)
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
    mf_handler_propose(r, &cmd, finish_count);
}

void mf_op_lease_revoke(struct req *r)
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
        if (mf_handler_lease_seq(q->lease_id, &seq))
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
    mf_handler_propose(r, &cmd, finish_count);
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

void mf_op_lease_lookup(struct req *r)
{
    struct mf_server *s = r->srv;
    const char *id = r->pb->lease_lookup->lease_id;
    uint64_t seq;
    if (mf_handler_lease_seq(id, &seq))
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
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_LOOKUP;
    resp.lease_lookup = &out;
    mf_api_reply(r, &resp);
    mf_lease_free(rec);
}

void mf_op_lease_list(struct req *r)
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
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_LIST;
    resp.lease_list = &out;
    mf_api_reply(r, &resp);
    free(infos);
    free(ptrs);
    free(errs);
    mf_lease_list_free(items, n);
}
