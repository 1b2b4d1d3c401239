/* The Raft log on LMDB: entries, hard state and snapshot metadata in one
 * environment (DIR/log/) whose every write is a synced commit.
 *
 * Why LMDB and how it stays safe: a commit writes the dirty pages (pwrite /
 * writev), fdatasync()s the file, then writes the new meta page through a
 * descriptor opened with O_DSYNC. Until that meta write lands the previous
 * meta still points at a complete, older tree, so a crash or power cut at any
 * point leaves either the old or the new transaction, never a mix. That only
 * holds with the default sync flags, which is why this file never sets
 * MDB_NOSYNC or MDB_NOMETASYNC (tests/crash/ checks it under a power-cut
 * model, and checks that MDB_NOSYNC is caught losing acknowledged batches).
 *
 * Invariant kept by every write: the live entries are exactly
 * [snapshot index + 1, last stored key], contiguous. Keys at or below the
 * snapshot index may linger for a moment while a long compaction deletes them
 * in several transactions; they are invisible to readers and deleted at the
 * next open or compaction.
 */
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "store/usage.h"

#define MOD "raftlog"
#define FORMAT_VERSION 1u
#define COMPACT_BATCH_DEFAULT 65536u /* entries deleted per write transaction */
#define SNAP_META_FIXED 24           /* index, term, voters_len, learners_len */
#define ENTRY_DATA_MAX (UINT32_MAX - MF_RAFTLOG_ENTRY_HEADER)

static const char KEY_FORMAT[] = "format";
static const char KEY_HARD_STATE[] = "hard_state";
static const char KEY_SNAPSHOT[] = "snapshot";

struct reader {
    pthread_t owner;
    int used;
    int active;   /* txn renewed: its pages are pinned */
    MDB_txn *txn; /* read-only, kept across calls, reset/renewed per call */
};

struct mf_raftlog {
    MDB_env *env;
    dev_t dev; /* of DIR/log: one handle per log per process */
    ino_t ino;
    MDB_dbi dbi_entries;
    MDB_dbi dbi_meta;
    uint64_t map_size_bytes;
    uint64_t compact_batch_entries;
    atomic_int failed;        /* a commit failed: refuse every further write */
    atomic_uint_fast64_t commits;
    pthread_mutex_t readers_lock;
    struct reader readers[MF_RAFTLOG_READERS_MAX];
    char path[PATH_MAX];
};

/* --- encoding --- */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int key_index(const MDB_val *k, uint64_t *out)
{
    if (k->mv_size != 8) {
        MF_ERROR(MOD, "entry key of %zu bytes (want 8): log corrupt", k->mv_size);
        return MF_ECORRUPT;
    }
    *out = get_be64(k->mv_data);
    return 0;
}

/* Record: index (le64), term (le64), type (le32), len (le32), data. The index
 * repeats the key so a record found under the wrong key is caught. */
static void record_encode_header(uint8_t *p, const struct mf_raft_entry *e)
{
    put_le64(p, e->index);
    put_le64(p + 8, e->term);
    put_le32(p + 16, e->type);
    put_le32(p + 20, e->len);
}

static int record_decode(uint64_t index, const MDB_val *v, struct mf_raft_entry *out)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < MF_RAFTLOG_ENTRY_HEADER) {
        MF_ERROR(MOD, "entry %llu: record of %zu bytes is shorter than its header",
                 (unsigned long long)index, v->mv_size);
        return MF_ECORRUPT;
    }
    out->index = get_le64(p);
    out->term = get_le64(p + 8);
    out->type = get_le32(p + 16);
    out->len = get_le32(p + 20);
    if (out->index != index || out->term == 0 || out->type > MF_RAFT_ENTRY_NOOP ||
        (uint64_t)out->len != v->mv_size - MF_RAFTLOG_ENTRY_HEADER) {
        MF_ERROR(MOD, "entry %llu: bad record (index %llu term %llu type %u len %u, %zu bytes)",
                 (unsigned long long)index, (unsigned long long)out->index,
                 (unsigned long long)out->term, out->type, out->len, v->mv_size);
        return MF_ECORRUPT;
    }
    out->data = p + MF_RAFTLOG_ENTRY_HEADER;
    return 0;
}

static size_t snap_meta_size(const struct mf_raft_snapshot_meta *m)
{
    return SNAP_META_FIXED + 8 * ((size_t)m->conf.voters_len + m->conf.learners_len);
}

static void snap_meta_encode(uint8_t *p, const struct mf_raft_snapshot_meta *m)
{
    put_le64(p, m->index);
    put_le64(p + 8, m->term);
    put_le32(p + 16, m->conf.voters_len);
    put_le32(p + 20, m->conf.learners_len);
    p += SNAP_META_FIXED;
    for (uint32_t i = 0; i < m->conf.voters_len; i++, p += 8)
        put_le64(p, m->conf.voters[i]);
    for (uint32_t i = 0; i < m->conf.learners_len; i++, p += 8)
        put_le64(p, m->conf.learners[i]);
}

static int snap_meta_decode(const MDB_val *v, struct mf_raft_snapshot_meta *m)
{
    const uint8_t *p = v->mv_data;
    memset(m, 0, sizeof(*m));
    if (v->mv_size < SNAP_META_FIXED)
        goto bad;
    m->index = get_le64(p);
    m->term = get_le64(p + 8);
    m->conf.voters_len = get_le32(p + 16);
    m->conf.learners_len = get_le32(p + 20);
    if (m->conf.voters_len > MF_RAFT_NODES_MAX || m->conf.learners_len > MF_RAFT_NODES_MAX ||
        v->mv_size != snap_meta_size(m))
        goto bad;
    p += SNAP_META_FIXED;
    for (uint32_t i = 0; i < m->conf.voters_len; i++, p += 8)
        m->conf.voters[i] = get_le64(p);
    for (uint32_t i = 0; i < m->conf.learners_len; i++, p += 8)
        m->conf.learners[i] = get_le64(p);
    return 0;
bad:
    memset(m, 0, sizeof(*m));
    MF_ERROR(MOD, "snapshot metadata record of %zu bytes is malformed: log corrupt", v->mv_size);
    return MF_ECORRUPT;
}

/* --- LMDB errors --- */

/* Translate an LMDB (or errno) result at the boundary, logging its text. */
static int lmdb_err(const struct mf_raftlog *log, int rc, const char *what)
{
    const char *path = log ? log->path : "?";
    switch (rc) {
    case MDB_MAP_FULL:
        MF_ERROR(MOD, "%s: %s: LMDB map full (map size %llu MiB): compact the log or reopen "
                 "it with a larger map size; nothing was written",
                 path, what, log ? (unsigned long long)(log->map_size_bytes >> 20) : 0ULL);
        return MF_EMAPFULL;
    case ENOSPC:
        MF_ERROR(MOD, "%s: %s: no space left on device", path, what);
        return MF_ENOSPACE;
    case MDB_TXN_FULL:
        MF_ERROR(MOD, "%s: %s: too many pages in one transaction: write smaller batches",
                 path, what);
        return MF_ETOOLARGE;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        MF_ERROR(MOD, "%s: %s: %s", path, what, mdb_strerror(rc));
        return MF_ECORRUPT;
    default:
        MF_ERROR(MOD, "%s: %s: %s", path, what, mdb_strerror(rc));
        if (rc > 0)
            return -rc;
        return MF_ESTORAGE;
    }
}

/* --- reads inside any transaction --- */

static int load_snap(struct mf_raftlog *log, MDB_txn *txn, struct mf_raft_snapshot_meta *m)
{
    MDB_val k = {sizeof(KEY_SNAPSHOT) - 1, (void *)KEY_SNAPSHOT}, v;
    int rc = mdb_get(txn, log->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(m, 0, sizeof(*m));
        return 0;
    }
    if (rc != 0)
        return lmdb_err(log, rc, "read snapshot metadata");
    return snap_meta_decode(&v, m);
}

static int load_hard_state(struct mf_raftlog *log, MDB_txn *txn, struct mf_raft_hard_state *hs)
{
    MDB_val k = {sizeof(KEY_HARD_STATE) - 1, (void *)KEY_HARD_STATE}, v;
    int rc = mdb_get(txn, log->dbi_meta, &k, &v);
    memset(hs, 0, sizeof(*hs));
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return lmdb_err(log, rc, "read hard state");
    if (v.mv_size != 24) {
        MF_ERROR(MOD, "%s: hard state record of %zu bytes (want 24): log corrupt", log->path,
                 v.mv_size);
        return MF_ECORRUPT;
    }
    const uint8_t *p = v.mv_data;
    hs->term = get_le64(p);
    hs->vote = get_le64(p + 8);
    hs->commit = get_le64(p + 16);
    return 0;
}

/* The stored key at one end of the entries database (op MDB_FIRST or
 * MDB_LAST); *found = 0 when the database is empty. */
static int edge_key(struct mf_raftlog *log, MDB_txn *txn, MDB_cursor_op op, uint64_t *out,
                    int *found)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, log->dbi_entries, &cur);
    if (rc != 0)
        return lmdb_err(log, rc, "open cursor");
    rc = mdb_cursor_get(cur, &k, &v, op);
    mdb_cursor_close(cur);
    *found = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return lmdb_err(log, rc, "read log end");
    *found = 1;
    return key_index(&k, out);
}

/* Snapshot metadata and the live range [*first, *last] (empty: last = first - 1). */
static int bounds(struct mf_raftlog *log, MDB_txn *txn, struct mf_raft_snapshot_meta *snap,
                  uint64_t *first, uint64_t *last)
{
    uint64_t key = 0;
    int found = 0;
    int rc = load_snap(log, txn, snap);
    if (rc != 0)
        return rc;
    rc = edge_key(log, txn, MDB_LAST, &key, &found);
    if (rc != 0)
        return rc;
    *first = snap->index + 1;
    *last = (found && key > snap->index) ? key : snap->index;
    return 0;
}

static int get_entry(struct mf_raftlog *log, MDB_txn *txn, uint64_t index,
                     struct mf_raft_entry *out)
{
    uint8_t kb[8];
    put_be64(kb, index);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(txn, log->dbi_entries, &k, &v);
    if (rc == MDB_NOTFOUND) {
        MF_ERROR(MOD, "%s: entry %llu missing inside the live range: log corrupt", log->path,
                 (unsigned long long)index);
        return MF_ECORRUPT;
    }
    if (rc != 0)
        return lmdb_err(log, rc, "read entry");
    return record_decode(index, &v, out);
}

/* Term of a live entry or of the snapshot index; the storage.h errors else. */
static int term_at(struct mf_raftlog *log, MDB_txn *txn, uint64_t index, uint64_t *out)
{
    struct mf_raft_snapshot_meta snap;
    struct mf_raft_entry e;
    uint64_t first, last;
    int rc = bounds(log, txn, &snap, &first, &last);
    if (rc != 0)
        return rc;
    if (index < snap.index)
        return MF_ECOMPACTED;
    if (index > last)
        return MF_EUNAVAILABLE_ENTRY;
    if (index == snap.index) {
        *out = snap.term;
        return 0;
    }
    rc = get_entry(log, txn, index, &e);
    if (rc == 0)
        *out = e.term;
    return rc;
}

/* --- the per-thread read transaction --- */

static struct reader *reader_slot(struct mf_raftlog *log)
{
    pthread_t self = pthread_self();
    struct reader *found = NULL, *spare = NULL;
    pthread_mutex_lock(&log->readers_lock);
    for (int i = 0; i < MF_RAFTLOG_READERS_MAX; i++) {
        struct reader *r = &log->readers[i];
        if (r->used && pthread_equal(r->owner, self)) {
            found = r;
            break;
        }
        if (!r->used && !spare)
            spare = r;
    }
    if (!found && spare) {
        spare->used = 1;
        spare->owner = self;
        found = spare;
    }
    pthread_mutex_unlock(&log->readers_lock);
    return found;
}

/* Ends the calling thread's previous read transaction and starts a fresh one
 * that sees the last completed write. Only the owning thread touches the
 * slot's transaction, so no lock is needed beyond the slot lookup. */
static int read_begin(struct mf_raftlog *log, MDB_txn **out)
{
    struct reader *r = reader_slot(log);
    int rc;
    if (!r) {
        MF_ERROR(MOD, "%s: more than %d threads read the log", log->path,
                 MF_RAFTLOG_READERS_MAX);
        return MF_ESTORAGE;
    }
    if (r->txn == NULL) {
        rc = mdb_txn_begin(log->env, NULL, MDB_RDONLY, &r->txn);
        if (rc != 0) {
            r->txn = NULL;
            return lmdb_err(log, rc, "begin read transaction");
        }
    } else {
        if (r->active)
            mdb_txn_reset(r->txn);
        r->active = 0;
        rc = mdb_txn_renew(r->txn);
        if (rc != 0) {
            mdb_txn_abort(r->txn);
            r->txn = NULL;
            return lmdb_err(log, rc, "renew read transaction");
        }
    }
    r->active = 1;
    *out = r->txn;
    return 0;
}

void mf_raftlog_release(struct mf_raftlog *log)
{
    pthread_t self = pthread_self();
    pthread_mutex_lock(&log->readers_lock);
    for (int i = 0; i < MF_RAFTLOG_READERS_MAX; i++) {
        struct reader *r = &log->readers[i];
        if (r->used && pthread_equal(r->owner, self)) {
            if (r->txn)
                mdb_txn_abort(r->txn);
            memset(r, 0, sizeof(*r));
            break;
        }
    }
    pthread_mutex_unlock(&log->readers_lock);
}

/* --- read side --- */

int mf_raftlog_hard_state(struct mf_raftlog *log, struct mf_raft_hard_state *out)
{
    MDB_txn *txn;
    int rc = read_begin(log, &txn);
    return rc != 0 ? rc : load_hard_state(log, txn, out);
}

int mf_raftlog_snapshot_meta(struct mf_raftlog *log, struct mf_raft_snapshot_meta *out)
{
    MDB_txn *txn;
    int rc = read_begin(log, &txn);
    return rc != 0 ? rc : load_snap(log, txn, out);
}

int mf_raftlog_first_index(struct mf_raftlog *log, uint64_t *out)
{
    struct mf_raft_snapshot_meta snap;
    MDB_txn *txn;
    int rc = read_begin(log, &txn);
    if (rc == 0)
        rc = load_snap(log, txn, &snap);
    if (rc == 0)
        *out = snap.index + 1;
    return rc;
}

int mf_raftlog_last_index(struct mf_raftlog *log, uint64_t *out)
{
    struct mf_raft_snapshot_meta snap;
    uint64_t first;
    MDB_txn *txn;
    int rc = read_begin(log, &txn);
    return rc != 0 ? rc : bounds(log, txn, &snap, &first, out);
}

int mf_raftlog_term(struct mf_raftlog *log, uint64_t index, uint64_t *out)
{
    MDB_txn *txn;
    int rc = read_begin(log, &txn);
    return rc != 0 ? rc : term_at(log, txn, index, out);
}

int mf_raftlog_entries(struct mf_raftlog *log, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                       struct mf_raft_entry *out, size_t out_cap, size_t *out_len)
{
    struct mf_raft_snapshot_meta snap;
    uint64_t first, last, total = 0;
    MDB_cursor *cur;
    MDB_txn *txn;
    size_t n = 0;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;

    *out_len = 0;
    if (lo > hi)
        return MF_EINVAL;
    int rc = read_begin(log, &txn);
    if (rc == 0)
        rc = bounds(log, txn, &snap, &first, &last);
    if (rc != 0)
        return rc;
    if (lo < first)
        return MF_ECOMPACTED;
    if (hi > last + 1)
        return MF_EUNAVAILABLE_ENTRY;
    if (lo == hi || out_cap == 0)
        return 0;

    rc = mdb_cursor_open(txn, log->dbi_entries, &cur);
    if (rc != 0)
        return lmdb_err(log, rc, "open cursor");
    put_be64(kb, lo);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    for (uint64_t want = lo; want < hi && n < out_cap; want++) {
        uint64_t idx;
        if (want != lo)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        if (rc == MDB_NOTFOUND) {
            MF_ERROR(MOD, "%s: entry %llu missing inside the live range: log corrupt",
                     log->path, (unsigned long long)want);
            rc = MF_ECORRUPT;
            break;
        }
        if (rc != 0) {
            rc = lmdb_err(log, rc, "read entries");
            break;
        }
        if ((rc = key_index(&k, &idx)) != 0)
            break;
        if (idx != want) {
            MF_ERROR(MOD, "%s: found entry %llu where %llu belongs: log corrupt", log->path,
                     (unsigned long long)idx, (unsigned long long)want);
            rc = MF_ECORRUPT;
            break;
        }
        if ((rc = record_decode(idx, &v, &out[n])) != 0)
            break;
        total += out[n].len;
        if (n > 0 && total > max_bytes)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    *out_len = n;
    return 0;
}

uint64_t mf_raftlog_commits(const struct mf_raftlog *log)
{
    return atomic_load(&((struct mf_raftlog *)log)->commits);
}

/* --- write side --- */

static int write_begin(struct mf_raftlog *log, MDB_txn **txn)
{
    if (atomic_load(&log->failed)) {
        MF_ERROR(MOD, "%s: an earlier commit failed: the log refuses writes until reopened",
                 log->path);
        return MF_ESTORAGE;
    }
    int rc = mdb_txn_begin(log->env, NULL, 0, txn);
    return rc != 0 ? lmdb_err(log, rc, "begin write transaction") : 0;
}

/* A synced commit. A failed commit may leave the kernel's view of the file
 * unknown (a failed fsync can drop dirty pages), so the handle stops writing. */
static int write_commit(struct mf_raftlog *log, MDB_txn *txn, const char *what)
{
    int rc = mdb_txn_commit(txn);
    if (rc != 0) {
        atomic_store(&log->failed, 1);
        return lmdb_err(log, rc, what);
    }
    atomic_fetch_add(&log->commits, 1);
    return 0;
}

static int put_meta(struct mf_raftlog *log, MDB_txn *txn, const char *key, const void *val,
                    size_t len)
{
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    int rc = mdb_put(txn, log->dbi_meta, &k, &v, 0);
    return rc != 0 ? lmdb_err(log, rc, "write metadata") : 0;
}

static int put_snap(struct mf_raftlog *log, MDB_txn *txn, const struct mf_raft_snapshot_meta *m)
{
    uint8_t buf[SNAP_META_FIXED + 16 * 2 * MF_RAFT_NODES_MAX];
    if (m->conf.voters_len > MF_RAFT_NODES_MAX || m->conf.learners_len > MF_RAFT_NODES_MAX)
        return MF_EINVAL;
    snap_meta_encode(buf, m);
    return put_meta(log, txn, KEY_SNAPSHOT, buf, snap_meta_size(m));
}

/* Deletes keys >= from (the conflicting suffix), from the back. */
static int delete_from(struct mf_raftlog *log, MDB_txn *txn, uint64_t from)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t idx;
    int rc = mdb_cursor_open(txn, log->dbi_entries, &cur);
    if (rc != 0)
        return lmdb_err(log, rc, "open cursor");
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0) {
        if ((rc = key_index(&k, &idx)) != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
        if (idx < from)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc == 0 || rc == MDB_NOTFOUND)
        return 0;
    return lmdb_err(log, rc, "truncate log suffix");
}

/* Deletes up to max keys <= upto, from the front; *more = 1 if some remain. */
static int delete_upto(struct mf_raftlog *log, MDB_txn *txn, uint64_t upto, uint64_t max,
                       int *more)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t idx, done = 0;
    int rc = mdb_cursor_open(txn, log->dbi_entries, &cur);
    *more = 0;
    if (rc != 0)
        return lmdb_err(log, rc, "open cursor");
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        if ((rc = key_index(&k, &idx)) != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
        if (idx > upto)
            break;
        if (done == max) {
            *more = 1;
            break;
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        done++;
    }
    mdb_cursor_close(cur);
    if (rc == 0 || rc == MDB_NOTFOUND)
        return 0;
    return lmdb_err(log, rc, "compact log");
}

/* Deletes the stale prefix (keys <= snapshot index) left by an interrupted
 * compaction, in bounded transactions. */
static int finish_compaction(struct mf_raftlog *log)
{
    for (;;) {
        struct mf_raft_snapshot_meta snap;
        MDB_txn *txn;
        uint64_t first_key = 0;
        int found = 0, more = 0;
        int rc = write_begin(log, &txn);
        if (rc != 0)
            return rc;
        rc = load_snap(log, txn, &snap);
        if (rc == 0)
            rc = edge_key(log, txn, MDB_FIRST, &first_key, &found);
        if (rc != 0 || !found || first_key > snap.index) {
            mdb_txn_abort(txn);
            return rc;
        }
        rc = delete_upto(log, txn, snap.index, log->compact_batch_entries, &more);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        if ((rc = write_commit(log, txn, "compact log")) != 0)
            return rc;
        if (!more)
            return 0;
    }
}

int mf_raftlog_save(struct mf_raftlog *log, const struct mf_raft_hard_state *hs,
                    const struct mf_raft_entry *ents, size_t n)
{
    struct mf_raft_snapshot_meta snap;
    uint64_t first, last;
    MDB_cursor *cur = NULL;
    MDB_txn *txn;
    int rc;

    if (hs == NULL && n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (ents[i].index != ents[0].index + i || ents[i].term == 0 ||
            ents[i].type > MF_RAFT_ENTRY_NOOP || ents[i].len > ENTRY_DATA_MAX ||
            (ents[i].len > 0 && ents[i].data == NULL) ||
            (i > 0 && ents[i].term < ents[i - 1].term)) {
            MF_ERROR(MOD, "%s: save: entry %zu of %zu is malformed (index %llu term %llu)",
                     log->path, i, n, (unsigned long long)ents[i].index,
                     (unsigned long long)ents[i].term);
            return MF_EINVAL;
        }
    }
    if ((rc = write_begin(log, &txn)) != 0)
        return rc;
    if (n > 0) {
        if ((rc = bounds(log, txn, &snap, &first, &last)) != 0)
            goto fail;
        if (ents[0].index < first || ents[0].index > last + 1) {
            MF_ERROR(MOD, "%s: save: entries from %llu do not follow the log [%llu, %llu]",
                     log->path, (unsigned long long)ents[0].index,
                     (unsigned long long)first, (unsigned long long)last);
            rc = MF_EINVAL;
            goto fail;
        }
        if (ents[0].index <= last && (rc = delete_from(log, txn, ents[0].index)) != 0)
            goto fail;
        if ((rc = mdb_cursor_open(txn, log->dbi_entries, &cur)) != 0) {
            rc = lmdb_err(log, rc, "open cursor");
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            uint8_t kb[8];
            MDB_val k = {8, kb};
            MDB_val v = {(size_t)MF_RAFTLOG_ENTRY_HEADER + ents[i].len, NULL};
            put_be64(kb, ents[i].index);
            /* Keys only grow: MDB_APPEND fills pages completely and skips the
             * search; MDB_RESERVE lets us write the record in place. */
            rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND | MDB_RESERVE);
            if (rc != 0) {
                rc = lmdb_err(log, rc, "append entries");
                goto fail_cursor;
            }
            record_encode_header(v.mv_data, &ents[i]);
            if (ents[i].len > 0)
                memcpy((uint8_t *)v.mv_data + MF_RAFTLOG_ENTRY_HEADER, ents[i].data,
                       ents[i].len);
        }
        mdb_cursor_close(cur);
    }
    if (hs != NULL) {
        uint8_t buf[24];
        put_le64(buf, hs->term);
        put_le64(buf + 8, hs->vote);
        put_le64(buf + 16, hs->commit);
        if ((rc = put_meta(log, txn, KEY_HARD_STATE, buf, sizeof(buf))) != 0)
            goto fail;
    }
    return write_commit(log, txn, "commit log batch");

fail_cursor:
    mdb_cursor_close(cur);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int mf_raftlog_compact(struct mf_raftlog *log, const struct mf_raft_snapshot_meta *meta)
{
    struct mf_raft_snapshot_meta snap;
    struct mf_raft_entry e;
    uint64_t first, last;
    MDB_txn *txn;
    int more = 0;
    int rc = write_begin(log, &txn);
    if (rc != 0)
        return rc;
    if ((rc = bounds(log, txn, &snap, &first, &last)) != 0)
        goto fail;
    if (meta->index <= snap.index) { /* already compacted that far */
        mdb_txn_abort(txn);
        return 0;
    }
    if (meta->index > last) {
        rc = MF_EUNAVAILABLE_ENTRY;
        goto fail;
    }
    if ((rc = get_entry(log, txn, meta->index, &e)) != 0)
        goto fail;
    if (e.term != meta->term) {
        MF_ERROR(MOD, "%s: compact: entry %llu has term %llu, snapshot says %llu", log->path,
                 (unsigned long long)meta->index, (unsigned long long)e.term,
                 (unsigned long long)meta->term);
        rc = MF_EINVAL;
        goto fail;
    }
    if ((rc = put_snap(log, txn, meta)) != 0)
        goto fail;
    if ((rc = delete_upto(log, txn, meta->index, log->compact_batch_entries, &more)) != 0)
        goto fail;
    if ((rc = write_commit(log, txn, "compact log")) != 0)
        return rc;
    return more ? finish_compaction(log) : 0;
fail:
    mdb_txn_abort(txn);
    return rc;
}

int mf_raftlog_install_snapshot(struct mf_raftlog *log, const struct mf_raft_snapshot_meta *meta)
{
    struct mf_raft_snapshot_meta snap;
    uint64_t first, last, t = 0;
    MDB_txn *txn;
    int keep = 0, more = 0;
    int rc;
    if (meta->index == 0 || meta->term == 0)
        return MF_EINVAL;
    if ((rc = write_begin(log, &txn)) != 0)
        return rc;
    if ((rc = bounds(log, txn, &snap, &first, &last)) != 0)
        goto fail;
    if (meta->index < snap.index) { /* older than what we have: nothing to do */
        mdb_txn_abort(txn);
        return 0;
    }
    if (meta->index <= last) {
        rc = term_at(log, txn, meta->index, &t);
        if (rc != 0)
            goto fail;
        keep = t == meta->term;
    }
    if ((rc = put_snap(log, txn, meta)) != 0)
        goto fail;
    if (keep) {
        rc = delete_upto(log, txn, meta->index, log->compact_batch_entries, &more);
    } else if ((rc = mdb_drop(txn, log->dbi_entries, 0)) != 0) {
        rc = lmdb_err(log, rc, "drop log");
    }
    if (rc != 0)
        goto fail;
    if ((rc = write_commit(log, txn, "install snapshot")) != 0)
        return rc;
    return more ? finish_compaction(log) : 0;
fail:
    mdb_txn_abort(txn);
    return rc;
}

/* --- storage interface --- */

static int st_hard_state(void *ctx, struct mf_raft_hard_state *out)
{
    return mf_raftlog_hard_state(ctx, out);
}
static int st_snapshot_meta(void *ctx, struct mf_raft_snapshot_meta *out)
{
    return mf_raftlog_snapshot_meta(ctx, out);
}
static int st_first_index(void *ctx, uint64_t *out)
{
    return mf_raftlog_first_index(ctx, out);
}
static int st_last_index(void *ctx, uint64_t *out)
{
    return mf_raftlog_last_index(ctx, out);
}
static int st_term(void *ctx, uint64_t index, uint64_t *out)
{
    return mf_raftlog_term(ctx, index, out);
}
static int st_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct mf_raft_entry *out, size_t out_cap, size_t *out_len)
{
    return mf_raftlog_entries(ctx, lo, hi, max_bytes, out, out_cap, out_len);
}
static int st_save(void *ctx, const struct mf_raft_hard_state *hs,
                   const struct mf_raft_entry *ents, size_t n)
{
    return mf_raftlog_save(ctx, hs, ents, n);
}
static int st_compact(void *ctx, const struct mf_raft_snapshot_meta *meta)
{
    return mf_raftlog_compact(ctx, meta);
}
static int st_install_snapshot(void *ctx, const struct mf_raft_snapshot_meta *meta)
{
    return mf_raftlog_install_snapshot(ctx, meta);
}

void mf_raftlog_storage(struct mf_raftlog *log, struct mf_raft_storage *out)
{
    memset(out, 0, sizeof(*out));
    out->ctx = log;
    out->hard_state = st_hard_state;
    out->snapshot_meta = st_snapshot_meta;
    out->first_index = st_first_index;
    out->last_index = st_last_index;
    out->term = st_term;
    out->entries = st_entries;
    out->save = st_save;
    out->compact = st_compact;
    out->install_snapshot = st_install_snapshot;
}

/* --- open / close --- */

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    if (rc != 0)
        MF_ERROR(MOD, "fsync %s: %s", path, strerror(-rc));
    return rc;
}

static int env_open(const char *path, uint64_t map_size_bytes, MDB_env **out)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc != 0)
        return lmdb_err(NULL, rc, "create LMDB environment");
    /* MDB_NOTLS: read transactions are owned by our reader slots, not by
     * LMDB's thread-local storage. The sync flags stay LMDB's default. */
    if ((rc = mdb_env_set_mapsize(env, (size_t)map_size_bytes)) != 0 ||
        (rc = mdb_env_set_maxdbs(env, 2)) != 0 ||
        (rc = mdb_env_open(env, path, MDB_NOTLS, 0600)) != 0) {
        MF_ERROR(MOD, "%s: open LMDB environment: %s", path, mdb_strerror(rc));
        mdb_env_close(env);
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED)
            return MF_ECORRUPT;
        return rc > 0 ? -rc : MF_ESTORAGE;
    }
    *out = env;
    return 0;
}

static void remove_tmp(const char *tmp)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/data.mdb", tmp);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", tmp);
    unlink(p);
    rmdir(tmp);
}

/* Creates DIR/log atomically: build it in DIR/log.tmp, make it durable, then
 * rename. LMDB writes a new file's first meta pages without a sync, so a log
 * created in place could be found torn after a power cut. */
static int create_log(const char *dir, const char *path, uint64_t map_size_bytes)
{
    char tmp[PATH_MAX];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t ver[4];
    int rc;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return MF_EINVAL;
    remove_tmp(tmp);
    if (mkdir(tmp, 0700) != 0) {
        rc = -errno;
        MF_ERROR(MOD, "mkdir %s: %s", tmp, strerror(errno));
        return rc;
    }
    if ((rc = env_open(tmp, map_size_bytes, &env)) != 0)
        goto fail_tmp;
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
        goto fail_lmdb;
    put_le32(ver, FORMAT_VERSION);
    MDB_val k = {sizeof(KEY_FORMAT) - 1, (void *)KEY_FORMAT}, v = {4, ver};
    if ((rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &dbi)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi)) != 0 ||
        (rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        goto fail_lmdb;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) /* synced: data pages, then meta */
        goto fail_lmdb;
    mdb_env_close(env);
    if ((rc = fsync_path(tmp)) != 0)
        goto fail_tmp;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        MF_ERROR(MOD, "rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail_tmp;
    }
    return fsync_path(dir);

fail_lmdb:
    rc = lmdb_err(NULL, rc, "create log");
    mdb_env_close(env);
fail_tmp:
    remove_tmp(tmp);
    return rc;
}

/* Opens the named databases and checks the format and the metadata. */
static int check_log(struct mf_raftlog *log)
{
    struct mf_raft_snapshot_meta snap;
    struct mf_raft_hard_state hs;
    struct mf_raft_entry e;
    uint64_t first, last;
    MDB_txn *txn;
    int rc = mdb_txn_begin(log->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return lmdb_err(log, rc, "begin read transaction");
    if ((rc = mdb_dbi_open(txn, "entries", 0, &log->dbi_entries)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", 0, &log->dbi_meta)) != 0) {
        mdb_txn_abort(txn);
        MF_ERROR(MOD, "%s: log databases missing (%s): not a mayfly log", log->path,
                 mdb_strerror(rc));
        return MF_ECORRUPT;
    }
    MDB_val k = {sizeof(KEY_FORMAT) - 1, (void *)KEY_FORMAT}, v;
    rc = mdb_get(txn, log->dbi_meta, &k, &v);
    if (rc != 0 || v.mv_size != 4 || get_le32(v.mv_data) != FORMAT_VERSION) {
        mdb_txn_abort(txn);
        MF_ERROR(MOD, "%s: unknown log format (want version %u)", log->path, FORMAT_VERSION);
        return MF_ECORRUPT;
    }
    /* Decode what restart depends on: metadata and both ends of the log. */
    rc = load_hard_state(log, txn, &hs);
    if (rc == 0)
        rc = bounds(log, txn, &snap, &first, &last);
    if (rc == 0 && last >= first)
        rc = get_entry(log, txn, first, &e);
    if (rc == 0 && last >= first)
        rc = get_entry(log, txn, last, &e);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    /* Committing keeps the database handles for the environment. */
    rc = mdb_txn_commit(txn);
    return rc != 0 ? lmdb_err(log, rc, "open databases") : 0;
}

/* LMDB must never open one environment twice in a process (closing either
 * would drop the other's file locks): the logs open here, by directory. */
#define OPEN_LOGS_MAX 64
static pthread_mutex_t open_logs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mf_raftlog *open_logs[OPEN_LOGS_MAX];

/* Registers log (open_logs_lock held); MF_EEXISTS if its directory is open. */
static int register_open(struct mf_raftlog *log)
{
    struct mf_raftlog **slot = NULL;
    for (int i = 0; i < OPEN_LOGS_MAX; i++) {
        struct mf_raftlog *o = open_logs[i];
        if (o && o->dev == log->dev && o->ino == log->ino) {
            MF_ERROR(MOD, "%s is already open in this process", log->path);
            return MF_EEXISTS;
        }
        if (!o && !slot)
            slot = &open_logs[i];
    }
    if (!slot) {
        MF_ERROR(MOD, "more than %d logs open in this process", OPEN_LOGS_MAX);
        return MF_EINVAL;
    }
    *slot = log;
    return 0;
}

static void unregister_open(struct mf_raftlog *log)
{
    pthread_mutex_lock(&open_logs_lock);
    for (int i = 0; i < OPEN_LOGS_MAX; i++)
        if (open_logs[i] == log)
            open_logs[i] = NULL;
    pthread_mutex_unlock(&open_logs_lock);
}

static int open_locked(const char *dir, struct mf_raftlog *log);

int mf_raftlog_open(const char *dir, const struct mf_raftlog_opts *opts,
                    struct mf_raftlog **out)
{
    struct mf_raftlog *log;
    int rc;

    *out = NULL;
    if (dir == NULL || *dir == '\0')
        return MF_EINVAL;
    log = calloc(1, sizeof(*log));
    if (log == NULL)
        return -ENOMEM;
    log->map_size_bytes = opts && opts->map_size_bytes ? opts->map_size_bytes
                                                       : MF_RAFTLOG_MAP_SIZE_DEFAULT;
    log->compact_batch_entries = opts && opts->compact_batch_entries
                                     ? opts->compact_batch_entries
                                     : COMPACT_BATCH_DEFAULT;
    if ((size_t)snprintf(log->path, sizeof(log->path), "%s/log", dir) >= sizeof(log->path) - 8) {
        free(log);
        return MF_EINVAL;
    }
    pthread_mutex_init(&log->readers_lock, NULL);
    pthread_mutex_lock(&open_logs_lock);
    rc = open_locked(dir, log);
    pthread_mutex_unlock(&open_logs_lock);
    if (rc != 0) {
        pthread_mutex_destroy(&log->readers_lock);
        free(log);
        return rc;
    }
    *out = log;
    return 0;
}

/* The body of mf_raftlog_open, under open_logs_lock so that two opens of one
 * directory cannot race past the check. */
static int open_locked(const char *dir, struct mf_raftlog *log)
{
    struct stat st;
    char data[PATH_MAX + 16];
    int rc;

    if (stat(log->path, &st) != 0) {
        if (errno != ENOENT) {
            rc = -errno;
            MF_ERROR(MOD, "stat %s: %s", log->path, strerror(errno));
            return rc;
        }
        if ((rc = create_log(dir, log->path, log->map_size_bytes)) != 0)
            return rc;
        MF_INFO(MOD, "created raft log %s", log->path);
        if (stat(log->path, &st) != 0)
            return -errno;
    } else {
        snprintf(data, sizeof(data), "%s/data.mdb", log->path);
        if (!S_ISDIR(st.st_mode) || access(data, F_OK) != 0) {
            MF_ERROR(MOD, "%s exists but holds no log (no data.mdb)", log->path);
            return MF_ECORRUPT;
        }
    }
    log->dev = st.st_dev;
    log->ino = st.st_ino;
    if ((rc = register_open(log)) != 0)
        return rc;
    if ((rc = env_open(log->path, log->map_size_bytes, &log->env)) != 0)
        goto fail_registered;
    /* Reader slots left in the lock file by a process that died (a crash)
     * would pin old pages: clear them. */
    mdb_reader_check(log->env, NULL);
    if ((rc = check_log(log)) != 0)
        goto fail_env;
    if ((rc = finish_compaction(log)) != 0)
        goto fail_env;
    return 0;

fail_env:
    mdb_env_close(log->env);
fail_registered:
    for (int i = 0; i < OPEN_LOGS_MAX; i++)
        if (open_logs[i] == log)
            open_logs[i] = NULL;
    return rc;
}

void mf_raftlog_close(struct mf_raftlog *log)
{
    if (log == NULL)
        return;
    for (int i = 0; i < MF_RAFTLOG_READERS_MAX; i++) {
        if (log->readers[i].txn)
            mdb_txn_abort(log->readers[i].txn);
    }
    mdb_env_close(log->env);
    unregister_open(log);
    pthread_mutex_destroy(&log->readers_lock);
    free(log);
}

int mf_raftlog_usage(struct mf_raftlog *log, struct mf_lmdb_usage *out)
{
    return mf_lmdb_usage(log->env, out);
}
