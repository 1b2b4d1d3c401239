/* What every operation handler shares (handler.h). */
#include "server/handler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "server/proposer.h"
#include "server/records.h"
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

void mf_handler_propose(struct req *r, Cmd *cmd, mf_handler_finish_cb finish)
{
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
    struct proposal *p = malloc(sizeof(*p));
    if (!p)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    p->r = r;
    p->finish = finish;
    int rc = mf_propose(r->srv->prop, cmd, on_applied, p);
    if (!rc)
        return;
    free(p);
    if (rc == MF_ETOOLARGE)
        return mf_api_reply_error(r, MF_ETOOLARGE, "the command is over %d bytes",
                                  MF_FSM_COMMAND_MAX);
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
    if (len == 0 || len > MF_KV_PATH_MAX) {
        mf_api_reply_error(r, MF_EINVAL, "a path is 1..%d bytes", MF_KV_PATH_MAX);
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
bool mf_handler_owns_lease(struct req *r, const char *id)
{
    uint64_t seq;
    if (!r->has_token || mf_handler_lease_seq(id, &seq))
        return false;
    MDB_txn *txn;
    if (mf_srv_read_begin(r->srv, &txn))
        return false;
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    bool own = mf_lease_get(txn, mf_fsm_state(r->srv->fsm), seq, &rec) == 0 &&
               rec->owner_token_hash.len == 32 &&
               CRYPTO_memcmp(rec->owner_token_hash.data, r->token_hash, 32) == 0;
    mf_srv_read_end(r->srv, txn);
    mf_lease_free(rec);
    return own;
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
