/* What every operation handler shares (handler.h). */
#include "server/handler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/env.h"
#include "common/err.h"
#include "server/proposer.h"
#include "server/records.h"
#include "store/idempotency.h"
#include "store/kv.h"
#include "store/leases.h"

struct proposal {
    struct req *r;
    mf_handler_finish_cb finish;
};

static void on_applied(void *arg, int rc, const Result *res)
{
    struct proposal p = *(struct proposal *)arg;
    free(arg);
    struct req *r = p.r;
    if (res && rc)
        return mf_api_reply_error(r, rc, "%s", res->error[0] ? res->error : mf_strerror(rc));
    if (rc == MF_EINTERNAL)
        return mf_api_reply_error(r, MF_EINTERNAL, "the state machine gave no result");
    if (rc == MF_EUNKNOWN)
        return mf_api_reply_error(r, MF_EUNKNOWN, "the write was not applied in time: it may or "
                                                  "may not have been applied");
    if (rc)
        return mf_api_reply_error(r, MF_EUNAVAIL, "leadership changed before the write applied; "
                                                  "retry (%s)", mf_strerror(rc));
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    Mayfly__Api__Empty empty = MAYFLY__API__EMPTY__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_EMPTY;
    resp.empty = &empty;
    if (p.finish)
        p.finish(r, res, &resp); /* answers itself (and may chain another proposal) */
    else
        mf_api_reply(r, &resp);
}

/* The caller's identity: its token's accessor; without a token, the hash
 * of the credential it presented (login, generate-root); else the client's
 * IP address (the port changes with each connection). */
static void caller_identity(const struct req *r, char *out, size_t len)
{
    if (r->token && r->token->accessor && r->token->accessor[0]) {
        snprintf(out, len, "token:%s", r->token->accessor);
        return;
    }
    if (r->has_cred_hash) {
        int n = snprintf(out, len, "cred:");
        for (size_t i = 0; i < sizeof(r->cred_hash) && n > 0 && (size_t)n + 2 < len; i++)
            n += snprintf(out + n, len - (size_t)n, "%02x", r->cred_hash[i]);
        return;
    }
    char host[sizeof(r->client_addr)];
    snprintf(host, sizeof(host), "%s", r->client_addr);
    char *colon = strrchr(host, ':');
    if (colon && (host[0] != '[' || colon[-1] == ']'))
        *colon = '\0';
    snprintf(out, len, "addr:%s", host);
}

/* The operation's own message (the member of Request's `op` oneof). */
static const ProtobufCMessage *op_message(const Req *q)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&mayfly__api__request__descriptor, q->op_case);
    return f ? *(const ProtobufCMessage *const *)((const char *)q + f->offset) : NULL;
}

int mf_handler_idem(const struct req *r, uint8_t suffix, struct mf_handler_idem *out)
{
    if (!r->pb || !r->pb->request_key.len)
        return MF_ENOTFOUND;
    if (r->pb->request_key.len > MF_IDEM_RID_MAX)
        return MF_EINVAL;
    char who[128];
    caller_identity(r, who, sizeof(who));
    uint32_t who_len = (uint32_t)strlen(who);
    uint8_t be[4] = {who_len >> 24, who_len >> 16, who_len >> 8, who_len};
    SHA256((const uint8_t *)who, who_len, out->caller);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return -ENOMEM;
    int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, "mayfly-idem-1", 13) && EVP_DigestUpdate(md, be, 4) &&
             EVP_DigestUpdate(md, who, who_len) &&
             EVP_DigestUpdate(md, r->pb->request_key.data, r->pb->request_key.len) &&
             EVP_DigestUpdate(md, &suffix, 1) && EVP_DigestFinal_ex(md, out->rid, NULL);
    /* The body: the operation and its message, packed again as decoded. */
    const ProtobufCMessage *m = op_message(r->pb);
    size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
    uint8_t *buf = malloc(n ? n : 1);
    uint32_t op = (uint32_t)r->pb->op_case;
    uint8_t opb[4] = {op >> 24, op >> 16, op >> 8, op};
    if (buf && m)
        protobuf_c_message_pack(m, buf);
    ok = ok && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(md, opb, 4) && EVP_DigestUpdate(md, buf, n) &&
         EVP_DigestFinal_ex(md, out->fingerprint, NULL);
    if (buf) {
        OPENSSL_cleanse(buf, n); /* a KV value, a policy */
        free(buf);
    }
    EVP_MD_CTX_free(md);
    return ok ? 0 : -ENOMEM;
}

void mf_handler_propose(struct req *r, Cmd *cmd, mf_handler_finish_cb finish)
{
    struct mf_handler_idem id;
    int rc = mf_handler_idem(r, r->rid_suffix, &id);
    if (rc == 0) {
        cmd->request_id.data = id.rid;
        cmd->request_id.len = sizeof(id.rid);
        cmd->request_fingerprint.data = id.fingerprint;
        cmd->request_fingerprint.len = sizeof(id.fingerprint);
    } else if (rc != MF_ENOTFOUND) {
        return mf_api_reply_error(r, MF_EINVAL, "the request key is over %d bytes",
                                  MF_IDEM_RID_MAX);
    } else if (cmd->result_secret.len) {
        /* The fsm hands a kept secret back only with an idempotency entry. */
        if (mf_rand_bytes(id.rid, 16))
            return mf_api_reply_error(r, MF_EINTERNAL, "random source failed");
        cmd->request_id.data = id.rid;
        cmd->request_id.len = 16;
    }
    if (cmd->request_id.len) {
        char who[128];
        caller_identity(r, who, sizeof(who));
        SHA256((const uint8_t *)who, strlen(who), id.caller);
        cmd->idem_caller.data = id.caller;
        cmd->idem_caller.len = sizeof(id.caller);
    }
    struct proposal *p = malloc(sizeof(*p));
    if (!p)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    p->r = r;
    p->finish = finish;
    rc = mf_propose(r->srv->prop, cmd, on_applied, p);
    if (!rc)
        return;
    free(p);
    if (rc == MF_ETOOLARGE)
        return mf_api_reply_error(r, MF_ETOOLARGE, "the request is too large for one "
                                                   "replicated command (values: at most %d "
                                                   "bytes)", MF_KV_VALUE_MAX);
    mf_api_reply_error(r, rc == MF_ERATELIMIT ? MF_ERATELIMIT : rc == -ENOMEM ? MF_EINTERNAL
                                                                              : MF_EUNAVAIL,
                       "cannot propose: %s", mf_strerror(rc));
}

Mayfly__Api__ReadInfo *mf_handler_read_info(struct req *r, Mayfly__Api__ReadInfo *ri)
{
    struct mf_server *s = r->srv;
    mayfly__api__read_info__init(ri);
    ri->node = s->cfg->node_id;
    ri->consistency = r->pb->consistency;
    ri->applied_index = mf_node_applied(s->node);
    if (r->pb->consistency == MAYFLY__API__CONSISTENCY__STALE) {
        uint64_t commit = mf_node_known_commit(s->node);
        ri->lag_entries = commit > ri->applied_index ? commit - ri->applied_index : 0;
    }
    return ri;
}

bool mf_handler_refuse_path(struct req *r, const char *path)
{
    if (mf_srv_reserved_path(path)) {
        mf_api_reply_error(r, MF_EPERM, "paths under '%s' are reserved", MF_SRV_RESERVED_PREFIX);
        return true;
    }
    size_t len = strlen(path);
    if (len == 0 || len > MF_KV_PATH_MAX) { /* over the limit: TOO_LARGE, never retried */
        mf_api_reply_error(r, len ? MF_ETOOLARGE : MF_EINVAL, "a path is 1..%d bytes",
                           MF_KV_PATH_MAX);
        return true;
    }
    return false;
}

int mf_handler_lease_seq(const char *id, uint64_t *seq)
{
    size_t prefix_len;
    return mf_lease_id_parse(id, &prefix_len, seq);
}

/* Does r's token own lease `id`? (Unknown or malformed ids: no.) */
enum mf_lease_owner mf_handler_lease_owner(struct req *r, const char *id)
{
    uint64_t seq;
    if (!r->has_token || mf_handler_lease_seq(id, &seq))
        return MF_LEASE_OTHER;
    MDB_txn *txn;
    if (mf_srv_read_begin(r->srv, &txn))
        return MF_LEASE_OTHER;
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = mf_lease_get(txn, mf_fsm_state(r->srv->fsm), seq, &rec);
    enum mf_lease_owner who = MF_LEASE_OTHER;
    if (rc == MF_ENOTFOUND)
        who = MF_LEASE_UNKNOWN;
    else if (rc == 0 && rec->owner_token_hash.len == 32 &&
             CRYPTO_memcmp(rec->owner_token_hash.data, r->token_hash, 32) == 0)
        who = MF_LEASE_OWN;
    mf_srv_read_end(r->srv, txn);
    mf_lease_free(rec);
    return who;
}

bool mf_handler_owns_lease(struct req *r, const char *id)
{
    switch (mf_handler_lease_owner(r, id)) {
    case MF_LEASE_OWN:
        return true;
    case MF_LEASE_UNKNOWN:
        /* Not applied here yet: a write entering a follower is decided again
         * by the leader, which has it; the leader itself (and a read, after
         * its read index) judges a lease it does not have as not owned. */
        return r->pb->op_case != MAYFLY__API__REQUEST__OP_LEASE_LOOKUP &&
               !mf_proposer_leading(r->srv->prop);
    case MF_LEASE_OTHER:
        break;
    }
    return false;
}

void mf_handler_reply_empty(struct req *r)
{
    Mayfly__Api__Empty empty = MAYFLY__API__EMPTY__INIT;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_EMPTY;
    resp.empty = &empty;
    mf_api_reply(r, &resp);
}

void mf_handler_propose_put(struct req *r, Mayfly__Cmd__KvPut *m, char *plain,
                            mf_handler_finish_cb finish)
{
    uint8_t *ct = NULL;
    int rc = mf_records_seal_put(r->srv, m, plain, &ct);
    OPENSSL_cleanse(plain, strlen(plain));
    free(plain);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot encrypt the value: %s", mf_strerror(rc));
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    cmd.kv_put = m;
    mf_handler_propose(r, &cmd, finish);
    free(ct);
}
