/* Seal and unseal: how the root key comes into memory and leaves it.
 *
 * `init` creates a random 256-bit root key and the first keyring, and either
 * splits the root key into N Shamir shares with threshold T (libgfshare, its
 * random source set to RAND_bytes) that are handed out once and never stored,
 * or, for dev mode and tests, takes the root key from a local key file. What is
 * kept is only the keyring blob (see barrier.h): it carries the seal
 * configuration in its authenticated header and is itself the check value, as
 * only the right root key authenticates it. The blob is replicated through Raft
 * ("keyring put"), so every node of the cluster has it and can be unsealed with
 * the same shares or the same key file.
 *
 * Unseal: shares are fed one at a time; progress counts distinct share indexes;
 * a share that is malformed, mistyped or of another cluster is refused at once
 * (each share carries a checksum bound to the seal id); when T shares are in,
 * they are combined and the result must authenticate the keyring blob, else the
 * error says so and progress starts again from zero. Seal wipes the root key,
 * the keyring and any unseal progress.
 *
 * Share text: "mf1-<index>-<64 hex digits>-<8 hex digits>", index 1..255 in
 * decimal, then the 32-byte share, then the first 4 bytes of
 * SHA-256("mayfly/share/v1" || seal id || index byte || share). Hex is case
 * insensitive; surrounding white space is ignored.
 *
 * Key file (auto-unseal): a regular file owned by this user and not accessible
 * by group or others (0600 or 0400), holding the root key as 32 raw bytes or 64
 * hex digits (a trailing newline allowed).
 *
 * Threads: a struct mf_seal is used from one thread at a time (the server's
 * loop); the barrier it drives is thread-safe. Functions that take `err` write
 * a message a user can act on there (never a share or a key).
 */
#ifndef MF_STORE_SEAL_H
#define MF_STORE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/barrier.h"

#define MF_SEAL_SHARES_MAX 255u     /* libgfshare's share indexes are 1..255 */
#define MF_SEAL_SHARE_TEXT_MAX 96u  /* bytes to hold one share's text, with NUL */
#define MF_SEAL_ERR_LEN 256u        /* a good size for `err` buffers */

struct mf_seal; /* unseal progress and the barrier it drives */

struct mf_seal_status {
    bool initialized;   /* a keyring blob exists */
    bool sealed;
    uint8_t type;       /* enum mf_seal_type, 0 if not initialised */
    unsigned shares;    /* N (0 for a key file) */
    unsigned threshold; /* T (0 for a key file) */
    unsigned progress;  /* distinct shares given so far (0 when unsealed) */
};

/* Create the seal driver for `barrier` (which it does not own and which must
 * outlive it). *out is freed with mf_seal_free. Errors: -ENOMEM. */
int mf_seal_new(struct mf_barrier *barrier, struct mf_seal **out);

/* Wipe unseal progress and free. Does not seal the barrier. NULL is a no-op. */
void mf_seal_free(struct mf_seal *s);

/* Initialise with Shamir shares: new root key, new keyring (term 1 created at
 * now_ms), N = `shares` shares of which T = `threshold` unseal (1 <= T <= N <=
 * 255, and T >= 2 when N > 1). On success the barrier is unsealed, *share_text
 * is a malloc'd array of N malloc'd share strings, to be shown once and
 * released with mf_seal_shares_free; *blob (free()) is the keyring blob that
 * the caller must store and replicate. The caller makes sure the cluster is not
 * initialised yet (no keyring blob stored). Errors: MF_EINVAL (bad N or T),
 * MF_EEXISTS (barrier unsealed), MF_ECRYPTO, -ENOMEM; on error nothing is kept
 * and the barrier is sealed. */
int mf_seal_init_shamir(struct mf_seal *s, unsigned shares, unsigned threshold, uint64_t now_ms,
                        char ***share_text, uint8_t **blob, size_t *blob_len, char *err,
                        size_t err_len);

/* Rekey a Shamir seal: `b` holds the current root key and keyring (the
 * leader's check barrier, unsealed with a threshold of the old shares). Draws
 * a new random root key, splits it into N = `shares` shares of threshold T =
 * `threshold` (the rules of mf_seal_init_shamir) for the same seal id, and
 * makes the rekeyed blob and the new root key wrapped under the old one
 * (mf_barrier_rekey_export); `b` is unchanged. *share_text as for
 * mf_seal_init_shamir; *blob and *wrapped are free()'d by the caller. The new
 * root key is wiped before returning. Errors: MF_EINVAL (bad N or T, a
 * key-file seal), MF_ESEALED, MF_EQUOTA, MF_ECRYPTO, -ENOMEM; on error
 * nothing is returned. */
int mf_seal_rekey_shamir(struct mf_barrier *b, unsigned shares, unsigned threshold,
                         char ***share_text, uint8_t **blob, size_t *blob_len, uint8_t **wrapped,
                         size_t *wrapped_len, char *err, size_t err_len);

/* Wipe and free the share strings returned by mf_seal_init_shamir. */
void mf_seal_shares_free(char **share_text, size_t n);

/* Initialise with the root key read from the key file at `path` (see
 * mf_seal_keyfile_read). On success the barrier is unsealed and *blob is the
 * keyring blob to store and replicate (free()). Errors: those of
 * mf_seal_keyfile_read, MF_EEXISTS, MF_ECRYPTO, -ENOMEM. */
int mf_seal_init_keyfile(struct mf_seal *s, const char *path, uint64_t now_ms, uint8_t **blob,
                         size_t *blob_len, char *err, size_t err_len);

/* Give one share (the caller wipes its copy of the text afterwards). `blob`
 * is the stored keyring blob (NULL/0 if none).
 * Fills *st (may be NULL) after the call. Returns 0 when the share was taken,
 * or was a duplicate of one already given (not counted twice), or the barrier
 * was already unsealed; when the threshold is reached the barrier is unsealed
 * and st->sealed is false. Errors: MF_ENOTINIT (no blob); MF_EINVAL with a
 * message: a malformed share, a checksum mismatch (mistyped, or a share of
 * another cluster), an index beyond N, a seal that uses a key file, or, at the
 * threshold, shares that do not reconstruct the root key (progress is reset);
 * MF_ECORRUPT (the blob's header is damaged); -ENOMEM. */
int mf_seal_unseal(struct mf_seal *s, const char *share, const uint8_t *blob, size_t blob_len,
                   struct mf_seal_status *st, char *err, size_t err_len);

/* Auto-unseal from a key file (dev mode, tests). Errors: those of
 * mf_seal_keyfile_read; MF_ENOTINIT (no blob); MF_EINVAL (the seal uses
 * Shamir shares, or the key does not open the keyring); MF_ECORRUPT (blob
 * header damaged); MF_EEXISTS if already unsealed. */
int mf_seal_unseal_keyfile(struct mf_seal *s, const char *path, const uint8_t *blob,
                           size_t blob_len, char *err, size_t err_len);

/* As mf_seal_unseal_keyfile, with the key file's contents given as text (64
 * hex digits, surrounding white space ignored): generate-root's one share for
 * a key-file seal, checked on a barrier of its own. The caller wipes `text`.
 * Errors: MF_EINVAL (not 64 hex digits; a Shamir seal; the key does not open
 * the keyring); MF_ENOTINIT; MF_ECORRUPT; MF_EEXISTS; -ENOMEM. */
int mf_seal_unseal_key_text(struct mf_seal *s, const char *text, const uint8_t *blob,
                            size_t blob_len, char *err, size_t err_len);

/* Forget the shares given so far. */
void mf_seal_reset(struct mf_seal *s);

/* Seal: wipe the barrier's keys and the unseal progress. */
void mf_seal_seal(struct mf_seal *s);

/* Describe the seal: `blob` as for mf_seal_unseal. Never fails; a damaged blob
 * header reads as initialised with type 0. */
void mf_seal_status(struct mf_seal *s, const uint8_t *blob, size_t blob_len,
                    struct mf_seal_status *st);

/* Read a root key from a key file into `key` (MF_BARRIER_KEY_BYTES, caller's
 * memory, ideally from mf_barrier_secure_alloc; wiped on error). Errors:
 * -errno (cannot open or read); MF_EPERM (not a regular file, not owned by
 * this user, or accessible by group or others); MF_EINVAL (not 32 raw bytes
 * or 64 hex digits). */
int mf_seal_keyfile_read(const char *path, uint8_t *key, char *err, size_t err_len);

/* Create a new key file with a random root key (64 hex digits and a newline,
 * mode 0600, fsync'd with its directory) for dev mode and tests. Errors:
 * MF_EEXISTS if it exists, -errno, MF_ECRYPTO. */
int mf_seal_keyfile_create(const char *path, char *err, size_t err_len);

#endif
