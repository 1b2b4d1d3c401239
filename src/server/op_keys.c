/* The barrier's keys across the cluster: rotate, key-status, rekey, and
 * following keyring changes as they apply (op_keys.h). */
#include "server/op_keys.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "node/node.h"
#include "server/proposer.h"
#include "server/share_collect.h"
#include "server/srv.h"
#include "store/seal.h"

#define LOG_MOD "keys"

struct mf_keys {
    bool changing;            /* a rotation or rekey proposal in flight */
    uint64_t last_index;      /* the last applied entry seen */
    uint64_t next_check_ms;   /* monotonic: the next automatic-rotation check */
    struct mf_share_collect *rekey; /* the rekey attempt (leader only) */
    unsigned new_shares, new_threshold;
};

static struct mf_keys *keys_of(struct mf_server *s)
{
    if (!s->keys)
        s->keys = calloc(1, sizeof(*s->keys));
    return s->keys;
}

void mf_op_keys_free(struct mf_server *s)
{
    if (!s->keys)
        return;
    mf_share_collect_end(&s->keys->rekey);
    free(s->keys);
    s->keys = NULL;
}

/* ---- following the replicated keyring ---- */

/* The barrier cannot follow the stored keyring: better sealed (unsealed
 * again with the current shares) than serving with a keyring that will
 * miss the next term. */
static void seal_for(struct mf_server *s, const char *what, int rc)
{
    MF_ERROR(LOG_MOD, "%s: %s; sealing this node: unseal it with the current shares", what,
             mf_strerror(rc));
    mf_seal_seal(s->seal);
}

static void reload_stored(struct mf_server *s)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    if (mf_barrier_sealed(s->barrier) || mf_srv_keyring_blob(s, &blob, &len) || len == 0) {
        free(blob);
        return;
    }
    int rc = mf_barrier_keyring_load(s->barrier, blob, len);
    free(blob);
    if (rc)
        seal_for(s, "the stored keyring (from a snapshot) does not load", rc);
}

/* Whether the entry may hold a keyring command: its field tag (42 or 46,
 * length-delimited) appears in the bytes. Ciphertext may contain it by
 * chance; the unpack decides. */
static bool may_hold_keyring(const struct mf_raft_entry *e)
{
    static const uint8_t put_tag[] = {0xd2, 0x02}, rekey_tag[] = {0xf2, 0x02};
    return e->data && e->len &&
           (memmem(e->data, e->len, put_tag, 2) || memmem(e->data, e->len, rekey_tag, 2));
}

void mf_op_keys_applied(struct mf_server *s, const struct mf_raft_entry *e, const Result *res)
{
    struct mf_keys *k = keys_of(s);
    if (!k)
        return;
    bool gap = k->last_index && e->index != k->last_index + 1;
    k->last_index = e->index;
    if (gap)
        reload_stored(s); /* a snapshot may have brought another keyring */
    /* A duplicate (a retried request id) was not stored: its blob is not
     * the cluster's keyring and must not be loaded. */
    if (!res || res->code != 0 || res->duplicate || e->type != MF_RAFT_ENTRY_NORMAL ||
        !may_hold_keyring(e) || mf_barrier_sealed(s->barrier))
        return; /* a sealed node loads the stored keyring at unseal */
    Cmd *c = mayfly__cmd__command__unpack(NULL, e->len, e->data);
    if (!c)
        return;
    int rc = 0;
    if (c->op_case == MAYFLY__CMD__COMMAND__OP_KEYRING_PUT) {
        rc = mf_barrier_keyring_load(s->barrier, c->keyring_put->keyring.data,
                                     c->keyring_put->keyring.len);
        if (rc)
            seal_for(s, "a replicated keyring does not load", rc);
    } else if (c->op_case == MAYFLY__CMD__COMMAND__OP_KEYRING_CHANGE &&
               !c->keyring_change->wrapped_root.len) {
        rc = mf_barrier_keyring_load(s->barrier, c->keyring_change->keyring.data,
                                     c->keyring_change->keyring.len);
        if (rc)
            seal_for(s, "a rotated keyring does not load", rc);
    } else if (c->op_case == MAYFLY__CMD__COMMAND__OP_KEYRING_CHANGE) {
        rc = mf_barrier_rekey_load(s->barrier, c->keyring_change->keyring.data,
                                   c->keyring_change->keyring.len,
                                   c->keyring_change->wrapped_root.data,
                                   c->keyring_change->wrapped_root.len);
        if (rc)
            seal_for(s, "a rekeyed keyring does not load", rc);
    }
    mayfly__cmd__command__free_unpacked(c, NULL);
}

/* ---- rotation ---- */

/* A rotation (wrapped NULL) or a rekey: KeyringChange, feature level 2, so
 * a cluster with a member that would not load it refuses to propose it. */
static void keyring_cmd(Cmd *cmd, Mayfly__Cmd__KeyringChange *m, uint8_t *blob, size_t len,
                        uint8_t *wrapped, size_t wrapped_len)
{
    mayfly__cmd__keyring_change__init(m);
    m->keyring.data = blob;
    m->keyring.len = len;
    m->wrapped_root.data = wrapped;
    m->wrapped_root.len = wrapped_len;
    mayfly__cmd__command__init(cmd);
    cmd->op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_CHANGE;
    cmd->keyring_change = m;
}

static void finish_rotate(struct req *r, const Result *res, Resp *resp)
{
    struct mf_server *s = r->srv;
    if (s->keys)
        s->keys->changing = false;
    uint32_t term = (uint32_t)r->seq;
    /* A retried rotate answers the term active now (its blob was not stored). */
    if (res && res->duplicate && mf_barrier_active_term(s->barrier, &term))
        return mf_api_reply_error(r, MF_ESEALED, "this node was sealed meanwhile");
    MF_INFO(LOG_MOD, "rotated by request: active term %u", (unsigned)term);
    Mayfly__Api__RotateResponse out = MAYFLY__API__ROTATE_RESPONSE__INIT;
    out.term = term;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_ROTATE;
    resp->rotate = &out;
    mf_api_reply(r, resp);
}

/* A refusal or failure is answered by the handler; the flag must drop too. */
static void rotate_state_free(void *p)
{
    struct mf_server *s = p;
    if (s->keys)
        s->keys->changing = false;
}

void mf_op_rotate(struct req *r)
{
    struct mf_server *s = r->srv;
    struct mf_keys *k = keys_of(s);
    if (!k)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    if (k->changing)
        return mf_api_reply_error(r, MF_EUNAVAIL, "a key change is in flight; retry");
    uint8_t *blob = NULL;
    size_t len = 0;
    uint32_t term = 0;
    int rc = mf_barrier_rotate_export(s->barrier, mf_now_wall_ms(), &blob, &len, &term);
    if (rc)
        return mf_api_reply_error(r, rc == MF_EQUOTA ? MF_EQUOTA : rc == MF_ESEALED ? MF_ESEALED
                                                                                     : MF_EINTERNAL,
                                  "cannot rotate: %s", mf_strerror(rc));
    Mayfly__Cmd__KeyringChange m;
    Cmd cmd;
    keyring_cmd(&cmd, &m, blob, len, NULL, 0);
    k->changing = true;
    r->seq = term;
    r->op_state = s;
    r->op_state_free = rotate_state_free;
    mf_handler_propose(r, &cmd, finish_rotate);
    free(blob);
}

static void on_auto_rotated(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    struct mf_server *s = arg;
    if (s->keys) {
        s->keys->changing = false;
        if (rc) /* e.g. a member not upgraded yet (feature level 2) */
            s->keys->next_check_ms = mf_now_mono_ms() + MF_KEYS_RETRY_MS;
    }
    if (rc)
        MF_WARN(LOG_MOD, "automatic rotation not applied: %s",
                res && res->error && res->error[0] ? res->error : mf_strerror(rc));
}

/* Is the active term due (by use or by age)? */
static bool rotation_due(struct mf_server *s, uint32_t *term, uint64_t *uses, uint64_t *age_ms)
{
    struct mf_barrier_key_info info[1];
    size_t n = 0;
    if (mf_barrier_active_term(s->barrier, term) ||
        mf_barrier_keyring_info(s->barrier, NULL, 0, &n) || n == 0)
        return false;
    struct mf_barrier_key_info *all = calloc(n, sizeof(*all));
    if (!all || mf_barrier_keyring_info(s->barrier, all, n, &n)) {
        free(all);
        return false;
    }
    info[0] = all[n - 1];
    free(all);
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn))
        return false;
    int rc = mf_state_key_uses(txn, mf_fsm_state(s->fsm), *term, uses);
    mf_srv_read_end(s, txn);
    if (rc)
        return false;
    uint64_t now = mf_now_wall_ms();
    *age_ms = now > info[0].created_ms ? now - info[0].created_ms : 0;
    return mf_barrier_rotation_due(*uses, s->cfg->key_rotation_uses, info[0].created_ms, now,
                                   (uint64_t)s->cfg->key_rotation_max_age_h * 3600 * 1000);
}

void mf_op_keys_tick(struct mf_server *s)
{
    struct mf_keys *k = keys_of(s);
    uint64_t now = mf_now_mono_ms();
    if (!k || now < k->next_check_ms || k->changing || !mf_node_is_leader(s->node) ||
        mf_barrier_sealed(s->barrier))
        return;
    k->next_check_ms = now + MF_KEYS_CHECK_MS;
    uint32_t term = 0;
    uint64_t uses = 0, age_ms = 0;
    if (!rotation_due(s, &term, &uses, &age_ms))
        return;
    uint8_t *blob = NULL;
    size_t len = 0;
    uint32_t next = 0;
    int rc = mf_barrier_rotate_export(s->barrier, mf_now_wall_ms(), &blob, &len, &next);
    if (rc) {
        MF_ERROR(LOG_MOD, "automatic rotation of term %u: %s", (unsigned)term, mf_strerror(rc));
        return;
    }
    Mayfly__Cmd__KeyringChange m;
    Cmd cmd;
    keyring_cmd(&cmd, &m, blob, len, NULL, 0);
    k->changing = true;
    MF_INFO(LOG_MOD, "rotating term %u (%" PRIu64 " encryptions, key %" PRIu64 " h old) to %u",
            (unsigned)term, uses, age_ms / 3600000, (unsigned)next);
    rc = mf_propose(s->prop, &cmd, on_auto_rotated, s);
    free(blob);
    if (rc) {
        k->changing = false;
        k->next_check_ms = now + MF_KEYS_RETRY_MS;
        MF_WARN(LOG_MOD, "automatic rotation not proposed: %s", mf_strerror(rc));
    }
}

/* ---- key-status ---- */

void mf_op_key_status(struct req *r)
{
    struct mf_server *s = r->srv;
    uint32_t term = 0;
    size_t n = 0;
    struct mf_barrier_key_info *all = NULL;
    int rc = mf_barrier_active_term(s->barrier, &term);
    if (!rc)
        rc = mf_barrier_keyring_info(s->barrier, NULL, 0, &n);
    if (!rc && !(all = calloc(n ? n : 1, sizeof(*all))))
        rc = -ENOMEM;
    if (!rc)
        rc = mf_barrier_keyring_info(s->barrier, all, n, &n);
    Mayfly__Api__KeyStatusResponse out = MAYFLY__API__KEY_STATUS_RESPONSE__INIT;
    if (!rc && n) {
        out.term = all[n - 1].term;
        out.install_ms = all[n - 1].created_ms;
    }
    free(all);
    if (rc)
        return mf_api_reply_error(r, rc == MF_ESEALED ? MF_ESEALED : MF_EINTERNAL,
                                  "cannot read the keyring: %s", mf_strerror(rc));
    MDB_txn *txn;
    rc = mf_srv_read_begin(s, &txn);
    if (!rc) {
        rc = mf_state_key_uses(txn, mf_fsm_state(s->fsm), out.term, &out.encryptions);
        mf_srv_read_end(s, txn);
    }
    if (rc)
        return mf_api_reply_error(r, MF_EUNAVAIL, "cannot read the key use count: %s",
                                  mf_strerror(rc));
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_KEY_STATUS;
    resp.key_status = &out;
    mf_api_reply(r, &resp);
}

/* ---- rekey ---- */

static uint64_t term_now(struct mf_server *s)
{
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    return st.term;
}

static struct mf_share_collect *rekey_live(struct mf_server *s, struct mf_keys *k)
{
    return mf_share_collect_live(&k->rekey, term_now(s), mf_node_is_leader(s->node),
                                 mf_now_wall_ms());
}

static void reply_rekey(struct req *r, Mayfly__Api__RekeyResponse *out)
{
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_REKEY;
    resp.rekey = out;
    mf_api_reply(r, &resp);
}

static void rekey_init(struct req *r, struct mf_keys *k, const uint8_t *blob, size_t len)
{
    const Mayfly__Api__RekeyRequest *q = r->pb->rekey;
    struct mf_server *s = r->srv;
    struct mf_barrier_seal_config cfg;
    if (mf_barrier_blob_seal_config(blob, len, &cfg))
        return mf_api_reply_error(r, MF_ECORRUPT, "the stored keyring's header is damaged");
    if (cfg.type != MF_SEAL_SHAMIR)
        return mf_api_reply_error(r, MF_EINVAL, "rekey needs a Shamir seal (this cluster "
                                                "unseals from a key file)");
    if (q->shares < 1 || q->shares > MF_SEAL_SHARES_MAX || q->threshold < 1 ||
        q->threshold > q->shares || (q->shares > 1 && q->threshold < 2))
        return mf_api_reply_error(r, MF_EINVAL, "rekey: need 1 <= -threshold (%u) <= -shares "
                                                "(%u) <= %u, and -threshold >= 2 with more "
                                                "than one share",
                                  (unsigned)q->threshold, (unsigned)q->shares,
                                  MF_SEAL_SHARES_MAX);
    if (rekey_live(s, k))
        return mf_api_reply_error(r, MF_EINVAL, "a rekey attempt is already in progress: "
                                                "finish it, or cancel it with -cancel");
    uint8_t raw[MF_SHARE_COLLECT_NONCE_RAW];
    int rc = mf_rand_bytes(raw, sizeof(raw))
                 ? MF_ECRYPTO
                 : mf_share_collect_start(blob, len, raw, term_now(s),
                                          mf_now_wall_ms() + MF_KEYS_REKEY_ATTEMPT_MS, &k->rekey);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot start a rekey attempt: %s",
                                  mf_strerror(rc));
    k->new_shares = q->shares;
    k->new_threshold = q->threshold;
    MF_INFO(LOG_MOD, "rekey attempt started: to %u shares, threshold %u", k->new_shares,
            k->new_threshold);
    Mayfly__Api__RekeyResponse out = MAYFLY__API__REKEY_RESPONSE__INIT;
    out.nonce = (char *)mf_share_collect_nonce(k->rekey);
    out.expire_at_ms = mf_share_collect_expire_at_ms(k->rekey);
    out.threshold = mf_share_collect_threshold(k->rekey);
    reply_rekey(r, &out);
}

/* The new shares, kept with the request until the rekey applied. */
struct rekey_done {
    struct mf_server *s;
    char **shares;
    unsigned n, threshold;
};

static void rekey_done_free(void *p)
{
    struct rekey_done *d = p;
    if (d->s->keys)
        d->s->keys->changing = false;
    mf_seal_shares_free(d->shares, d->n);
    free(d);
}

static void finish_rekey(struct req *r, const Result *res, Resp *resp)
{
    struct rekey_done *d = r->op_state;
    if (res && res->duplicate) /* these shares were not stored: never show them */
        return mf_api_reply_error(r, MF_EEXISTS, "rekey: this request was applied before; its "
                                                 "shares were shown then");
    MF_INFO(LOG_MOD, "rekeyed: %u new shares, threshold %u", d->n, d->threshold);
    Mayfly__Api__RekeyResponse out = MAYFLY__API__REKEY_RESPONSE__INIT;
    out.shares = d->shares;
    out.n_shares = d->n;
    out.progress = out.threshold = (uint32_t)r->seq; /* the old threshold, reached */
    out.new_threshold = d->threshold;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_REKEY;
    resp->rekey = &out;
    mf_api_reply(r, resp); /* frees r and with it the shares */
}

/* The old shares opened the keyring: make the new ones and propose. */
static void rekey_propose(struct req *r, struct mf_keys *k)
{
    struct mf_server *s = r->srv;
    struct rekey_done *d = calloc(1, sizeof(*d));
    if (!d) {
        mf_share_collect_end(&k->rekey);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    d->s = s;
    d->n = k->new_shares;
    d->threshold = k->new_threshold;
    uint8_t *blob = NULL, *wrapped = NULL;
    size_t blob_len = 0, wrapped_len = 0;
    char err[MF_SEAL_ERR_LEN] = "";
    int rc = mf_seal_rekey_shamir(mf_share_collect_barrier(k->rekey), d->n, d->threshold,
                                  &d->shares, &blob, &blob_len, &wrapped, &wrapped_len, err,
                                  sizeof(err));
    r->seq = mf_share_collect_threshold(k->rekey);
    mf_share_collect_end(&k->rekey); /* the old root key is wiped here */
    if (rc) {
        free(d);
        return mf_api_reply_error(r, rc == MF_EINVAL ? MF_EINVAL : MF_EINTERNAL, "rekey: %s",
                                  err);
    }
    Mayfly__Cmd__KeyringChange m;
    Cmd cmd;
    keyring_cmd(&cmd, &m, blob, blob_len, wrapped, wrapped_len);
    k->changing = true;
    r->op_state = d;
    r->op_state_free = rekey_done_free;
    mf_handler_propose(r, &cmd, finish_rekey);
    free(blob);
    free(wrapped);
}

static void rekey_update(struct req *r, struct mf_keys *k, const uint8_t *blob, size_t len)
{
    const Mayfly__Api__RekeyRequest *q = r->pb->rekey;
    struct mf_share_collect *c = rekey_live(r->srv, k);
    if (!c)
        return mf_api_reply_error(r, MF_EINVAL, "no rekey attempt in progress (expired, or "
                                                "the leader changed?): start again with -init");
    if (!mf_share_collect_nonce_ok(c, q->nonce))
        return mf_api_reply_error(r, MF_EINVAL, "the nonce is not the current attempt's");
    if (k->changing)
        return mf_api_reply_error(r, MF_EUNAVAIL, "a key change is in flight; retry");
    char err[MF_SEAL_ERR_LEN] = "";
    int rc = mf_share_collect_add(c, q->nonce, q->share, blob, len, err, sizeof(err));
    if (rc)
        return mf_api_reply_error(r, rc, "rekey: %s", err);
    if (mf_share_collect_done(c))
        return rekey_propose(r, k);
    Mayfly__Api__RekeyResponse out = MAYFLY__API__REKEY_RESPONSE__INIT;
    out.nonce = (char *)mf_share_collect_nonce(c);
    out.expire_at_ms = mf_share_collect_expire_at_ms(c);
    out.progress = mf_share_collect_progress(c);
    out.threshold = mf_share_collect_threshold(c);
    reply_rekey(r, &out);
}

void mf_op_rekey(struct req *r)
{
    const Mayfly__Api__RekeyRequest *q = r->pb->rekey;
    struct mf_keys *k = keys_of(r->srv);
    if (!k)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    if (q->mode == MAYFLY__API__REKEY_MODE__REKEY_CANCEL) {
        if (rekey_live(r->srv, k))
            MF_INFO(LOG_MOD, "rekey attempt cancelled");
        mf_share_collect_end(&k->rekey);
        Mayfly__Api__RekeyResponse out = MAYFLY__API__REKEY_RESPONSE__INIT;
        return reply_rekey(r, &out);
    }
    if (q->mode != MAYFLY__API__REKEY_MODE__REKEY_INIT &&
        q->mode != MAYFLY__API__REKEY_MODE__REKEY_UPDATE)
        return mf_api_reply_error(r, MF_EINVAL, "rekey: mode is init, update or cancel");
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc = mf_srv_keyring_blob(r->srv, &blob, &len);
    if (rc == MF_ENOTFOUND || (!rc && len == 0)) {
        free(blob);
        return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised");
    }
    if (rc)
        return mf_api_reply_error(r, rc, "cannot read the keyring: %s", mf_strerror(rc));
    if (q->mode == MAYFLY__API__REKEY_MODE__REKEY_INIT)
        rekey_init(r, k, blob, len);
    else
        rekey_update(r, k, blob, len);
    free(blob);
}
