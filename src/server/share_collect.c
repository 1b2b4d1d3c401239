/* Share collection (share_collect.h): nonce, expiry, term, and a check
 * barrier with its seal driver that counts distinct shares and holds the
 * reconstructed root key until the attempt ends. */
#include "server/share_collect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/assert.h"
#include "common/err.h"
#include "store/seal.h"

struct mf_share_collect {
    uint64_t term;            /* the Raft term it started in */
    char nonce[2 * MF_SHARE_COLLECT_NONCE_RAW + 1];
    uint64_t expire_at_ms;
    unsigned threshold;
    unsigned progress;
    uint8_t seal_type;
    struct mf_barrier *barrier; /* checks the shares; never serves anything */
    struct mf_seal *seal;
};

void mf_share_collect_end(struct mf_share_collect **slot)
{
    struct mf_share_collect *c = *slot;
    if (!c)
        return;
    mf_seal_free(c->seal);
    mf_barrier_free(c->barrier); /* wipes a reconstructed key */
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
    *slot = NULL;
}

int mf_share_collect_start(const uint8_t *blob, size_t blob_len,
                           const uint8_t nonce_raw[MF_SHARE_COLLECT_NONCE_RAW], uint64_t term,
                           uint64_t expire_at_ms, struct mf_share_collect **out)
{
    *out = NULL;
    struct mf_barrier_seal_config cfg;
    if (mf_barrier_blob_seal_config(blob, blob_len, &cfg))
        return MF_ECORRUPT;
    struct mf_share_collect *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int rc = mf_barrier_new(&c->barrier);
    if (!rc)
        rc = mf_seal_new(c->barrier, &c->seal);
    if (rc) {
        mf_share_collect_end(&c);
        return rc;
    }
    for (size_t i = 0; i < MF_SHARE_COLLECT_NONCE_RAW; i++)
        snprintf(c->nonce + 2 * i, 3, "%02x", nonce_raw[i]);
    c->term = term;
    c->expire_at_ms = expire_at_ms;
    c->seal_type = cfg.type;
    c->threshold = cfg.type == MF_SEAL_SHAMIR ? cfg.threshold : 1;
    *out = c;
    return 0;
}

struct mf_share_collect *mf_share_collect_live(struct mf_share_collect **slot, uint64_t term,
                                               bool leading, uint64_t now_ms)
{
    struct mf_share_collect *c = *slot;
    if (c && (c->term != term || !leading || now_ms >= c->expire_at_ms))
        mf_share_collect_end(slot);
    return *slot;
}

const char *mf_share_collect_nonce(const struct mf_share_collect *c) { return c->nonce; }
uint64_t mf_share_collect_expire_at_ms(const struct mf_share_collect *c) { return c->expire_at_ms; }
unsigned mf_share_collect_threshold(const struct mf_share_collect *c) { return c->threshold; }
unsigned mf_share_collect_progress(const struct mf_share_collect *c) { return c->progress; }

bool mf_share_collect_done(const struct mf_share_collect *c)
{
    return !mf_barrier_sealed(c->barrier);
}

struct mf_barrier *mf_share_collect_barrier(struct mf_share_collect *c)
{
    return mf_share_collect_done(c) ? c->barrier : NULL;
}

bool mf_share_collect_nonce_ok(const struct mf_share_collect *c, const char *nonce)
{
    size_t n = strlen(c->nonce);
    return strlen(nonce) == n && CRYPTO_memcmp(nonce, c->nonce, n) == 0;
}

int mf_share_collect_add(struct mf_share_collect *c, const char *nonce, const char *share,
                         const uint8_t *blob, size_t blob_len, char *err, size_t err_len)
{
    MF_ASSERT(c != NULL && nonce != NULL && share != NULL);
    if (!mf_share_collect_nonce_ok(c, nonce))
        return mf_err_set(err, err_len, MF_EINVAL, "the nonce is not the current attempt's");
    if (mf_share_collect_done(c))
        return 0;
    struct mf_seal_status st = {0};
    int rc;
    if (c->seal_type == MF_SEAL_KEYFILE) {
        rc = mf_seal_unseal_key_text(c->seal, share, blob, blob_len, err, err_len);
        st.progress = rc ? 0 : 1;
    } else {
        rc = mf_seal_unseal(c->seal, share, blob, blob_len, &st, err, err_len);
    }
    if (rc && !err[0])
        mf_err_set(err, err_len, rc, "%s", mf_strerror(rc));
    if (mf_share_collect_done(c)) {
        c->progress = c->threshold;
    } else if (c->seal_type == MF_SEAL_SHAMIR) {
        mf_seal_status(c->seal, blob, blob_len, &st); /* a refused share may keep progress */
        c->progress = st.progress;
    } else {
        c->progress = 0;
    }
    return rc;
}
