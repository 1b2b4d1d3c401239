/* Backup and restore (../shared/CLI.md "operator snapshot save / restore";
 * src/store/README.md "Backups"; the file format is store/backup.h).
 *
 * Save (sudo on sys/raft/snapshot; on the leader, a follower forwards it;
 * needs an unsealed leader): the first request (no handle) waits for a
 * linearizable read barrier, then on the thread pool writes a snapshot of
 * the state (under the state lock, as the Raft snapshots do) and wraps it
 * with the keyring blob into DATA_DIR/backups/<handle>.mfbak (0600); the
 * answer carries the handle, the first chunk (at most
 * MF_OP_SNAPSHOT_CHUNK_MAX bytes), total_bytes, index and term. Each next
 * request names the handle and the offset it wants; the last chunk carries
 * the plain SHA-256 and removes the file. At most MF_OP_SNAPSHOT_SAVES_MAX
 * saves at once (QUOTA_EXCEEDED beyond); a handle idle for
 * MF_OP_SNAPSHOT_IDLE_MS is dropped with its file (NOT_FOUND after).
 *
 * Restore (no token: like init, it is only taken by an uninitialised
 * cluster, and the backup's own shares are what unlock it): the chunks come
 * in order to the leader (DATA_DIR/restore/upload.mfbak, 0600); with the
 * last one the file's header, length and plain SHA-256 are checked
 * (mf_backup_check: INVALID_ARGUMENT "backup refused: ..." and the file is
 * dropped) and it is staged; the answer is {index, term}. An initialised
 * cluster refuses at once (INVALID_ARGUMENT "the cluster is already
 * initialised: ...").
 *
 * Unseal while a restore is staged on this node (mf_op_snapshot_unseal):
 * the shares are checked against the backup's keyring blob; at the
 * threshold the rebuilt root key must open it and verify the backup's HMAC
 * (mf_backup_verify_mac) before anything opens the data: a failure seals
 * the node again, drops the staged file and answers INVALID_ARGUMENT
 * "backup fails its MAC". Then the leader proposes the snapshot in
 * RestoreChunk pieces and a RestoreCommit (store/restore.h), and answers the
 * unseal once the commit applied. The other nodes are unsealed with the
 * same old shares as usual.
 *
 * Threads: loop thread; the snapshot is written on libuv's thread pool
 * (counted in s->handles_open so the server outlives it). One server per
 * process: the saves and the staged restore live in this file. */
#ifndef MF_SERVER_OP_SNAPSHOT_H
#define MF_SERVER_OP_SNAPSHOT_H

#include <stdbool.h>

#include "node/node.h"
#include "server/handler.h"

#define MF_OP_SNAPSHOT_CHUNK_MAX (1u << 20)   /* bytes per answer: within the 4 MiB frame */
#define MF_OP_SNAPSHOT_SAVES_MAX 2
#define MF_OP_SNAPSHOT_IDLE_MS 60000
#define MF_OP_SNAPSHOT_RESTORE_MAX (UINT64_C(64) << 30) /* 64 GiB: a backup's size */

void mf_op_snapshot_save(struct req *r);    /* leader */
void mf_op_snapshot_restore(struct req *r); /* leader */

/* Whether a checked backup waits on this node for the old shares: init is
 * refused meanwhile and "not initialised" errors say so, with
 * MF_OP_SNAPSHOT_STAGED_MSG. */
bool mf_op_snapshot_staged(void);
#define MF_OP_SNAPSHOT_STAGED_MSG "restore staged: unseal with the backup's shares"

/* Called first by unseal: true when a staged restore took the share (and r
 * is answered); false: unseal as usual. */
bool mf_op_snapshot_unseal(struct req *r);

/* Applied entry hook (server.c): after a RestoreCommit applied, every
 * concern that caches state reloads it (mounts, the scheduler). */
void mf_op_snapshot_applied(struct mf_server *s, const struct mf_raft_entry *e, const Result *res);

/* Reads META "id_base" (set by a restore) into the proposer, so the ids a
 * leader derives from new indexes stay above the backup's; on gaining
 * leadership and after a restore applied. */
void mf_op_snapshot_load_id_base(struct mf_server *s);

#endif
