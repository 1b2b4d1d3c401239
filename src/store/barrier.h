/* The encryption barrier: everything secret that mayfly stores crosses it.
 *
 * The proposer (the leader) encrypts a secret value with the barrier before it
 * puts the value into a command, so the Raft log, the state database, snapshots
 * and every replica only ever hold ciphertext. Readers decrypt after they read
 * the state database. Applying a command never needs the barrier: the state
 * machine stores ciphertext as it is (so a sealed node can still replicate).
 *
 * Algorithm: AES-256-GCM (OpenSSL EVP), a fresh random 96-bit nonce per call,
 * a 128-bit tag. A ciphertext describes itself:
 *
 *     offset  size  field
 *     0       1     version (MF_BARRIER_VERSION)
 *     1       4     key term, uint32 big-endian
 *     5       12    nonce
 *     17      n     AES-256-GCM ciphertext (n = plaintext length)
 *     17+n    16    tag
 *
 * The additional authenticated data binds the ciphertext to where it belongs:
 *     AAD = header (5 bytes) || uint32 BE strlen(path) || path || uint64 BE write_id
 * `path` names the record (a KV path, a lease id, "token/<hash>", ...) and
 * `write_id` is the id the leader assigns when it proposes the write (versions
 * are only known at apply, so they cannot be in the AAD). Moving a ciphertext to
 * another record, or to another write of the same record, fails the tag.
 *
 * The keyring: a list of (term, 256-bit key, created time); the active term
 * (used for new encryptions) is the highest. Rotation adds a key and keeps the
 * old ones so old ciphertexts still decrypt. The keyring travels as one opaque
 * blob encrypted under the root key (AES-256-GCM, AAD "mayfly/keyring" followed
 * by the blob's cleartext header), replicated through Raft ("keyring put"). The
 * blob's cleartext header also carries the seal configuration (Shamir shares and
 * threshold, or key file, and a random seal id) so that every node, even sealed,
 * knows how it is unsealed; the header is authenticated by the GCM tag.
 *
 *     offset  size  field
 *     0       1     blob version (MF_BARRIER_BLOB_VERSION)
 *     1       1     seal type (enum mf_seal_type)
 *     2       1     shares N (0 for a key file)
 *     3       1     threshold T (0 for a key file)
 *     4       16    seal id (random, fixed at init)
 *     20      4     active (highest) term, uint32 big-endian
 *     24      12    nonce
 *     36      m     encrypted keyring (m = 4 + 44 * keys)
 *     36+m    16    tag
 *   keyring plaintext: uint32 BE count, then per key: uint32 BE term,
 *   uint64 BE created_ms, 32 bytes key; terms strictly increasing, >= 1.
 *
 * Rekey (a new root key and new Shamir N/T for the same keys and seal id)
 * writes blob version 2 (MF_BARRIER_BLOB_VERSION_REKEYED): the same header
 * followed by a uint32 BE generation (>= 1, one more per rekey) at offset 24,
 * so the header is 28 bytes and the nonce and ciphertext follow it; the
 * whole header is in the AAD. A seal never rekeyed keeps writing version 1
 * (generation 0). The new root key travels to unsealed nodes wrapped under
 * the old one (mf_barrier_rekey_export / _load):
 *     nonce(12) | AES-256-GCM(old root, new root key)(32) | tag(16)
 *   AAD = "mayfly/rekey-root" || the new blob's 28-byte header and its nonce.
 *
 * Key use: GCM with random nonces is safe for about 2^32 encryptions per key.
 * The barrier counts its encryptions per term; the proposer drains the count
 * (mf_barrier_uses_take) into each command, the state machine adds it to a
 * replicated per-term counter, and the leader rotates when
 * mf_barrier_should_rotate(counter) says so.
 *
 * Sealed: no root key and no keyring in memory; every operation that needs a
 * key returns MF_ESEALED. Key material (root key, keyring) lives in memory that
 * is mlock'ed where the platform allows (mmap + mlock + MADV_DONTDUMP) and is
 * wiped with OPENSSL_cleanse when sealed or freed.
 *
 * Threads: every function on a struct mf_barrier is thread-safe (a read-write
 * lock: encrypt and decrypt run in parallel; load, rotate, unseal and seal are
 * exclusive). Randomness (keys, nonces, seal id) comes from mf_rand_bytes.
 */
#ifndef MF_STORE_BARRIER_H
#define MF_STORE_BARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MF_BARRIER_VERSION 1u        /* ciphertext format version */
#define MF_BARRIER_BLOB_VERSION 1u   /* keyring blob format version */
#define MF_BARRIER_KEY_BYTES 32u     /* AES-256 */
#define MF_BARRIER_NONCE_BYTES 12u   /* 96-bit GCM nonce */
#define MF_BARRIER_TAG_BYTES 16u     /* 128-bit GCM tag */
#define MF_BARRIER_HEADER_BYTES 5u   /* version + term */
#define MF_BARRIER_OVERHEAD \
    (MF_BARRIER_HEADER_BYTES + MF_BARRIER_NONCE_BYTES + MF_BARRIER_TAG_BYTES)
#define MF_BARRIER_SEAL_ID_BYTES 16u
#define MF_BARRIER_BLOB_HEADER_BYTES (4u + MF_BARRIER_SEAL_ID_BYTES + 4u) /* version 1 */
#define MF_BARRIER_BLOB_VERSION_REKEYED 2u /* a rekeyed blob: a generation follows */
#define MF_BARRIER_BLOB_V2_HEADER_BYTES (MF_BARRIER_BLOB_HEADER_BYTES + 4u)
#define MF_BARRIER_WRAPPED_BYTES \
    (MF_BARRIER_NONCE_BYTES + MF_BARRIER_KEY_BYTES + MF_BARRIER_TAG_BYTES)

/* Limits. A path longer than this is refused (MF_EINVAL); a plaintext longer
 * than this is refused (MF_ETOOLARGE): commands are bounded far below it. */
#define MF_BARRIER_PATH_MAX 4096u
#define MF_BARRIER_PLAINTEXT_MAX (64u << 20) /* 64 MiB */
/* Keys kept in the keyring. At one rotation per MF_BARRIER_ROTATE_USES
 * encryptions this is 2^43 encryptions (years at 100,000 writes/s); a rotation
 * beyond it is refused with MF_EQUOTA. */
#define MF_BARRIER_KEYS_MAX 4096u

/* Rotate a key term once it has been used for this many encryptions.
 *
 * NIST SP 800-38D caps random-nonce GCM at 2^32 invocations per key (nonce
 * collision probability about n^2 / 2^97, i.e. 2^-33 at 2^32). Vault rotates
 * at about 3.86e9 (0.9 * 2^32). We choose 2^31 (2,147,483,648): our count is a
 * lower bound, not an exact figure: encryptions made by a leader that is
 * deposed before its proposals commit are never counted, the per-command counts
 * reach the replicated counter only after commit, and writes continue while the
 * rotation's own command replicates. 2^31 leaves another 2^31 encryptions of
 * headroom for all of that, keeps the collision probability under 2^-35 at the
 * threshold, and costs only a rotation every 2^31 writes (6 hours at a
 * sustained 100,000 encryptions/s; a 44-byte keyring entry each time). */
#define MF_BARRIER_ROTATE_USES (UINT64_C(1) << 31)

enum mf_seal_type {
    MF_SEAL_SHAMIR = 1,  /* root key split into N shares, T needed */
    MF_SEAL_KEYFILE = 2, /* root key in a local file (dev mode and tests) */
};

/* The seal configuration, stored in clear (authenticated) in the keyring blob. */
struct mf_barrier_seal_config {
    uint8_t type;       /* enum mf_seal_type */
    uint8_t shares;     /* N, 1..255 for Shamir, 0 for a key file */
    uint8_t threshold;  /* T, 1..N for Shamir, 0 for a key file */
    uint8_t seal_id[MF_BARRIER_SEAL_ID_BYTES];
};

/* One key of the keyring as shown to operators (never the key itself). */
struct mf_barrier_key_info {
    uint32_t term;
    uint64_t created_ms;
    uint64_t uses;       /* encryptions made by this process under the term */
};

/* Encryptions under one term not yet handed to a command (mf_barrier_uses_take). */
struct mf_barrier_use {
    uint32_t term;
    uint64_t count;
};

struct mf_barrier; /* opaque: it holds pointers into locked memory */

/* Create a sealed barrier without keys. *out is owned by the caller and
 * released with mf_barrier_free. Errors: -ENOMEM, or the errno of
 * pthread_rwlock_init. (Opaque and heap-allocated, unlike most mayfly handles,
 * so that no caller can copy key pointers out of it.) */
int mf_barrier_new(struct mf_barrier **out);

/* Wipe every key (as mf_barrier_seal) and free the handle. NULL is a no-op. */
void mf_barrier_free(struct mf_barrier *b);

/* True while there is no root key and keyring in memory. */
bool mf_barrier_sealed(struct mf_barrier *b);

/* Initialise a new seal: take `root_key` (MF_BARRIER_KEY_BYTES, copied into
 * locked memory; the caller wipes its copy), create a keyring with one random
 * key of term 1 created at now_ms, remember `cfg` (its seal_id is filled with
 * random bytes here), and unseal. Errors: MF_EEXISTS if the barrier is
 * unsealed, MF_EINVAL for a bad cfg, MF_ECRYPTO if the CSPRNG failed, -ENOMEM.
 * The caller then exports the keyring (mf_barrier_keyring_export) and makes
 * it durable/replicated; until it does, nothing encrypted can be read after a
 * restart. On error the barrier is still sealed. */
int mf_barrier_initialize(struct mf_barrier *b, const uint8_t *root_key,
                          const struct mf_barrier_seal_config *cfg, uint64_t now_ms);

/* Unseal: take a candidate root key and the keyring blob from storage, decrypt
 * and load it. Errors: MF_ECORRUPT if the blob does not authenticate under this
 * root key (wrong key, or a damaged blob: the two are indistinguishable) or is
 * malformed; MF_EINVAL for a blob of an unknown version; MF_EEXISTS if the
 * barrier is already unsealed (seal it first); -ENOMEM. On error the barrier
 * stays sealed and the candidate key is not kept. */
int mf_barrier_unseal(struct mf_barrier *b, const uint8_t *root_key, const uint8_t *blob,
                      size_t blob_len);

/* Seal: wipe the root key, the keyring and the use counters. Never fails. */
void mf_barrier_seal(struct mf_barrier *b);

/* Bytes of ciphertext for a plaintext of `len` bytes (len + MF_BARRIER_OVERHEAD). */
size_t mf_barrier_ciphertext_len(size_t len);

/* Encrypt `len` bytes under the active key. `path` is a NUL-terminated record
 * name (at most MF_BARRIER_PATH_MAX bytes), `write_id` the proposal's write id.
 * On success *out is a malloc'd buffer of *out_len bytes that the caller frees
 * with free() (it holds no secret). Counts one use of the active term (even if
 * encryption then fails: the nonce was drawn). Errors: MF_ESEALED,
 * MF_EINVAL (NULL or too long path), MF_ETOOLARGE, MF_ECRYPTO (CSPRNG or
 * OpenSSL failure), -ENOMEM. On error *out is NULL. */
int mf_barrier_encrypt(struct mf_barrier *b, const char *path, uint64_t write_id,
                       const void *plaintext, size_t len, uint8_t **out, size_t *out_len);

/* As mf_barrier_encrypt, into the caller's buffer of `out_cap` bytes, which must
 * hold mf_barrier_ciphertext_len(len) (MF_EINVAL otherwise). */
int mf_barrier_encrypt_into(struct mf_barrier *b, const char *path, uint64_t write_id,
                            const void *plaintext, size_t len, uint8_t *out, size_t out_cap,
                            size_t *out_len);

/* Decrypt and verify a ciphertext made by mf_barrier_encrypt for the same path
 * and write id. On success *out is a malloc'd buffer of *out_len bytes (plus a
 * NUL byte after them, for text) holding the secret: the caller releases it with
 * mf_barrier_wipe_free(*out, *out_len). Errors: MF_ESEALED; MF_ECORRUPT when
 * the ciphertext is truncated, has an unknown version, names a key term the
 * keyring does not hold, or fails the tag (a flipped bit, another path or write
 * id, another keyring); MF_EINVAL (bad path); MF_ECRYPTO; -ENOMEM. On error
 * *out is NULL: no byte of unverified plaintext is ever returned. */
int mf_barrier_decrypt(struct mf_barrier *b, const char *path, uint64_t write_id,
                       const uint8_t *ciphertext, size_t len, uint8_t **out, size_t *out_len);

/* As mf_barrier_decrypt, into the caller's buffer of `out_cap` bytes (at least
 * len - MF_BARRIER_OVERHEAD, else MF_EINVAL). On any error the first
 * min(out_cap, len - overhead) bytes of `out` are wiped (zero). */
int mf_barrier_decrypt_into(struct mf_barrier *b, const char *path, uint64_t write_id,
                            const uint8_t *ciphertext, size_t len, uint8_t *out, size_t out_cap,
                            size_t *out_len);

/* Read the key term from a ciphertext's header without decrypting (pure; works
 * sealed). Errors: MF_ECORRUPT if too short or of an unknown version. */
int mf_barrier_ciphertext_term(const uint8_t *ciphertext, size_t len, uint32_t *term);

/* The term new encryptions use. Errors: MF_ESEALED. */
int mf_barrier_active_term(struct mf_barrier *b, uint32_t *term);

/* Copy up to `cap` keys' public facts (term, created, local uses), oldest first,
 * and set *len to the number of keys. Errors: MF_ESEALED. */
int mf_barrier_keyring_info(struct mf_barrier *b, struct mf_barrier_key_info *info, size_t cap,
                            size_t *len);

/* Serialise the keyring and encrypt it under the root key, with a fresh nonce.
 * *blob is malloc'd (no secret in it), freed by the caller with free().
 * Errors: MF_ESEALED, MF_ECRYPTO, -ENOMEM. */
int mf_barrier_keyring_export(struct mf_barrier *b, uint8_t **blob, size_t *blob_len);

/* Replace the keyring with the one in `blob`, decrypted with the in-memory root
 * key (this is what applying a replicated "keyring put" does). The blob's seal
 * id must match the barrier's. A blob that gives an existing term a different
 * key is refused: two keyrings of one cluster never disagree. A blob with fewer
 * terms (replaying an older "keyring put") is accepted. Use counters of terms
 * that remain are kept. Errors: MF_ESEALED; MF_ECORRUPT (does not authenticate,
 * malformed, another seal id, a conflicting key); MF_EINVAL (unknown version);
 * -ENOMEM. On error the keyring is unchanged. */
int mf_barrier_keyring_load(struct mf_barrier *b, const uint8_t *blob, size_t blob_len);

/* Make the blob of a rotated keyring, without changing this barrier: the
 * current keys plus a new random key of term (highest + 1) created at now_ms.
 * The leader proposes it; applying it (mf_barrier_keyring_load) on every node,
 * the leader included, is what activates the new term. *blob as in export;
 * *new_term may be NULL. Errors: MF_ESEALED, MF_EQUOTA (MF_BARRIER_KEYS_MAX
 * keys), MF_ECRYPTO, -ENOMEM. */
int mf_barrier_rotate_export(struct mf_barrier *b, uint64_t now_ms, uint8_t **blob,
                             size_t *blob_len, uint32_t *new_term);

/* Rotate locally: mf_barrier_rotate_export then mf_barrier_keyring_load. For a
 * single node and for tests; a cluster rotates through Raft. */
int mf_barrier_rotate(struct mf_barrier *b, uint64_t now_ms, uint32_t *new_term);

/* Encryptions this process made under `term` since the barrier was unsealed
 * (0 if unknown or sealed). */
uint64_t mf_barrier_uses(struct mf_barrier *b, uint32_t term);

/* Hand over the encryptions not yet reported: fills up to `cap` entries (one
 * per term with a non-zero pending count, usually just the active term), sets
 * *len, and resets those pending counts to zero. The proposer puts them into
 * the command whose values it just encrypted; if the command is lost, the
 * count is lost too (see MF_BARRIER_ROTATE_USES for why that is fine).
 * Errors: MF_ESEALED. Terms beyond `cap` keep their pending count. */
int mf_barrier_uses_take(struct mf_barrier *b, struct mf_barrier_use *uses, size_t cap,
                         size_t *len);

/* For a command's single (key_term, key_encryptions) pair: drain every
 * pending count, set *term to the highest term that had one (0 if none) and
 * *count to their sum. Over-counting the newest term is the safe direction
 * (its rotation comes sooner); an older term encrypts nothing more once a
 * newer one exists. Errors: MF_ESEALED (*term and *count are then 0). */
int mf_barrier_uses_take_command(struct mf_barrier *b, uint32_t *term, uint64_t *count);

/* Pure: whether a term used `uses` times (the replicated counter) must be
 * rotated now. True from MF_BARRIER_ROTATE_USES on. */
bool mf_barrier_should_rotate(uint64_t uses);

/* Pure: whether the leader rotates a term now: its replicated use count
 * reached `uses_max` (capped at MF_BARRIER_ROTATE_USES; 0 means the cap), or
 * `max_age_ms` is not 0 and its key, made at created_ms, is that old at
 * now_ms (a clock behind created_ms counts as age 0). */
bool mf_barrier_rotation_due(uint64_t uses, uint64_t uses_max, uint64_t created_ms,
                             uint64_t now_ms, uint64_t max_age_ms);

/* Pure: parse the cleartext header of a keyring blob, without any key (for
 * status while sealed, to pick the unseal method, and for the state machine to
 * refuse a "keyring put" of another seal id). The header is only trustworthy
 * once the blob has been unsealed with. Errors: MF_ECORRUPT (too short or
 * inconsistent fields), MF_EINVAL (unknown version). */
int mf_barrier_blob_seal_config(const uint8_t *blob, size_t blob_len,
                                struct mf_barrier_seal_config *cfg);

/* Pure: the active (highest) term of a keyring blob, from its cleartext
 * header. Errors as mf_barrier_blob_seal_config. */
int mf_barrier_blob_active_term(const uint8_t *blob, size_t blob_len, uint32_t *term);

/* Pure: the rekey generation of a blob (0 for version 1). Errors as
 * mf_barrier_blob_seal_config. */
int mf_barrier_blob_generation(const uint8_t *blob, size_t blob_len, uint32_t *generation);

/* Pure, for the state machine applying a "keyring put" or a rekey: may
 * `next` replace the stored blob `cur` (NULL/0 when none is stored)? Yes (0)
 * when `next` parses and, if `cur` exists, has the same seal type and seal
 * id and either (a rotation) the same generation, the same shares and
 * threshold and a higher active term, or (a rekey) generation cur + 1 and
 * the same active term (shares and threshold may change; the keys are
 * checked by mf_barrier_rekey_load where a key is at hand). A rekeyed blob
 * with another term, a skipped or older generation, or a rotation made with
 * the old root key after a rekey is MF_ECAS. Refusing a second init (another seal id) and a
 * stale or concurrent rotation (a term not above the stored one) keeps the
 * replicated keyring from ever losing a key that encrypted something: two
 * rotations proposed from the same keyring would both create term T+1 with
 * different keys. Errors: MF_EEXISTS (another seal: the cluster is already
 * initialised), MF_ECAS (term not above the stored one), MF_ECORRUPT or
 * MF_EINVAL (`next` or `cur` unreadable, see mf_barrier_blob_seal_config). */
int mf_barrier_blob_may_replace(const uint8_t *cur, size_t cur_len, const uint8_t *next,
                                size_t next_len);

/* Derive `out_len` bytes from the root key with HKDF-SHA-256 (no salt,
 * info = the NUL-terminated `info`, a purpose label such as
 * "mayfly/backup-mac/v1"): a key for another purpose that never exposes the
 * root key. The caller wipes `out` (OPENSSL_cleanse) when done. Errors:
 * MF_ESEALED, MF_ECRYPTO (then `out` is wiped). */
int mf_barrier_root_derive(struct mf_barrier *b, const char *info, uint8_t *out, size_t out_len);
/* Rekey, step 1 (the leader, once a threshold of the old shares opened the
 * keyring on `b`): the same keys encrypted under `new_root` (caller's,
 * MF_BARRIER_KEY_BYTES, wiped by the caller) with seal config (Shamir,
 * `shares`, `threshold`, the same seal id) and generation + 1, and the new
 * root key wrapped under b's root key (format above). *blob and *wrapped are
 * malloc'd (no secret readable without the old root key), freed with free().
 * `b` is unchanged: applying the rekey (mf_barrier_rekey_load) switches.
 * Errors: MF_ESEALED; MF_EINVAL (a key-file seal, or bad shares/threshold);
 * MF_EQUOTA (generation exhausted); MF_ECRYPTO; -ENOMEM. */
int mf_barrier_rekey_export(struct mf_barrier *b, const uint8_t *new_root, uint8_t shares,
                            uint8_t threshold, uint8_t **blob, size_t *blob_len,
                            uint8_t **wrapped, size_t *wrapped_len);

/* Rekey, step 2 (applying it on an unsealed node): unwrap the new root key
 * with the in-memory root key, open `blob` with it, check it holds exactly
 * our keys under the same seal id with generation + 1, then switch root key,
 * seal config and generation. Errors: MF_ESEALED (a sealed node only stores
 * the blob); MF_ECORRUPT (does not authenticate, another generation, seal or
 * other keys); MF_EINVAL (unknown version); -ENOMEM. On error nothing
 * changes. */
int mf_barrier_rekey_load(struct mf_barrier *b, const uint8_t *blob, size_t blob_len,
                          const uint8_t *wrapped, size_t wrapped_len);

/* The seal configuration of an unsealed barrier. Errors: MF_ESEALED. */
int mf_barrier_seal_config(struct mf_barrier *b, struct mf_barrier_seal_config *cfg);

/* Wipe `len` bytes at p with OPENSSL_cleanse and free(p). NULL is a no-op. */
void mf_barrier_wipe_free(void *p, size_t len);

/* Locked memory for secrets (used by seal.c too): the OpenSSL secure heap
 * once mf_secmem_init() ran, else page-aligned mappings mlock'ed where
 * RLIMIT_MEMLOCK allows (a warning is logged once otherwise); excluded from
 * core dumps either way, zero-filled (common/secmem.h). Returns NULL on failure (-ENOMEM). Release with
 * mf_barrier_secure_free(p, len), which wipes first. */
void *mf_barrier_secure_alloc(size_t len);
void mf_barrier_secure_free(void *p, size_t len);

#endif
