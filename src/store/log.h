/* The Raft log and hard state on LMDB: the durable side of src/raft/storage.h.
 *
 * The log lives in its own LMDB environment, DIR/log/, apart from the state
 * database: it is the one thing that must survive a power cut exactly as
 * acknowledged, so it is opened with LMDB's default synced commit (never
 * MDB_NOSYNC or MDB_NOMETASYNC) and every mf_raft_storage.save() is one write
 * transaction and one synced commit (group commit: many entries, one flush).
 *
 * Layout: database "entries" maps an 8-byte big-endian index to a record
 * (24-byte header: index, term, type, length; then the data); database "meta"
 * holds the format version, the hard state and the snapshot metadata. Reads
 * hand out pointers straight into the LMDB map (no copy).
 *
 * Threads. One thread at a time may write (save, compact, install_snapshot):
 * the node's writer thread. Any number of other threads may read at the same
 * time (hard_state, snapshot_meta, first_index, last_index, term, entries).
 * Each reading thread gets its own LMDB read transaction (the environment is
 * opened with MDB_NOTLS, so a transaction is not tied to LMDB's thread-local
 * reader slot), which every read call resets and renews, so a call sees the
 * log as of the last completed write, and the pointers entries() hands out stay
 * valid until that thread's next call on this log (or mf_raftlog_release()).
 * A thread's read transaction pins the pages it sees: a thread that stops
 * reading for long must call mf_raftlog_release(). mf_raftlog_close() must be
 * called only once every other thread has stopped using the log.
 *
 * Ownership: mf_raftlog_open() allocates the handle; mf_raftlog_close() frees
 * it and everything it owns. The struct mf_raft_storage filled by
 * mf_raftlog_storage() points at the handle and is valid until close.
 *
 * Errors (every call returns 0 or a negative code):
 *   MF_ECOMPACTED, MF_EUNAVAILABLE_ENTRY  as in storage.h
 *   MF_EINVAL    a caller broke the contract (gap in save(), bad range)
 *   MF_EMAPFULL  the map (opts.map_size_bytes) is full: the write did not
 *                happen; compact, or reopen with a larger map
 *   MF_ENOSPACE  the filesystem is full (ENOSPC); a short write on a full
 *                filesystem comes back as -EIO instead (common/fsstat.h tells
 *                the two apart)
 *   MF_ECORRUPT  a stored record failed validation
 *   MF_ESTORAGE  any other LMDB failure; after a failed commit the handle
 *                refuses every further write (MF_ESTORAGE): the node must stop
 *   -errno       a file system call failed (open, mkdir, rename, fsync)
 */
#ifndef MF_STORE_LOG_H
#define MF_STORE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "raft/storage.h"

#define MF_RAFTLOG_MAP_SIZE_DEFAULT (8ULL << 30) /* bytes of address space; the file is sparse */
#define MF_RAFTLOG_READERS_MAX 16 /* threads that may read one log at a time */
#define MF_RAFTLOG_ENTRY_HEADER 24 /* bytes stored in front of each entry's data */

struct mf_raftlog;

struct mf_raftlog_opts {
    /* Size of the LMDB map in bytes: the most the log file can grow to. 0 means
     * MF_RAFTLOG_MAP_SIZE_DEFAULT. Rounded by LMDB to a page multiple. */
    uint64_t map_size_bytes;
    /* Entries deleted per write transaction when compacting a long prefix
     * (bounds the dirty pages of one transaction). 0 means 65536. */
    uint64_t compact_batch_entries;
};

/* Open (creating if needed) the log under dir (dir/log/). dir must exist.
 * A new log is created in dir/log.tmp/ and renamed into place once durable,
 * so a crash during creation never leaves a half-made log behind.
 * opts may be NULL (defaults). On success *out is the new handle.
 * A log may be open only once per process (LMDB's rule): a second open of
 * the same directory fails with MF_EEXISTS until the first is closed.
 * Errors: MF_EINVAL, MF_EEXISTS, MF_ECORRUPT (unknown format or bad
 * metadata), MF_ESTORAGE (LMDB refused the files), MF_EMAPFULL, -errno. */
int mf_raftlog_open(const char *dir, const struct mf_raftlog_opts *opts,
                    struct mf_raftlog **out);

/* Close the handle and free it (NULL is ignored). Every other thread must have
 * stopped using it. */
void mf_raftlog_close(struct mf_raftlog *log);

/* Fill *out with the storage interface backed by log (ctx = log). */
void mf_raftlog_storage(struct mf_raftlog *log, struct mf_raft_storage *out);

/* End the calling thread's read snapshot: pointers from its last entries()
 * become invalid and the pages they pinned can be reused. Call when a thread
 * stops reading (or pauses for long). Never fails. */
void mf_raftlog_release(struct mf_raftlog *log);

/* The same operations as struct mf_raft_storage, callable directly. */
int mf_raftlog_hard_state(struct mf_raftlog *log, struct mf_raft_hard_state *out);
int mf_raftlog_snapshot_meta(struct mf_raftlog *log, struct mf_raft_snapshot_meta *out);
int mf_raftlog_first_index(struct mf_raftlog *log, uint64_t *out);
int mf_raftlog_last_index(struct mf_raftlog *log, uint64_t *out);
int mf_raftlog_term(struct mf_raftlog *log, uint64_t index, uint64_t *out);
/* Entries [lo, hi): entry k > 0 of the answer is included only if the data of
 * entries 0..k together stay within max_bytes (etcd's rule); the first entry
 * always is. Pointers are into the map: valid until this thread's next call. */
int mf_raftlog_entries(struct mf_raftlog *log, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                       struct mf_raft_entry *out, size_t out_cap, size_t *out_len);
int mf_raftlog_save(struct mf_raftlog *log, const struct mf_raft_hard_state *hs,
                    const struct mf_raft_entry *ents, size_t n);
/* meta->index must be within [snapshot index, last_index] and meta->term the
 * term of that entry (MF_EINVAL / MF_EUNAVAILABLE_ENTRY otherwise); a meta at
 * or before the current snapshot index changes nothing and returns 0. */
int mf_raftlog_compact(struct mf_raftlog *log, const struct mf_raft_snapshot_meta *meta);
/* A meta older than the current snapshot changes nothing and returns 0. The
 * hard state is left alone: the core saves its own commit index. */
int mf_raftlog_install_snapshot(struct mf_raftlog *log, const struct mf_raft_snapshot_meta *meta);

/* Used pages and map size of the log (store/usage.h): what the storage
 * quota counts. Any thread (uses one more reader slot while it runs). */
struct mf_lmdb_usage;
int mf_raftlog_usage(struct mf_raftlog *log, struct mf_lmdb_usage *out);

/* Numbers for benchmarks and metrics: synced commits done since open. */
uint64_t mf_raftlog_commits(const struct mf_raftlog *log);

#endif
