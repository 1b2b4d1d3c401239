/* Backup files: a snapshot of the state database (snapshot.h) wrapped for
 * keeping off the cluster, authenticated with a key derived from the root key
 * so that nobody without the shares can edit a backup (add a root token, a
 * policy) and have a cluster accept it.
 *
 * File format (integers big-endian):
 *
 *     offset  size  field
 *     0       8     magic "MFBACK01"
 *     8       4     version (MF_BACKUP_VERSION)
 *     12      4     header length H (= MF_BACKUP_FIXED_LEN + K)
 *     16      8     the cluster's Raft index at the snapshot (its applied index)
 *     24      8     the Raft term of that index (0 when unknown)
 *     32      8     created_ms (wall clock of the leader that wrote it)
 *     40      8     data length D
 *     48      1     seal type   \
 *     49      1     shares N     |  the keyring blob's cleartext header
 *     50      1     threshold T  |  (barrier.h), repeated for operators:
 *     51      1     0            |  must equal the blob's own
 *     52      16    seal id      |
 *     68      4     active key term /
 *     72      4     keyring blob length K (<= MF_BACKUP_KEYRING_MAX)
 *     76      20    zero
 *     96      K     the keyring blob (encrypted under the root key)
 *     H       D     data: a snapshot file (snapshot.h format)
 *     H+D     32    SHA-256 of bytes [0, H+D)
 *     H+D+32  32    HMAC-SHA-256 of bytes [0, H+D+32), keyed with
 *                   HKDF-SHA-256(root key, info MF_BACKUP_MAC_INFO)
 *
 * The plain SHA-256 finds accidental damage without any key (mf_backup_check);
 * the HMAC finds deliberate edits, and needs the root key: mf_backup_verify_mac
 * runs once the old shares have rebuilt it, before any LMDB environment opens
 * the data. The keyring blob travels in the header so the root key can be
 * checked against it without opening the data either.
 *
 * What a backup exposes in clear: the whole state database as it is on disk
 * (paths, lease ids and metadata, token accessors and hashes, policy names and
 * text, engine mounts, audit config); values and secrets stay barrier
 * ciphertext. Keep backups as secret as the shares.
 *
 * Threads: every call works on files given by path and on its own buffers;
 * the barrier is thread-safe. Errors below; `err` (may be NULL) gets a message
 * an operator can act on.
 */
#ifndef MF_STORE_BACKUP_H
#define MF_STORE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "store/barrier.h"

#define MF_BACKUP_MAGIC "MFBACK01"
#define MF_BACKUP_VERSION 1u
#define MF_BACKUP_FIXED_LEN 96u   /* header bytes before the keyring blob */
#define MF_BACKUP_TRAILER_LEN 64u /* SHA-256 then HMAC-SHA-256 */
/* A keyring blob of MF_BARRIER_KEYS_MAX keys is about 176 KiB. */
#define MF_BACKUP_KEYRING_MAX (256u * 1024u)
#define MF_BACKUP_MAC_INFO "mayfly/backup-mac/v1"

/* What a backup's header says (trustworthy only after mf_backup_verify_mac). */
struct mf_backup_info {
    uint64_t index;       /* the cluster's applied Raft index at the snapshot */
    uint64_t term;        /* its Raft term */
    uint64_t created_ms;
    uint64_t data_len;    /* D: the snapshot file's bytes */
    uint64_t header_len;  /* H */
    uint64_t total_len;   /* H + D + MF_BACKUP_TRAILER_LEN: the file's size */
    struct mf_barrier_seal_config seal;
    uint32_t key_term;    /* the keyring's active term */
    uint8_t sha256[32];   /* the plain checksum, as shown to operators */
};

/* Write a backup to `path` (through path.tmp, mode 0600, fsynced, renamed)
 * from the snapshot file `snapshot` and the keyring blob the cluster holds.
 * The barrier must be unsealed (the MAC key comes from its root key).
 * *info (may be NULL) describes what was written. Errors: MF_ESEALED,
 * MF_EINVAL (keyring blob unreadable or too long), MF_ECORRUPT (the snapshot
 * file fails mf_snapshot_verify), MF_ECRYPTO, -errno, -ENOMEM. On error no
 * file is left at `path` or path.tmp. */
int mf_backup_write(struct mf_barrier *b, const char *snapshot, const uint8_t *keyring,
                    size_t keyring_len, uint64_t index, uint64_t term, uint64_t created_ms,
                    const char *path, struct mf_backup_info *info, char *err, size_t errlen);

/* Check a backup without any key: magic, version, header fields (those
 * repeated from the keyring blob must equal the blob's), the file's length
 * and the plain SHA-256. *info is filled; *keyring (may be NULL) receives a
 * malloc'd copy of the keyring blob (*keyring_len bytes; no secret), freed by
 * the caller. Errors: MF_ECORRUPT (not a backup, another version, truncated,
 * extended, or the checksum fails), -errno, -ENOMEM. */
int mf_backup_check(const char *path, struct mf_backup_info *info, uint8_t **keyring,
                    size_t *keyring_len, char *err, size_t errlen);

/* Verify the HMAC of a backup that passed mf_backup_check, with the key
 * derived from the barrier's root key (unsealed with the backup's keyring).
 * Errors: MF_ECORRUPT "backup fails its MAC" (edited, or another cluster's
 * root key), MF_ESEALED, MF_ECRYPTO, -errno. */
int mf_backup_verify_mac(struct mf_barrier *b, const char *path, char *err, size_t errlen);

/* Copy the data (a snapshot file) of a checked backup to `snapshot` (mode
 * 0600, fsynced). Errors: MF_ECORRUPT (shorter than its header says),
 * -errno. On error `snapshot` is removed. */
int mf_backup_extract(const char *path, const char *snapshot, char *err, size_t errlen);

#endif
