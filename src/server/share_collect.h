/* Share collection: the attempt behind generate-root and rekey.
 *
 * An operator starts an attempt (-init) and gets a nonce; key holders then
 * give their shares one at a time with that nonce until a threshold of
 * them has reconstructed the root key. The attempt lives in the leader's
 * memory only: it ends when it expires, when the Raft term changes or this
 * node stops leading (checked by mf_share_collect_live), when it is
 * cancelled, or once it completed and the caller used it. Ending wipes the
 * reconstructed key and every share (a check barrier and seal of its own:
 * progress counts distinct share indexes, a duplicate counts once; see
 * store/seal.h).
 *
 * Pure as far as time and randomness go: the nonce's random bytes, the term
 * and every time are arguments. Threads: one thread (the server's loop).
 */
#ifndef MF_SERVER_SHARE_COLLECT_H
#define MF_SERVER_SHARE_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/barrier.h"

#define MF_SHARE_COLLECT_NONCE_RAW 16u /* random bytes of a nonce (hex: 32 characters) */

struct mf_share_collect; /* opaque: it holds key material */

/* Start an attempt for the seal described by the stored keyring `blob`
 * (its header gives the threshold: T for Shamir, 1 for a key file whose
 * contents are the one share). *out is freed with mf_share_collect_end.
 * Errors: MF_ECORRUPT (blob header damaged); -ENOMEM. */
int mf_share_collect_start(const uint8_t *blob, size_t blob_len,
                           const uint8_t nonce_raw[MF_SHARE_COLLECT_NONCE_RAW], uint64_t term,
                           uint64_t expire_at_ms, struct mf_share_collect **out);

/* The attempt in *slot if it may still be used, else ends it (wiping) and
 * sets *slot to NULL: stale once now_ms >= expire_at_ms, once `term` differs
 * from the one it started in, or when `leading` is false. */
struct mf_share_collect *mf_share_collect_live(struct mf_share_collect **slot, uint64_t term,
                                               bool leading, uint64_t now_ms);

/* End the attempt in *slot (NULL is a no-op): wipe and free, *slot = NULL. */
void mf_share_collect_end(struct mf_share_collect **slot);

const char *mf_share_collect_nonce(const struct mf_share_collect *c);
uint64_t mf_share_collect_expire_at_ms(const struct mf_share_collect *c);
unsigned mf_share_collect_threshold(const struct mf_share_collect *c);
unsigned mf_share_collect_progress(const struct mf_share_collect *c);

/* Whether `nonce` is this attempt's (constant time). */
bool mf_share_collect_nonce_ok(const struct mf_share_collect *c, const char *nonce);

/* Give one share with the attempt's nonce (compared in constant time).
 * `blob` is the stored keyring now. 0 when taken (or a duplicate); then
 * mf_share_collect_done says whether the threshold was reached and the
 * shares opened the keyring. Errors, with a message in err: MF_EINVAL for a
 * nonce that is not this attempt's ("the nonce is not the current
 * attempt's"), a malformed or foreign share, or shares that do not
 * reconstruct the root key (progress starts again); MF_ECORRUPT;
 * MF_ENOTINIT; -ENOMEM. The caller wipes its copy of the share. */
int mf_share_collect_add(struct mf_share_collect *c, const char *nonce, const char *share,
                         const uint8_t *blob, size_t blob_len, char *err, size_t err_len);

/* Whether a threshold of shares reconstructed the root key. */
bool mf_share_collect_done(const struct mf_share_collect *c);

/* Once done: a barrier unsealed with the reconstructed root key and the
 * keyring it opened (owned by the attempt; gone at mf_share_collect_end).
 * NULL before. */
struct mf_barrier *mf_share_collect_barrier(struct mf_share_collect *c);

#endif
