/* Seal and unseal: Shamir shares (libgfshare), unseal progress, key files.
 *
 * The formats are in seal.h. libgfshare draws the random coefficients of the
 * sharing polynomial from the global function pointer gfshare_fill_rand, which
 * Debian 12 leaves NULL (and which gfshare_ctx_free also calls to scrub its
 * buffers): we point it, once, at a wrapper around RAND_bytes that aborts if
 * the generator fails, since a share made from bad randomness would leak the
 * root key and there is no way to report an error through libgfshare.
 *
 * Unseal progress (the shares given so far) lives in locked memory owned by the
 * struct mf_seal and is wiped on success, failure, reset, seal and free.
 */
#include "store/seal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgfshare.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/evp.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/log.h"

#define MOD "seal"

#define KEY MF_BARRIER_KEY_BYTES
#define CHECK_BYTES 4u
static const char SHARE_PREFIX[] = "mf1-";
static const char SHARE_CHECK_DOMAIN[] = "mayfly/share/v1";

struct mf_seal {
    struct mf_barrier *barrier;
    uint8_t *shares;                        /* locked: MF_SEAL_SHARES_MAX * KEY */
    uint8_t index[MF_SEAL_SHARES_MAX];      /* x coordinate of each share given */
    unsigned progress;
    uint8_t seal_id[MF_BARRIER_SEAL_ID_BYTES]; /* seal the progress belongs to */
};

/* ------------------------------------------------------ libgfshare glue */

static void fill_rand_or_abort(unsigned char *buf, unsigned int len)
{
    if (len > 0 && RAND_bytes(buf, (int)len) != 1) {
        /* Cannot return an error through libgfshare; continuing would make
         * predictable shares. */
        MF_ERROR(MOD, "RAND_bytes failed while splitting the root key; aborting");
        abort();
    }
}

static pthread_once_t gfshare_once = PTHREAD_ONCE_INIT;

static void gfshare_setup(void)
{
    gfshare_fill_rand = fill_rand_or_abort;
}

/* Combine `n` shares (x coordinates `xs`, KEY bytes each at `ys`) into `secret`. */
static int combine(const uint8_t *xs, const uint8_t *ys, unsigned n, uint8_t *secret)
{
    MF_ASSERT(n >= 1 && n <= MF_SEAL_SHARES_MAX);
    pthread_once(&gfshare_once, gfshare_setup);
    uint8_t nrs[MF_SEAL_SHARES_MAX];
    memcpy(nrs, xs, n);
    gfshare_ctx *ctx = gfshare_ctx_init_dec(nrs, n, KEY);
    if (ctx == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++)
        gfshare_ctx_dec_giveshare(ctx, (unsigned char)i, (unsigned char *)ys + (size_t)i * KEY);
    gfshare_ctx_dec_extract(ctx, secret);
    gfshare_ctx_free(ctx); /* overwrites its buffers with random bytes */
    return 0;
}

/* -------------------------------------------------------- share text */

static const char HEX[] = "0123456789abcdef";

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
    out[2 * len] = 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode exactly 2*len hex digits. */
static bool hex_decode(const char *in, size_t len, uint8_t *out)
{
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void share_check(const uint8_t *seal_id, uint8_t index, const uint8_t *share,
                        uint8_t check[CHECK_BYTES])
{
    uint8_t in[sizeof(SHARE_CHECK_DOMAIN) - 1 + MF_BARRIER_SEAL_ID_BYTES + 1 + KEY];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    uint8_t *p = in;
    memcpy(p, SHARE_CHECK_DOMAIN, sizeof(SHARE_CHECK_DOMAIN) - 1);
    p += sizeof(SHARE_CHECK_DOMAIN) - 1;
    memcpy(p, seal_id, MF_BARRIER_SEAL_ID_BYTES);
    p += MF_BARRIER_SEAL_ID_BYTES;
    *p++ = index;
    memcpy(p, share, KEY);
    /* SHA-256 of 64 bytes cannot fail short of a broken OpenSSL. */
    MF_ASSERT(EVP_Digest(in, sizeof(in), md, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32);
    OPENSSL_cleanse(in, sizeof(in));
    memcpy(check, md, CHECK_BYTES);
}

/* Encode into a malloc'd string. */
static char *share_encode(const uint8_t *seal_id, uint8_t index, const uint8_t *share)
{
    char *out = malloc(MF_SEAL_SHARE_TEXT_MAX);
    if (out == NULL)
        return NULL;
    uint8_t check[CHECK_BYTES];
    char hex[2 * KEY + 1], chex[2 * CHECK_BYTES + 1];
    share_check(seal_id, index, share, check);
    hex_encode(share, KEY, hex);
    hex_encode(check, CHECK_BYTES, chex);
    int n = snprintf(out, MF_SEAL_SHARE_TEXT_MAX, "%s%u-%s-%s", SHARE_PREFIX, (unsigned)index, hex,
                     chex);
    MF_ASSERT(n > 0 && (size_t)n < MF_SEAL_SHARE_TEXT_MAX);
    OPENSSL_cleanse(hex, sizeof(hex));
    return out;
}

/* Parse share text into index and KEY bytes (locked memory of the caller). */
static int share_decode(const char *text, const struct mf_barrier_seal_config *cfg,
                        uint8_t *index, uint8_t *share, char *err, size_t err_len)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t n = strnlen(text, MF_SEAL_SHARE_TEXT_MAX);
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--;
    const char *p = text;
    const size_t pre = sizeof(SHARE_PREFIX) - 1;
    if (n < pre || strncasecmp(p, SHARE_PREFIX, pre) != 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "malformed share: it must start with \"%s\"", SHARE_PREFIX);
    p += pre;
    unsigned idx = 0, digits = 0;
    while (p < text + n && *p >= '0' && *p <= '9' && digits < 4) {
        idx = idx * 10 + (unsigned)(*p - '0');
        p++, digits++;
    }
    if (digits == 0 || digits > 3 || idx < 1 || idx > MF_SEAL_SHARES_MAX)
        return mf_err_set(err, err_len, MF_EINVAL, "malformed share: bad share index");
    size_t rest = (size_t)(text + n - p);
    if (rest != 1 + 2 * KEY + 1 + 2 * CHECK_BYTES || p[0] != '-' || p[1 + 2 * KEY] != '-')
        return mf_err_set(err, err_len, MF_EINVAL,
                          "malformed share: expected %u hex digits and a %u-digit checksum",
                          2 * KEY, 2 * CHECK_BYTES);
    uint8_t check[CHECK_BYTES], want[CHECK_BYTES];
    if (!hex_decode(p + 1, KEY, share) || !hex_decode(p + 2 + 2 * KEY, CHECK_BYTES, check)) {
        OPENSSL_cleanse(share, KEY);
        return mf_err_set(err, err_len, MF_EINVAL, "malformed share: not hexadecimal");
    }
    if (idx > cfg->shares) {
        OPENSSL_cleanse(share, KEY);
        return mf_err_set(err, err_len, MF_EINVAL,
                          "share %u does not exist: this seal has %u shares", idx, cfg->shares);
    }
    share_check(cfg->seal_id, (uint8_t)idx, share, want);
    if (CRYPTO_memcmp(check, want, CHECK_BYTES) != 0) {
        OPENSSL_cleanse(share, KEY);
        return mf_err_set(err, err_len, MF_EINVAL,
                          "share %u fails its checksum: it was mistyped or belongs to "
                          "another cluster", idx);
    }
    *index = (uint8_t)idx;
    return 0;
}

/* ------------------------------------------------------------- handle */

int mf_seal_new(struct mf_barrier *barrier, struct mf_seal **out)
{
    MF_ASSERT(barrier != NULL && out != NULL);
    *out = NULL;
    struct mf_seal *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->shares = mf_barrier_secure_alloc((size_t)MF_SEAL_SHARES_MAX * KEY);
    if (s->shares == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->barrier = barrier;
    *out = s;
    return 0;
}

void mf_seal_reset(struct mf_seal *s)
{
    MF_ASSERT(s != NULL);
    OPENSSL_cleanse(s->shares, (size_t)s->progress * KEY);
    memset(s->index, 0, sizeof(s->index));
    s->progress = 0;
}

void mf_seal_free(struct mf_seal *s)
{
    if (s == NULL)
        return;
    mf_seal_reset(s);
    mf_barrier_secure_free(s->shares, (size_t)MF_SEAL_SHARES_MAX * KEY);
    free(s);
}

void mf_seal_seal(struct mf_seal *s)
{
    MF_ASSERT(s != NULL);
    mf_seal_reset(s);
    mf_barrier_seal(s->barrier);
}

void mf_seal_status(struct mf_seal *s, const uint8_t *blob, size_t blob_len,
                    struct mf_seal_status *st)
{
    MF_ASSERT(s != NULL && st != NULL);
    memset(st, 0, sizeof(*st));
    st->sealed = mf_barrier_sealed(s->barrier);
    st->initialized = blob != NULL && blob_len > 0;
    struct mf_barrier_seal_config cfg;
    if (st->initialized && mf_barrier_blob_seal_config(blob, blob_len, &cfg) == 0) {
        st->type = cfg.type;
        st->shares = cfg.shares;
        st->threshold = cfg.threshold;
    }
    st->progress = st->sealed ? s->progress : 0;
}

/* ---------------------------------------------------------------- init */

void mf_seal_shares_free(char **share_text, size_t n)
{
    if (share_text == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (share_text[i] != NULL)
            mf_barrier_wipe_free(share_text[i], strlen(share_text[i]));
    free(share_text);
}

/* Split `root` into `shares` share texts (x = 1..N) of threshold T into
 * texts[0..N) (the caller frees them with mf_seal_shares_free, also on
 * error), checking that the first T and the last T give the key back. */
static int split(const uint8_t *root, const uint8_t *seal_id, unsigned shares,
                 unsigned threshold, char **texts, char *err, size_t err_len)
{
    pthread_once(&gfshare_once, gfshare_setup);
    uint8_t xs[MF_SEAL_SHARES_MAX];
    uint8_t *ys = mf_barrier_secure_alloc((size_t)shares * KEY);
    uint8_t *check = mf_barrier_secure_alloc(KEY);
    int rc = 0;
    if (ys == NULL || check == NULL) {
        rc = mf_err_set(err, err_len, -ENOMEM, "out of memory");
        goto done;
    }
    for (unsigned i = 0; i < shares; i++)
        xs[i] = (uint8_t)(i + 1);
    gfshare_ctx *ctx = gfshare_ctx_init_enc(xs, shares, (unsigned char)threshold, KEY);
    if (ctx == NULL) {
        rc = mf_err_set(err, err_len, -ENOMEM, "cannot split the root key: out of memory");
        goto done;
    }
    gfshare_ctx_enc_setsecret(ctx, (unsigned char *)root); /* not written: old API */
    for (unsigned i = 0; i < shares; i++)
        gfshare_ctx_enc_getshare(ctx, (unsigned char)i, ys + (size_t)i * KEY);
    gfshare_ctx_free(ctx);

    /* Post-condition: the first T shares and the last T shares give the root key back. */
    MF_ASSERT(combine(xs, ys, threshold, check) == 0);
    MF_ASSERT(CRYPTO_memcmp(check, root, KEY) == 0);
    unsigned last = shares - threshold;
    MF_ASSERT(combine(xs + last, ys + (size_t)last * KEY, threshold, check) == 0);
    MF_ASSERT(CRYPTO_memcmp(check, root, KEY) == 0);

    for (unsigned i = 0; i < shares && rc == 0; i++) {
        texts[i] = share_encode(seal_id, xs[i], ys + (size_t)i * KEY);
        if (texts[i] == NULL)
            rc = mf_err_set(err, err_len, -ENOMEM, "out of memory");
    }
done:
    mf_barrier_secure_free(check, KEY);
    mf_barrier_secure_free(ys, (size_t)shares * KEY);
    return rc;
}

/* The rules on N and T shared by init and rekey. */
static int check_shares(unsigned shares, unsigned threshold, char *err, size_t err_len)
{
    if (shares < 1 || shares > MF_SEAL_SHARES_MAX)
        return mf_err_set(err, err_len, MF_EINVAL, "shares must be between 1 and %u (got %u)",
                          MF_SEAL_SHARES_MAX, shares);
    if (threshold < 1 || threshold > shares)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "threshold must be between 1 and the number of shares (%u), got %u",
                          shares, threshold);
    if (shares > 1 && threshold < 2)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "threshold 1 with %u shares would make each share the root key: "
                          "use a threshold of at least 2", shares);
    return 0;
}

int mf_seal_rekey_shamir(struct mf_barrier *b, unsigned shares, unsigned threshold,
                         char ***share_text, uint8_t **blob, size_t *blob_len, uint8_t **wrapped,
                         size_t *wrapped_len, char *err, size_t err_len)
{
    MF_ASSERT(b != NULL && share_text != NULL && blob != NULL && wrapped != NULL);
    *share_text = NULL;
    *blob = NULL;
    *wrapped = NULL;
    int rc = check_shares(shares, threshold, err, err_len);
    if (rc != 0)
        return rc;
    struct mf_barrier_seal_config cfg;
    if (mf_barrier_seal_config(b, &cfg) != 0)
        return mf_err_set(err, err_len, MF_ESEALED, "the keyring is not open");
    if (cfg.type != MF_SEAL_SHAMIR)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "rekey needs a Shamir seal (this cluster unseals from a key file)");
    uint8_t *root = mf_barrier_secure_alloc(KEY);
    char **texts = calloc(shares, sizeof(*texts));
    if (root == NULL || texts == NULL) {
        rc = mf_err_set(err, err_len, -ENOMEM, "out of memory");
        goto fail;
    }
    if (mf_rand_bytes(root, KEY) != 0) {
        rc = mf_err_set(err, err_len, MF_ECRYPTO, "random generator failed");
        goto fail;
    }
    rc = split(root, cfg.seal_id, shares, threshold, texts, err, err_len);
    if (rc != 0)
        goto fail;
    rc = mf_barrier_rekey_export(b, root, (uint8_t)shares, (uint8_t)threshold, blob, blob_len,
                                 wrapped, wrapped_len);
    if (rc != 0) {
        mf_err_set(err, err_len, rc, "cannot rekey the keyring: %s", mf_strerror(rc));
        goto fail;
    }
    mf_barrier_secure_free(root, KEY);
    *share_text = texts;
    return 0;
fail:
    mf_seal_shares_free(texts, texts ? shares : 0);
    mf_barrier_secure_free(root, KEY);
    return rc;
}

int mf_seal_init_shamir(struct mf_seal *s, unsigned shares, unsigned threshold, uint64_t now_ms,
                        char ***share_text, uint8_t **blob, size_t *blob_len, char *err,
                        size_t err_len)
{
    MF_ASSERT(s != NULL && share_text != NULL && blob != NULL && blob_len != NULL);
    *share_text = NULL;
    *blob = NULL;
    int rc = check_shares(shares, threshold, err, err_len);
    if (rc != 0)
        return rc;
    if (!mf_barrier_sealed(s->barrier))
        return mf_err_set(err, err_len, MF_EEXISTS, "already initialised and unsealed");

    char **texts = NULL;
    uint8_t *root = mf_barrier_secure_alloc(KEY);
    texts = calloc(shares, sizeof(*texts));
    if (root == NULL || texts == NULL) {
        rc = mf_err_set(err, err_len, -ENOMEM, "out of memory");
        goto fail;
    }
    if (mf_rand_bytes(root, KEY) != 0) {
        rc = mf_err_set(err, err_len, MF_ECRYPTO, "random generator failed");
        goto fail;
    }
    struct mf_barrier_seal_config cfg = {.type = MF_SEAL_SHAMIR,
                                         .shares = (uint8_t)shares,
                                         .threshold = (uint8_t)threshold};
    rc = mf_barrier_initialize(s->barrier, root, &cfg, now_ms);
    if (rc != 0) {
        mf_err_set(err, err_len, rc, "cannot create the keyring: %s", mf_strerror(rc));
        goto fail;
    }
    MF_ASSERT(mf_barrier_seal_config(s->barrier, &cfg) == 0); /* now with its seal id */
    rc = split(root, cfg.seal_id, shares, threshold, texts, err, err_len);
    if (rc != 0)
        goto fail_sealed;
    rc = mf_barrier_keyring_export(s->barrier, blob, blob_len);
    if (rc != 0) {
        mf_err_set(err, err_len, rc, "cannot export the keyring: %s", mf_strerror(rc));
        goto fail_sealed;
    }
    mf_barrier_secure_free(root, KEY);
    mf_seal_reset(s);
    *share_text = texts;
    MF_INFO(MOD, "initialised with %u Shamir shares, threshold %u", shares, threshold);
    return 0;

fail_sealed:
    mf_barrier_seal(s->barrier);
fail:
    mf_seal_shares_free(texts, shares);
    mf_barrier_secure_free(root, KEY);
    return rc;
}

int mf_seal_init_keyfile(struct mf_seal *s, const char *path, uint64_t now_ms, uint8_t **blob,
                         size_t *blob_len, char *err, size_t err_len)
{
    MF_ASSERT(s != NULL && path != NULL && blob != NULL && blob_len != NULL);
    *blob = NULL;
    if (!mf_barrier_sealed(s->barrier))
        return mf_err_set(err, err_len, MF_EEXISTS, "already initialised and unsealed");
    uint8_t *root = mf_barrier_secure_alloc(KEY);
    if (root == NULL)
        return mf_err_set(err, err_len, -ENOMEM, "out of memory");
    int rc = mf_seal_keyfile_read(path, root, err, err_len);
    if (rc != 0)
        goto done;
    struct mf_barrier_seal_config cfg = {.type = MF_SEAL_KEYFILE};
    rc = mf_barrier_initialize(s->barrier, root, &cfg, now_ms);
    if (rc != 0) {
        mf_err_set(err, err_len, rc, "cannot create the keyring: %s", mf_strerror(rc));
        goto done;
    }
    rc = mf_barrier_keyring_export(s->barrier, blob, blob_len);
    if (rc != 0) {
        mf_barrier_seal(s->barrier);
        mf_err_set(err, err_len, rc, "cannot export the keyring: %s", mf_strerror(rc));
        goto done;
    }
    MF_INFO(MOD, "initialised with a key file (auto-unseal; dev and tests only)");
done:
    mf_barrier_secure_free(root, KEY);
    return rc;
}

/* -------------------------------------------------------------- unseal */

static int blob_config(const uint8_t *blob, size_t blob_len, struct mf_barrier_seal_config *cfg,
                       char *err, size_t err_len)
{
    if (blob == NULL || blob_len == 0)
        return mf_err_set(err, err_len, MF_ENOTINIT, "not initialised: run operator init");
    int rc = mf_barrier_blob_seal_config(blob, blob_len, cfg);
    if (rc == MF_EINVAL)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "the stored keyring has a format this version does not know");
    if (rc != 0)
        return mf_err_set(err, err_len, rc, "the stored keyring's header is damaged");
    return 0;
}

int mf_seal_unseal(struct mf_seal *s, const char *share, const uint8_t *blob, size_t blob_len,
                   struct mf_seal_status *st, char *err, size_t err_len)
{
    MF_ASSERT(s != NULL);
    struct mf_barrier_seal_config cfg;
    int rc = blob_config(blob, blob_len, &cfg, err, err_len);
    if (rc != 0)
        goto out;
    if (!mf_barrier_sealed(s->barrier)) {
        mf_seal_reset(s);
        goto out;
    }
    if (cfg.type != MF_SEAL_SHAMIR) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "this node is sealed with a key file, not Shamir shares");
        goto out;
    }
    if (share == NULL) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "no share given");
        goto out;
    }
    /* Progress made against another seal (the blob changed) does not count. */
    if (s->progress > 0 && memcmp(s->seal_id, cfg.seal_id, sizeof(s->seal_id)) != 0)
        mf_seal_reset(s);
    memcpy(s->seal_id, cfg.seal_id, sizeof(s->seal_id));

    MF_ASSERT(s->progress < cfg.threshold);
    uint8_t idx = 0;
    uint8_t *slot = s->shares + (size_t)s->progress * KEY;
    rc = share_decode(share, &cfg, &idx, slot, err, err_len);
    if (rc != 0)
        goto out;
    for (unsigned i = 0; i < s->progress; i++) {
        if (s->index[i] != idx)
            continue;
        bool same = CRYPTO_memcmp(s->shares + (size_t)i * KEY, slot, KEY) == 0;
        OPENSSL_cleanse(slot, KEY);
        if (!same)
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "share %u was already given with other digits; progress kept",
                            (unsigned)idx);
        goto out; /* a duplicate does not count twice */
    }
    s->index[s->progress++] = idx;
    if (s->progress < cfg.threshold)
        goto out;

    uint8_t *root = mf_barrier_secure_alloc(KEY);
    if (root == NULL) {
        rc = mf_err_set(err, err_len, -ENOMEM, "out of memory");
        goto out;
    }
    rc = combine(s->index, s->shares, s->progress, root);
    if (rc == 0)
        rc = mf_barrier_unseal(s->barrier, root, blob, blob_len);
    mf_barrier_secure_free(root, KEY);
    mf_seal_reset(s);
    if (rc == MF_ECORRUPT) {
        MF_WARN(MOD, "unseal failed: the shares given do not reconstruct the root key");
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "these %u shares do not reconstruct the root key (a wrong or corrupted "
                        "share); unseal progress was reset, start again",
                        (unsigned)cfg.threshold);
    } else if (rc == MF_EEXISTS) {
        rc = 0; /* unsealed by someone else meanwhile */
    } else if (rc != 0) {
        mf_err_set(err, err_len, rc, "unseal failed: %s", mf_strerror(rc));
    }
out:
    if (st != NULL)
        mf_seal_status(s, blob, blob_len, st);
    return rc;
}

int mf_seal_unseal_keyfile(struct mf_seal *s, const char *path, const uint8_t *blob,
                           size_t blob_len, char *err, size_t err_len)
{
    MF_ASSERT(s != NULL && path != NULL);
    struct mf_barrier_seal_config cfg;
    int rc = blob_config(blob, blob_len, &cfg, err, err_len);
    if (rc != 0)
        return rc;
    if (cfg.type != MF_SEAL_KEYFILE)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "this node is sealed with Shamir shares: unseal it with "
                          "operator unseal, not a key file");
    if (!mf_barrier_sealed(s->barrier))
        return mf_err_set(err, err_len, MF_EEXISTS, "already unsealed");
    uint8_t *root = mf_barrier_secure_alloc(KEY);
    if (root == NULL)
        return mf_err_set(err, err_len, -ENOMEM, "out of memory");
    rc = mf_seal_keyfile_read(path, root, err, err_len);
    if (rc == 0) {
        rc = mf_barrier_unseal(s->barrier, root, blob, blob_len);
        if (rc == MF_ECORRUPT)
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "%s: this key does not open the stored keyring (a key of another "
                            "cluster?)", path);
        else if (rc != 0)
            mf_err_set(err, err_len, rc, "unseal failed: %s", mf_strerror(rc));
    }
    mf_barrier_secure_free(root, KEY);
    return rc;
}

int mf_seal_unseal_key_text(struct mf_seal *s, const char *text, const uint8_t *blob,
                            size_t blob_len, char *err, size_t err_len)
{
    MF_ASSERT(s != NULL && text != NULL);
    struct mf_barrier_seal_config cfg;
    int rc = blob_config(blob, blob_len, &cfg, err, err_len);
    if (rc != 0)
        return rc;
    if (cfg.type != MF_SEAL_KEYFILE)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "this cluster is sealed with Shamir shares, not a key file");
    if (!mf_barrier_sealed(s->barrier))
        return mf_err_set(err, err_len, MF_EEXISTS, "already unsealed");
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                       text[len - 1] == '\r'))
        len--;
    uint8_t *root = mf_barrier_secure_alloc(KEY);
    if (root == NULL)
        return mf_err_set(err, err_len, -ENOMEM, "out of memory");
    if (len != 2 * KEY || !hex_decode(text, KEY, root)) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "a key-file share is the key file's 64 hex "
                                                 "digits");
    } else {
        rc = mf_barrier_unseal(s->barrier, root, blob, blob_len);
        if (rc == MF_ECORRUPT)
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "this key does not open the stored keyring (a key of another "
                            "cluster?)");
        else if (rc != 0)
            mf_err_set(err, err_len, rc, "unseal failed: %s", mf_strerror(rc));
    }
    mf_barrier_secure_free(root, KEY);
    return rc;
}

/* ------------------------------------------------------------ key files */

int mf_seal_keyfile_read(const char *path, uint8_t *key, char *err, size_t err_len)
{
    MF_ASSERT(path != NULL && key != NULL);
    enum { RAW = KEY, HEX_LEN = 2 * KEY, READ_MAX = 2 * KEY + 3 };
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return mf_err_set(err, err_len, -e, "%s: %s", path, strerror(e));
    }
    int rc;
    struct stat st;
    uint8_t *buf = mf_barrier_secure_alloc(READ_MAX);
    if (buf == NULL) {
        rc = mf_err_set(err, err_len, -ENOMEM, "out of memory");
        goto done;
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        rc = mf_err_set(err, err_len, -e, "%s: %s", path, strerror(e));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = mf_err_set(err, err_len, MF_EPERM, "%s: not a regular file", path);
        goto done;
    }
    if (st.st_uid != geteuid()) {
        rc = mf_err_set(err, err_len, MF_EPERM, "%s: owned by uid %u, not by this user (uid %u)",
                        path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto done;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        rc = mf_err_set(err, err_len, MF_EPERM,
                        "%s: mode %04o lets group or others read it: chmod 600 it", path,
                        (unsigned)(st.st_mode & 07777));
        goto done;
    }
    size_t n = 0;
    while (n < READ_MAX) {
        ssize_t r = read(fd, buf + n, READ_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            rc = mf_err_set(err, err_len, -e, "%s: %s", path, strerror(e));
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    rc = 0;
    if (n == RAW) {
        memcpy(key, buf, KEY);
    } else {
        size_t m = n;
        while (m > HEX_LEN && (buf[m - 1] == '\n' || buf[m - 1] == '\r'))
            m--;
        if (m != HEX_LEN || !hex_decode((const char *)buf, KEY, key))
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "%s: a key file holds 32 raw bytes or 64 hex digits", path);
    }
done:
    if (rc != 0)
        OPENSSL_cleanse(key, KEY);
    mf_barrier_secure_free(buf, READ_MAX);
    close(fd);
    return rc;
}

int mf_seal_keyfile_create(const char *path, char *err, size_t err_len)
{
    MF_ASSERT(path != NULL);
    uint8_t *key = mf_barrier_secure_alloc(KEY + 2 * KEY + 2);
    if (key == NULL)
        return mf_err_set(err, err_len, -ENOMEM, "out of memory");
    char *text = (char *)key + KEY;
    int rc, fd = -1;
    if (mf_rand_bytes(key, KEY) != 0) {
        rc = mf_err_set(err, err_len, MF_ECRYPTO, "random generator failed");
        goto done;
    }
    hex_encode(key, KEY, text);
    text[2 * KEY] = '\n';
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        rc = mf_err_set(err, err_len, e == EEXIST ? MF_EEXISTS : -e, "%s: %s", path, strerror(e));
        goto done;
    }
    rc = mf_write_all(fd, text, 2 * KEY + 1);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    fd = -1;
    if (rc == 0) {
        /* Make the new directory entry durable too. */
        char *dup = strdup(path);
        int dfd = dup ? open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd < 0 || fsync(dfd) != 0)
            rc = dup ? -errno : -ENOMEM;
        if (dfd >= 0)
            close(dfd);
        free(dup);
    }
    if (rc != 0) {
        unlink(path);
        mf_err_set(err, err_len, rc, "%s: cannot write the key file: %s", path, mf_strerror(rc));
    }
done:
    mf_barrier_secure_free(key, KEY + 2 * KEY + 2);
    return rc;
}
