/* The pure Raft core: consensus as a state machine with no I/O, no clock and
 * no random source of its own (etcd-raft shape, Ongaro's thesis rules).
 *
 * The driver (src/node/node.c, the simulator, the unit tests: all through
 * raft/driver.h, which states this order once) feeds it ticks
 * (mf_raft_tick), peer messages (mf_raft_step) and requests (propose, conf
 * change, transfer, read index), and collects work with mf_raft_ready():
 *
 *   while (mf_raft_has_ready(r)) {
 *       struct mf_raft_ready rd;
 *       mf_raft_ready(r, &rd);
 *       send(rd.msgs_before);            // leader AppendEntries etc.: may go now
 *       write rd.snapshot_chunks to the staging area (follower)
 *       if (rd.snapshot) install the staging, storage->install_snapshot(rd.snapshot)
 *       storage->save(rd.hard_state_changed ? &rd.hard_state : NULL,
 *                     rd.entries, rd.entries_len);   // one fsync
 *       send(rd.msgs_after);             // votes, acks: only after the fsync
 *       start applying rd.committed (a copy: it may outlive rd);
 *       serve rd.read_states once applied >= index
 *       mf_raft_advance(r, &rd);         // "all of rd is durable"
 *   }
 *
 * Committed entries are durable when handed out, so their apply may start
 * before the save and end after advance; the core counts them applied at
 * advance, and the driver takes snapshots (mf_raft_snapshot_taken) only of
 * what its state machine really applied.
 *
 * Between mf_raft_ready() and mf_raft_advance() the driver may keep calling
 * step/tick/propose (the write may run on another thread); their output waits
 * for the next batch, and mf_raft_has_ready() is false until advance. The
 * leader counts its own log toward commitment only up to what advance has
 * reported durable, and committed entries are handed out only up to the
 * locally durable index.
 *
 * Errors: functions return 0 or a negative code:
 *   MF_ENOTLEADER  the call needs the leader (propose, conf change, transfer);
 *   MF_EUNAVAIL    no leader known / leader not ready yet (retry later);
 *   -EBUSY         a conf change or leadership transfer is already pending;
 *   MF_EINVAL      bad argument (unknown node, bad config);
 *   MF_EEXISTS, MF_ENOTFOUND  conf change on a present / absent node;
 *   MF_ETOOLARGE   a proposal above max_msg_bytes, or too many nodes;
 *   -ENOBUFS       a bounded queue is full (pending reads, uncommitted bytes);
 *   -ENOMEM        out of memory;
 *   anything from the storage other than MF_ECOMPACTED/UNAVAILABLE_ENTRY
 *                  (MF_ESTORAGE, -EIO, ...): fatal; the core latches it and
 *                  every later call returns it. The driver must stop the node.
 */
#ifndef MF_RAFT_CORE_H
#define MF_RAFT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/storage.h"

#define MF_RAFT_INFLIGHT_MAX 256 /* upper bound for config.max_inflight */

enum mf_raft_role {
    MF_RAFT_FOLLOWER = 0,
    MF_RAFT_PRE_CANDIDATE = 1,
    MF_RAFT_CANDIDATE = 2,
    MF_RAFT_LEADER = 3,
};

enum mf_raft_msg_type {
    MF_RAFT_MSG_APP = 1,            /* AppendEntries (index/log_term = prev) */
    MF_RAFT_MSG_APP_RESP = 2,       /* index = last matched, or reject + hint */
    MF_RAFT_MSG_VOTE = 3,           /* index/log_term = candidate's last */
    MF_RAFT_MSG_VOTE_RESP = 4,
    MF_RAFT_MSG_PRE_VOTE = 5,       /* term = candidate's term + 1 */
    MF_RAFT_MSG_PRE_VOTE_RESP = 6,
    MF_RAFT_MSG_HEARTBEAT = 7,      /* commit, ctx = read round */
    MF_RAFT_MSG_HEARTBEAT_RESP = 8, /* ctx echoed */
    MF_RAFT_MSG_SNAP = 9,           /* InstallSnapshot chunk */
    MF_RAFT_MSG_SNAP_RESP = 10,     /* index = snapshot, snapshot_offset = next wanted */
    MF_RAFT_MSG_TIMEOUT_NOW = 11,   /* leadership transfer: campaign now */
    MF_RAFT_MSG_READ_INDEX = 12,    /* follower -> leader, ctx = request id */
    MF_RAFT_MSG_READ_INDEX_RESP = 13, /* index = read index, ctx, reject */
};

/* ctx values of VOTE/PRE_VOTE: a campaign started by TimeoutNow. */
#define MF_RAFT_CAMPAIGN_TRANSFER 1

/* A peer message. In messages handed out by ready, every pointer (entries,
 * entries' data, snapshot_chunk) points into memory owned by the core, valid
 * until mf_raft_advance(). In messages given to mf_raft_step they are the
 * caller's and only read during the call. */
struct mf_raft_msg {
    uint32_t type; /* enum mf_raft_msg_type */
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    bool reject;
    uint64_t reject_hint;
    uint64_t ctx;
    struct mf_raft_entry *entries;
    size_t entries_len;
    /* MF_RAFT_MSG_SNAP only. */
    struct mf_raft_snapshot_meta snapshot;
    uint64_t snapshot_offset;
    const uint8_t *snapshot_chunk;
    uint32_t snapshot_chunk_len;
    bool snapshot_done;
};

/* A confirmed read: linearizable once the applied index reaches `index`. */
struct mf_raft_read_state {
    uint64_t index;
    uint64_t ctx;
};

/* A chunk of an incoming snapshot that the driver must write (staging) before
 * sending msgs_after; offsets are contiguous from 0 for one snapshot index. A
 * chunk with offset 0 starts a new staging (discard any older one). */
struct mf_raft_snapshot_chunk {
    struct mf_raft_snapshot_meta meta;
    uint64_t offset;
    const uint8_t *data;
    uint32_t len;
    bool done;
};

struct mf_raft_soft_state {
    uint64_t lead; /* 0 = unknown */
    enum mf_raft_role role;
};

/* One batch of work. Every pointer is owned by the core and stays valid until
 * mf_raft_advance(r, rd); the driver only reads it. */
struct mf_raft_ready {
    bool hard_state_changed;
    struct mf_raft_hard_state hard_state;
    bool soft_state_changed;
    struct mf_raft_soft_state soft_state;
    /* Entries to save (contiguous; may overwrite a conflicting suffix). */
    struct mf_raft_entry *entries;
    size_t entries_len;
    /* Snapshot to install before saving the entries (NULL: none). The bytes
     * are the chunks previously handed out in snapshot_chunks. */
    const struct mf_raft_snapshot_meta *snapshot;
    struct mf_raft_snapshot_chunk *snapshot_chunks;
    size_t snapshot_chunks_len;
    /* Committed, durable entries to apply in order. */
    struct mf_raft_entry *committed;
    size_t committed_len;
    struct mf_raft_read_state *read_states;
    size_t read_states_len;
    /* May be sent before the save finishes (leader replication). */
    struct mf_raft_msg *msgs_before;
    size_t msgs_before_len;
    /* Must be sent only after the save (votes, acknowledgements). */
    struct mf_raft_msg *msgs_after;
    size_t msgs_after_len;
};

/* The application's snapshot bytes for the leader's InstallSnapshot: copy up
 * to cap bytes from offset of the snapshot at `index` into buf. Returns 0 with
 * *len and *done set, MF_ECOMPACTED if that snapshot is gone (the transfer is
 * restarted later), or another error (transfer aborted, retried later). */
typedef int (*mf_raft_snapshot_read_cb)(void *ctx, uint64_t index, uint64_t offset,
                                        uint8_t *buf, size_t cap, size_t *len, bool *done);

struct mf_raft_config {
    uint64_t id;                    /* >= 1 */
    /* Bootstrap configuration: used only when the storage has no snapshot
     * (then the log replays conf entries on top of it). Pass the same on
     * every start. */
    uint64_t voters[MF_RAFT_NODES_MAX];
    size_t voters_len;
    uint64_t learners[MF_RAFT_NODES_MAX];
    size_t learners_len;
    uint32_t election_ticks;        /* min election timeout; random in [e, 2e) */
    uint32_t heartbeat_ticks;       /* < election_ticks */
    const struct mf_raft_storage *storage; /* borrowed; outlives the core */
    uint64_t max_msg_bytes;         /* entry bytes per AppendEntries (and max proposal) */
    uint32_t max_inflight;          /* AppendEntries in flight per follower, <= MF_RAFT_INFLIGHT_MAX */
    uint64_t max_apply_bytes;       /* committed bytes per ready, 0 = 4 MiB */
    uint64_t max_uncommitted_bytes; /* leader's unstable+uncommitted log bound, 0 = 64 MiB */
    uint32_t max_pending_reads;     /* queued ReadIndex requests, 0 = 4096 */
    uint32_t snapshot_chunk_bytes;  /* InstallSnapshot chunk, 0 = 64 KiB */
    bool pre_vote;
    bool check_quorum;
    uint64_t seed;                  /* election jitter; same seed, same run */
    uint64_t applied;               /* index the state machine already reflects (restart) */
    mf_raft_snapshot_read_cb snapshot_read;
    void *snapshot_ctx;
};

#ifdef MF_RAFT_BUG_HOOKS
/* Planted bugs for the simulator (tests/sim builds a separate copy of the core
 * with -DMF_RAFT_BUG_HOOKS); the production library has no such switches. */
struct mf_raft_bugs {
    bool commit_old_term;      /* (a) count replicas of old-term entries */
    bool truncate_stale;       /* (b) truncate on a stale shorter AppendEntries */
    bool vote_before_persist;  /* (c) send vote grants before the hard state is durable */
};
extern struct mf_raft_bugs mf_raft_bugs;
#endif

struct mf_raft_status {
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t lead;
    enum mf_raft_role role;
    uint64_t commit;
    uint64_t applied;
    uint64_t first_index;
    uint64_t last_index;
    uint64_t persisted_index;
    struct mf_raft_conf_state conf;
};

enum mf_raft_conf_change_type {
    MF_RAFT_CONF_ADD_VOTER = 1,   /* new node, or promotion of a learner */
    MF_RAFT_CONF_ADD_LEARNER = 2, /* new node only */
    MF_RAFT_CONF_REMOVE = 3,      /* voter or learner, may be the leader itself */
};

struct mf_raft; /* opaque */

/* Allocate and start a core from cfg and its storage (hard state, snapshot
 * meta, log; conf entries in the log are replayed). *out is owned by the
 * caller and freed with mf_raft_close. Errors: MF_EINVAL (bad config),
 * -ENOMEM, storage errors. */
int mf_raft_init(const struct mf_raft_config *cfg, struct mf_raft **out);
void mf_raft_close(struct mf_raft *r);

/* One logical clock tick. */
int mf_raft_tick(struct mf_raft *r);
/* Feed one message addressed to this node (msg->to must be r's id). Messages
 * from unknown or old terms are ignored, never an error. */
int mf_raft_step(struct mf_raft *r, const struct mf_raft_msg *msg);
/* Leader only: append a command (data copied). *index (may be NULL) gets its
 * index. MF_ENOTLEADER, MF_EUNAVAIL (transfer pending), MF_ETOOLARGE, -ENOBUFS. */
int mf_raft_propose(struct mf_raft *r, const uint8_t *data, uint32_t len, uint64_t *index);
/* Leader only: one membership change; the leader must have committed an
 * entry in its term and no other change may be uncommitted (-EBUSY). Takes
 * effect when appended. */
int mf_raft_propose_conf_change(struct mf_raft *r, enum mf_raft_conf_change_type type,
                                uint64_t node, uint64_t *index);
/* The same with a tail appended to the entry (copied; at most
 * MF_RAFT_CONF_TAIL_MAX bytes, else MF_ETOOLARGE). */
int mf_raft_propose_conf_change_tail(struct mf_raft *r, enum mf_raft_conf_change_type type,
                                     uint64_t node, const uint8_t *tail, uint32_t tail_len,
                                     uint64_t *index);
/* Leader only: hand leadership to voter `to` (TimeoutNow once caught up).
 * Proposals are refused until it completes or times out (election_ticks). */
int mf_raft_transfer_leader(struct mf_raft *r, uint64_t to);
/* Linearizable read: a read state (index, ctx) appears in a later ready once
 * the leader confirmed its leadership. Followers forward to the leader. Reads
 * are batched; they are dropped (the caller times out and retries) if
 * leadership changes. MF_EUNAVAIL if no leader is known, -ENOBUFS if full. */
int mf_raft_read_index(struct mf_raft *r, uint64_t ctx);
/* Start an election now (tests, operators). MF_EINVAL if not a voter,
 * MF_EUNAVAIL while campaigning is blocked. */
int mf_raft_campaign(struct mf_raft *r);
/* Allow (the default) or block campaigning. While blocked the node starts no
 * pre-campaign or campaign: not on election timeout, not on TimeoutNow, not
 * through mf_raft_campaign; it still votes, follows and, if it leads, keeps
 * leading (the shell hands leadership off itself). The node driver blocks it
 * while this node's wall clock does not agree with a quorum of voters. */
void mf_raft_set_campaign_allowed(struct mf_raft *r, bool allowed);

bool mf_raft_has_ready(const struct mf_raft *r);
/* Fill rd with the next batch (only when has_ready). */
int mf_raft_ready(struct mf_raft *r, struct mf_raft_ready *rd);
/* The batch is durable (hard state, entries, snapshot); its committed
 * entries have been handed to the state machine (their apply may still run).
 * Releases every pointer of rd. */
int mf_raft_advance(struct mf_raft *r, struct mf_raft_ready *rd);

/* Leader: a snapshot sent to `to` finished (ok) or failed; failed -> probe. */
void mf_raft_report_snapshot(struct mf_raft *r, uint64_t to, bool ok);
/* Leader: the transport lost `to`; stop pipelining to it (probe). */
void mf_raft_report_unreachable(struct mf_raft *r, uint64_t to);
/* The application durably snapshotted its state at `index` (<= applied):
 * fills *meta (term and configuration at index) for storage->compact(meta),
 * which the driver calls. MF_EINVAL if index > applied, MF_ECOMPACTED if
 * already compacted. */
int mf_raft_snapshot_taken(struct mf_raft *r, uint64_t index,
                           struct mf_raft_snapshot_meta *meta);

void mf_raft_status(const struct mf_raft *r, struct mf_raft_status *st);
/* Term of entry `index` in this node's log (including unstable entries). */
int mf_raft_term(struct mf_raft *r, uint64_t index, uint64_t *term);

/* Conf change entries: 1 byte type + 8 bytes node id (big-endian), then an
 * optional tail of at most MF_RAFT_CONF_TAIL_MAX bytes that the core carries
 * but never reads (the node puts the member's addresses and zone there:
 * node/members.h). Errors: MF_ECORRUPT (short, oversized, unknown type). */
#define MF_RAFT_CONF_ENTRY_LEN 9
#define MF_RAFT_CONF_TAIL_MAX 8192
int mf_raft_conf_decode(const uint8_t *data, uint32_t len, enum mf_raft_conf_change_type *type,
                        uint64_t *node);
/* The same, and the tail: *tail NULL and *tail_len 0 when there is none
 * (both out pointers may be NULL). The tail points into data. */
int mf_raft_conf_decode_tail(const uint8_t *data, uint32_t len,
                             enum mf_raft_conf_change_type *type, uint64_t *node,
                             const uint8_t **tail, uint32_t *tail_len);

const char *mf_raft_role_name(enum mf_raft_role role);
const char *mf_raft_msg_type_name(uint32_t type);

#endif
