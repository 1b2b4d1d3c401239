/* The node driver: Raft core + LMDB log + writer thread + peer transport on
 * one libuv loop. See node.h for the order of work and why. */
#include "node/node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.pb-c.h"
#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/fsstat.h"
#include "common/log.h"
#include "net/transport.h"
#include "node/clock.h"
#include "node/peer_codec.h"
#include "node/writer.h"
#include "raft/driver.h"
#include "store/log.h"
#include "store/usage.h"

#define LOG_MOD "node"
_Static_assert(MF_CLOCK_PEERS_MAX >= MF_RAFT_NODES_MAX && MF_CLOCK_PEERS_MAX >= MF_CONFIG_PEERS_MAX,
               "every member's clock is tracked");
#define BUCKETS 4096 /* pending-table buckets (power of two) */

/* A proposal or a read waiting for the state machine. */
struct pending {
    uint64_t key;             /* index (proposals) or ctx (reads) */
    uint64_t term;            /* proposals: the term it was appended in */
    uint64_t read_index;      /* reads: confirmed index, 0 until confirmed */
    uint64_t deadline_ms;
    mf_node_propose_cb propose_cb;
    mf_node_read_cb read_cb;
    void *arg;
    struct pending *bucket_next;
    struct pending *prev, *next; /* FIFO by deadline */
};

struct pending_table {
    struct pending *buckets[BUCKETS];
    struct pending *head, *tail; /* oldest first */
    size_t len;
};

/* The ready batch on its way through the log writer (the driver keeps one
 * in flight). */
struct batch {
    const struct mf_raft_ready *rd;
    struct mf_writer_job persist_job;
    int persist_rc;
};

/* Committed entries on their way through the applier, copied out of the core
 * so the applier never reads memory the core may recycle after advance. */
struct apply_batch {
    struct mf_writer_job job;
    struct mf_node *n;
    struct mf_raft_entry *committed;
    uint8_t *arena;
    void **results;
    size_t len;
    int rc;
    bool skipped;                       /* not applied: an earlier batch failed */
    bool install;                       /* install the received snapshot first */
    struct mf_raft_snapshot_meta meta;
};

struct mf_node {
    uv_loop_t *loop;
    const struct mf_config *cfg; /* borrowed (the core is rebuilt from it after a storage block) */
    struct mf_config_peer peers[MF_CONFIG_PEERS_MAX];
    size_t peers_len;
    uint64_t id;
    struct mf_node_sm sm;
    struct mf_raftlog *log;
    struct mf_raft_storage storage;
    struct mf_raft *raft;
    struct mf_writer writer;  /* the Raft log's writes (hard state, entries) */
    struct mf_writer applier; /* the state database's writes (apply, install) */
    struct mf_raft_driver driver; /* production's order of work (raft/driver.h) */
    struct mf_transport *transport;
    uv_timer_t tick;
    uint32_t tick_ms;
    uint32_t election_ticks;
    /* Clock agreement (issue 16): probes on their own timer. */
    struct mf_clock clock;
    uv_timer_t probe;
    bool probe_started;
    bool clock_allowed;       /* the gate as last set in the core */
    uint64_t clock_transfer_at_ms; /* monotonic time of the last clock hand-off */
    unsigned handles_open;    /* tick and probe timers not yet closed */
    struct batch batch;
    bool failed;              /* a fatal error stopped the node */
    bool tick_started;
    uint64_t applied;
    uint64_t next_read_ctx;
    enum mf_raft_role role;
    uint64_t leader;
    struct pending_table proposals;
    struct pending_table reads;
    char peer_addr[64];
    /* Snapshots (see node.h). snap_latest: newest file; snap_compacted: the
     * log's compaction point, whose file is kept to send to followers. */
    char snap_dir[PATH_MAX];
    uint64_t snapshot_entries;
    uint64_t snap_latest;
    uint64_t snap_compacted;
    bool snap_busy;
    bool compact_asap;               /* mf_node_compact_now: snapshot and compact to it */
    struct mf_writer_job snap_job;   /* compaction (writer thread) */
    uv_work_t snap_work;             /* snapshot creation (thread pool) */
    pthread_mutex_t snap_lock;
    pthread_cond_t snap_cond;
    bool snap_thread_running;        /* guarded by snap_lock */
    bool snap_work_pending;          /* its after-callback has not run yet */
    bool free_when_idle;             /* stopped: that callback frees the node */
    int snap_rc;
    uint64_t snap_index;
    struct mf_raft_snapshot_meta snap_meta;
    int incoming_fd;          /* writer thread: snapshot being received */

    struct mf_node_stats stats;

    /* Storage pressure (node.h). */
    char data_dir[PATH_MAX];
    char *config_path;            /* re-read for the map sizes while blocked */
    uint64_t log_map_bytes;       /* as configured (grows when the file says so) */
    uint64_t state_map_bytes;
    struct mf_node_storage store;
    int blocked_env;              /* ENV_LOG or ENV_STATE: whose write failed */
    uv_timer_t storage_timer;     /* while blocked: is space back? */
    bool storage_timer_started;
    bool retry_now;               /* the reserve was released: reopen at once */
    bool reserve_retried;         /* this block's one retry is spent */
    bool persist_inflight;        /* a persist job has not come back */
    bool apply_halted;            /* applier thread: a batch failed, skip the rest */
    bool snap_space_warned;
    char reserve_path[PATH_MAX + 16];
    uint64_t live_leases_hint;
    uint64_t peer_match[MF_CONFIG_PEERS_MAX]; /* highest index each peer acknowledged */
    uint64_t peer_heard_ms[MF_CONFIG_PEERS_MAX]; /* monotonic: last message from each peer */
    uint64_t reserve_bytes;       /* the reserve file's size */
    bool reserve_released;        /* given up for a retry, not yet allocated again */
    /* Runtime membership (the block "member registry" at the end). */
    bool join;                    /* started to join: no bootstrap configuration */
    bool removed_logged;          /* this node's removal was applied and logged */
    bool removed_notice;          /* a member told this node it was removed: no campaigns */
};

enum { ENV_LOG, ENV_STATE };

/* The core's status; zero while the core is being rebuilt after a storage
 * block (n->raft is NULL then). */
static void raft_status(const struct mf_node *n, struct mf_raft_status *st)
{
    if (n->raft)
        mf_raft_status(n->raft, st);
    else
        memset(st, 0, sizeof(*st));
}

/* ---- pending tables ---- */

static struct pending **bucket_of(struct pending_table *t, uint64_t key)
{
    return &t->buckets[(key * UINT64_C(0x9E3779B97F4A7C15)) >> 52 & (BUCKETS - 1)];
}

static void pending_add(struct pending_table *t, struct pending *p)
{
    struct pending **b = bucket_of(t, p->key);
    p->bucket_next = *b;
    *b = p;
    p->next = NULL;
    p->prev = t->tail;
    if (t->tail)
        t->tail->next = p;
    else
        t->head = p;
    t->tail = p;
    t->len++;
}

static struct pending *pending_find(struct pending_table *t, uint64_t key)
{
    for (struct pending *p = *bucket_of(t, key); p; p = p->bucket_next)
        if (p->key == key)
            return p;
    return NULL;
}

static void pending_remove(struct pending_table *t, struct pending *p)
{
    struct pending **b = bucket_of(t, p->key);
    while (*b != p)
        b = &(*b)->bucket_next;
    *b = p->bucket_next;
    if (p->prev)
        p->prev->next = p->next;
    else
        t->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        t->tail = p->prev;
    t->len--;
}

static void finish_proposal(struct mf_node *n, struct pending *p, int rc, void *result)
{
    uint64_t index = p->key;
    pending_remove(&n->proposals, p);
    mf_node_propose_cb cb = p->propose_cb;
    void *arg = p->arg;
    free(p);
    cb(arg, rc, index, result);
}

static void finish_read(struct mf_node *n, struct pending *p, int rc)
{
    pending_remove(&n->reads, p);
    mf_node_read_cb cb = p->read_cb;
    void *arg = p->arg;
    free(p);
    cb(arg, rc);
}

/* ---- sending ---- */

static void send_msgs(struct mf_node *n, const struct mf_raft_msg *msgs, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t *buf;
        size_t buf_len;
        if (mf_peer_msg_encode(&msgs[i], &buf, &buf_len))
            continue; /* out of memory: Raft retries lost messages */
        bool snap = msgs[i].type == MF_RAFT_MSG_SNAP;
        int rc = mf_transport_send(n->transport, msgs[i].to,
                                   snap ? MF_TRANSPORT_BULK : MF_TRANSPORT_CONTROL,
                                   snap ? MF_NODE_TAG_RAFT_SNAP : MF_NODE_TAG_RAFT, buf, buf_len);
        free(buf);
        if (rc && snap)
            mf_raft_report_snapshot(n->raft, msgs[i].to, false);
    }
}

static void node_fail(struct mf_node *n, int rc, const char *what);
static void storage_failed(struct mf_node *n, int rc, const char *what, int env);

/* ---- snapshot files ---- */

static void snap_path(const struct mf_node *n, uint64_t index, char *buf, size_t len)
{
    snprintf(buf, len, "%s/snap-%020" PRIu64 ".mfs", n->snap_dir, index);
}

static void incoming_path(const struct mf_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "%s/incoming.mfs", n->snap_dir);
}

/* Deletes snapshot files older than `keep` (never the one at keep). */
static void snap_prune(struct mf_node *n, uint64_t keep)
{
    DIR *d = opendir(n->snap_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t idx;
        if (sscanf(e->d_name, "snap-%" SCNu64 ".mfs", &idx) == 1 && idx < keep) {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
}

/* The newest snapshot file on disk (0 if none). */
static uint64_t snap_newest(struct mf_node *n)
{
    uint64_t best = 0;
    DIR *d = opendir(n->snap_dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t idx;
        if (sscanf(e->d_name, "snap-%" SCNu64 ".mfs", &idx) == 1 && idx > best)
            best = idx;
    }
    closedir(d);
    return best;
}

/* The core reads the snapshot it sends to a lagging follower from here. */
static int snapshot_read(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf, size_t cap,
                         size_t *len, bool *done)
{
    struct mf_node *n = ctx;
    char path[PATH_MAX + 64];
    snap_path(n, index, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MF_ECOMPACTED;
    struct stat sb;
    ssize_t got = fstat(fd, &sb) == 0 ? pread(fd, buf, cap, (off_t)offset) : -1;
    int e = errno;
    close(fd);
    if (got < 0)
        return -e;
    *len = (size_t)got;
    *done = offset + (uint64_t)got >= (uint64_t)sb.st_size;
    return 0;
}

/* Thread pool, not the writer: copying a large state must not hold up the
 * writer, whose batches carry this node's votes and acknowledgements (a
 * follower that answers late makes the leader fail check-quorum). */
static void snap_create_work(uv_work_t *w)
{
    struct mf_node *n = w->data;
    char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
    snprintf(tmp, sizeof(tmp), "%s/creating.mfs", n->snap_dir);
    n->snap_rc = n->sm.snapshot_create(n->sm.ctx, tmp, &n->snap_index);
    if (!n->snap_rc) {
        snap_path(n, n->snap_index, path, sizeof(path));
        if (rename(tmp, path) != 0)
            n->snap_rc = -errno;
    }
    pthread_mutex_lock(&n->snap_lock);
    n->snap_thread_running = false;
    pthread_cond_signal(&n->snap_cond);
    pthread_mutex_unlock(&n->snap_lock);
}

static void snap_compact_work(struct mf_writer_job *job)
{
    struct mf_node *n = job->data;
    n->snap_rc = mf_raftlog_compact(n->log, &n->snap_meta);
}

static void snap_compact_done(struct mf_writer_job *job)
{
    struct mf_node *n = job->data;
    n->snap_busy = false;
    if (n->failed || n->store.blocked)
        return;
    if (n->snap_rc) {
        /* Not fatal: the next snapshot compacts to a later point and so
         * retries. A full map or disk blocks the node, though (the log
         * refuses writes after a failed commit until it is reopened); any
         * other failed commit stops it at the next persist. */
        MF_WARN(LOG_MOD, "compacting the Raft log to %" PRIu64 " failed: %s; retried at the next "
                         "snapshot", n->snap_meta.index, mf_strerror(n->snap_rc));
        if (n->snap_rc == MF_EMAPFULL || n->snap_rc == MF_ENOSPACE || n->snap_rc == -EIO)
            storage_failed(n, n->snap_rc, "compacting the Raft log", ENV_LOG);
        return;
    }
    n->snap_compacted = n->snap_meta.index;
    if (n->snap_compacted >= n->snap_latest)
        n->compact_asap = false;
    snap_prune(n, n->snap_compacted);
    MF_INFO(LOG_MOD, "log compacted to %" PRIu64 " (snapshot %" PRIu64 " kept for followers)",
            n->snap_compacted, n->snap_latest);
}

static void snap_create_done(uv_work_t *w, int status)
{
    struct mf_node *n = w->data;
    (void)status;
    n->snap_work_pending = false;
    if (n->free_when_idle) { /* mf_node_stop ran meanwhile */
        free(n);
        return;
    }
    if (n->failed) {
        n->snap_busy = false;
        return;
    }
    if (n->snap_rc) {
        /* Not fatal: the log keeps growing and we try again later. */
        MF_WARN(LOG_MOD, "snapshot failed: %s", mf_strerror(n->snap_rc));
        n->snap_busy = false;
        return;
    }
    uint64_t prev = n->snap_latest;
    n->snap_latest = n->snap_index;
    MF_INFO(LOG_MOD, "snapshot at index %" PRIu64, n->snap_latest);
    /* Asked to compact now (a new member must start from a snapshot): to
     * this snapshot itself, not to the previous one. */
    if (n->compact_asap)
        prev = n->snap_latest;
    if (prev <= n->snap_compacted || n->store.blocked || !n->raft) {
        n->snap_busy = false;
        return;
    }
    /* Compact to the previous snapshot: entries after it stay for followers. */
    int rc = mf_raft_snapshot_taken(n->raft, prev, &n->snap_meta);
    if (rc) {
        MF_WARN(LOG_MOD, "cannot compact to %" PRIu64 ": %s", prev, mf_strerror(rc));
        n->snap_busy = false;
        return;
    }
    n->snap_job = (struct mf_writer_job){
        .work = snap_compact_work, .done = snap_compact_done, .data = n};
    if (mf_writer_submit(&n->writer, &n->snap_job))
        n->snap_busy = false;
}

/* A snapshot briefly needs about twice the state's used bytes (the copy,
 * and the state growing meanwhile): start one only with that much free
 * above the floor (warned once per stretch of refusals). */
static bool snapshot_has_room(struct mf_node *n)
{
    struct mf_fsstat fs;
    if (!n->sm.state_used_bytes || mf_fsstat_get(n->data_dir, &fs) != 0)
        return true;
    uint64_t used = n->sm.state_used_bytes(n->sm.ctx);
    uint64_t need = 2 * used + mf_fsstat_floor_bytes(n->cfg->storage_free_floor_mb, fs.total_bytes);
    if (fs.avail_bytes >= need) {
        n->snap_space_warned = false;
        return true;
    }
    if (!n->snap_space_warned)
        MF_WARN(LOG_MOD, "snapshot skipped: %" PRIu64 " KiB free on %s, %" PRIu64
                         " KiB needed (twice the state's %" PRIu64 " KiB plus the floor)",
                fs.avail_bytes >> 10, n->data_dir, need >> 10, used >> 10);
    n->snap_space_warned = true;
    return false;
}

static void maybe_snapshot(struct mf_node *n)
{
    bool due = n->applied >= n->snap_latest + n->snapshot_entries ||
               (n->compact_asap && n->applied > n->snap_compacted);
    if (n->snap_busy || !n->sm.snapshot_create || n->store.blocked || !due ||
        !snapshot_has_room(n))
        return;
    n->snap_busy = true;
    n->snap_work.data = n;
    n->snap_thread_running = true;
    n->snap_work_pending = true;
    if (uv_queue_work(n->loop, &n->snap_work, snap_create_work, snap_create_done)) {
        n->snap_busy = n->snap_thread_running = n->snap_work_pending = false;
    }
}

/* Writer thread: store the chunks of a snapshot being received. */
static int write_chunks(struct mf_node *n, const struct mf_raft_ready *rd)
{
    char path[PATH_MAX + 64];
    incoming_path(n, path, sizeof(path));
    for (size_t i = 0; i < rd->snapshot_chunks_len; i++) {
        const struct mf_raft_snapshot_chunk *c = &rd->snapshot_chunks[i];
        if (c->offset == 0) {
            if (n->incoming_fd >= 0)
                close(n->incoming_fd);
            n->incoming_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        }
        if (n->incoming_fd < 0)
            return -errno;
        ssize_t w = pwrite(n->incoming_fd, c->data, c->len, (off_t)c->offset);
        if (w != (ssize_t)c->len)
            return w < 0 ? -errno : -EIO;
        if (c->done && fsync(n->incoming_fd) != 0)
            return -errno;
    }
    return 0;
}

/* Writer thread, before the log records a received snapshot: the file it
 * came in becomes snap-<index>.mfs, durably (the rename and its directory
 * synced). So once the log says "compacted to index", the file of that index
 * exists whatever crashes next (recover_snapshot installs it at start), and
 * the next snapshot received writes a new incoming file, never this one. */
static int keep_received_snapshot(struct mf_node *n, const struct mf_raft_snapshot_meta *meta)
{
    char in[PATH_MAX + 64], path[PATH_MAX + 64];
    incoming_path(n, in, sizeof(in));
    if (n->incoming_fd >= 0) {
        close(n->incoming_fd);
        n->incoming_fd = -1;
    }
    snap_path(n, meta->index, path, sizeof(path));
    if (rename(in, path) != 0)
        return -errno;
    int dfd = open(n->snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = fsync(dfd) != 0 ? -errno : 0;
    close(dfd);
    return rc;
}

/* Applier thread: install the received snapshot (kept as snap-<index>.mfs:
 * this node may have to send it on as leader). */
static int install_snapshot(struct mf_node *n, const struct mf_raft_snapshot_meta *meta)
{
    char path[PATH_MAX + 64];
    snap_path(n, meta->index, path, sizeof(path));
    uint64_t index = 0;
    int rc = n->sm.snapshot_install(n->sm.ctx, path, &index);
    if (rc)
        return rc;
    if (index != meta->index) {
        MF_ERROR(LOG_MOD, "received snapshot holds index %" PRIu64 ", expected %" PRIu64, index,
                 meta->index);
        return MF_ECORRUPT;
    }
    return 0;
}

/* ---- the batch pipeline ---- */

static void node_fail(struct mf_node *n, int rc, const char *what)
{
    if (n->failed)
        return;
    n->failed = true;
    MF_ERROR(LOG_MOD, "node %" PRIu64 " stopped: %s: %s", n->id, what, mf_strerror(rc));
    uv_timer_stop(&n->tick);
    if (n->storage_timer_started)
        uv_timer_stop(&n->storage_timer);
    if (n->sm.fatal)
        n->sm.fatal(n->sm.ctx, rc, what);
}

static void persist_work(struct mf_writer_job *job)
{
    struct mf_node *n = job->data;
    struct batch *b = &n->batch;
    const struct mf_raft_ready *rd = b->rd;
    b->persist_rc = 0;
    if (rd->snapshot_chunks_len && (b->persist_rc = write_chunks(n, rd)) != 0)
        return;
    if (rd->snapshot && ((b->persist_rc = keep_received_snapshot(n, rd->snapshot)) != 0 ||
                         (b->persist_rc = mf_raftlog_install_snapshot(n->log, rd->snapshot)) != 0))
        return;
    if (rd->hard_state_changed || rd->entries_len)
        b->persist_rc = mf_raftlog_save(n->log, rd->hard_state_changed ? &rd->hard_state : NULL,
                                        rd->entries, rd->entries_len);
}

/* Applier thread: the state database's writes (a snapshot install, then the
 * committed entries), in batch order. */
static void apply_work(struct mf_writer_job *job)
{
    struct apply_batch *ab = job->data;
    struct mf_node *n = ab->n;
    ab->rc = 0;
    /* Batches queued behind a failed one would leave a gap in the state:
     * skip them; they are applied again after the reopen (node.h). Only this
     * thread writes apply_halted while batches are queued; the loop clears
     * it with the applier idle. */
    if (n->apply_halted) {
        ab->skipped = true;
        return;
    }
    if (ab->install && (ab->rc = install_snapshot(n, &ab->meta)) != 0) {
        n->apply_halted = true;
        return;
    }
    if (ab->len)
        ab->rc = n->sm.apply(n->sm.ctx, ab->committed, ab->len, ab->results);
    if (ab->rc)
        n->apply_halted = true;
}

static void pump(struct mf_node *n);

static void apply_batch_free(struct apply_batch *ab)
{
    free(ab->committed);
    free(ab->arena);
    free(ab->results);
    free(ab);
}

static void serve_reads(struct mf_node *n)
{
    struct pending *p = n->reads.head;
    while (p) {
        struct pending *next = p->next;
        if (p->read_index && p->read_index <= n->applied)
            finish_read(n, p, 0);
        p = next;
    }
}

static void members_applied(struct mf_node *n, const struct mf_raft_entry *e);
static bool join_drops(struct mf_node *n, const struct mf_raft_msg *m);
static void removed_notice_send(struct mf_node *n, uint64_t to, uint64_t index);
static void removed_notice_recv(struct mf_node *n, uint64_t from, const uint8_t *data,
                                size_t len);
static void removed_vote(struct mf_node *n, const struct mf_raft_msg *m);

static void deliver_applied(struct mf_node *n, struct apply_batch *ab)
{
    for (size_t i = 0; i < ab->len; i++) {
        const struct mf_raft_entry *e = &ab->committed[i];
        struct pending *p = pending_find(&n->proposals, e->index);
        void *result = ab->results[i];
        if (p) {
            /* Another leader's entry at our index means ours was dropped. */
            finish_proposal(n, p, p->term == e->term ? 0 : MF_EUNAVAIL,
                            p->term == e->term ? result : NULL);
        }
        if (e->type == MF_RAFT_ENTRY_CONF)
            members_applied(n, e);
        n->sm.applied(n->sm.ctx, e, result);
        if (e->index > n->applied)
            n->applied = e->index;
    }
}

static void apply_done(struct mf_writer_job *job)
{
    struct apply_batch *ab = job->data;
    struct mf_node *n = ab->n;
    mf_raft_driver_applied(&n->driver);
    if (n->failed || ab->skipped) {
        apply_batch_free(ab);
        return;
    }
    if (ab->rc) {
        storage_failed(n, ab->rc,
                       ab->install ? "installing a snapshot" : "applying committed entries",
                       ENV_STATE);
        apply_batch_free(ab);
        return;
    }
    if (n->store.blocked) {
        /* Blocked by the log meanwhile: this batch is in the state, so its
         * results go out (n->applied must match the state), but nothing
         * new starts. */
        deliver_applied(n, ab);
        apply_batch_free(ab);
        return;
    }
    if (ab->install) {
        MF_INFO(LOG_MOD, "installed a snapshot at index %" PRIu64 " from the leader",
                ab->meta.index);
        if (ab->meta.index > n->applied)
            n->applied = ab->meta.index;
        n->snap_latest = n->snap_compacted = ab->meta.index;
        snap_prune(n, ab->meta.index);
    }
    deliver_applied(n, ab);
    apply_batch_free(ab);
    serve_reads(n);
    maybe_snapshot(n);
    pump(n); /* it may have waited for the applier to catch up */
}

/* Copies committed entries so the applier owns what it reads. */
static int make_apply_batch(struct mf_node *n, const struct mf_raft_ready *rd,
                            struct apply_batch **out)
{
    size_t count = rd->committed_len, bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += rd->committed[i].len;
    struct apply_batch *ab = calloc(1, sizeof(*ab));
    if (!ab)
        return -ENOMEM;
    ab->n = n;
    ab->committed = malloc((count ? count : 1) * sizeof(*ab->committed));
    ab->arena = malloc(bytes ? bytes : 1);
    ab->results = calloc(count ? count : 1, sizeof(void *));
    if (!ab->committed || !ab->arena || !ab->results) {
        apply_batch_free(ab);
        return -ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        ab->committed[i] = rd->committed[i];
        if (rd->committed[i].len) /* a no-op entry may have no data at all */
            memcpy(ab->arena + off, rd->committed[i].data, rd->committed[i].len);
        ab->committed[i].data = ab->arena + off;
        off += rd->committed[i].len;
    }
    ab->len = count;
    if (rd->snapshot) {
        ab->install = true;
        ab->meta = *rd->snapshot;
    }
    *out = ab;
    return 0;
}

/* ---- the driver's callbacks (the order is raft/driver.h's) ---- */

static void drv_begin(void *ctx, const struct mf_raft_ready *rd)
{
    struct mf_node *n = ctx;
    if (rd->soft_state_changed) {
        n->role = rd->soft_state.role;
        n->leader = rd->soft_state.lead;
        if (n->sm.role_changed)
            n->sm.role_changed(n->sm.ctx, n->role, n->leader);
    }
    n->stats.batches++;
    n->stats.entries_persisted += rd->entries_len;
    n->stats.entries_applied += rd->committed_len;
}

static void drv_send(void *ctx, const struct mf_raft_msg *msgs, size_t len)
{
    send_msgs(ctx, msgs, len);
}

/* The applier thread installs a snapshot, then applies what the batch commits. */
static int drv_apply(void *ctx, const struct mf_raft_ready *rd)
{
    struct mf_node *n = ctx;
    struct apply_batch *ab = NULL;
    int rc = make_apply_batch(n, rd, &ab);
    if (rc)
        return rc;
    ab->job = (struct mf_writer_job){.work = apply_work, .done = apply_done, .data = ab};
    rc = mf_writer_submit(&n->applier, &ab->job);
    MF_ASSERT(rc == 0); /* the driver keeps applies in flight under the queue's size */
    return 0;
}

static void persist_done(struct mf_writer_job *job);

/* The writer thread writes the batch's log part (one fsync). */
static int drv_persist(void *ctx, const struct mf_raft_ready *rd)
{
    struct mf_node *n = ctx;
    struct batch *b = &n->batch;
    b->rd = rd;
    b->persist_job = (struct mf_writer_job){.work = persist_work, .done = persist_done, .data = n};
    n->persist_inflight = true;
    int rc = mf_writer_submit(&n->writer, &b->persist_job);
    MF_ASSERT(rc == 0); /* one batch in flight: the queue cannot be full */
    return 0;
}

static void drv_read_states(void *ctx, const struct mf_raft_read_state *rs, size_t len)
{
    struct mf_node *n = ctx;
    for (size_t i = 0; i < len; i++) {
        struct pending *p = pending_find(&n->reads, rs[i].ctx);
        if (p)
            p->read_index = rs[i].index ? rs[i].index : 1;
    }
}

static void persist_done(struct mf_writer_job *job)
{
    struct mf_node *n = job->data;
    n->persist_inflight = false;
    /* Blocked (by a failed apply meanwhile): the core is stopped and will be
     * rebuilt from the log, so this batch's messages are dropped (Raft
     * tolerates lost messages). */
    if (n->failed || n->store.blocked)
        return;
    if (n->batch.persist_rc) {
        storage_failed(n, n->batch.persist_rc, "persisting the Raft log", ENV_LOG);
        return;
    }
    /* Durable: the driver sends votes and acknowledgements, records the
     * confirmed reads, starts a snapshot's install and advances the core; the
     * state machine catches up on its own thread, and reads and answers wait
     * for it (n->applied). */
    int rc = mf_raft_driver_persisted(&n->driver, 0);
    if (rc) {
        node_fail(n, rc, "advancing the Raft core");
        return;
    }
    serve_reads(n);
    pump(n);
}

/* Backpressure: the log does not run ahead of the applier without bound. */
#define APPLIES_INFLIGHT_MAX (MF_WRITER_JOBS_MAX / 2)

static void pump(struct mf_node *n)
{
    if (n->failed || n->store.blocked)
        return;
    int rc = mf_raft_driver_pump(&n->driver);
    if (rc)
        node_fail(n, rc, "collecting a Raft batch");
}

static void start_driver(struct mf_node *n)
{
    struct mf_raft_driver_cbs cb = {
        .ctx = n,
        .begin = drv_begin,
        .send = drv_send,
        .persist = drv_persist,
        .apply = drv_apply,
        .read_states = drv_read_states,
    };
    mf_raft_driver_init(&n->driver, n->raft, &cb, APPLIES_INFLIGHT_MAX);
}

/* ---- storage pressure (node.h "Storage pressure") ---- */

static int start_core(struct mf_node *n, const struct mf_config *cfg);
static int recover_snapshot(struct mf_node *n);
static int join_mark(struct mf_node *n, const struct mf_node_opts *o);
static void on_tick(uv_timer_t *t);
static void clock_update(struct mf_node *n);

static void note_match(struct mf_node *n, uint64_t from, uint64_t index)
{
    for (size_t i = 0; i < n->peers_len; i++)
        if (n->peers[i].id == from && index > n->peer_match[i])
            n->peer_match[i] = index;
}

/* Any message counts: the transport authenticated `from` (its certificate). */
static void note_heard(struct mf_node *n, uint64_t from)
{
    for (size_t i = 0; i < n->peers_len; i++)
        if (n->peers[i].id == from)
            n->peer_heard_ms[i] = mf_now_mono_ms();
}

static uint64_t reserve_target(const struct mf_node *n, const struct mf_fsstat *fs)
{
    return mf_fsstat_reserve_bytes(n->cfg->storage_reserve_mb, n->live_leases_hint,
                                   MF_NODE_RESERVE_MIN_BYTES, MF_NODE_RESERVE_PER_LEASE_BYTES,
                                   fs->total_bytes);
}

/* Grows the reserve file to `bytes` (never shrinks it here). Blocks on the
 * allocation: a few ms, and only at start, on a hint, or on resume. */
static int reserve_alloc(struct mf_node *n, uint64_t bytes)
{
    if (bytes <= n->reserve_bytes)
        return 0;
    int fd = open(n->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int e = posix_fallocate(fd, 0, (off_t)bytes);
    if (e) /* a partial allocation is given back */
        (void)ftruncate(fd, (off_t)n->reserve_bytes);
    else if (fsync(fd) != 0)
        e = errno;
    close(fd);
    if (e)
        return -e;
    n->reserve_bytes = bytes;
    n->reserve_released = false;
    return 0;
}

static void reserve_start(struct mf_node *n)
{
    struct stat sb;
    if (stat(n->reserve_path, &sb) == 0)
        n->reserve_bytes = (uint64_t)sb.st_size;
    struct mf_fsstat fs;
    int rc = mf_fsstat_get(n->data_dir, &fs);
    if (!rc)
        rc = reserve_alloc(n, reserve_target(n, &fs));
    if (rc)
        MF_WARN(LOG_MOD, "cannot allocate the reserve %s: %s (running without it)",
                n->reserve_path, mf_strerror(rc));
}

/* Gives the reserve's blocks back to the filesystem for one retry. */
static void reserve_release(struct mf_node *n)
{
    if (truncate(n->reserve_path, 0) != 0)
        MF_WARN(LOG_MOD, "cannot truncate the reserve %s: %s", n->reserve_path,
                mf_strerror(-errno));
    n->reserve_bytes = 0;
    n->reserve_released = true;
}

/* A blocked leader hands leadership to the voter that acknowledged the most
 * of its log. The driver holds the failed batch, so the message is built
 * here rather than through the core's transfer (which would need a ready
 * batch to leave); if it is lost, the heartbeats stop and the followers
 * elect after an election timeout. */
static void hand_off(struct mf_node *n)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    if (st.role != MF_RAFT_LEADER)
        return;
    uint64_t best = 0, best_match = 0;
    for (size_t i = 0; i < st.conf.voters_len; i++) {
        uint64_t v = st.conf.voters[i], m = 0;
        if (v == n->id)
            continue;
        for (size_t j = 0; j < n->peers_len; j++)
            if (n->peers[j].id == v)
                m = n->peer_match[j];
        if (!best || m > best_match) {
            best = v;
            best_match = m;
        }
    }
    if (!best)
        return;
    MF_WARN(LOG_MOD, "cannot persist: handing leadership to node %" PRIu64
                     " (acknowledged up to %" PRIu64 ")", best, best_match);
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_TIMEOUT_NOW, .from = n->id, .to = best,
                            .term = st.term};
    send_msgs(n, &m, 1);
    n->stats.storage_transfers++;
}

static void on_storage_check(uv_timer_t *t);

static void storage_block(struct mf_node *n, int code, const char *cause, const char *what)
{
    bool first = !n->store.blocked;
    n->store.code = code;
    snprintf(n->store.cause, sizeof(n->store.cause), "%s", cause);
    MF_ERROR(LOG_MOD, "node %" PRIu64 " storage-blocked: %s: %s; stale reads go on, writes and "
                      "linearizable reads are refused until there is room again",
             n->id, what, cause);
    if (!first)
        return;
    n->store.blocked = true;
    n->store.since_ms = mf_now_wall_ms();
    uv_timer_stop(&n->tick);
    hand_off(n);
    /* Their outcome is unknown: a leader's entries may commit through the
     * followers that received them. */
    while (n->proposals.head)
        finish_proposal(n, n->proposals.head, MF_EUNKNOWN, NULL);
    while (n->reads.head)
        finish_read(n, n->reads.head, code);
    if (n->role != MF_RAFT_FOLLOWER || n->leader) {
        n->role = MF_RAFT_FOLLOWER;
        n->leader = 0;
        if (n->sm.role_changed)
            n->sm.role_changed(n->sm.ctx, n->role, n->leader);
    }
    uint64_t delay = MF_NODE_STORAGE_CHECK_MS;
    if (code == MF_ENOSPACE && n->reserve_bytes && !n->reserve_retried) {
        MF_WARN(LOG_MOD, "releasing the reserve %s (%" PRIu64 " KiB) to retry once",
                n->reserve_path, n->reserve_bytes >> 10);
        reserve_release(n);
        n->store.reserve_releases++;
        n->reserve_retried = true;
        n->retry_now = true;
        delay = 0;
    }
    uv_timer_start(&n->storage_timer, on_storage_check, delay, 0);
}

/* A write of `env` failed with rc: block for space, stop for anything else. */
static void storage_failed(struct mf_node *n, int rc, const char *what, int env)
{
    if (n->failed)
        return;
    char dir[PATH_MAX + 16], cause[sizeof(n->store.cause)];
    snprintf(dir, sizeof(dir), "%s/%s", n->data_dir, env == ENV_LOG ? "log" : "state");
    struct mf_fsstat fs;
    bool have = mf_fsstat_get(n->data_dir, &fs) == 0;
    uint64_t map = env == ENV_LOG ? n->log_map_bytes : n->state_map_bytes;
    int code = mf_fsstat_classify(rc, have ? &fs : NULL, dir, map, cause, sizeof(cause));
    if (!mf_fsstat_is_space(code) || (env == ENV_STATE && !n->sm.storage_reopen)) {
        MF_ERROR(LOG_MOD, "%s: %s", what, cause);
        node_fail(n, rc, what);
        return;
    }
    if (!n->store.blocked)
        n->blocked_env = env;
    storage_block(n, code, cause, what);
}

/* The map sizes, as the config file says now (an operator grows a full map
 * by editing it). A map never shrinks here: LMDB keeps a file's size. */
static void reread_map_sizes(struct mf_node *n)
{
    if (!n->config_path)
        return;
    struct mf_config c;
    char err[256] = "";
    if (mf_config_defaults(&c))
        return;
    if (mf_config_load(&c, n->config_path, err, sizeof(err)) == 0) {
        uint64_t log_b = c.log_map_size_mb << 20, state_b = c.state_map_size_mb << 20;
        if (log_b > n->log_map_bytes || state_b > n->state_map_bytes)
            MF_INFO(LOG_MOD, "%s: log_map_size_mb %" PRIu64 ", state_map_size_mb %" PRIu64,
                    n->config_path, c.log_map_size_mb, c.state_map_size_mb);
        if (log_b > n->log_map_bytes)
            n->log_map_bytes = log_b;
        if (state_b > n->state_map_bytes)
            n->state_map_bytes = state_b;
    } else {
        MF_WARN(LOG_MOD, "re-reading the map sizes: %s", err);
    }
    mf_config_free(&c);
}

/* Is there room again (node.h "Resuming")? Also allocates the reserve. */
static bool space_back(struct mf_node *n)
{
    reread_map_sizes(n);
    if (n->store.code == MF_EMAPFULL) {
        uint64_t used = 0, map = 0;
        if (n->blocked_env == ENV_LOG) {
            struct mf_lmdb_usage u;
            if (!n->log || mf_raftlog_usage(n->log, &u) != 0)
                return true; /* unknown: the reopen will tell */
            used = u.used_bytes;
            map = n->log_map_bytes;
        } else {
            used = n->sm.state_used_bytes ? n->sm.state_used_bytes(n->sm.ctx) : 0;
            map = n->state_map_bytes;
        }
        if (used + map / 16 >= map)
            return false;
    }
    struct mf_fsstat fs;
    if (mf_fsstat_get(n->data_dir, &fs) != 0)
        return false;
    uint64_t floor = mf_fsstat_floor_bytes(n->cfg->storage_free_floor_mb, fs.total_bytes);
    uint64_t want = reserve_target(n, &fs);
    uint64_t more = want > n->reserve_bytes ? want - n->reserve_bytes : 0;
    if (n->store.code == MF_ENOSPACE && fs.avail_bytes < floor + more)
        return false;
    int rc = reserve_alloc(n, want);
    if (rc) {
        MF_WARN(LOG_MOD, "space is back but the reserve %s cannot be allocated: %s; still blocked",
                n->reserve_path, mf_strerror(rc));
        return false;
    }
    return true;
}

/* No persist, apply or snapshot work may touch the environments. */
static bool storage_idle(struct mf_node *n)
{
    return !n->persist_inflight && n->driver.applies_inflight == 0 && !n->snap_busy;
}

/* Reopen both environments and rebuild the core from the log, as at start.
 * On failure the node stays blocked (n->raft may be NULL meanwhile). */
static int storage_resume(struct mf_node *n)
{
    mf_raft_close(n->raft);
    n->raft = NULL;
    mf_raftlog_close(n->log);
    n->log = NULL;
    if (n->incoming_fd >= 0) { /* a snapshot being received: the leader starts it again */
        close(n->incoming_fd);
        n->incoming_fd = -1;
    }
    struct mf_raftlog_opts lo = {.map_size_bytes = n->log_map_bytes};
    int rc = mf_raftlog_open(n->data_dir, &lo, &n->log);
    if (rc)
        return rc;
    mf_raftlog_storage(n->log, &n->storage);
    if (n->sm.storage_reopen) {
        uint64_t applied = n->applied;
        /* A state that failed to reopen cannot serve even stale reads: the
         * last resort, fail-stop (the caller sees n->failed). */
        if ((rc = n->sm.storage_reopen(n->sm.ctx, n->state_map_bytes, &applied)) != 0) {
            node_fail(n, rc, "reopening the state database after it filled up");
            return rc;
        }
        n->applied = applied;
    }
    if ((rc = recover_snapshot(n)) != 0 || (rc = start_core(n, n->cfg)) != 0)
        return rc;
    mf_raft_set_campaign_allowed(n->raft, n->clock_allowed && !n->removed_notice);
    start_driver(n);
    n->apply_halted = false;
    memset(n->peer_match, 0, sizeof(n->peer_match));
    return 0;
}

/* Running after a retry that used the reserve: allocate it again once the
 * filesystem has room for it above the floor. */
static void reserve_check(struct mf_node *n)
{
    struct mf_fsstat fs;
    if (!n->reserve_released || mf_fsstat_get(n->data_dir, &fs) != 0)
        return;
    uint64_t want = reserve_target(n, &fs);
    uint64_t floor = mf_fsstat_floor_bytes(n->cfg->storage_free_floor_mb, fs.total_bytes);
    if (fs.avail_bytes >= floor + want && reserve_alloc(n, want) == 0) {
        n->reserve_retried = false;
        MF_INFO(LOG_MOD, "reserve %s allocated again (%" PRIu64 " KiB)", n->reserve_path,
                want >> 10);
    }
}

static void on_storage_check(uv_timer_t *t)
{
    struct mf_node *n = t->data;
    if (n->failed)
        return;
    if (!n->store.blocked) {
        reserve_check(n);
        if (n->reserve_released)
            uv_timer_start(&n->storage_timer, on_storage_check, MF_NODE_STORAGE_CHECK_MS, 0);
        return;
    }
    if (!n->retry_now && !space_back(n)) {
        uv_timer_start(&n->storage_timer, on_storage_check, MF_NODE_STORAGE_CHECK_MS, 0);
        return;
    }
    if (!storage_idle(n)) { /* the writer or the snapshot thread finishes first */
        uv_timer_start(&n->storage_timer, on_storage_check, 20, 0);
        return;
    }
    bool retry = n->retry_now;
    n->retry_now = false;
    int rc = storage_resume(n);
    if (n->failed)
        return;
    if (rc && !mf_fsstat_is_space(rc) && rc != -EIO) {
        node_fail(n, rc, "reopening storage after it filled up");
        return;
    }
    if (rc) {
        MF_WARN(LOG_MOD, "reopening storage: %s; still blocked", mf_strerror(rc));
        uv_timer_start(&n->storage_timer, on_storage_check, MF_NODE_STORAGE_CHECK_MS, 0);
        return;
    }
    n->store.blocked = false;
    n->store.recoveries++;
    if (!retry)
        n->reserve_retried = false; /* space came back: the next block may retry again */
    MF_INFO(LOG_MOD, "node %" PRIu64 " resumed after %s (%s): log and state reopened, applied "
                     "%" PRIu64 ", %" PRIu64 " recoveries",
            n->id, retry ? "releasing the reserve" : "space came back", n->store.cause, n->applied,
            n->store.recoveries);
    uv_timer_start(&n->tick, on_tick, n->tick_ms, n->tick_ms);
    if (n->reserve_released) /* allocated again once there is room (reserve_check) */
        uv_timer_start(&n->storage_timer, on_storage_check, MF_NODE_STORAGE_CHECK_MS, 0);
    clock_update(n);
    pump(n);
}

/* ---- timers and timeouts ---- */

static void expire_pending(struct mf_node *n)
{
    uint64_t now = mf_now_mono_ms();
    while (n->proposals.head && n->proposals.head->deadline_ms <= now)
        finish_proposal(n, n->proposals.head, MF_EUNKNOWN, NULL);
    while (n->reads.head && n->reads.head->deadline_ms <= now)
        finish_read(n, n->reads.head, MF_ETIMEOUT);
}

static void on_tick(uv_timer_t *t)
{
    struct mf_node *n = t->data;
    if (n->failed || n->store.blocked)
        return;
    int rc = mf_raft_tick(n->raft);
    if (rc) {
        node_fail(n, rc, "ticking the Raft core");
        return;
    }
    expire_pending(n);
    pump(n);
}

/* ---- clock agreement (issue 16) ---- */

static void clock_view(struct mf_node *n, uint64_t now_mono, struct mf_clock_view *v,
                       struct mf_raft_status *st)
{
    raft_status(n, st);
    mf_clock_view(&n->clock, st->conf.voters, st->conf.voters_len, now_mono, v);
}

/* Sets the campaign gate from the clock view and, on a leader whose fresh
 * measurements say its clock is off, hands leadership to a fresh voter (at
 * most once per transfer timeout, so a refused transfer is retried). */
static void clock_update(struct mf_node *n)
{
    if (n->failed || n->store.blocked) /* blocked: the gate is set again on resume */
        return;
    uint64_t now = mf_now_mono_ms();
    struct mf_clock_view v;
    struct mf_raft_status st;
    clock_view(n, now, &v, &st);
    if (v.agrees != n->clock_allowed) {
        n->clock_allowed = v.agrees;
        mf_raft_set_campaign_allowed(n->raft, v.agrees && !n->removed_notice);
        if (v.agrees)
            MF_INFO(LOG_MOD, "clock agrees with %u of %u voters (offset %" PRId64
                             " ms): may campaign", v.agreeing, v.voters, v.offset_ms);
        else if (v.measured)
            MF_WARN(LOG_MOD, "clock disagrees: %u of %u voters within %" PRIu64
                             " ms (our offset %" PRId64 " ms): not campaigning",
                    v.agreeing, v.voters, n->clock.max_skew_ms, v.offset_ms);
        else
            MF_INFO(LOG_MOD, "clock not measured against a quorum of voters (%u of %u fresh):"
                             " not campaigning", v.fresh, v.voters);
    }
    if (st.role != MF_RAFT_LEADER || v.agrees || !v.measured)
        return;
    uint64_t timeout_ms = (uint64_t)n->election_ticks * n->tick_ms;
    if (n->clock_transfer_at_ms && now - n->clock_transfer_at_ms < timeout_ms)
        return;
    uint64_t to = mf_clock_transfer_target(&n->clock, st.conf.voters, st.conf.voters_len, now);
    if (!to)
        return;
    MF_WARN(LOG_MOD, "clock off by %" PRId64 " ms from the voters (bound %" PRIu64
                     " ms): handing leadership to node %" PRIu64, v.offset_ms,
            n->clock.max_skew_ms, to);
    n->clock_transfer_at_ms = now;
    if (mf_raft_transfer_leader(n->raft, to) == 0)
        n->stats.clock_transfers++;
    pump(n);
}

static void clock_send(struct mf_node *n, uint64_t to, const struct mf_peer_clock *c)
{
    uint8_t buf[MF_PEER_CLOCK_MAX_BYTES];
    size_t len = mf_peer_clock_encode(c, buf);
    /* A probe lost with its link is simply not answered: the next one goes
     * out in MF_CLOCK_PROBE_MS and the measurement ages meanwhile. */
    (void)mf_transport_send(n->transport, to, MF_TRANSPORT_CONTROL, MF_NODE_TAG_CLOCK, buf, len);
}

static void on_probe(uv_timer_t *t)
{
    struct mf_node *n = t->data;
    if (n->failed)
        return;
    for (size_t i = 0; i < n->peers_len; i++) {
        uint64_t to = n->peers[i].id;
        if (to == n->id)
            continue;
        uint64_t seq = mf_clock_probe(&n->clock, to, mf_now_mono_ms());
        if (!seq)
            continue;
        struct mf_peer_clock c = {.kind = MF_PEER_CLOCK_PROBE, .seq = seq};
        clock_send(n, to, &c);
    }
    clock_update(n);
    struct mf_clock_view v;
    struct mf_raft_status st;
    clock_view(n, mf_now_mono_ms(), &v, &st);
    uv_timer_start(&n->probe, on_probe, v.measured ? MF_CLOCK_PROBE_MS : MF_CLOCK_PROBE_FAST_MS,
                   0);
}

static void on_clock_message(struct mf_node *n, uint64_t from, const uint8_t *data, size_t len)
{
    struct mf_peer_clock c;
    if (mf_peer_clock_decode(data, len, &c)) {
        MF_WARN(LOG_MOD, "dropping a malformed clock message from node %" PRIu64, from);
        return;
    }
    if (c.kind == MF_PEER_CLOCK_PROBE) {
        struct mf_peer_clock a = {.kind = MF_PEER_CLOCK_ANSWER, .seq = c.seq,
                                  .wall_ms = mf_now_wall_ms(),
                                  .flags = n->clock_allowed ? MF_PEER_CLOCK_AGREES : 0};
        clock_send(n, from, &a);
        return;
    }
    /* Read both clocks at once, as near to the arrival as we can. */
    uint64_t m2 = mf_now_mono_ms(), w2 = mf_now_wall_ms();
    int rc = mf_clock_answer(&n->clock, from, c.seq, c.wall_ms, m2, w2,
                             c.flags & MF_PEER_CLOCK_AGREES);
    if (rc) {
        MF_DEBUG(LOG_MOD, "dropping a clock answer from node %" PRIu64 " (seq %" PRIu64 "): %s",
                 from, c.seq, mf_strerror(rc));
        return;
    }
    clock_update(n);
}

/* ---- transport ---- */

static void on_peer_recv(struct mf_transport *t, uint64_t from, uint8_t tag, const uint8_t *data,
                         size_t len)
{
    struct mf_node *n = mf_transport_data(t);
    if (n->failed)
        return;
    note_heard(n, from);
    if (tag == MF_NODE_TAG_REMOVED)
        return removed_notice_recv(n, from, data, len);
    if (tag >= MF_NODE_TAG_APP_MIN) {
        if (n->sm.peer_message)
            n->sm.peer_message(n->sm.ctx, from, tag, data, len);
        return;
    }
    if (tag == MF_NODE_TAG_CLOCK) {
        on_clock_message(n, from, data, len);
        return;
    }
    if (tag != MF_NODE_TAG_RAFT && tag != MF_NODE_TAG_RAFT_SNAP)
        return;
    if (n->store.blocked)
        return; /* the core is stopped: what it misses, Raft sends again */
    struct mf_peer_decoded d;
    int rc = mf_peer_msg_decode(data, len, &d);
    if (rc) {
        MF_WARN(LOG_MOD, "dropping a malformed Raft message from node %" PRIu64, from);
        return;
    }
    /* The certificate says who sent it; a message claiming otherwise is dropped. */
    if (d.msg.from != from || d.msg.to != n->id) {
        MF_WARN(LOG_MOD, "dropping a Raft message from node %" PRIu64 " that claims from=%" PRIu64
                         " to=%" PRIu64, from, d.msg.from, d.msg.to);
        mf_peer_msg_free(&d);
        return;
    }
    if (join_drops(n, &d.msg)) {
        mf_peer_msg_free(&d);
        return;
    }
    removed_vote(n, &d.msg);
    if (d.msg.type == MF_RAFT_MSG_APP_RESP && !d.msg.reject)
        note_match(n, from, d.msg.index);
    rc = mf_raft_step(n->raft, &d.msg);
    mf_peer_msg_free(&d);
    if (rc && rc != MF_EINVAL) {
        node_fail(n, rc, "stepping the Raft core");
        return;
    }
    pump(n);
}

static void on_peer_link(struct mf_transport *t, uint64_t peer, enum mf_transport_link link,
                         int up)
{
    struct mf_node *n = mf_transport_data(t);
    if (up || n->failed || !n->raft)
        return;
    if (link == MF_TRANSPORT_BULK)
        mf_raft_report_snapshot(n->raft, peer, false);
    else
        mf_raft_report_unreachable(n->raft, peer);
}

/* ---- public API ---- */

int mf_node_initial_members(const struct mf_config *cfg, struct mf_raft_config *rc)
{
    /* The node's own entry in `peers` says what it is: a node configured as a
     * learner must not believe it votes (two such nodes could count each
     * other into a quorum with one real voter). Absent from `peers` (a
     * single-node or dev cluster): a voter. */
    bool listed = false;
    rc->voters_len = rc->learners_len = 0;
    for (size_t i = 0; i < cfg->peers_len; i++) {
        if (cfg->peers[i].id == cfg->node_id) {
            if (listed)
                continue; /* listed twice: the first entry counts */
            listed = true;
        }
        if (cfg->peers[i].learner)
            rc->learners[rc->learners_len++] = cfg->peers[i].id;
        else
            rc->voters[rc->voters_len++] = cfg->peers[i].id;
    }
    if (!listed) {
        if (rc->voters_len + rc->learners_len == MF_RAFT_NODES_MAX)
            return MF_ECONFIG;
        rc->voters[rc->voters_len++] = cfg->node_id;
    }
    return 0;
}

static int start_core(struct mf_node *n, const struct mf_config *cfg)
{
    struct mf_raft_config rc = {
        .id = cfg->node_id,
        .election_ticks = cfg->election_ticks,
        .heartbeat_ticks = cfg->heartbeat_ticks,
        .storage = &n->storage,
        .max_msg_bytes = 1u << 20,
        .max_inflight = 64,
        .pre_vote = true,
        .check_quorum = true,
        .seed = mf_rand_u64(),
        .applied = n->applied,
        .snapshot_read = snapshot_read,
        .snapshot_ctx = n,
    };
    int err = mf_node_initial_members(cfg, &rc);
    if (!err && n->join)
        rc.voters_len = rc.learners_len = 0; /* a joining node bootstraps nothing */
    if (err) {
        MF_ERROR(LOG_MOD, "config: %zu peers and this node make more than %d members",
                 cfg->peers_len, MF_RAFT_NODES_MAX);
        return err;
    }
    return mf_raft_init(&rc, &n->raft);
}

static int start_transport(struct mf_node *n, const struct mf_node_opts *o)
{
    const struct mf_config *cfg = o->cfg;
    struct mf_transport_config tc = {
        .self_id = cfg->node_id,
        .server_ctx = o->peer_server_ctx,
        .client_ctx = o->peer_client_ctx,
        .listen_addr = cfg->peer_listen,
        .connect_timeout_ms = cfg->peer_handshake_timeout_ms,
        .inbound_max = cfg->peer_conns_max,
        .inbound_handshakes_per_s = cfg->peer_handshakes_per_s,
        .inbound_per_addr_max = cfg->peer_conns_per_addr,
    };
    int rc = mf_transport_new(n->loop, &tc, n, on_peer_link, on_peer_recv, &n->transport);
    if (rc)
        return rc;
    for (size_t i = 0; i < cfg->peers_len && !rc; i++)
        if (cfg->peers[i].id != cfg->node_id)
            rc = mf_transport_add_peer(n->transport, cfg->peers[i].id, cfg->peers[i].addr);
    mf_transport_listen_addr(n->transport, n->peer_addr, sizeof(n->peer_addr), NULL);
    return rc;
}

/* The state database may be behind the log's compaction point after a power
 * cut (MDB_NOMETASYNC may lose its last commit): bring it up from the
 * snapshot file the log was compacted to. */
static int recover_snapshot(struct mf_node *n)
{
    struct mf_raft_snapshot_meta meta;
    int rc = mf_raftlog_snapshot_meta(n->log, &meta);
    if (rc)
        return rc;
    n->snap_compacted = meta.index;
    n->snap_latest = snap_newest(n);
    if (n->snap_latest < meta.index)
        n->snap_latest = meta.index;
    if (meta.index <= n->applied)
        return 0;
    char path[PATH_MAX + 64];
    snap_path(n, meta.index, path, sizeof(path));
    uint64_t index = 0;
    MF_WARN(LOG_MOD, "state is at %" PRIu64 ", log compacted to %" PRIu64 ": installing %s",
            n->applied, meta.index, path);
    rc = n->sm.snapshot_install(n->sm.ctx, path, &index);
    if (rc)
        return rc;
    n->applied = index;
    return 0;
}

int mf_node_start(uv_loop_t *loop, const struct mf_node_opts *o, struct mf_node **out)
{
    struct mf_node *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->loop = loop;
    n->id = o->cfg->node_id;
    n->sm = o->sm;
    n->applied = o->applied_index;
    n->tick_ms = o->cfg->tick_ms;
    n->election_ticks = o->cfg->election_ticks;
    mf_clock_init(&n->clock, n->id, o->cfg->max_clock_skew_ms);
    n->clock_allowed = true;
    n->peers_len = o->cfg->peers_len;
    for (size_t i = 0; i < n->peers_len; i++) {
        n->peers[i].id = o->cfg->peers[i].id;
        n->peers[i].addr = strdup(o->cfg->peers[i].addr);
        n->peers[i].api_addr = o->cfg->peers[i].api_addr ? strdup(o->cfg->peers[i].api_addr)
                                                         : NULL;
        n->peers[i].zone = o->cfg->peers[i].zone ? strdup(o->cfg->peers[i].zone) : NULL;
    }
    n->incoming_fd = -1;
    pthread_mutex_init(&n->snap_lock, NULL);
    pthread_cond_init(&n->snap_cond, NULL);
    n->snapshot_entries = o->cfg->snapshot_entries;
    snprintf(n->snap_dir, sizeof(n->snap_dir), "%s/%s", o->cfg->data_dir, MF_NODE_SNAPSHOT_DIR);
    int rc = 0;
    if (mkdir(n->snap_dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        goto fail;
    }
    n->cfg = o->cfg;
    snprintf(n->data_dir, sizeof(n->data_dir), "%s", o->cfg->data_dir);
    snprintf(n->reserve_path, sizeof(n->reserve_path), "%s/%s", o->cfg->data_dir,
             MF_NODE_RESERVE_FILE);
    n->log_map_bytes = o->cfg->log_map_size_mb << 20;
    n->state_map_bytes = o->cfg->state_map_size_mb << 20;
    if (o->config_path && !(n->config_path = strdup(o->config_path))) {
        rc = -ENOMEM;
        goto fail;
    }
    struct mf_raftlog_opts lo = {.map_size_bytes = n->log_map_bytes};
    rc = mf_raftlog_open(o->cfg->data_dir, &lo, &n->log);
    if (rc)
        goto fail;
    mf_raftlog_storage(n->log, &n->storage);
    rc = join_mark(n, o);
    if (rc)
        goto fail;
    rc = recover_snapshot(n);
    if (rc)
        goto fail;
    reserve_start(n);
    rc = start_core(n, o->cfg);
    if (rc)
        goto fail;
    start_driver(n);
    rc = mf_writer_start(&n->writer, loop);
    if (!rc)
        rc = mf_writer_start(&n->applier, loop);
    if (rc)
        goto fail;
    rc = start_transport(n, o);
    if (rc)
        goto fail;
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    n->tick_started = true;
    uv_timer_start(&n->tick, on_tick, n->tick_ms, n->tick_ms);
    uv_timer_init(loop, &n->storage_timer);
    n->storage_timer.data = n;
    n->storage_timer_started = true;
    uv_timer_init(loop, &n->probe);
    n->probe.data = n;
    n->probe_started = true;
    clock_update(n); /* blocks the first campaign until measured (unless alone) */
    uv_timer_start(&n->probe, on_probe, 0, 0);
    *out = n;
    return 0;
fail:
    MF_ERROR(LOG_MOD, "node %" PRIu64 " cannot start: %s", n->id, mf_strerror(rc));
    mf_node_stop(n);
    return rc;
}

static void fail_all_pending(struct mf_node *n)
{
    while (n->proposals.head)
        finish_proposal(n, n->proposals.head, MF_ECLOSED, NULL);
    while (n->reads.head)
        finish_read(n, n->reads.head, MF_ECLOSED);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct mf_node *n = h->data;
    if (--n->handles_open > 0)
        return;
    if (n->snap_work_pending)
        n->free_when_idle = true; /* snap_create_done frees it */
    else
        free(n);
}

void mf_node_stop(struct mf_node *n)
{
    if (!n)
        return;
    n->failed = true;
    /* A snapshot being written reads the state database, which the caller
     * closes next: wait for it (its after-callback runs later, see below). */
    pthread_mutex_lock(&n->snap_lock);
    while (n->snap_thread_running)
        pthread_cond_wait(&n->snap_cond, &n->snap_lock);
    pthread_mutex_unlock(&n->snap_lock);
    mf_writer_stop(&n->writer); /* runs the last done callbacks, which see failed */
    mf_writer_stop(&n->applier);
    if (n->incoming_fd >= 0)
        close(n->incoming_fd);
    fail_all_pending(n);
    if (n->transport)
        mf_transport_close(n->transport, NULL);
    mf_raft_close(n->raft);
    mf_raftlog_close(n->log);
    for (size_t i = 0; i < n->peers_len; i++) {
        free(n->peers[i].addr);
        free(n->peers[i].api_addr);
        free(n->peers[i].zone);
    }
    /* The timer handles live inside n: free n once libuv has closed them. */
    free(n->config_path);
    n->config_path = NULL;
    if (n->tick_started || n->probe_started) {
        n->handles_open = (unsigned)n->tick_started + (unsigned)n->probe_started +
                          (unsigned)n->storage_timer_started;
        if (n->tick_started) {
            uv_timer_stop(&n->tick);
            uv_close((uv_handle_t *)&n->tick, on_tick_closed);
        }
        if (n->storage_timer_started) {
            uv_timer_stop(&n->storage_timer);
            uv_close((uv_handle_t *)&n->storage_timer, on_tick_closed);
        }
        if (n->probe_started) {
            uv_timer_stop(&n->probe);
            uv_close((uv_handle_t *)&n->probe, on_tick_closed);
        }
    } else if (n->snap_work_pending) {
        n->free_when_idle = true;
    } else {
        free(n);
    }
}

/* A proposal appended at `index`: wait for its apply (or its timeout). */
static void track_proposal(struct mf_node *n, struct pending *p, uint64_t index,
                           mf_node_propose_cb cb, void *arg)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    /* An older proposal waiting at this index was overwritten in our log. */
    struct pending *old = pending_find(&n->proposals, index);
    if (old)
        finish_proposal(n, old, MF_EUNAVAIL, NULL);
    p->key = index;
    p->term = st.term;
    p->deadline_ms = mf_now_mono_ms() + MF_NODE_PROPOSE_TIMEOUT_MS;
    p->propose_cb = cb;
    p->arg = arg;
    pending_add(&n->proposals, p);
    pump(n);
}

int mf_node_propose(struct mf_node *n, const uint8_t *data, size_t len, mf_node_propose_cb cb,
                    void *arg)
{
    if (n->failed)
        return MF_ECLOSED;
    if (n->store.blocked)
        return n->store.code;
    if (n->proposals.len >= MF_NODE_PENDING_MAX)
        return -ENOBUFS;
    if (len > UINT32_MAX)
        return MF_ETOOLARGE;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    uint64_t index = 0;
    int rc = mf_raft_propose(n->raft, data, (uint32_t)len, &index);
    if (rc) {
        free(p);
        return rc;
    }
    track_proposal(n, p, index, cb, arg);
    return 0;
}

uint64_t mf_node_next_index(struct mf_node *n)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    return st.last_index + 1;
}

int mf_node_read_index(struct mf_node *n, mf_node_read_cb cb, void *arg)
{
    if (n->failed)
        return MF_ECLOSED;
    if (n->store.blocked)
        return n->store.code;
    if (n->reads.len >= MF_NODE_PENDING_MAX)
        return -ENOBUFS;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->key = ++n->next_read_ctx;
    int rc = mf_raft_read_index(n->raft, p->key);
    if (rc) {
        free(p);
        return rc;
    }
    p->deadline_ms = mf_now_mono_ms() + MF_NODE_READ_TIMEOUT_MS;
    p->read_cb = cb;
    p->arg = arg;
    pending_add(&n->reads, p);
    pump(n);
    return 0;
}

int mf_node_send(struct mf_node *n, uint64_t to, uint8_t tag, const void *data, size_t len)
{
    MF_ASSERT(tag >= MF_NODE_TAG_APP_MIN);
    return mf_transport_send(n->transport, to, MF_TRANSPORT_CONTROL, tag, data, len);
}

bool mf_node_is_leader(struct mf_node *n)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    return !n->failed && !n->store.blocked && st.role == MF_RAFT_LEADER;
}

void mf_node_status(struct mf_node *n, struct mf_raft_status *st)
{
    raft_status(n, st);
}

void mf_node_stats(struct mf_node *n, struct mf_node_stats *out)
{
    *out = n->stats;
    out->peer_tls_failures_in = n->transport ? mf_transport_listener_tls_failures(n->transport) : 0;
}

uint64_t mf_node_applied(struct mf_node *n)
{
    return n->applied;
}

uint64_t mf_node_known_commit(struct mf_node *n)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    return st.commit;
}

const char *mf_node_peer_addr(struct mf_node *n)
{
    return n->peer_addr;
}

const char *mf_node_member_addr(struct mf_node *n, uint64_t id)
{
    if (id == n->id)
        return n->peer_addr;
    for (size_t i = 0; i < n->peers_len; i++)
        if (n->peers[i].id == id)
            return n->peers[i].addr;
    return NULL;
}

const char *mf_node_member_zone(struct mf_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->peers_len; i++)
        if (n->peers[i].id == id)
            return n->peers[i].zone;
    return NULL;
}

const char *mf_node_member_api_addr(struct mf_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->peers_len; i++)
        if (n->peers[i].id == id)
            return n->peers[i].api_addr;
    return NULL;
}

int mf_node_transfer(struct mf_node *n, uint64_t to)
{
    if (n->failed || n->store.blocked || !n->raft)
        return MF_EUNAVAIL;
    int rc = mf_raft_transfer_leader(n->raft, to);
    pump(n);
    return rc;
}

int mf_node_peer_view(struct mf_node *n, uint64_t id, struct mf_node_peer_view *out)
{
    uint64_t now = mf_now_mono_ms();
    for (size_t i = 0; i < n->peers_len; i++) {
        if (n->peers[i].id != id || id == n->id)
            continue;
        const struct mf_clock_peer *p = mf_clock_peer(&n->clock, id);
        out->match_index = n->peer_match[i];
        out->clock_ok = p && mf_clock_fresh(&n->clock, id, now) && p->says_agrees;
        out->heard_mono_ms = n->peer_heard_ms[i];
        return 0;
    }
    return MF_ENOTFOUND;
}

void mf_node_clock(struct mf_node *n, struct mf_node_clock *out)
{
    struct mf_clock_view v;
    struct mf_raft_status st;
    clock_view(n, mf_now_mono_ms(), &v, &st);
    *out = (struct mf_node_clock){
        .agrees = v.agrees,
        .measured = v.measured,
        .offset_ms = v.offset_ms,
        .voters = v.voters,
        .agreeing = v.agreeing,
        .max_skew_ms = n->clock.max_skew_ms,
        .fresh = v.fresh,
    };
}

int mf_node_log_usage(struct mf_node *n, struct mf_lmdb_usage *out)
{
    if (!n->log)
        return MF_EUNAVAIL;
    return mf_raftlog_usage(n->log, out);
}

void mf_node_storage(struct mf_node *n, struct mf_node_storage *out)
{
    *out = n->store;
    out->reserve_bytes = n->reserve_bytes;
}

void mf_node_set_reserve_hint(struct mf_node *n, uint64_t live_leases)
{
    n->live_leases_hint = live_leases;
    if (n->failed || n->store.blocked || n->reserve_released || n->cfg->storage_reserve_mb)
        return;
    struct mf_fsstat fs;
    if (mf_fsstat_get(n->data_dir, &fs) != 0)
        return;
    uint64_t want = reserve_target(n, &fs);
    /* Grow in steps of at least 1 MiB: not a fallocate per lease. */
    if (want >= n->reserve_bytes + (1ULL << 20)) {
        int rc = reserve_alloc(n, want);
        if (rc)
            MF_WARN(LOG_MOD, "cannot grow the reserve %s to %" PRIu64 " KiB: %s",
                    n->reserve_path, want >> 10, mf_strerror(rc));
    }
}

/* ---- the member registry (issue 13; node.h "Runtime membership") ----
 *
 * n->peers is this node's table of members' addresses and zones: the config
 * file's peers at start (the bootstrap registry), then every configuration
 * entry as it is applied (its MemberChange tail, store/members.h), and the
 * records the server loads from the state database after a start or a
 * snapshot install (mf_node_member_put). The transport dials what the table
 * says. */

#define JOIN_FILE "join" /* under data_dir: this node started with --join */

/* A node started with --join keeps that in DATA_DIR/join: restarted without
 * the flag before a snapshot arrived, it must still not bootstrap the config
 * file's peers as a second cluster. */
static int join_mark(struct mf_node *n, const struct mf_node_opts *o)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/%s", o->cfg->data_dir, JOIN_FILE);
    if (o->join) {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        int rc = fsync(fd) == 0 ? 0 : -errno;
        close(fd);
        if (rc)
            return rc;
        n->join = true;
    } else {
        n->join = access(path, F_OK) == 0;
    }
    if (n->join)
        MF_INFO(LOG_MOD, "node %" PRIu64 " joins: no bootstrap configuration; waiting to be "
                         "added by the leader (operator members add)", n->id);
    return 0;
}

void mf_node_compact_now(struct mf_node *n)
{
    if (n->compact_asap || n->applied <= n->snap_compacted)
        return;
    MF_INFO(LOG_MOD, "snapshot and log compaction to %" PRIu64 " asked for (a new member starts "
                     "from a snapshot)", n->applied);
    n->compact_asap = true;
    maybe_snapshot(n);
}

/* A joining node with an empty log takes its start from a snapshot only:
 * entries from index 1 would replay configuration changes on top of a
 * bootstrap configuration it does not have. It drops them (the leader's
 * log must have been compacted once: op_members checks it). */
static bool join_drops(struct mf_node *n, const struct mf_raft_msg *m)
{
    if (!n->join || m->type != MF_RAFT_MSG_APP || m->index != 0 || m->entries_len == 0)
        return false;
    struct mf_raft_status st;
    raft_status(n, &st);
    if (st.last_index != 0)
        return false;
    MF_WARN(LOG_MOD, "joining: dropping entries from index 1 sent by node %" PRIu64
                     "; a new member starts from a snapshot", m->from);
    return true;
}

static ssize_t member_find(const struct mf_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->peers_len; i++)
        if (n->peers[i].id == id)
            return (ssize_t)i;
    return -1;
}

static int dup_or_null(const char *s, char **out)
{
    *out = NULL;
    if (!s || !*s)
        return 0;
    return (*out = strdup(s)) ? 0 : -ENOMEM;
}

int mf_node_member_put(struct mf_node *n, uint64_t id, const char *addr, const char *api_addr,
                       const char *zone)
{
    if (id == 0 || !addr || !*addr)
        return MF_EINVAL;
    char *a, *api, *z;
    int rc = dup_or_null(addr, &a);
    if (!rc)
        rc = dup_or_null(api_addr, &api);
    else
        api = NULL;
    if (!rc)
        rc = dup_or_null(zone, &z);
    else
        z = NULL;
    if (rc) {
        free(a);
        free(api);
        return rc;
    }
    ssize_t i = member_find(n, id);
    bool moved = true;
    if (i < 0) {
        if (n->peers_len == MF_CONFIG_PEERS_MAX) {
            free(a);
            free(api);
            free(z);
            return MF_ETOOLARGE;
        }
        i = (ssize_t)n->peers_len++;
        n->peers[i] = (struct mf_config_peer){.id = id};
        n->peer_match[i] = n->peer_heard_ms[i] = 0;
    } else {
        moved = !n->peers[i].addr || strcmp(n->peers[i].addr, a) != 0;
        free(n->peers[i].addr);
        free(n->peers[i].api_addr);
        free(n->peers[i].zone);
    }
    n->peers[i].addr = a;
    n->peers[i].api_addr = api;
    n->peers[i].zone = z;
    if (id == n->id || !n->transport || !moved)
        return 0;
    (void)mf_transport_remove_peer(n->transport, id); /* a new address: dial it afresh */
    rc = mf_transport_add_peer(n->transport, id, a);
    if (rc)
        MF_WARN(LOG_MOD, "member %" PRIu64 " at %s: cannot add it to the transport: %s", id, a,
                mf_strerror(rc));
    return rc;
}

void mf_node_member_drop(struct mf_node *n, uint64_t id)
{
    ssize_t i = member_find(n, id);
    if (i < 0 || id == n->id)
        return;
    free(n->peers[i].addr);
    free(n->peers[i].api_addr);
    free(n->peers[i].zone);
    size_t rest = n->peers_len - (size_t)i - 1;
    memmove(&n->peers[i], &n->peers[i + 1], rest * sizeof(n->peers[0]));
    memmove(&n->peer_match[i], &n->peer_match[i + 1], rest * sizeof(n->peer_match[0]));
    memmove(&n->peer_heard_ms[i], &n->peer_heard_ms[i + 1], rest * sizeof(n->peer_heard_ms[0]));
    n->peers_len--;
    /* The transport keeps the peer: an answer to a request it forwarded
     * (its own removal among them) and the removal notice still reach it. */
}

/* A configuration entry applied: the table follows its tail (or drops a
 * removed member), and this node says when it was removed itself. */
static void members_applied(struct mf_node *n, const struct mf_raft_entry *e)
{
    enum mf_raft_conf_change_type type;
    uint64_t id;
    const uint8_t *tail = NULL;
    uint32_t tail_len = 0;
    if (mf_raft_conf_decode_tail(e->data, e->len, &type, &id, &tail, &tail_len) != 0)
        return;
    if (type == MF_RAFT_CONF_REMOVE) {
        MF_INFO(LOG_MOD, "member %" PRIu64 " removed from the configuration (index %" PRIu64 ")",
                id, e->index);
        if (id == n->id && !n->removed_logged) {
            n->removed_logged = true;
            MF_WARN(LOG_MOD, "this node (%" PRIu64 ") was removed from the configuration at "
                             "index %" PRIu64 ": it no longer votes or campaigns; stop it",
                    n->id, e->index);
        }
        if (id != n->id)
            removed_notice_send(n, id, e->index); /* before its address goes */
        mf_node_member_drop(n, id);
        return;
    }
    Mayfly__Cmd__MemberChange *ch =
        tail_len ? mayfly__cmd__member_change__unpack(NULL, tail_len, tail) : NULL;
    const Mayfly__Cmd__MemberInfo *m = ch ? ch->member : NULL;
    if (m && m->id == id && m->addr && *m->addr)
        (void)mf_node_member_put(n, id, m->addr, m->api_addr, m->zone);
    for (size_t i = 0; ch && i < ch->n_known; i++) {
        const Mayfly__Cmd__MemberInfo *k = ch->known[i];
        if (k && k->id && k->addr && *k->addr && member_find(n, k->id) < 0)
            (void)mf_node_member_put(n, k->id, k->addr, k->api_addr, k->zone);
    }
    if (ch)
        mayfly__cmd__member_change__free_unpacked(ch, NULL);
    MF_INFO(LOG_MOD, "member %" PRIu64 " is now a %s (index %" PRIu64 ")", id,
            type == MF_RAFT_CONF_ADD_VOTER ? "voter" : "learner", e->index);
}

enum mf_node_membership mf_node_membership(struct mf_node *n)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    if (n->removed_notice) /* its own configuration is stale: it never got the entry */
        return MF_NODE_MEMBER_REMOVED;
    for (uint32_t i = 0; i < st.conf.voters_len; i++)
        if (st.conf.voters[i] == n->id)
            return MF_NODE_MEMBER_VOTER;
    for (uint32_t i = 0; i < st.conf.learners_len; i++)
        if (st.conf.learners[i] == n->id)
            return MF_NODE_MEMBER_LEARNER;
    if (n->removed_logged || (!n->join && st.conf.voters_len))
        return MF_NODE_MEMBER_REMOVED;
    return MF_NODE_MEMBER_JOINING;
}

int mf_node_conf_change(struct mf_node *n, enum mf_raft_conf_change_type type, uint64_t id,
                        const uint8_t *tail, size_t tail_len, mf_node_propose_cb cb, void *arg)
{
    if (n->failed || !n->raft)
        return MF_ECLOSED;
    if (n->store.blocked)
        return n->store.code;
    if (tail_len > MF_RAFT_CONF_TAIL_MAX)
        return MF_ETOOLARGE;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    uint64_t index = 0;
    int rc = mf_raft_propose_conf_change_tail(n->raft, type, id, tail, (uint32_t)tail_len, &index);
    if (rc) {
        free(p);
        return rc;
    }
    track_proposal(n, p, index, cb, arg);
    return 0;
}

/* A member removed by another leader never receives the entry that removes
 * it (the leader stops replicating to it at the append): it would keep
 * (pre-)campaigning. The leader that applies the removal tells it (tag 20:
 * the entry's index, 8 bytes big-endian), and tells it again whenever a
 * node outside the configuration asks for a vote. */
static void removed_notice_send(struct mf_node *n, uint64_t to, uint64_t index)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    if (st.role != MF_RAFT_LEADER || !n->transport)
        return;
    uint8_t buf[8];
    for (int i = 7; i >= 0; i--, index >>= 8)
        buf[i] = (uint8_t)index;
    (void)mf_transport_send(n->transport, to, MF_TRANSPORT_CONTROL, MF_NODE_TAG_REMOVED, buf,
                            sizeof(buf));
}

static bool conf_has(const struct mf_raft_status *st, uint64_t id)
{
    for (uint32_t i = 0; i < st->conf.voters_len; i++)
        if (st->conf.voters[i] == id)
            return true;
    for (uint32_t i = 0; i < st->conf.learners_len; i++)
        if (st->conf.learners[i] == id)
            return true;
    return false;
}

static void removed_vote(struct mf_node *n, const struct mf_raft_msg *m)
{
    if (m->type != MF_RAFT_MSG_PRE_VOTE && m->type != MF_RAFT_MSG_VOTE)
        return;
    struct mf_raft_status st;
    raft_status(n, &st);
    if (st.role == MF_RAFT_LEADER && !conf_has(&st, m->from))
        removed_notice_send(n, m->from, st.commit);
}

static void removed_notice_recv(struct mf_node *n, uint64_t from, const uint8_t *data,
                                size_t len)
{
    struct mf_raft_status st;
    raft_status(n, &st);
    /* Only a member of this node's configuration speaks for the cluster. */
    if (len != 8 || n->removed_notice || from == n->id || !conf_has(&st, from))
        return;
    uint64_t index = 0;
    for (int i = 0; i < 8; i++)
        index = (index << 8) | data[i];
    n->removed_notice = true;
    if (n->raft)
        mf_raft_set_campaign_allowed(n->raft, false);
    MF_WARN(LOG_MOD, "node %" PRIu64 " says this node (%" PRIu64 ") was removed from the "
                     "configuration (index %" PRIu64 "): it no longer campaigns; stop it",
            from, n->id, index);
}
