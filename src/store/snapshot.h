/* Snapshots of the state database: a consistent, compacted copy of the LMDB
 * environment (mdb_env_copyfd2 with MDB_CP_COMPACT, from one read
 * transaction) in a file with a header, and its installation on another node.
 *
 * File format (integers big-endian):
 *   magic "MFSNAP01" (8) | version u32 (= 1) | header length u32 (= 64) |
 *   applied index u64 | data length u64 | SHA-256 of the data (32) | data
 * where data is the LMDB data file of the compacted copy.
 *
 * Install writes the data to DIR/state/data.mdb.new while checking the
 * length and checksum, opens it read-only to check that every named database
 * of ours is there and that its applied index is the header's, then closes the
 * live environment, renames the new file over DIR/state/data.mdb (atomic),
 * fsyncs the directory and reopens. Any failure before the rename leaves the
 * store exactly as it was (and removes the .new file); a crash before the
 * rename leaves the old state, after it the new one.
 *
 * Threads: create may run on any thread (it uses its own read transaction;
 * a long copy pins old pages, so the file may grow meanwhile). Install runs on
 * the writer thread with no other transaction open on the state (the caller
 * stops readers first).
 */
#ifndef MF_STORE_SNAPSHOT_H
#define MF_STORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "store/fsm.h"
#include "store/state.h"

#define MF_SNAPSHOT_MAGIC "MFSNAP01"
#define MF_SNAPSHOT_VERSION 1
#define MF_SNAPSHOT_HEADER_LEN 64

/* Write a snapshot of `st` to `path` (through path.tmp, renamed when
 * complete and fsynced). *index (may be NULL) receives the applied index the
 * snapshot holds. err (may be NULL) receives a message on failure.
 * Errors: -errno (file system), MF_ESTORAGE, MF_ECORRUPT. */
int mf_snapshot_create(struct mf_state *st, const char *path, uint64_t *index, char *err,
                       size_t errlen);

/* Check a snapshot file's header, length and checksum without installing it.
 * Errors: MF_ECORRUPT (bad magic, truncated, checksum mismatch), -errno. */
int mf_snapshot_verify(const char *path, uint64_t *index, char *err, size_t errlen);

/* Replace the fsm's state with the snapshot at `path` (see above). The
 * snapshot's applied index must not be below the fsm's (MF_EINVAL: a snapshot
 * never moves the applied index backwards). On success the fsm's applied
 * index is the snapshot's (*index, may be NULL). Errors: MF_ECORRUPT (bad,
 * truncated or foreign snapshot), MF_EINVAL, -errno, MF_ESTORAGE; on any of
 * them the store is unchanged. */
int mf_snapshot_install(struct mf_fsm *fsm, const char *path, uint64_t *index, char *err,
                        size_t errlen);

#endif
