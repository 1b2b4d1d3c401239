/* Fuzz target: the keyring blob and the Shamir share parsers (barrier.c,
 * seal.c). The first byte picks what the rest is:
 *   0: a keyring blob as stored and replicated: its cleartext header
 *      (mf_barrier_blob_seal_config, _active_term, _may_replace both ways),
 *      an unseal with the root key K, a keyring load into a barrier unsealed
 *      with K;
 *   1: share texts, one per line, given to mf_seal_unseal against the blob
 *      of a 3-share, threshold-2 Shamir seal made at start; a line "$1",
 *      "$2" or "$3" is that seal's real share (so seeds reach the combine
 *      and the unseal): parsing, checksums, combining;
 *   2: a blob header (24 bytes) and a keyring plaintext that this target
 *      encrypts under K as the barrier does, so the decrypted keyring's
 *      parser is reached too (a random blob never authenticates);
 *   3: a key file's text (generate-root's share for a key-file seal), given
 *      to mf_seal_unseal_key_text against the key-file barrier's blob.
 * Whatever the input, no crash, and the barriers end as they started. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "keyring_fixture.h"

/* Mode 2: header (24 bytes) || nonce 0 || AES-256-GCM(K, plaintext) || tag,
 * AAD "mayfly/keyring" || header: the barrier's blob layout. */
static uint8_t *make_blob(const uint8_t *in, size_t n, size_t *out_len)
{
    const size_t H = MF_BARRIER_BLOB_HEADER_BYTES, N = MF_BARRIER_NONCE_BYTES;
    if (n < H)
        return NULL;
    size_t pt = n - H;
    uint8_t *b = calloc(1, H + N + pt + MF_BARRIER_TAG_BYTES + 1);
    MF_ASSERT(b != NULL);
    memcpy(b, in, H);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l;
    MF_ASSERT(c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, K, b + H) == 1);
    MF_ASSERT(EVP_EncryptUpdate(c, NULL, &l, (const uint8_t *)"mayfly/keyring", 14) == 1);
    MF_ASSERT(EVP_EncryptUpdate(c, NULL, &l, b, (int)H) == 1);
    if (pt)
        MF_ASSERT(EVP_EncryptUpdate(c, b + H + N, &l, in + H, (int)pt) == 1);
    MF_ASSERT(EVP_EncryptFinal_ex(c, b + H + N + pt, &l) == 1);
    MF_ASSERT(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, MF_BARRIER_TAG_BYTES,
                                  b + H + N + pt) == 1);
    EVP_CIPHER_CTX_free(c);
    *out_len = H + N + pt + MF_BARRIER_TAG_BYTES;
    return b;
}

static void try_blob(const uint8_t *blob, size_t len)
{
    struct mf_barrier_seal_config cfg;
    uint32_t term;
    mf_barrier_blob_seal_config(blob, len, &cfg);
    mf_barrier_blob_active_term(blob, len, &term);
    mf_barrier_blob_may_replace(g_blob_k, g_blob_k_len, blob, len);
    mf_barrier_blob_may_replace(blob, len, g_blob_k, g_blob_k_len);
    mf_barrier_blob_may_replace(NULL, 0, blob, len);
    if (mf_barrier_unseal(g_sealed, K, blob, len) == 0) {
        MF_ASSERT(!mf_barrier_sealed(g_sealed));
        mf_barrier_seal(g_sealed);
    }
    MF_ASSERT(mf_barrier_sealed(g_sealed));
    if (mf_barrier_keyring_load(g_open, blob, len) == 0)
        MF_ASSERT(mf_barrier_keyring_load(g_open, g_blob_k, g_blob_k_len) == 0);
    MF_ASSERT(!mf_barrier_sealed(g_open));
}

static void try_shares(const uint8_t *data, size_t size)
{
    char line[256], err[MF_SEAL_ERR_LEN];
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t n = i - start < sizeof(line) - 1 ? i - start : sizeof(line) - 1;
        memcpy(line, data + start, n);
        line[n] = 0; /* a NUL inside ends the text early, as in a C string */
        /* "$1".."$3" stand for this process's real shares (libgfshare draws
         * its polynomial from RAND_bytes, so they differ per run). */
        if (n == 2 && line[0] == '$' && line[1] >= '1' && line[1] <= '3')
            snprintf(line, sizeof(line), "%s", g_shares[line[1] - '1']);
        struct mf_seal_status st;
        mf_seal_unseal(g_seal, line, g_blob_shamir, g_blob_shamir_len, &st, err, sizeof(err));
        start = i + 1;
    }
    mf_seal_seal(g_seal);
    MF_ASSERT(mf_barrier_sealed(g_shamir));
}

static void try_key_text(const uint8_t *data, size_t size)
{
    static struct mf_seal *s;
    if (!s)
        MF_ASSERT(mf_seal_new(g_sealed, &s) == 0);
    char *text = malloc(size + 1), err[MF_SEAL_ERR_LEN];
    MF_ASSERT(text != NULL);
    memcpy(text, data, size);
    text[size] = 0;
    if (mf_seal_unseal_key_text(s, text, g_blob_k, g_blob_k_len, err, sizeof(err)) == 0)
        mf_seal_seal(s);
    MF_ASSERT(mf_barrier_sealed(g_sealed));
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_open)
        fixture_setup();
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0: try_blob(data + 1, size - 1); break;
    case 1: try_shares(data + 1, size - 1); break;
    case 3: try_key_text(data + 1, size - 1); break;
    default: {
        size_t len;
        uint8_t *b = make_blob(data + 1, size - 1, &len);
        if (b)
            try_blob(b, len);
        free(b);
    }
    }
    return 0;
}
