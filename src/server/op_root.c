/* operator generate-root (op_root.h): the attempt, its shares and the new
 * root token encoded with the one-time pad. */
#include "server/op_root.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/op_tokens.h"
#include "server/share_collect.h"
#include "store/seal.h"

#define LOG_MOD "root"

/* The shares are collected by share_collect.c; the pad is this attempt's. */
struct mf_root_attempt {
    struct mf_share_collect *shares;
    uint8_t otp[MF_ROOT_OTP_BYTES];
};

static void attempt_end(struct mf_server *s)
{
    struct mf_root_attempt *a = s->root_attempt;
    if (!a)
        return;
    mf_share_collect_end(&a->shares);
    OPENSSL_cleanse(a, sizeof(*a));
    free(a);
    s->root_attempt = NULL;
}

void mf_op_root_free(struct mf_server *s)
{
    attempt_end(s);
}

static uint64_t term_now(struct mf_server *s)
{
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    return st.term;
}

/* The attempt r may address, or NULL (ended when stale). */
static struct mf_root_attempt *attempt_live(struct req *r)
{
    struct mf_server *s = r->srv;
    struct mf_root_attempt *a = s->root_attempt;
    if (a && !mf_share_collect_live(&a->shares, term_now(s), mf_node_is_leader(s->node),
                                    mf_now_wall_ms()))
        attempt_end(s);
    return s->root_attempt;
}

static char *b64(const uint8_t *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static void reply(struct req *r, Mayfly__Api__GenerateRootResponse *out)
{
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_GENERATE_ROOT;
    resp.generate_root = out;
    mf_api_reply(r, &resp);
}

static void do_init(struct req *r, const uint8_t *blob, size_t blob_len)
{
    struct mf_server *s = r->srv;
    if (attempt_live(r))
        return mf_api_reply_error(r, MF_EINVAL, "a generate-root attempt is already in "
                                                "progress: finish it, or cancel it with -cancel");
    struct mf_barrier_seal_config cfg;
    if (mf_barrier_blob_seal_config(blob, blob_len, &cfg))
        return mf_api_reply_error(r, MF_ECORRUPT, "the stored keyring's header is damaged");
    struct mf_root_attempt *a = calloc(1, sizeof(*a));
    if (!a)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    s->root_attempt = a;
    uint8_t raw[MF_SHARE_COLLECT_NONCE_RAW];
    int rc = mf_rand_bytes(raw, sizeof(raw)) || mf_rand_bytes(a->otp, sizeof(a->otp))
                 ? MF_ECRYPTO
                 : mf_share_collect_start(blob, blob_len, raw, term_now(s),
                                          mf_now_wall_ms() + MF_ROOT_ATTEMPT_MS, &a->shares);
    if (rc) {
        attempt_end(s);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot start an attempt: %s",
                                  mf_strerror(rc));
    }
    char *otp = b64(a->otp, sizeof(a->otp));
    if (!otp) {
        attempt_end(r->srv);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    MF_INFO(LOG_MOD, "generate-root attempt started (threshold %u)",
            mf_share_collect_threshold(a->shares));
    Mayfly__Api__GenerateRootResponse out = MAYFLY__API__GENERATE_ROOT_RESPONSE__INIT;
    out.nonce = (char *)mf_share_collect_nonce(a->shares);
    out.otp = otp;
    out.threshold = mf_share_collect_threshold(a->shares);
    out.expire_at_ms = mf_share_collect_expire_at_ms(a->shares);
    reply(r, &out);
    OPENSSL_cleanse(otp, strlen(otp));
    free(otp);
}

static char *root_policies[] = {"root"};
static const struct mf_token_spec root_spec = {.policies = root_policies, .n_policies = 1};

/* The root token was created: answer it XOR the pad (kept in r->op_state). */
static void finish_token(struct req *r, const Result *res, Resp *resp)
{
    (void)resp;
    uint8_t *otp = r->op_state;
    char *token = NULL, *accessor = NULL;
    int rc = mf_tokens_secret_open(r->srv, res, mf_tokens_write_id(r), &token, &accessor);
    free(accessor);
    if (rc || strlen(token) != MF_ROOT_OTP_BYTES) {
        if (token) {
            OPENSSL_cleanse(token, strlen(token));
            free(token);
        }
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot open the new root token");
    }
    uint8_t x[MF_ROOT_OTP_BYTES];
    for (size_t i = 0; i < sizeof(x); i++)
        x[i] = (uint8_t)token[i] ^ otp[i];
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    char *enc = b64(x, sizeof(x));
    OPENSSL_cleanse(x, sizeof(x));
    if (!enc)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    MF_INFO(LOG_MOD, "generate-root completed: a new root token was created");
    Mayfly__Api__GenerateRootResponse out = MAYFLY__API__GENERATE_ROOT_RESPONSE__INIT;
    out.encoded_root_token = enc;
    out.progress = out.threshold = (uint32_t)r->seq; /* set by do_update */
    reply(r, &out);
    free(enc);
}

static void free_otp(void *p)
{
    OPENSSL_cleanse(p, MF_ROOT_OTP_BYTES);
    free(p);
}

static void do_update(struct req *r, const uint8_t *blob, size_t blob_len)
{
    const Mayfly__Api__GenerateRootRequest *q = r->pb->generate_root;
    struct mf_root_attempt *a = attempt_live(r);
    if (!a)
        return mf_api_reply_error(r, MF_EINVAL, "no generate-root attempt in progress (the "
                                                "leader changed?): start again with -init");
    if (!mf_share_collect_nonce_ok(a->shares, q->nonce))
        return mf_api_reply_error(r, MF_EINVAL, "the nonce is not the current attempt's");
    char err[MF_SEAL_ERR_LEN] = "";
    int rc = mf_share_collect_add(a->shares, q->nonce, q->share, blob, blob_len, err,
                                  sizeof(err));
    if (rc)
        return mf_api_reply_error(r, rc, "generate-root: %s", err);
    if (!mf_share_collect_done(a->shares)) {
        Mayfly__Api__GenerateRootResponse out = MAYFLY__API__GENERATE_ROOT_RESPONSE__INIT;
        out.nonce = (char *)mf_share_collect_nonce(a->shares);
        out.progress = mf_share_collect_progress(a->shares);
        out.threshold = mf_share_collect_threshold(a->shares);
        out.expire_at_ms = mf_share_collect_expire_at_ms(a->shares);
        return reply(r, &out);
    }
    /* Verified: the attempt ends now, so no second token comes of it. Its
     * idempotency entry belongs to the last share, not the client address. */
    uint8_t *otp = malloc(MF_ROOT_OTP_BYTES);
    if (!otp || mf_api_set_credential(r, "share", q->share, strlen(q->share))) {
        free(otp);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    memcpy(otp, a->otp, MF_ROOT_OTP_BYTES);
    r->seq = mf_share_collect_threshold(a->shares); /* the answer's progress and threshold */
    attempt_end(r->srv);
    r->op_state = otp;
    r->op_state_free = free_otp;
    r->has_token = false; /* the root token has no parent */
    mf_tokens_propose_create(r, &root_spec, finish_token);
}

void mf_op_generate_root(struct req *r)
{
    const Mayfly__Api__GenerateRootRequest *q = r->pb->generate_root;
    if (q->mode == MAYFLY__API__GENERATE_ROOT_MODE__GENERATE_ROOT_CANCEL) {
        if (attempt_live(r))
            MF_INFO(LOG_MOD, "generate-root attempt cancelled");
        attempt_end(r->srv);
        Mayfly__Api__GenerateRootResponse out = MAYFLY__API__GENERATE_ROOT_RESPONSE__INIT;
        return reply(r, &out);
    }
    if (q->mode != MAYFLY__API__GENERATE_ROOT_MODE__GENERATE_ROOT_INIT &&
        q->mode != MAYFLY__API__GENERATE_ROOT_MODE__GENERATE_ROOT_UPDATE)
        return mf_api_reply_error(r, MF_EINVAL, "generate-root: mode is init, update or cancel");
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc = mf_srv_keyring_blob(r->srv, &blob, &len);
    if (rc == MF_ENOTFOUND || (!rc && len == 0)) {
        free(blob);
        return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised");
    }
    if (rc)
        return mf_api_reply_error(r, rc, "cannot read the keyring: %s", mf_strerror(rc));
    if (q->mode == MAYFLY__API__GENERATE_ROOT_MODE__GENERATE_ROOT_INIT)
        do_init(r, blob, len);
    else
        do_update(r, blob, len);
    free(blob);
}
