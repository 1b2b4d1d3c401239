/* The node driver: the I/O shell around the pure Raft core.
 *
 * On the libuv loop it ticks the core, feeds it peer messages from the
 * transport, and turns each ready batch into work, in the order DESIGN.md
 * ("What fsyncs") and the core's header require:
 *
 *   loop:    ready() -> send msgs_before (the leader replicates while its own
 *            write is in flight) -> submit [persist] and [apply] to the writer
 *   writer:  persist = one synced LMDB commit of hard state + entries
 *   loop:    after persist: send msgs_after (votes, acks: only once durable)
 *   writer:  apply = the state machine's batch apply of the committed entries
 *   loop:    after apply: applied callbacks (answer clients), serve reads whose
 *            read index is applied, advance() the core, next batch
 *
 * One batch is in flight at a time; what arrives meanwhile waits in the core
 * and goes into the next batch (that is the group commit).
 *
 * Snapshots: every cfg->snapshot_entries applied entries the node writes a
 * snapshot of the state (sm.snapshot_create) and compacts the Raft log up to
 * the PREVIOUS snapshot, so the log always keeps at least snapshot_entries
 * entries behind the newest snapshot for followers that lag a little; one
 * further behind gets the snapshot file the log was compacted to, in chunks
 * over the bulk link, and installs it (sm.snapshot_install) before it saves
 * the entries that follow. On start, a state database that is behind the
 * log's compaction point (a power cut may lose its last commit) is brought up
 * to it from that snapshot file.
 *
 * The state machine is reached through struct mf_node_sm: `apply` runs on
 * the writer thread (the only thread that writes LMDB), `applied` on the loop.
 *
 * Ownership: the node borrows the loop, the config (opts.cfg, until
 * mf_node_stop: the core is rebuilt from it after a storage block), the TLS
 * contexts and the sm; it owns
 * the core, the log, the writer thread and the transport. Threads: every
 * function here is for the loop thread only.
 */
#ifndef MF_NODE_NODE_H
#define MF_NODE_NODE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "raft/core.h"

#define MF_NODE_PROPOSE_TIMEOUT_MS 10000 /* a proposal not applied by then: unknown outcome */
#define MF_NODE_READ_TIMEOUT_MS 5000     /* a read index not confirmed by then: unavailable */
#define MF_NODE_PENDING_MAX 65536        /* proposals + reads waiting at once */
#define MF_NODE_SNAPSHOT_DIR "snapshots"  /* under data_dir: snap-<index>.mfs */

/* Transport tags (one byte in front of each peer payload). */
enum mf_node_tag {
    MF_NODE_TAG_RAFT = 1,      /* raft.proto Message, control link */
    MF_NODE_TAG_RAFT_SNAP = 2, /* raft.proto Message with a snapshot chunk, bulk link */
    MF_NODE_TAG_CLOCK = 3,     /* clock probe or answer (peer_codec.h), control link */
    MF_NODE_TAG_APP_MIN = 16,  /* 16..255: the server's own (forwarding) */
    MF_NODE_TAG_REMOVED = 20,  /* "you were removed" (node.h "Runtime membership"), control */
};

struct mf_node;

/* The replicated state machine, as the node sees it. */
struct mf_node_sm {
    void *ctx;
    /* Writer thread: apply committed entries [0, n) in order, in as few
     * transactions as it likes, durably recording the last applied index.
     * results[i] receives an opaque result for entry i (NULL allowed), handed
     * to `applied` and then to `result_free`. A nonzero return is fatal. */
    int (*apply)(void *ctx, const struct mf_raft_entry *ents, size_t n, void **results);
    /* Loop thread: entry `e` was applied with `result` (ownership passes to
     * the callee, which frees it with its own means). */
    void (*applied)(void *ctx, const struct mf_raft_entry *e, void *result);
    /* Loop thread: the role or the leader changed. */
    void (*role_changed)(void *ctx, enum mf_raft_role role, uint64_t leader);
    /* Loop thread: an application message from a peer (tag >= 16). */
    void (*peer_message)(void *ctx, uint64_t from, uint8_t tag, const uint8_t *data,
                         size_t len);
    /* Writer thread: write a snapshot of the state to `path` (fsynced);
     * *index gets the applied index it holds. */
    int (*snapshot_create)(void *ctx, const char *path, uint64_t *index);
    /* Writer thread: replace the state with the snapshot at `path`; *index
     * gets its applied index. On error the state is unchanged. */
    int (*snapshot_install)(void *ctx, const char *path, uint64_t *index);
    /* Loop thread: the node stopped on a fatal error (storage). */
    void (*fatal)(void *ctx, int code, const char *what);
    /* Loop thread, optional (without it a full state database stops the
     * node): recovering from storage pressure, with the applier and the
     * snapshot thread idle. Close and reopen the state environment, its map
     * grown to state_map_bytes if larger; *applied gets the applied index it
     * holds (its last successful apply batch). */
    int (*storage_reopen)(void *ctx, uint64_t state_map_bytes, uint64_t *applied);
    /* Loop thread, optional: used bytes of the state database (store/usage.h
     * used_bytes), for the snapshot's free-space check and the full-map
     * recovery check. 0 when unknown. */
    uint64_t (*state_used_bytes)(void *ctx);
};

struct mf_node_opts {
    const struct mf_config *cfg;  /* node id, peers, ticks, data_dir, peer_listen */
    SSL_CTX *peer_server_ctx;     /* mutual TLS, borrowed */
    SSL_CTX *peer_client_ctx;     /* presents our node certificate, borrowed */
    uint64_t applied_index;       /* what the state machine already reflects */
    /* The config file, re-read while storage-blocked for log_map_size_mb and
     * state_map_size_mb (an operator grows a full map by editing it; no
     * restart). NULL: the sizes in cfg stay. Copied. */
    const char *config_path;
    struct mf_node_sm sm;
    /* mayflyd --join: start with no bootstrap configuration (node.h
     * "Runtime membership"); kept in DATA_DIR/join for later starts. */
    bool join;
};

/* Called once when a proposal is applied (rc 0, `result` as `applied` got it,
 * still owned by the sm: copy what you need), or failed: MF_ENOTLEADER before
 * it was appended, MF_EUNAVAIL if it was overwritten by another leader's
 * entry (it did not apply), MF_EUNKNOWN if it was not applied in time. */
typedef void (*mf_node_propose_cb)(void *arg, int rc, uint64_t index, void *result);
/* Called once: rc 0 when the read index is applied locally (read now), or
 * MF_EUNAVAIL / MF_ETIMEOUT, or MF_ENOSPACE / MF_EMAPFULL when the node
 * became storage-blocked meanwhile. */
typedef void (*mf_node_read_cb)(void *arg, int rc);

/* Opens the log under cfg->data_dir, starts the core, the writer thread, the
 * transport (peer listener) and the tick timer.
 * @return 0; MF_ECONFIG; storage and transport errors. */
int mf_node_start(uv_loop_t *loop, const struct mf_node_opts *opts, struct mf_node **out);

/* The first configuration from the config file (a log or snapshot that holds
 * one overrides it): every peer as a voter or a learner as configured, this
 * node included as its own entry says (a voter when it has none). Pure.
 * @return 0; MF_ECONFIG (more than MF_RAFT_NODES_MAX members). */
int mf_node_initial_members(const struct mf_config *cfg, struct mf_raft_config *rc);

/* Stops everything and frees the node; the loop must run afterwards to close
 * handles. Pending callbacks get MF_ECLOSED. */
void mf_node_stop(struct mf_node *n);

/* Leader only: replicate `data` (copied). The callback runs later, never
 * from inside this call. @return 0; MF_ENOTLEADER; MF_ETOOLARGE; -ENOBUFS;
 * MF_ENOSPACE / MF_EMAPFULL while storage-blocked. */
int mf_node_propose(struct mf_node *n, const uint8_t *data, size_t len, mf_node_propose_cb cb,
                    void *arg);

/* The index the next proposal will get (leader only), so a command can carry
 * ids derived from it (lease SEQ, write id). */
uint64_t mf_node_next_index(struct mf_node *n);

/* A linearizable read barrier (any node): cb(0) once this node has applied
 * everything committed before the call. @return 0; -ENOBUFS; MF_EUNAVAIL;
 * MF_ENOSPACE / MF_EMAPFULL while storage-blocked. */
int mf_node_read_index(struct mf_node *n, mf_node_read_cb cb, void *arg);

/* Send an application message (tag >= 16) to a peer's control link. */
int mf_node_send(struct mf_node *n, uint64_t to, uint8_t tag, const void *data, size_t len);

void mf_node_status(struct mf_node *n, struct mf_raft_status *st);
/* Whether the core leads right now (the role seen by callbacks is the one of
 * the last ready batch, which may lag while a batch is in flight). */
bool mf_node_is_leader(struct mf_node *n);

/* Counters for metrics: ready batches, entries they persisted and applied
 * (entries per batch is the group-commit factor). */
struct mf_node_stats {
    uint64_t batches;
    uint64_t entries_persisted;
    uint64_t entries_applied;
    uint64_t clock_transfers; /* leadership handed off for a bad clock (hand-offs started) */
    uint64_t storage_transfers; /* leadership handed off because this node could not persist */
    uint64_t peer_tls_failures_in; /* inbound peer handshakes that failed (transport listener) */
};
void mf_node_stats(struct mf_node *n, struct mf_node_stats *out);
uint64_t mf_node_applied(struct mf_node *n);
/* Highest commit index this node knows of (the leader's, as last heard). */
uint64_t mf_node_known_commit(struct mf_node *n);
/* The bound peer address ("ip:port"). */
const char *mf_node_peer_addr(struct mf_node *n);
/* The configured address of a member (peer listener), or NULL. */
const char *mf_node_member_addr(struct mf_node *n, uint64_t id);
/* The configured zone of a peer, or NULL. */
const char *mf_node_member_zone(struct mf_node *n, uint64_t id);
/* The configured client address of a peer (api_addr), or NULL. */
const char *mf_node_member_api_addr(struct mf_node *n, uint64_t id);
/* Used pages and map size of this node's Raft log (store/usage.h), for the
 * storage quota. Loop thread. MF_EUNAVAIL while the log is closed (the node
 * stopped, or is reopening it after a storage failure). */
struct mf_lmdb_usage;
int mf_node_log_usage(struct mf_node *n, struct mf_lmdb_usage *out);
/* Storage pressure (issue 15): a full disk or a full LMDB map at commit time.
 *
 * A write of the Raft log (persist, compaction) or of the state (apply)
 * that fails is classified (common/fsstat.h): MF_EMAPFULL ("LMDB map full:
 * map_size N MiB (DIR)") and MF_ENOSPACE ("no space left on device: DIR (N
 * KiB free)"; also an EIO while the filesystem has under 1 MiB free: LMDB
 * turns a short write on a full filesystem into EIO) make the node
 * *storage-blocked*; anything else (a failing disk: EIO with space
 * available) stops it for good as before (sm.fatal).
 *
 * Blocked: pending proposals end MF_EUNKNOWN (a leader's entries may have
 * reached followers and commit there) and pending reads the cause's code;
 * mf_node_propose and mf_node_read_index refuse with it (both codes are
 * UNAVAILABLE on the wire: the client tries another node); the core stops
 * (no tick, no campaign, Raft messages dropped; the role reported to
 * sm.role_changed is follower without leader), and a leader first sends
 * MsgTimeoutNow to the voter that acknowledged the most of its log (if that
 * is lost, the followers elect once the heartbeats stop). The server keeps
 * serving stale reads from the applied state. sm.fatal is not called.
 *
 * The reserve: DATA_DIR/reserve, preallocated (posix_fallocate) with
 * cfg->storage_reserve_mb MiB, or when 0 max(4 MiB, 2 KiB x live leases as
 * last hinted), capped at 1/10 of the filesystem. On MF_ENOSPACE the node
 * first truncates it to 0 and retries at once (one reopen, below; counted in
 * reserve_releases) before it stays blocked; the room it gives is for what the
 * server's alarm still lets through (revocations, deletes, the scheduler).
 * It is allocated again once the filesystem has room for it.
 *
 * Resuming (every MF_NODE_STORAGE_CHECK_MS while blocked): for MF_ENOSPACE,
 * once the filesystem's free space exceeds the floor (storage_free_floor_mb,
 * derived as common/fsstat.h says when 0) plus the reserve, and the reserve
 * could be allocated again; for MF_EMAPFULL, after re-reading log_map_size_mb
 * and state_map_size_mb from the config file (opts.config_path), once the
 * full environment's used pages are below its configured map minus
 * 1/16 of it. Then, with no persist, apply or snapshot work in flight, the
 * node closes and reopens the log (with the configured map) and the state
 * (sm.storage_reopen, grown if configured larger), rebuilds the core from the
 * log exactly as at start (hard state, entries, snapshot metadata; applied =
 * the state's applied index, so committed entries after it are applied
 * again), and restarts the driver and the tick (recoveries++).
 *
 * What a retry may assume after a failed commit:
 *  - LMDB writes a commit's data pages, then its meta page; a commit that
 *    failed left the previous meta page the newest valid one, so what is
 *    durable is exactly the last successful commit, and a reopen re-reads
 *    it. The open handle is not trusted after a failed commit (the log
 *    refuses writes until reopened; a failed fsync may drop dirty pages).
 *  - The node never acknowledged (msgs_after) or applied entries it had not
 *    persisted; entries of the failed persist are simply absent after the
 *    reopen, and a follower fetches them from the leader again (a leader's
 *    own proposals of that batch ended MF_EUNKNOWN: they may commit through
 *    the followers that received them).
 *  - An apply batch is one transaction: the state is at its last applied
 *    index, never part of a batch; apply batches queued behind a failed one
 *    are skipped, and everything after the applied index is applied again
 *    from the log (deterministically: same entries, same results).
 */
#define MF_NODE_STORAGE_CHECK_MS 1000       /* while blocked: is space back? */
#define MF_NODE_RESERVE_MIN_BYTES (4ULL << 20)
#define MF_NODE_RESERVE_PER_LEASE_BYTES 2048
#define MF_NODE_RESERVE_FILE "reserve"      /* under data_dir */

struct mf_node_storage {
    bool blocked;       /* storage-blocked now */
    int code;           /* MF_ENOSPACE or MF_EMAPFULL while blocked (the last cause after) */
    char cause[160];    /* "no space left on device: ..." / "LMDB map full: ..." */
    uint64_t since_ms;  /* wall clock when it blocked (0: never) */
    uint64_t recoveries;        /* times the node resumed without a restart */
    uint64_t reserve_bytes;     /* the reserve file's size now (0: released or none) */
    uint64_t reserve_releases;  /* times the reserve was given up to retry a write */
};
void mf_node_storage(struct mf_node *n, struct mf_node_storage *out);

/* The live lease count, for the reserve's size when storage_reserve_mb is 0
 * (the server calls it now and then; the reserve grows, never shrinks). */
void mf_node_set_reserve_hint(struct mf_node *n, uint64_t live_leases);

/* Ask for leadership to move to `to`. */
int mf_node_transfer(struct mf_node *n, uint64_t to);
/* What a leader knows of peer `id` as a leadership target: the highest
 * index it acknowledged to this node (as last heard; 0 if none) and whether
 * its clock lets it campaign (a fresh measurement whose last answer said it
 * agrees with its quorum: clock.h mf_clock_transfer_target's rule); and,
 * for `operator members list`, when this node last received any message
 * from it (monotonic ms; 0: never since this node started).
 * @return 0; MF_ENOTFOUND (not a configured peer). */
struct mf_node_peer_view {
    uint64_t match_index;
    bool clock_ok;
    uint64_t heard_mono_ms;
};
int mf_node_peer_view(struct mf_node *n, uint64_t id, struct mf_node_peer_view *out);

/* This node's clock as measured against its peers (issue 16).
 *
 * Every MF_CLOCK_PROBE_MS (node/clock.h; faster until a quorum is measured)
 * the node probes each configured peer on the control link and measures the
 * offset of the peer's wall clock to its own, NTP-style, corrected by the
 * round trip timed on the monotonic clock. A peer agrees when its last
 * measurement is at most MF_CLOCK_FRESH_MS old and |offset| + rtt/2 <=
 * cfg->max_clock_skew_ms. The fields below are computed at the call from the
 * current configuration's voters (learners never count):
 *
 * While `agrees` is false the node does not campaign (mf_raft_set_campaign_
 * allowed), and a leader that has fresh measurements showing disagreement
 * (`measured` && !`agrees`) hands leadership to a fresh voter whose own
 * clock agrees (stats.clock_transfers); with no such voter (no majority
 * agrees) it keeps leading and the server must refuse what needs the clock.
 * `offset_ms` is an estimate for operators (with two voters it is half the
 * difference: which clock is wrong cannot be told). At start-up, before the first answers, `agrees`
 * and `measured` are false unless this node is the only voter: the first
 * election waits for the first probe round (a few ms on a LAN; probes go
 * every MF_CLOCK_PROBE_FAST_MS until then). */
struct mf_node_clock {
    bool agrees;          /* within max_clock_skew_ms of a quorum of voters (itself included), on fresh measurements; always true for a single voter */
    bool measured;        /* a quorum of voters (itself included) has fresh measurements */
    int64_t offset_ms;    /* estimate: our wall clock minus the voters' median (0 when none) */
    uint32_t voters;      /* voters in the configuration */
    uint32_t agreeing;    /* of them agreeing with us, ourselves included */
    uint64_t max_skew_ms; /* the bound used (cfg->max_clock_skew_ms) */
    uint32_t fresh;       /* voters with a fresh measurement, ourselves included (0: none heard) */
};
void mf_node_clock(struct mf_node *n, struct mf_node_clock *out);

/* ---- Runtime membership (issue 13) ----
 *
 * The node keeps a table of members' addresses and zones (what
 * mf_node_member_addr/api_addr/zone answer, and what the transport dials):
 * the config file's peers at start, then each configuration entry as it is
 * applied (its MemberChange tail: store/members.h says what it holds), and
 * whatever the server loads from the replicated registry with
 * mf_node_member_put (after a start, after a snapshot install).
 *
 * Joining (opts.join, or a DATA_DIR/join left by an earlier start with it):
 * the core starts with no bootstrap configuration (a snapshot's or the log's
 * configuration still applies), so the node never campaigns and never forms
 * a cluster of its own; it drops entries that would start its empty log at
 * index 1 (it must start from the leader's snapshot, which holds the
 * configuration). It answers the peers it knows (its config file lists the
 * seed members) and waits to be added as a learner.
 *
 * A node whose removal is applied logs it once and no longer campaigns
 * (the core: not a voter of the committed configuration). A node removed
 * by another leader never gets that entry: the leader that applies a
 * removal sends the removed node tag MF_NODE_TAG_REMOVED (the entry's index,
 * 8 bytes big-endian), and again to any node outside its configuration that
 * asks for a vote; a node told so by a member of its configuration blocks
 * its campaigns, logs it and reports itself removed (until it restarts). */
enum mf_node_membership {
    MF_NODE_MEMBER_VOTER,
    MF_NODE_MEMBER_LEARNER,
    MF_NODE_MEMBER_JOINING, /* not in the configuration yet (joining) */
    MF_NODE_MEMBER_REMOVED, /* no longer in the configuration */
};
enum mf_node_membership mf_node_membership(struct mf_node *n);

/* Take a snapshot of the applied state now and compact the log to it (not,
 * as the periodic snapshots do, to the previous one), so a member added
 * next starts from a snapshot even on a young cluster whose log was never
 * compacted. Asynchronous (mf_raft_status first_index shows the result); a
 * no-op while one is asked for or when nothing applied since the last
 * compaction. */
void mf_node_compact_now(struct mf_node *n);

/* Leader only: propose one configuration change (raft/core.h
 * mf_raft_propose_conf_change_tail) with `tail` (copied) after its 9 bytes;
 * cb as for mf_node_propose (result NULL). @return 0; MF_ENOTLEADER;
 * -EBUSY (a change is pending, or this leader has not committed in its
 * term yet: retry); MF_EUNAVAIL (a transfer is pending); MF_EEXISTS,
 * MF_ENOTFOUND, MF_EINVAL (the core's checks); MF_ETOOLARGE. */
int mf_node_conf_change(struct mf_node *n, enum mf_raft_conf_change_type type, uint64_t id,
                        const uint8_t *tail, size_t tail_len, mf_node_propose_cb cb, void *arg);

/* Put member `id` in the table (strings copied; api_addr and zone may be
 * NULL or ""), redialing it if its address changed. This node's own entry
 * is kept for its api_addr and zone, never dialed.
 * @return 0; MF_EINVAL (id 0, no addr); MF_ETOOLARGE (table full);
 *         -ENOMEM; transport errors (the entry is kept). */
int mf_node_member_put(struct mf_node *n, uint64_t id, const char *addr, const char *api_addr,
                       const char *zone);
/* Drop member `id` from the table and the transport (not this node). */
void mf_node_member_drop(struct mf_node *n, uint64_t id);

#endif
