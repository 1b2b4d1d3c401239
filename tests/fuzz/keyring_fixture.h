/* The keyring fuzz target's fixture, shared with gen_corpus.c so that the
 * corpus's shares and blobs are those of the very seal the target builds:
 * a deterministic random source (the same sequence in every process), a
 * key-file barrier unsealed with K (two terms) and its blob, and a 3-share,
 * threshold-2 Shamir seal. Test code only. */
#ifndef MF_FUZZ_KEYRING_FIXTURE_H
#define MF_FUZZ_KEYRING_FIXTURE_H

#include <stdint.h>
#include <string.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/log.h"
#include "store/barrier.h"
#include "store/seal.h"

static const uint8_t K[MF_BARRIER_KEY_BYTES] = {7, 7, 7, 1, 2, 3};
static struct mf_barrier *g_sealed, *g_open, *g_shamir;
static struct mf_seal *g_seal;
static uint8_t *g_blob_k, *g_blob_shamir;
static size_t g_blob_k_len, g_blob_shamir_len;
static uint64_t g_rand_state;
static char **g_shares; /* the 3 share texts */

/* splitmix64: a fixed sequence, so keys, nonces and seal ids are the same in
 * every run of this target and in gen_corpus (its blobs are the target's). */
static int det_rand(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t z = (g_rand_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        p[i] = (uint8_t)(z ^ (z >> 31));
    }
    return 0;
}
static uint64_t fixed_ms(void *ctx) { (void)ctx; return 1700000000000ull; }
static const struct mf_env_ops det_env = {fixed_ms, fixed_ms, det_rand, NULL};

static void fixture_setup(void)
{
    mf_log_set_level(MF_LOG_OFF);
    mf_env_set(&det_env);
    struct mf_barrier_seal_config kf = {.type = MF_SEAL_KEYFILE};
    MF_ASSERT(mf_barrier_new(&g_sealed) == 0 && mf_barrier_new(&g_open) == 0 &&
              mf_barrier_new(&g_shamir) == 0);
    MF_ASSERT(mf_barrier_initialize(g_open, K, &kf, 1000) == 0);
    MF_ASSERT(mf_barrier_rotate(g_open, 2000, NULL) == 0); /* two terms */
    MF_ASSERT(mf_barrier_keyring_export(g_open, &g_blob_k, &g_blob_k_len) == 0);
    MF_ASSERT(mf_seal_new(g_shamir, &g_seal) == 0);
    char err[MF_SEAL_ERR_LEN];
    MF_ASSERT(mf_seal_init_shamir(g_seal, 3, 2, 1000, &g_shares, &g_blob_shamir,
                                  &g_blob_shamir_len, err, sizeof(err)) == 0);
    mf_seal_seal(g_seal);
}

#endif
