/* The Raft log-storage interface: the contract between the pure Raft core
 * (src/raft/core.c), which reads the stable log through it, and the LMDB store
 * (src/store/log.c), which implements it. The simulator has an in-memory
 * implementation. The core never writes through this interface: the driver
 * (node.c, or the simulator) persists what mf_raft_ready() hands out with
 * save(), then acknowledges the ready batch.
 *
 * Log layout: entries [first_index, last_index] are stored; the entry just
 * before first_index is covered by the latest snapshot, whose index and term
 * term() still answers (first_index - 1 == snapshot index). An empty log with no
 * snapshot has first_index 1, last_index 0, and term(0) == 0.
 *
 * Errors: every call returns 0 or a negative code. MF_ECOMPACTED: the index is
 * before first_index - 1. MF_EUNAVAILABLE_ENTRY: the index is after
 * last_index. Anything else (MF_ESTORAGE, MF_EMAPFULL, -EIO) is an operating
 * failure the driver must treat as fatal for the node (stop, never ack).
 *
 * Threads: a storage may be read by one thread while another thread writes
 * (the LMDB store's writer thread); reads see the state as of some completed
 * save(). Implementations document how they achieve that.
 */
#ifndef MF_RAFT_STORAGE_H
#define MF_RAFT_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#define MF_RAFT_NODES_MAX 16 /* voters + learners in one configuration */

enum mf_raft_entry_type {
    MF_RAFT_ENTRY_NORMAL = 0, /* an application command (opaque bytes) */
    MF_RAFT_ENTRY_CONF = 1,   /* a membership change, encoded by the core */
    MF_RAFT_ENTRY_NOOP = 2,   /* the empty entry a new leader appends */
};

/* One log entry. In arrays handed out by entries(), `data` points into memory
 * owned by the storage: valid until the next call on the same storage from the
 * same thread (the LMDB store points straight into its map: no copy). In
 * arrays given to save(), `data` is the caller's and only read during the call. */
struct mf_raft_entry {
    uint64_t term;
    uint64_t index;
    uint32_t type;      /* enum mf_raft_entry_type */
    uint32_t len;       /* bytes at data */
    const uint8_t *data;
};

/* What must be durable before a vote or an acknowledgement leaves the node. */
struct mf_raft_hard_state {
    uint64_t term;
    uint64_t vote;    /* node id voted for in `term`, 0 = none */
    uint64_t commit;  /* highest index known committed (may lag; never ahead) */
};

struct mf_raft_conf_state {
    uint32_t voters_len;
    uint32_t learners_len;
    uint64_t voters[MF_RAFT_NODES_MAX];
    uint64_t learners[MF_RAFT_NODES_MAX];
};

/* Metadata of a snapshot: the state machine as of `index`, and the
 * configuration in force at that index. index 0 means "no snapshot". */
struct mf_raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    struct mf_raft_conf_state conf;
};

struct mf_raft_storage {
    void *ctx;

    /* --- read side: used by the core --- */

    /* The hard state last saved (zeroes on a fresh node). */
    int (*hard_state)(void *ctx, struct mf_raft_hard_state *out);
    /* Metadata of the latest snapshot (or compaction point); zeroes if none. */
    int (*snapshot_meta)(void *ctx, struct mf_raft_snapshot_meta *out);
    int (*first_index)(void *ctx, uint64_t *out);
    int (*last_index)(void *ctx, uint64_t *out);
    /* Term of the entry at index, for index in [first_index - 1, last_index]. */
    int (*term)(void *ctx, uint64_t index, uint64_t *out);
    /* Entries [lo, hi) in index order, stopping early once their total data
     * exceeds max_bytes (but always at least one entry when lo < hi) or out_cap
     * entries are filled. *out_len receives the count. */
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   struct mf_raft_entry *out, size_t out_cap, size_t *out_len);

    /* --- write side: used by the driver, never by the core --- */

    /* One durable write (one transaction, one fsync) that stores `hs` (NULL:
     * unchanged) and the entries ents[0..n) (contiguous indexes). If ents[0]
     * is at or before last_index, every stored entry from ents[0].index on is
     * replaced first (the core only asks for this on a real conflict). Returns
     * only once everything is on disk. */
    int (*save)(void *ctx, const struct mf_raft_hard_state *hs,
                const struct mf_raft_entry *ents, size_t n);
    /* The state machine has durably applied a snapshot at meta->index (taken
     * locally): record meta and drop entries up to meta->index. */
    int (*compact)(void *ctx, const struct mf_raft_snapshot_meta *meta);
    /* A snapshot received from the leader was installed: record meta; keep the
     * entries after meta->index only if the entry at meta->index has term
     * meta->term, otherwise drop the whole log. */
    int (*install_snapshot)(void *ctx, const struct mf_raft_snapshot_meta *meta);
};

#endif
