/* The encryption barrier: AES-256-GCM over secret values, a keyring of terms
 * encrypted under the root key, per-term use counts, and locked key memory.
 *
 * The formats and the rules are in barrier.h. Inside, the barrier keeps:
 * the root key in one locked page allocated for the handle's lifetime; the
 * keyring's 32-byte keys in a locked region replaced as a whole when a new
 * keyring is loaded; and beside them, in ordinary memory, each key's term,
 * creation time and use counters (not secret). A read-write lock lets encrypt
 * and decrypt run in parallel while load, unseal and seal are exclusive; use
 * counters are atomics because encryptions under the read lock update them.
 */
#include "store/barrier.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"

#define MOD "barrier"

/* Domain separation for the keyring blob's AAD (its header follows it). */
static const char KEYRING_AAD[] = "mayfly/keyring";

#define KEYRING_ENTRY_BYTES (4u + 8u + MF_BARRIER_KEY_BYTES) /* term, created, key */
/* Offsets in a blob of header length h (version 1 or 2, see barrier.h). */
#define BLOB_NONCE_OFF(h) (h)
#define BLOB_CT_OFF(h) ((h) + MF_BARRIER_NONCE_BYTES)
#define BLOB_MIN_BYTES(h) (BLOB_CT_OFF(h) + 4u + KEYRING_ENTRY_BYTES + MF_BARRIER_TAG_BYTES)

/* Domain separation for a rekey's new root key wrapped under the old one
 * (the new blob's header follows it). */
static const char REKEY_WRAP_AAD[] = "mayfly/rekey-root";

/* Header bytes of a blob of this version, 0 if unknown. */
static size_t blob_header_len(uint8_t version)
{
    return version == MF_BARRIER_BLOB_VERSION           ? MF_BARRIER_BLOB_HEADER_BYTES
           : version == MF_BARRIER_BLOB_VERSION_REKEYED ? MF_BARRIER_BLOB_V2_HEADER_BYTES
                                                        : 0;
}

struct key_meta {
    uint32_t term;
    uint64_t created_ms;
    _Atomic uint64_t uses;    /* encryptions since unseal */
    _Atomic uint64_t pending; /* encryptions not yet taken by the proposer */
};

struct mf_barrier {
    pthread_rwlock_t lock;
    bool unsealed;
    uint8_t *root;            /* locked, MF_BARRIER_KEY_BYTES, whole lifetime */
    uint8_t *keys;            /* locked, keys_len * MF_BARRIER_KEY_BYTES */
    struct key_meta *meta;    /* keys_len entries, terms strictly increasing */
    size_t keys_len;
    struct mf_barrier_seal_config cfg;
    uint32_t generation;      /* rekeys of this seal (blob header) */
};

/* A keyring being built or parsed, before it replaces the barrier's. */
struct keyring {
    uint8_t *keys;
    struct key_meta *meta;
    size_t len;
};

/* A piece of additional authenticated data. */
struct aad {
    const void *p;
    size_t len;
};

/* ------------------------------------------------------------------ bytes */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* ------------------------------------------------------- locked memory */

/* Keys live in the secure heap (common/secmem.h): locked, out of dumps,
 * wiped when freed. */
void *mf_barrier_secure_alloc(size_t len)
{
    return mf_secmem_alloc(len);
}

void mf_barrier_secure_free(void *p, size_t len)
{
    mf_secmem_free(p, len);
}

void mf_barrier_wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

static void keyring_free(struct keyring *kr)
{
    mf_barrier_secure_free(kr->keys, kr->len * MF_BARRIER_KEY_BYTES);
    free(kr->meta);
    memset(kr, 0, sizeof(*kr));
}

static int keyring_alloc(struct keyring *kr, size_t len)
{
    MF_ASSERT(len >= 1 && len <= MF_BARRIER_KEYS_MAX);
    memset(kr, 0, sizeof(*kr));
    kr->keys = mf_barrier_secure_alloc(len * MF_BARRIER_KEY_BYTES);
    kr->meta = calloc(len, sizeof(*kr->meta));
    if (kr->keys == NULL || kr->meta == NULL) {
        mf_barrier_secure_free(kr->keys, len * MF_BARRIER_KEY_BYTES);
        free(kr->meta);
        memset(kr, 0, sizeof(*kr));
        return -ENOMEM;
    }
    kr->len = len;
    return 0;
}

/* ------------------------------------------------------------ AES-GCM */

static int gcm_seal(const uint8_t *key, const uint8_t *nonce, const struct aad *aad, size_t aad_n,
                    const uint8_t *pt, size_t len, uint8_t *ct, uint8_t *tag)
{
    MF_ASSERT(len <= (size_t)MF_BARRIER_PLAINTEXT_MAX);
    int rc = MF_ECRYPTO, n = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -ENOMEM;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, MF_BARRIER_NONCE_BYTES, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
        goto done;
    for (size_t i = 0; i < aad_n; i++)
        if (aad[i].len > 0 &&
            EVP_EncryptUpdate(ctx, NULL, &n, aad[i].p, (int)aad[i].len) != 1)
            goto done;
    if (len > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)len) != 1)
        goto done;
    MF_ASSERT(len == 0 || (size_t)n == len); /* GCM is a stream mode */
    if (EVP_EncryptFinal_ex(ctx, ct + len, &n) != 1 || n != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MF_BARRIER_TAG_BYTES, tag) != 1)
        goto done;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(ctx); /* frees and cleanses the key schedule */
    return rc;
}

/* Decrypt and verify. GCM decrypts before it can verify, so on a bad tag the
 * plaintext written so far is wiped before returning MF_ECORRUPT. */
static int gcm_open(const uint8_t *key, const uint8_t *nonce, const struct aad *aad, size_t aad_n,
                    const uint8_t *ct, size_t len, const uint8_t *tag, uint8_t *pt)
{
    MF_ASSERT(len <= (size_t)MF_BARRIER_PLAINTEXT_MAX + 4u * 1024 * 1024);
    int rc = MF_ECRYPTO, n = 0;
    uint8_t tagbuf[MF_BARRIER_TAG_BYTES];
    memcpy(tagbuf, tag, sizeof(tagbuf)); /* the ctrl takes a non-const pointer */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return -ENOMEM;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, MF_BARRIER_NONCE_BYTES, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
        goto done;
    for (size_t i = 0; i < aad_n; i++)
        if (aad[i].len > 0 &&
            EVP_DecryptUpdate(ctx, NULL, &n, aad[i].p, (int)aad[i].len) != 1)
            goto done;
    if (len > 0 && EVP_DecryptUpdate(ctx, pt, &n, ct, (int)len) != 1)
        goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MF_BARRIER_TAG_BYTES, tagbuf) != 1)
        goto done;
    /* EVP_DecryptFinal_ex compares the tag in constant time (it writes nothing
     * for GCM; the dummy avoids arithmetic on a NULL pt when len is 0). */
    uint8_t dummy[1];
    rc = EVP_DecryptFinal_ex(ctx, len > 0 ? pt + len : dummy, &n) == 1 ? 0 : MF_ECORRUPT;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0 && len > 0)
        OPENSSL_cleanse(pt, len);
    return rc;
}

/* ------------------------------------------------------------ handle */

int mf_barrier_new(struct mf_barrier **out)
{
    MF_ASSERT(out != NULL);
    *out = NULL;
    struct mf_barrier *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    int rc = pthread_rwlock_init(&b->lock, NULL);
    if (rc != 0) {
        free(b);
        return -rc;
    }
    b->root = mf_barrier_secure_alloc(MF_BARRIER_KEY_BYTES);
    if (b->root == NULL) {
        pthread_rwlock_destroy(&b->lock);
        free(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

/* Drop every key. Caller holds the write lock (or owns b exclusively). */
static void wipe_locked(struct mf_barrier *b)
{
    OPENSSL_cleanse(b->root, MF_BARRIER_KEY_BYTES);
    struct keyring kr = {b->keys, b->meta, b->keys_len};
    keyring_free(&kr);
    b->keys = NULL;
    b->meta = NULL;
    b->keys_len = 0;
    memset(&b->cfg, 0, sizeof(b->cfg));
    b->generation = 0;
    b->unsealed = false;
}

void mf_barrier_free(struct mf_barrier *b)
{
    if (b == NULL)
        return;
    wipe_locked(b);
    mf_barrier_secure_free(b->root, MF_BARRIER_KEY_BYTES);
    pthread_rwlock_destroy(&b->lock);
    free(b);
}

static void rdlock(struct mf_barrier *b) { MF_ASSERT(pthread_rwlock_rdlock(&b->lock) == 0); }
static void wrlock(struct mf_barrier *b) { MF_ASSERT(pthread_rwlock_wrlock(&b->lock) == 0); }
static void unlock(struct mf_barrier *b) { MF_ASSERT(pthread_rwlock_unlock(&b->lock) == 0); }

bool mf_barrier_sealed(struct mf_barrier *b)
{
    MF_ASSERT(b != NULL);
    rdlock(b);
    bool sealed = !b->unsealed;
    unlock(b);
    return sealed;
}

void mf_barrier_seal(struct mf_barrier *b)
{
    MF_ASSERT(b != NULL);
    wrlock(b);
    bool was = b->unsealed;
    wipe_locked(b);
    unlock(b);
    if (was)
        MF_INFO(MOD, "sealed: root key and keyring wiped from memory");
}

/* Install a keyring (taking ownership), carrying over the use counters of
 * terms that stay. Caller holds the write lock. */
static void install_keyring(struct mf_barrier *b, struct keyring *kr)
{
    for (size_t i = 0, j = 0; i < kr->len && j < b->keys_len;) {
        if (kr->meta[i].term == b->meta[j].term) {
            atomic_store(&kr->meta[i].uses, atomic_load(&b->meta[j].uses));
            atomic_store(&kr->meta[i].pending, atomic_load(&b->meta[j].pending));
            i++, j++;
        } else if (kr->meta[i].term < b->meta[j].term) {
            i++;
        } else {
            j++;
        }
    }
    struct keyring old = {b->keys, b->meta, b->keys_len};
    keyring_free(&old);
    b->keys = kr->keys;
    b->meta = kr->meta;
    b->keys_len = kr->len;
    memset(kr, 0, sizeof(*kr));
}

/* ------------------------------------------------------ configuration */

static bool seal_config_valid(const struct mf_barrier_seal_config *cfg)
{
    switch (cfg->type) {
    case MF_SEAL_SHAMIR:
        return cfg->shares >= 1 && cfg->threshold >= 1 && cfg->threshold <= cfg->shares;
    case MF_SEAL_KEYFILE:
        return cfg->shares == 0 && cfg->threshold == 0;
    default:
        return false;
    }
}

int mf_barrier_blob_seal_config(const uint8_t *blob, size_t blob_len,
                                struct mf_barrier_seal_config *cfg)
{
    MF_ASSERT(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    if (blob == NULL || blob_len < 1)
        return MF_ECORRUPT;
    size_t h = blob_header_len(blob[0]);
    if (h == 0)
        return MF_EINVAL;
    if (blob_len < BLOB_MIN_BYTES(h))
        return MF_ECORRUPT;
    struct mf_barrier_seal_config c = {.type = blob[1], .shares = blob[2], .threshold = blob[3]};
    memcpy(c.seal_id, blob + 4, MF_BARRIER_SEAL_ID_BYTES);
    if (!seal_config_valid(&c) || get_be32(blob + 4 + MF_BARRIER_SEAL_ID_BYTES) == 0)
        return MF_ECORRUPT;
    /* Version 2 exists only for rekeyed (generation >= 1) Shamir seals. */
    if (blob[0] == MF_BARRIER_BLOB_VERSION_REKEYED &&
        (c.type != MF_SEAL_SHAMIR || get_be32(blob + MF_BARRIER_BLOB_HEADER_BYTES) == 0))
        return MF_ECORRUPT;
    *cfg = c;
    return 0;
}

int mf_barrier_blob_active_term(const uint8_t *blob, size_t blob_len, uint32_t *term)
{
    MF_ASSERT(term != NULL);
    struct mf_barrier_seal_config cfg;
    int rc = mf_barrier_blob_seal_config(blob, blob_len, &cfg);
    if (rc == 0)
        *term = get_be32(blob + 4 + MF_BARRIER_SEAL_ID_BYTES);
    return rc;
}

int mf_barrier_blob_generation(const uint8_t *blob, size_t blob_len, uint32_t *generation)
{
    MF_ASSERT(generation != NULL);
    struct mf_barrier_seal_config cfg;
    int rc = mf_barrier_blob_seal_config(blob, blob_len, &cfg);
    if (rc == 0)
        *generation = blob[0] == MF_BARRIER_BLOB_VERSION_REKEYED
                          ? get_be32(blob + MF_BARRIER_BLOB_HEADER_BYTES)
                          : 0;
    return rc;
}

int mf_barrier_blob_may_replace(const uint8_t *cur, size_t cur_len, const uint8_t *next,
                                size_t next_len)
{
    struct mf_barrier_seal_config nc, cc;
    uint32_t nt, ct, ng, cg;
    int rc = mf_barrier_blob_active_term(next, next_len, &nt);
    if (rc != 0 || cur == NULL || cur_len == 0)
        return rc;
    rc = mf_barrier_blob_active_term(cur, cur_len, &ct);
    if (rc != 0)
        return rc;
    MF_ASSERT(mf_barrier_blob_seal_config(next, next_len, &nc) == 0);
    MF_ASSERT(mf_barrier_blob_seal_config(cur, cur_len, &cc) == 0);
    MF_ASSERT(mf_barrier_blob_generation(next, next_len, &ng) == 0);
    MF_ASSERT(mf_barrier_blob_generation(cur, cur_len, &cg) == 0);
    if (nc.type != cc.type || memcmp(nc.seal_id, cc.seal_id, MF_BARRIER_SEAL_ID_BYTES) != 0)
        return MF_EEXISTS;
    if (ng == cg) /* a rotation: the same seal configuration, a higher term */
        return nc.shares != cc.shares || nc.threshold != cc.threshold ? MF_EEXISTS
               : nt > ct                                              ? 0
                                                                      : MF_ECAS;
    /* A rekey: the next generation over the same keys (same active term; the
     * keys themselves are checked where they can be, when an unsealed node
     * loads it). A rekey made from an older keyring (a rotation landed
     * meanwhile) or an older generation replayed is stale. */
    return ng == cg + 1 && nt == ct ? 0 : MF_ECAS;
}

int mf_barrier_seal_config(struct mf_barrier *b, struct mf_barrier_seal_config *cfg)
{
    MF_ASSERT(b != NULL && cfg != NULL);
    rdlock(b);
    int rc = b->unsealed ? 0 : MF_ESEALED;
    if (rc == 0)
        *cfg = b->cfg;
    unlock(b);
    return rc;
}

/* ----------------------------------------------------- keyring blob */

/* Writes the header (version 1 for generation 0, else 2) and returns its length. */
static size_t blob_header(const struct mf_barrier_seal_config *cfg, uint32_t active_term,
                          uint32_t generation, uint8_t *hdr)
{
    hdr[0] = generation ? MF_BARRIER_BLOB_VERSION_REKEYED : MF_BARRIER_BLOB_VERSION;
    hdr[1] = cfg->type;
    hdr[2] = cfg->shares;
    hdr[3] = cfg->threshold;
    memcpy(hdr + 4, cfg->seal_id, MF_BARRIER_SEAL_ID_BYTES);
    put_be32(hdr + 4 + MF_BARRIER_SEAL_ID_BYTES, active_term);
    if (!generation)
        return MF_BARRIER_BLOB_HEADER_BYTES;
    put_be32(hdr + MF_BARRIER_BLOB_HEADER_BYTES, generation);
    return MF_BARRIER_BLOB_V2_HEADER_BYTES;
}

/* Serialise keys [0, len) of `keys`/`meta` (and, when extra_key is not NULL,
 * one more entry) and encrypt under `root`. */
static int seal_keyring(const uint8_t *root, const struct mf_barrier_seal_config *cfg,
                        uint32_t generation, const uint8_t *keys, const struct key_meta *meta, size_t len,
                        const uint8_t *extra_key, uint32_t extra_term, uint64_t extra_created_ms,
                        uint8_t **blob, size_t *blob_len)
{
    size_t count = len + (extra_key != NULL);
    MF_ASSERT(count >= 1 && count <= MF_BARRIER_KEYS_MAX);
    size_t pt_len = 4 + count * KEYRING_ENTRY_BYTES;
    size_t h = generation ? MF_BARRIER_BLOB_V2_HEADER_BYTES : MF_BARRIER_BLOB_HEADER_BYTES;
    size_t total = BLOB_CT_OFF(h) + pt_len + MF_BARRIER_TAG_BYTES;
    uint8_t *pt = mf_barrier_secure_alloc(pt_len);
    uint8_t *out = malloc(total);
    int rc = -ENOMEM;
    if (pt == NULL || out == NULL)
        goto fail;

    put_be32(pt, (uint32_t)count);
    uint8_t *p = pt + 4;
    for (size_t i = 0; i < count; i++, p += KEYRING_ENTRY_BYTES) {
        bool extra = i == len;
        put_be32(p, extra ? extra_term : meta[i].term);
        put_be64(p + 4, extra ? extra_created_ms : meta[i].created_ms);
        memcpy(p + 12, extra ? extra_key : keys + i * MF_BARRIER_KEY_BYTES, MF_BARRIER_KEY_BYTES);
    }

    size_t hw = blob_header(cfg, extra_key != NULL ? extra_term : meta[len - 1].term, generation,
                            out);
    MF_ASSERT(hw == h);
    rc = mf_rand_bytes(out + BLOB_NONCE_OFF(h), MF_BARRIER_NONCE_BYTES);
    if (rc != 0) {
        rc = MF_ECRYPTO;
        goto fail;
    }
    struct aad aad[] = {{KEYRING_AAD, sizeof(KEYRING_AAD) - 1},
                        {out, h}};
    rc = gcm_seal(root, out + BLOB_NONCE_OFF(h), aad, 2, pt, pt_len, out + BLOB_CT_OFF(h),
                  out + BLOB_CT_OFF(h) + pt_len);
    if (rc != 0)
        goto fail;
    mf_barrier_secure_free(pt, pt_len);
    *blob = out;
    *blob_len = total;
    return 0;
fail:
    mf_barrier_secure_free(pt, pt_len);
    free(out);
    return rc;
}

/* Decrypt a blob under `root` and parse its keyring into `kr` (allocated here).
 * `cfg` receives the blob's seal configuration. */
static int open_keyring(const uint8_t *root, const uint8_t *blob, size_t blob_len,
                        struct mf_barrier_seal_config *cfg, uint32_t *generation,
                        struct keyring *kr)
{
    int rc = mf_barrier_blob_seal_config(blob, blob_len, cfg);
    if (rc != 0)
        return rc;
    MF_ASSERT(mf_barrier_blob_generation(blob, blob_len, generation) == 0);
    size_t h = blob_header_len(blob[0]);
    size_t pt_len = blob_len - BLOB_CT_OFF(h) - MF_BARRIER_TAG_BYTES;
    if ((pt_len - 4) % KEYRING_ENTRY_BYTES != 0 ||
        (pt_len - 4) / KEYRING_ENTRY_BYTES > MF_BARRIER_KEYS_MAX)
        return MF_ECORRUPT;
    uint8_t *pt = mf_barrier_secure_alloc(pt_len);
    if (pt == NULL)
        return -ENOMEM;
    struct aad aad[] = {{KEYRING_AAD, sizeof(KEYRING_AAD) - 1},
                        {blob, h}};
    rc = gcm_open(root, blob + BLOB_NONCE_OFF(h), aad, 2, blob + BLOB_CT_OFF(h), pt_len,
                  blob + BLOB_CT_OFF(h) + pt_len, pt);
    if (rc != 0)
        goto done;

    /* Authenticated, so only our own bugs could make these fail; still checked. */
    uint32_t count = get_be32(pt);
    rc = MF_ECORRUPT;
    if (count < 1 || count > MF_BARRIER_KEYS_MAX || 4 + (size_t)count * KEYRING_ENTRY_BYTES != pt_len)
        goto done;
    rc = keyring_alloc(kr, count);
    if (rc != 0)
        goto done;
    const uint8_t *p = pt + 4;
    for (size_t i = 0; i < count; i++, p += KEYRING_ENTRY_BYTES) {
        kr->meta[i].term = get_be32(p);
        kr->meta[i].created_ms = get_be64(p + 4);
        memcpy(kr->keys + i * MF_BARRIER_KEY_BYTES, p + 12, MF_BARRIER_KEY_BYTES);
        if (kr->meta[i].term == 0 || (i > 0 && kr->meta[i].term <= kr->meta[i - 1].term)) {
            keyring_free(kr);
            rc = MF_ECORRUPT;
            goto done;
        }
    }
    if (kr->meta[count - 1].term != get_be32(blob + 4 + MF_BARRIER_SEAL_ID_BYTES)) {
        keyring_free(kr);
        rc = MF_ECORRUPT;
        goto done;
    }
    rc = 0;
done:
    mf_barrier_secure_free(pt, pt_len);
    return rc;
}

/* ------------------------------------------------------ seal lifecycle */

int mf_barrier_initialize(struct mf_barrier *b, const uint8_t *root_key,
                          const struct mf_barrier_seal_config *cfg, uint64_t now_ms)
{
    MF_ASSERT(b != NULL && root_key != NULL && cfg != NULL);
    if (!seal_config_valid(cfg))
        return MF_EINVAL;
    struct keyring kr;
    int rc = keyring_alloc(&kr, 1);
    if (rc != 0)
        return rc;
    wrlock(b);
    if (b->unsealed) {
        rc = MF_EEXISTS;
        goto fail;
    }
    struct mf_barrier_seal_config c = *cfg;
    if (mf_rand_bytes(c.seal_id, sizeof(c.seal_id)) != 0 ||
        mf_rand_bytes(kr.keys, MF_BARRIER_KEY_BYTES) != 0) {
        rc = MF_ECRYPTO;
        goto fail;
    }
    kr.meta[0].term = 1;
    kr.meta[0].created_ms = now_ms;
    memcpy(b->root, root_key, MF_BARRIER_KEY_BYTES);
    install_keyring(b, &kr);
    b->cfg = c;
    b->unsealed = true;
    unlock(b);
    MF_INFO(MOD, "initialised: new keyring, term 1");
    return 0;
fail:
    unlock(b);
    keyring_free(&kr);
    return rc;
}

int mf_barrier_unseal(struct mf_barrier *b, const uint8_t *root_key, const uint8_t *blob,
                      size_t blob_len)
{
    MF_ASSERT(b != NULL && root_key != NULL);
    struct keyring kr = {0};
    struct mf_barrier_seal_config cfg;
    uint32_t gen = 0;
    wrlock(b);
    if (b->unsealed) {
        unlock(b);
        return MF_EEXISTS;
    }
    int rc = open_keyring(root_key, blob, blob_len, &cfg, &gen, &kr);
    if (rc != 0) {
        unlock(b);
        return rc;
    }
    memcpy(b->root, root_key, MF_BARRIER_KEY_BYTES);
    install_keyring(b, &kr);
    b->cfg = cfg;
    b->generation = gen;
    b->unsealed = true;
    uint32_t term = b->meta[b->keys_len - 1].term;
    size_t n = b->keys_len;
    unlock(b);
    MF_INFO(MOD, "unsealed: %zu key(s), active term %u", n, (unsigned)term);
    return 0;
}

/* -------------------------------------------------- encrypt / decrypt */

static int check_path(const char *path, size_t *path_len)
{
    if (path == NULL)
        return MF_EINVAL;
    size_t n = strnlen(path, MF_BARRIER_PATH_MAX + 1);
    if (n > MF_BARRIER_PATH_MAX)
        return MF_EINVAL;
    *path_len = n;
    return 0;
}

size_t mf_barrier_ciphertext_len(size_t len)
{
    return len + MF_BARRIER_OVERHEAD;
}

int mf_barrier_encrypt_into(struct mf_barrier *b, const char *path, uint64_t write_id,
                            const void *plaintext, size_t len, uint8_t *out, size_t out_cap,
                            size_t *out_len)
{
    MF_ASSERT(b != NULL && out_len != NULL);
    size_t path_len;
    int rc = check_path(path, &path_len);
    if (rc != 0)
        return rc;
    if (len > MF_BARRIER_PLAINTEXT_MAX)
        return MF_ETOOLARGE;
    if ((plaintext == NULL && len > 0) || out == NULL || out_cap < mf_barrier_ciphertext_len(len))
        return MF_EINVAL;

    rdlock(b);
    if (!b->unsealed) {
        unlock(b);
        return MF_ESEALED;
    }
    size_t active = b->keys_len - 1;
    uint32_t term = b->meta[active].term;
    /* Count the use before drawing the nonce: a counted use that failed is
     * harmless, an uncounted one is not. */
    atomic_fetch_add(&b->meta[active].uses, 1);
    atomic_fetch_add(&b->meta[active].pending, 1);

    out[0] = MF_BARRIER_VERSION;
    put_be32(out + 1, term);
    uint8_t *nonce = out + MF_BARRIER_HEADER_BYTES;
    uint8_t *ct = nonce + MF_BARRIER_NONCE_BYTES;
    if (mf_rand_bytes(nonce, MF_BARRIER_NONCE_BYTES) != 0) {
        rc = MF_ECRYPTO;
        goto done;
    }
    uint8_t lenbuf[4], widbuf[8];
    put_be32(lenbuf, (uint32_t)path_len);
    put_be64(widbuf, write_id);
    struct aad aad[] = {{out, MF_BARRIER_HEADER_BYTES}, {lenbuf, 4}, {path, path_len}, {widbuf, 8}};
    rc = gcm_seal(b->keys + active * MF_BARRIER_KEY_BYTES, nonce, aad, 4, plaintext, len, ct,
                  ct + len);
done:
    unlock(b);
    if (rc == 0)
        *out_len = mf_barrier_ciphertext_len(len);
    return rc;
}

int mf_barrier_encrypt(struct mf_barrier *b, const char *path, uint64_t write_id,
                       const void *plaintext, size_t len, uint8_t **out, size_t *out_len)
{
    MF_ASSERT(out != NULL && out_len != NULL);
    *out = NULL;
    if (len > MF_BARRIER_PLAINTEXT_MAX)
        return MF_ETOOLARGE;
    size_t cap = mf_barrier_ciphertext_len(len);
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    int rc = mf_barrier_encrypt_into(b, path, write_id, plaintext, len, buf, cap, out_len);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

int mf_barrier_ciphertext_term(const uint8_t *ciphertext, size_t len, uint32_t *term)
{
    MF_ASSERT(term != NULL);
    if (ciphertext == NULL || len < MF_BARRIER_OVERHEAD || ciphertext[0] != MF_BARRIER_VERSION)
        return MF_ECORRUPT;
    *term = get_be32(ciphertext + 1);
    return 0;
}

/* Index of `term` in the keyring (binary search: terms are sorted), or -1. */
static long find_term(const struct mf_barrier *b, uint32_t term)
{
    size_t lo = 0, hi = b->keys_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->meta[mid].term == term)
            return (long)mid;
        if (b->meta[mid].term < term)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int mf_barrier_decrypt_into(struct mf_barrier *b, const char *path, uint64_t write_id,
                            const uint8_t *ciphertext, size_t len, uint8_t *out, size_t out_cap,
                            size_t *out_len)
{
    MF_ASSERT(b != NULL && out_len != NULL);
    size_t path_len;
    int rc = check_path(path, &path_len);
    if (rc != 0)
        return rc;
    if (ciphertext == NULL && len > 0)
        return MF_EINVAL;
    size_t n = len >= MF_BARRIER_OVERHEAD ? len - MF_BARRIER_OVERHEAD : 0;
    if (n > 0 && (out == NULL || out_cap < n)) {
        if (out != NULL)
            OPENSSL_cleanse(out, out_cap < n ? out_cap : n);
        return MF_EINVAL;
    }

    rdlock(b);
    uint32_t term;
    if (!b->unsealed) {
        rc = MF_ESEALED;
        goto done;
    }
    if (n > MF_BARRIER_PLAINTEXT_MAX) {
        rc = MF_ETOOLARGE;
        goto done;
    }
    rc = mf_barrier_ciphertext_term(ciphertext, len, &term);
    if (rc != 0)
        goto done;
    long idx = find_term(b, term);
    if (idx < 0) {
        rc = MF_ECORRUPT;
        goto done;
    }
    const uint8_t *nonce = ciphertext + MF_BARRIER_HEADER_BYTES;
    const uint8_t *ct = nonce + MF_BARRIER_NONCE_BYTES;
    uint8_t lenbuf[4], widbuf[8];
    put_be32(lenbuf, (uint32_t)path_len);
    put_be64(widbuf, write_id);
    struct aad aad[] = {{ciphertext, MF_BARRIER_HEADER_BYTES}, {lenbuf, 4}, {path, path_len},
                        {widbuf, 8}};
    rc = gcm_open(b->keys + (size_t)idx * MF_BARRIER_KEY_BYTES, nonce, aad, 4, ct, n, ct + n, out);
done:
    unlock(b);
    if (rc == 0)
        *out_len = n;
    else if (n > 0)
        OPENSSL_cleanse(out, n);
    return rc;
}

int mf_barrier_decrypt(struct mf_barrier *b, const char *path, uint64_t write_id,
                       const uint8_t *ciphertext, size_t len, uint8_t **out, size_t *out_len)
{
    MF_ASSERT(out != NULL && out_len != NULL);
    *out = NULL;
    size_t n = len >= MF_BARRIER_OVERHEAD ? len - MF_BARRIER_OVERHEAD : 0;
    if (n > MF_BARRIER_PLAINTEXT_MAX)
        return MF_ETOOLARGE;
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL)
        return -ENOMEM;
    int rc = mf_barrier_decrypt_into(b, path, write_id, ciphertext, len, buf, n, out_len);
    if (rc != 0) {
        mf_barrier_wipe_free(buf, n + 1);
        return rc;
    }
    MF_ASSERT(*out_len == n);
    buf[n] = 0;
    *out = buf;
    return 0;
}

/* ------------------------------------------------------------ keyring */

int mf_barrier_active_term(struct mf_barrier *b, uint32_t *term)
{
    MF_ASSERT(b != NULL && term != NULL);
    rdlock(b);
    int rc = b->unsealed ? 0 : MF_ESEALED;
    if (rc == 0)
        *term = b->meta[b->keys_len - 1].term;
    unlock(b);
    return rc;
}

int mf_barrier_keyring_info(struct mf_barrier *b, struct mf_barrier_key_info *info, size_t cap,
                            size_t *len)
{
    MF_ASSERT(b != NULL && len != NULL && (info != NULL || cap == 0));
    rdlock(b);
    int rc = b->unsealed ? 0 : MF_ESEALED;
    if (rc == 0) {
        for (size_t i = 0; i < b->keys_len && i < cap; i++) {
            info[i].term = b->meta[i].term;
            info[i].created_ms = b->meta[i].created_ms;
            info[i].uses = atomic_load(&b->meta[i].uses);
        }
        *len = b->keys_len;
    }
    unlock(b);
    return rc;
}

int mf_barrier_keyring_export(struct mf_barrier *b, uint8_t **blob, size_t *blob_len)
{
    MF_ASSERT(b != NULL && blob != NULL && blob_len != NULL);
    *blob = NULL;
    rdlock(b);
    int rc = MF_ESEALED;
    if (b->unsealed)
        rc = seal_keyring(b->root, &b->cfg, b->generation, b->keys, b->meta, b->keys_len, NULL, 0,
                          0, blob, blob_len);
    unlock(b);
    return rc;
}

int mf_barrier_rotate_export(struct mf_barrier *b, uint64_t now_ms, uint8_t **blob,
                             size_t *blob_len, uint32_t *new_term)
{
    MF_ASSERT(b != NULL && blob != NULL && blob_len != NULL);
    *blob = NULL;
    uint8_t *key = mf_barrier_secure_alloc(MF_BARRIER_KEY_BYTES);
    if (key == NULL)
        return -ENOMEM;
    int rc;
    rdlock(b);
    if (!b->unsealed) {
        rc = MF_ESEALED;
        goto done;
    }
    uint32_t last = b->meta[b->keys_len - 1].term;
    if (b->keys_len >= MF_BARRIER_KEYS_MAX || last == UINT32_MAX) {
        rc = MF_EQUOTA;
        goto done;
    }
    if (mf_rand_bytes(key, MF_BARRIER_KEY_BYTES) != 0) {
        rc = MF_ECRYPTO;
        goto done;
    }
    rc = seal_keyring(b->root, &b->cfg, b->generation, b->keys, b->meta, b->keys_len, key,
                      last + 1, now_ms, blob, blob_len);
    if (rc == 0 && new_term != NULL)
        *new_term = last + 1;
done:
    unlock(b);
    mf_barrier_secure_free(key, MF_BARRIER_KEY_BYTES);
    return rc;
}

int mf_barrier_keyring_load(struct mf_barrier *b, const uint8_t *blob, size_t blob_len)
{
    MF_ASSERT(b != NULL);
    struct keyring kr = {0};
    struct mf_barrier_seal_config cfg;
    uint32_t gen = 0;
    wrlock(b);
    int rc = MF_ESEALED;
    if (!b->unsealed)
        goto done;
    rc = open_keyring(b->root, blob, blob_len, &cfg, &gen, &kr);
    if (rc != 0)
        goto done;
    rc = MF_ECORRUPT;
    if (cfg.type != b->cfg.type || cfg.shares != b->cfg.shares ||
        cfg.threshold != b->cfg.threshold ||
        CRYPTO_memcmp(cfg.seal_id, b->cfg.seal_id, MF_BARRIER_SEAL_ID_BYTES) != 0) {
        MF_WARN(MOD, "keyring refused: it belongs to another seal");
        goto done;
    }
    for (size_t i = 0, j = 0; i < kr.len && j < b->keys_len;) {
        if (kr.meta[i].term == b->meta[j].term) {
            if (CRYPTO_memcmp(kr.keys + i * MF_BARRIER_KEY_BYTES,
                              b->keys + j * MF_BARRIER_KEY_BYTES, MF_BARRIER_KEY_BYTES) != 0) {
                MF_ERROR(MOD, "keyring refused: term %u has a different key than ours",
                         (unsigned)kr.meta[i].term);
                goto done;
            }
            i++, j++;
        } else if (kr.meta[i].term < b->meta[j].term) {
            i++;
        } else {
            j++;
        }
    }
    install_keyring(b, &kr);
    b->generation = gen;
    rc = 0;
done:
    unlock(b);
    keyring_free(&kr);
    return rc;
}

int mf_barrier_rotate(struct mf_barrier *b, uint64_t now_ms, uint32_t *new_term)
{
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    uint32_t term = 0; /* set on success; gcc -O3 cannot see that */
    int rc = mf_barrier_rotate_export(b, now_ms, &blob, &blob_len, &term);
    if (rc != 0)
        return rc;
    rc = mf_barrier_keyring_load(b, blob, blob_len);
    free(blob);
    if (rc == 0) {
        MF_INFO(MOD, "rotated: active term %u", (unsigned)term);
        if (new_term != NULL)
            *new_term = term;
    }
    return rc;
}

/* ---------------------------------------------------------- key uses */

uint64_t mf_barrier_uses(struct mf_barrier *b, uint32_t term)
{
    MF_ASSERT(b != NULL);
    uint64_t n = 0;
    rdlock(b);
    if (b->unsealed) {
        long idx = find_term(b, term);
        if (idx >= 0)
            n = atomic_load(&b->meta[idx].uses);
    }
    unlock(b);
    return n;
}

int mf_barrier_uses_take(struct mf_barrier *b, struct mf_barrier_use *uses, size_t cap,
                         size_t *len)
{
    MF_ASSERT(b != NULL && len != NULL && (uses != NULL || cap == 0));
    *len = 0;
    rdlock(b);
    int rc = b->unsealed ? 0 : MF_ESEALED;
    for (size_t i = 0; rc == 0 && i < b->keys_len && *len < cap; i++) {
        uint64_t n = atomic_exchange(&b->meta[i].pending, 0);
        if (n > 0) {
            uses[*len].term = b->meta[i].term;
            uses[*len].count = n;
            (*len)++;
        }
    }
    unlock(b);
    return rc;
}

int mf_barrier_uses_take_command(struct mf_barrier *b, uint32_t *term, uint64_t *count)
{
    MF_ASSERT(b != NULL && term != NULL && count != NULL);
    *term = 0;
    *count = 0;
    rdlock(b);
    int rc = b->unsealed ? 0 : MF_ESEALED;
    for (size_t i = 0; rc == 0 && i < b->keys_len; i++) {
        uint64_t n = atomic_exchange(&b->meta[i].pending, 0);
        if (n > 0) {
            *term = b->meta[i].term; /* terms ascend: the last one wins */
            *count += n;
        }
    }
    unlock(b);
    return rc;
}

bool mf_barrier_should_rotate(uint64_t uses)
{
    return uses >= MF_BARRIER_ROTATE_USES;
}

/* ------------------------------------------------- keys derived from the root */

int mf_barrier_root_derive(struct mf_barrier *b, const char *info, uint8_t *out, size_t out_len)
{
    MF_ASSERT(b != NULL && info != NULL && out != NULL && out_len > 0);
    rdlock(b);
    int rc = b->unsealed ? 0 : MF_ESEALED;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    if (rc == 0) {
        kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, b->root, MF_BARRIER_KEY_BYTES),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
            OSSL_PARAM_construct_end(),
        };
        if (!ctx || EVP_KDF_derive(ctx, out, out_len, params) != 1) {
            OPENSSL_cleanse(out, out_len);
            rc = MF_ECRYPTO;
        }
    }
    unlock(b);
    EVP_KDF_CTX_free(ctx); /* wipes its copy of the key */
    EVP_KDF_free(kdf);
    return rc;
}
/* ------------------------------------------------------------- rekey */

/* AAD of a wrapped root key: its purpose, then the new blob's header and
 * nonce (so a wrapped key belongs to exactly one rekeyed blob). The caller
 * made sure the blob is a version 2 blob (header and nonce present). */
static void wrap_aad(const uint8_t *blob, struct aad aad[2])
{
    aad[0] = (struct aad){REKEY_WRAP_AAD, sizeof(REKEY_WRAP_AAD) - 1};
    aad[1] = (struct aad){blob, MF_BARRIER_BLOB_V2_HEADER_BYTES + MF_BARRIER_NONCE_BYTES};
}

int mf_barrier_rekey_export(struct mf_barrier *b, const uint8_t *new_root, uint8_t shares,
                            uint8_t threshold, uint8_t **blob, size_t *blob_len,
                            uint8_t **wrapped, size_t *wrapped_len)
{
    MF_ASSERT(b != NULL && new_root != NULL && blob != NULL && blob_len != NULL &&
              wrapped != NULL && wrapped_len != NULL);
    *blob = NULL;
    *wrapped = NULL;
    uint8_t *w = malloc(MF_BARRIER_WRAPPED_BYTES);
    if (w == NULL)
        return -ENOMEM;
    rdlock(b);
    int rc = MF_ESEALED;
    if (!b->unsealed)
        goto fail;
    struct mf_barrier_seal_config cfg = b->cfg;
    cfg.shares = shares;
    cfg.threshold = threshold;
    rc = MF_EINVAL;
    if (cfg.type != MF_SEAL_SHAMIR || !seal_config_valid(&cfg))
        goto fail;
    rc = MF_EQUOTA;
    if (b->generation == UINT32_MAX)
        goto fail;
    rc = seal_keyring(new_root, &cfg, b->generation + 1, b->keys, b->meta, b->keys_len, NULL, 0,
                      0, blob, blob_len);
    if (rc != 0)
        goto fail;
    struct aad aad[2];
    wrap_aad(*blob, aad);
    rc = mf_rand_bytes(w, MF_BARRIER_NONCE_BYTES) != 0 ? MF_ECRYPTO : 0;
    if (rc == 0)
        rc = gcm_seal(b->root, w, aad, 2, new_root, MF_BARRIER_KEY_BYTES,
                      w + MF_BARRIER_NONCE_BYTES,
                      w + MF_BARRIER_NONCE_BYTES + MF_BARRIER_KEY_BYTES);
    if (rc != 0)
        goto fail;
    unlock(b);
    *wrapped = w;
    *wrapped_len = MF_BARRIER_WRAPPED_BYTES;
    return 0;
fail:
    unlock(b);
    free(*blob);
    *blob = NULL;
    mf_barrier_wipe_free(w, MF_BARRIER_WRAPPED_BYTES);
    return rc;
}

int mf_barrier_rekey_load(struct mf_barrier *b, const uint8_t *blob, size_t blob_len,
                          const uint8_t *wrapped, size_t wrapped_len)
{
    MF_ASSERT(b != NULL);
    struct keyring kr = {0};
    struct mf_barrier_seal_config cfg;
    uint32_t gen = 0;
    uint8_t *root = mf_barrier_secure_alloc(MF_BARRIER_KEY_BYTES);
    if (root == NULL)
        return -ENOMEM;
    wrlock(b);
    int rc = MF_ESEALED;
    if (!b->unsealed)
        goto done;
    rc = mf_barrier_blob_generation(blob, blob_len, &gen);
    if (rc != 0)
        goto done;
    rc = MF_ECORRUPT;
    if (gen != b->generation + 1 || wrapped == NULL || wrapped_len != MF_BARRIER_WRAPPED_BYTES)
        goto done;
    struct aad aad[2];
    wrap_aad(blob, aad);
    rc = gcm_open(b->root, wrapped, aad, 2, wrapped + MF_BARRIER_NONCE_BYTES,
                  MF_BARRIER_KEY_BYTES, wrapped + MF_BARRIER_NONCE_BYTES + MF_BARRIER_KEY_BYTES,
                  root);
    if (rc != 0)
        goto done;
    rc = open_keyring(root, blob, blob_len, &cfg, &gen, &kr);
    if (rc != 0)
        goto done;
    rc = MF_ECORRUPT;
    if (cfg.type != b->cfg.type ||
        CRYPTO_memcmp(cfg.seal_id, b->cfg.seal_id, MF_BARRIER_SEAL_ID_BYTES) != 0 ||
        kr.len != b->keys_len) {
        MF_WARN(MOD, "rekeyed keyring refused: another seal or other keys");
        goto done;
    }
    for (size_t i = 0; i < kr.len; i++)
        if (kr.meta[i].term != b->meta[i].term ||
            CRYPTO_memcmp(kr.keys + i * MF_BARRIER_KEY_BYTES, b->keys + i * MF_BARRIER_KEY_BYTES,
                          MF_BARRIER_KEY_BYTES) != 0) {
            MF_ERROR(MOD, "rekeyed keyring refused: its keys differ from ours");
            goto done;
        }
    memcpy(b->root, root, MF_BARRIER_KEY_BYTES);
    install_keyring(b, &kr);
    b->cfg = cfg;
    b->generation = gen;
    rc = 0;
done:
    unlock(b);
    keyring_free(&kr);
    mf_barrier_secure_free(root, MF_BARRIER_KEY_BYTES);
    if (rc == 0)
        MF_INFO(MOD, "rekeyed: new root key, %u shares, threshold %u, generation %u",
                (unsigned)cfg.shares, (unsigned)cfg.threshold, (unsigned)gen);
    return rc;
}

bool mf_barrier_rotation_due(uint64_t uses, uint64_t uses_max, uint64_t created_ms,
                             uint64_t now_ms, uint64_t max_age_ms)
{
    if (uses_max == 0 || uses_max > MF_BARRIER_ROTATE_USES)
        uses_max = MF_BARRIER_ROTATE_USES;
    uint64_t age_ms = now_ms > created_ms ? now_ms - created_ms : 0;
    return uses >= uses_max || (max_age_ms != 0 && age_ms >= max_age_ms);
}
