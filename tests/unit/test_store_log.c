/* Tests of src/store/log.c: the Raft log and hard state on LMDB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "store/log.h"
#include "tmpdir.h"

static char tmpdir[64]; /* a longer $TMPDIR makes setup fail */

static int make_tmpdir(void **state)
{
    (void)state;
    mf_log_set_level(MF_LOG_OFF);
    return mf_tmpdir_make("test-log", tmpdir, sizeof(tmpdir));
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return mf_tmpdir_remove(tmpdir);
}

/* Entry payloads are derived from (index, term) so any read can be checked. */
#define PAYLOAD_MAX 4096
static uint8_t payloads[1024][PAYLOAD_MAX];

static uint32_t payload_len(uint64_t index)
{
    return (uint32_t)(10 + index % 50);
}

static void fill_payload(uint8_t *p, uint64_t index, uint64_t term, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(index * 31 + term * 7 + i);
}

/* Builds n entries from index lo with term, into ents (payload buffers are
 * static: at most 1024 entries per batch). */
static void make_entries(struct mf_raft_entry *ents, uint64_t lo, size_t n, uint64_t term)
{
    assert_true(n <= 1024);
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = lo + i;
        ents[i].index = idx;
        ents[i].term = term;
        ents[i].type = MF_RAFT_ENTRY_NORMAL;
        ents[i].len = payload_len(idx);
        fill_payload(payloads[i], idx, term, ents[i].len);
        ents[i].data = payloads[i];
    }
}

static void check_entry(const struct mf_raft_entry *e, uint64_t index, uint64_t term)
{
    uint8_t want[PAYLOAD_MAX];
    assert_int_equal(e->index, index);
    assert_int_equal(e->term, term);
    assert_int_equal(e->len, payload_len(index));
    fill_payload(want, index, term, e->len);
    assert_memory_equal(e->data, want, e->len);
}

static struct mf_raftlog *open_log(uint64_t map_size)
{
    struct mf_raftlog_opts opts = {.map_size_bytes = map_size, .compact_batch_entries = 7};
    struct mf_raftlog *log = NULL;
    assert_int_equal(mf_raftlog_open(tmpdir, &opts, &log), 0);
    assert_non_null(log);
    return log;
}

static void append(struct mf_raftlog *log, uint64_t lo, size_t n, uint64_t term)
{
    static struct mf_raft_entry ents[1024];
    make_entries(ents, lo, n, term);
    assert_int_equal(mf_raftlog_save(log, NULL, ents, n), 0);
}

static void check_bounds(struct mf_raftlog *log, uint64_t first, uint64_t last)
{
    uint64_t v;
    assert_int_equal(mf_raftlog_first_index(log, &v), 0);
    assert_int_equal(v, first);
    assert_int_equal(mf_raftlog_last_index(log, &v), 0);
    assert_int_equal(v, last);
}

/* A fresh log is empty (first 1, last 0, term(0) 0, zero hard state) and was
 * created atomically (no temporary directory left behind). */
static void test_store_log_fresh_is_empty(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_hard_state hs = {1, 1, 1};
    struct mf_raft_snapshot_meta sm = {.index = 9};
    uint64_t t = 9;
    check_bounds(log, 1, 0);
    assert_int_equal(mf_raftlog_term(log, 0, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(mf_raftlog_term(log, 1, &t), MF_EUNAVAILABLE_ENTRY);
    assert_int_equal(mf_raftlog_hard_state(log, &hs), 0);
    assert_int_equal(hs.term + hs.vote + hs.commit, 0);
    assert_int_equal(mf_raftlog_snapshot_meta(log, &sm), 0);
    assert_int_equal(sm.index, 0);
    mf_raftlog_close(log);
    char p[128];
    snprintf(p, sizeof(p), "%s/log.tmp", tmpdir);
    assert_int_equal(access(p, F_OK), -1);
}

/* Appended entries read back in ranges, and max_bytes cuts a range after the
 * last entry that fits while always returning at least one. */
static void test_store_log_append_read_ranges_max_bytes(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_entry out[64];
    size_t n;
    append(log, 1, 10, 1);
    append(log, 11, 20, 2);
    check_bounds(log, 1, 30);

    assert_int_equal(mf_raftlog_entries(log, 1, 31, UINT64_MAX, out, 64, &n), 0);
    assert_int_equal(n, 30);
    for (size_t i = 0; i < n; i++)
        check_entry(&out[i], i + 1, i < 10 ? 1 : 2);

    /* out_cap bounds the answer too. */
    assert_int_equal(mf_raftlog_entries(log, 5, 31, UINT64_MAX, out, 4, &n), 0);
    assert_int_equal(n, 4);
    check_entry(&out[3], 8, 1);

    /* Entries 3, 4, 5 have 13 + 14 + 15 bytes: 42 fits three, 41 two. */
    assert_int_equal(mf_raftlog_entries(log, 3, 10, 42, out, 64, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(mf_raftlog_entries(log, 3, 10, 41, out, 64, &n), 0);
    assert_int_equal(n, 2);
    /* A budget smaller than the first entry still yields that entry. */
    assert_int_equal(mf_raftlog_entries(log, 3, 10, 0, out, 64, &n), 0);
    assert_int_equal(n, 1);
    check_entry(&out[0], 3, 1);
    /* An empty range is no error. */
    assert_int_equal(mf_raftlog_entries(log, 7, 7, 0, out, 64, &n), 0);
    assert_int_equal(n, 0);
    mf_raftlog_close(log);
}

/* Reads before the first index fail with MF_ECOMPACTED and reads after the
 * last with MF_EUNAVAILABLE_ENTRY; a gap in save() is refused. */
static void test_store_log_compacted_and_unavailable(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_entry out[16], ents[4];
    struct mf_raft_snapshot_meta sm = {.index = 5, .term = 1};
    size_t n;
    uint64_t t;
    append(log, 1, 10, 1);
    assert_int_equal(mf_raftlog_compact(log, &sm), 0);
    assert_int_equal(mf_raftlog_entries(log, 5, 8, UINT64_MAX, out, 16, &n), MF_ECOMPACTED);
    assert_int_equal(mf_raftlog_entries(log, 6, 12, UINT64_MAX, out, 16, &n),
                     MF_EUNAVAILABLE_ENTRY);
    assert_int_equal(mf_raftlog_entries(log, 6, 11, UINT64_MAX, out, 16, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(mf_raftlog_term(log, 4, &t), MF_ECOMPACTED);
    assert_int_equal(mf_raftlog_term(log, 11, &t), MF_EUNAVAILABLE_ENTRY);
    make_entries(ents, 12, 2, 1);
    assert_int_equal(mf_raftlog_save(log, NULL, ents, 2), MF_EINVAL);
    make_entries(ents, 3, 2, 1);
    assert_int_equal(mf_raftlog_save(log, NULL, ents, 2), MF_EINVAL);
    check_bounds(log, 6, 10);
    mf_raftlog_close(log);
}

/* term() answers the snapshot index from the snapshot metadata, even once the
 * entry itself is gone. */
static void test_store_log_term_at_snapshot_boundary(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_snapshot_meta sm = {.index = 7, .term = 2};
    uint64_t t;
    append(log, 1, 5, 1);
    append(log, 6, 5, 2);
    assert_int_equal(mf_raftlog_compact(log, &sm), 0);
    check_bounds(log, 8, 10);
    assert_int_equal(mf_raftlog_term(log, 7, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(mf_raftlog_term(log, 8, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(mf_raftlog_term(log, 6, &t), MF_ECOMPACTED);
    mf_raftlog_close(log);
}

/* Saving entries that start inside the log replaces the whole suffix from
 * there, in the same transaction as the hard state. */
static void test_store_log_suffix_replacement(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_entry ents[8], out[32];
    struct mf_raft_hard_state hs = {.term = 3, .vote = 2, .commit = 4}, got;
    size_t n;
    append(log, 1, 10, 1);
    make_entries(ents, 5, 3, 3);
    assert_int_equal(mf_raftlog_save(log, &hs, ents, 3), 0);
    check_bounds(log, 1, 7);
    assert_int_equal(mf_raftlog_entries(log, 1, 8, UINT64_MAX, out, 32, &n), 0);
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++)
        check_entry(&out[i], i + 1, i < 4 ? 1 : 3);
    assert_int_equal(mf_raftlog_hard_state(log, &got), 0);
    assert_memory_equal(&got, &hs, sizeof(hs));
    /* Replace from the very first entry. */
    append(log, 1, 2, 4);
    check_bounds(log, 1, 2);
    /* The hard state alone is a valid save. */
    hs.commit = 2;
    assert_int_equal(mf_raftlog_save(log, &hs, NULL, 0), 0);
    assert_int_equal(mf_raftlog_hard_state(log, &got), 0);
    assert_int_equal(got.commit, 2);
    mf_raftlog_close(log);
}

/* compact() drops entries up to the index (in several bounded transactions),
 * records the metadata, refuses a wrong term and ignores an older index. */
static void test_store_log_compact(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_snapshot_meta sm = {.index = 50, .term = 1}, got;
    struct mf_raft_entry out[8];
    size_t n;
    sm.conf.voters_len = 3;
    sm.conf.voters[0] = 1, sm.conf.voters[1] = 2, sm.conf.voters[2] = 3;
    sm.conf.learners_len = 1;
    sm.conf.learners[0] = 9;
    append(log, 1, 100, 1);
    struct mf_raft_snapshot_meta bad = {.index = 50, .term = 2};
    assert_int_equal(mf_raftlog_compact(log, &bad), MF_EINVAL);
    struct mf_raft_snapshot_meta far = {.index = 101, .term = 1};
    assert_int_equal(mf_raftlog_compact(log, &far), MF_EUNAVAILABLE_ENTRY);
    assert_int_equal(mf_raftlog_compact(log, &sm), 0);
    check_bounds(log, 51, 100);
    assert_int_equal(mf_raftlog_snapshot_meta(log, &got), 0);
    assert_memory_equal(&got, &sm, sizeof(sm));
    struct mf_raft_snapshot_meta older = {.index = 20, .term = 1};
    assert_int_equal(mf_raftlog_compact(log, &older), 0);
    check_bounds(log, 51, 100);
    assert_int_equal(mf_raftlog_entries(log, 51, 53, UINT64_MAX, out, 8, &n), 0);
    assert_int_equal(n, 2);
    check_entry(&out[0], 51, 1);
    /* Compacting everything leaves an empty log that continues after it. */
    struct mf_raft_snapshot_meta all = {.index = 100, .term = 1};
    assert_int_equal(mf_raftlog_compact(log, &all), 0);
    check_bounds(log, 101, 100);
    append(log, 101, 3, 2);
    check_bounds(log, 101, 103);
    mf_raftlog_close(log);
}

/* install_snapshot keeps the entries after its index when the entry there has
 * the snapshot's term. */
static void test_store_log_install_snapshot_keeps_matching(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_snapshot_meta sm = {.index = 6, .term = 2};
    struct mf_raft_entry out[8];
    size_t n;
    uint64_t t;
    append(log, 1, 5, 1);
    append(log, 6, 5, 2);
    assert_int_equal(mf_raftlog_install_snapshot(log, &sm), 0);
    check_bounds(log, 7, 10);
    assert_int_equal(mf_raftlog_term(log, 6, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(mf_raftlog_entries(log, 7, 11, UINT64_MAX, out, 8, &n), 0);
    assert_int_equal(n, 4);
    check_entry(&out[3], 10, 2);
    mf_raftlog_close(log);
}

/* install_snapshot drops the whole log when the term differs or the index is
 * beyond the log, and the log then continues after the snapshot. */
static void test_store_log_install_snapshot_drops_all(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_snapshot_meta sm = {.index = 6, .term = 3};
    uint64_t t;
    append(log, 1, 10, 1);
    assert_int_equal(mf_raftlog_install_snapshot(log, &sm), 0);
    check_bounds(log, 7, 6);
    assert_int_equal(mf_raftlog_term(log, 6, &t), 0);
    assert_int_equal(t, 3);
    append(log, 7, 2, 3);
    check_bounds(log, 7, 8);
    struct mf_raft_snapshot_meta beyond = {.index = 20, .term = 4};
    assert_int_equal(mf_raftlog_install_snapshot(log, &beyond), 0);
    check_bounds(log, 21, 20);
    /* An older snapshot changes nothing. */
    assert_int_equal(mf_raftlog_install_snapshot(log, &sm), 0);
    check_bounds(log, 21, 20);
    mf_raftlog_close(log);
}

/* Closing and reopening restores the hard state, the entries and the snapshot
 * metadata exactly. */
static void test_store_log_restart_restores_state(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_hard_state hs = {.term = 7, .vote = 3, .commit = 30}, got_hs;
    struct mf_raft_snapshot_meta sm = {.index = 12, .term = 2}, got_sm;
    struct mf_raft_entry ents[40], out[64];
    size_t n;
    sm.conf.voters_len = 2;
    sm.conf.voters[0] = 3, sm.conf.voters[1] = 5;
    append(log, 1, 10, 1);
    append(log, 11, 20, 2);
    make_entries(ents, 31, 5, 7);
    ents[2].type = MF_RAFT_ENTRY_CONF;
    ents[3].type = MF_RAFT_ENTRY_NOOP;
    ents[3].len = 0;
    ents[3].data = NULL;
    assert_int_equal(mf_raftlog_save(log, &hs, ents, 5), 0);
    assert_int_equal(mf_raftlog_compact(log, &sm), 0);
    mf_raftlog_close(log);

    log = open_log(0);
    check_bounds(log, 13, 35);
    assert_int_equal(mf_raftlog_hard_state(log, &got_hs), 0);
    assert_memory_equal(&got_hs, &hs, sizeof(hs));
    assert_int_equal(mf_raftlog_snapshot_meta(log, &got_sm), 0);
    assert_memory_equal(&got_sm, &sm, sizeof(sm));
    assert_int_equal(mf_raftlog_entries(log, 13, 36, UINT64_MAX, out, 64, &n), 0);
    assert_int_equal(n, 23);
    for (size_t i = 0; i < 18; i++)
        check_entry(&out[i], 13 + i, 2);
    check_entry(&out[18], 31, 7);
    assert_int_equal(out[20].type, MF_RAFT_ENTRY_CONF);
    assert_int_equal(out[21].type, MF_RAFT_ENTRY_NOOP);
    assert_int_equal(out[21].len, 0);
    mf_raftlog_close(log);
}

/* A full map is reported as MF_EMAPFULL, writes nothing, and the log works
 * again once compaction frees space. */
static void test_store_log_map_full_reported(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(256 * 1024);
    static struct mf_raft_entry ents[64];
    static uint8_t big[2000];
    uint64_t next = 1, last;
    int rc = 0;
    memset(big, 'x', sizeof(big));
    while (next < 100000) {
        for (size_t i = 0; i < 64; i++)
            ents[i] = (struct mf_raft_entry){
                .index = next + i, .term = 1, .len = sizeof(big), .data = big};
        rc = mf_raftlog_save(log, NULL, ents, 64);
        if (rc != 0)
            break;
        next += 64;
    }
    assert_int_equal(rc, MF_EMAPFULL);
    assert_int_equal(mf_raftlog_last_index(log, &last), 0);
    assert_int_equal(last, next - 1);
    struct mf_raft_snapshot_meta sm = {.index = last, .term = 1};
    assert_int_equal(mf_raftlog_compact(log, &sm), 0);
    /* ents still holds the batch that did not fit: indexes last + 1 on. */
    assert_int_equal(ents[0].index, last + 1);
    assert_int_equal(mf_raftlog_save(log, NULL, ents, 4), 0);
    assert_int_equal(mf_raftlog_last_index(log, &last), 0);
    assert_int_equal(last, next + 3);
    mf_raftlog_close(log);
}

/* A record whose length disagrees with its header is reported as
 * MF_ECORRUPT, not read past. */
static void test_store_log_bad_record_is_corrupt(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_entry out[8];
    size_t n;
    uint64_t t;
    append(log, 1, 5, 1);
    mf_raftlog_close(log);

    /* Overwrite entry 3 with a record whose header claims more data. */
    char path[128];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 3}, rec[30] = {0};
    rec[0] = 3;   /* index */
    rec[8] = 1;   /* term */
    rec[20] = 99; /* len: 99, but only 6 bytes follow */
    MDB_val k = {8, key}, v = {sizeof(rec), rec};
    snprintf(path, sizeof(path), "%s/log", tmpdir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 2), 0);
    assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "entries", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    log = open_log(0);
    assert_int_equal(mf_raftlog_entries(log, 1, 6, UINT64_MAX, out, 8, &n), MF_ECORRUPT);
    assert_int_equal(mf_raftlog_term(log, 3, &t), MF_ECORRUPT);
    assert_int_equal(mf_raftlog_entries(log, 4, 6, UINT64_MAX, out, 8, &n), 0);
    assert_int_equal(n, 2);
    mf_raftlog_close(log);
}

/* The storage struct calls through to the log. */
static void test_store_log_storage_interface(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0);
    struct mf_raft_storage st;
    struct mf_raft_entry ents[3], out[3];
    size_t n;
    uint64_t v;
    mf_raftlog_storage(log, &st);
    assert_ptr_equal(st.ctx, log);
    make_entries(ents, 1, 3, 1);
    assert_int_equal(st.save(st.ctx, NULL, ents, 3), 0);
    assert_int_equal(st.last_index(st.ctx, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(st.entries(st.ctx, 1, 4, UINT64_MAX, out, 3, &n), 0);
    assert_int_equal(n, 3);
    check_entry(&out[2], 3, 1);
    mf_raftlog_close(log);
}

/* A half-made log left in log.tmp by a crash during creation is discarded,
 * and a log directory without its data file is refused, not recreated. */
static void test_store_log_creation_leftovers(void **state)
{
    (void)state;
    char p[160];
    snprintf(p, sizeof(p), "%s/log.tmp", tmpdir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/log.tmp/data.mdb", tmpdir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("torn", f);
    fclose(f);
    struct mf_raftlog *log = open_log(0);
    append(log, 1, 3, 1);
    check_bounds(log, 1, 3);
    mf_raftlog_close(log);
    snprintf(p, sizeof(p), "%s/log.tmp", tmpdir);
    assert_int_equal(access(p, F_OK), -1);

    snprintf(p, sizeof(p), "%s/log/data.mdb", tmpdir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mf_raftlog_open(tmpdir, NULL, &log), MF_ECORRUPT);
    assert_null(log);
}

/* A second open of the same log in one process is refused (LMDB would lose
 * its locks), and allowed again once the first handle is closed. */
static void test_store_log_open_twice_refused(void **state)
{
    (void)state;
    struct mf_raftlog *log = open_log(0), *again = NULL;
    assert_int_equal(mf_raftlog_open(tmpdir, NULL, &again), MF_EEXISTS);
    assert_null(again);
    mf_raftlog_close(log);
    log = open_log(0);
    mf_raftlog_close(log);
}

/* --- a reader thread while the writer thread appends --- */

#define RW_BATCHES 300
#define RW_BATCH 16

struct rw_ctx {
    struct mf_raftlog *log;
    atomic_int done;
    atomic_int reads;
    atomic_int errors;
};

static void *reader_main(void *arg)
{
    struct rw_ctx *c = arg;
    struct mf_raft_entry out[64];
    uint8_t want[PAYLOAD_MAX];
    uint64_t seen = 0;
    while (!atomic_load(&c->done)) {
        uint64_t first, last;
        size_t n;
        if (mf_raftlog_first_index(c->log, &first) != 0 ||
            mf_raftlog_last_index(c->log, &last) != 0 || last < seen) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        seen = last;
        if (last < first)
            continue;
        uint64_t lo = first + (last - first) / 2;
        int rc = mf_raftlog_entries(c->log, lo, last + 1, UINT64_MAX, out, 64, &n);
        if (rc == MF_EUNAVAILABLE_ENTRY || rc == MF_ECOMPACTED) /* moved since */
            continue;
        if (rc != 0 || n == 0) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            fill_payload(want, lo + i, 1, payload_len(lo + i));
            if (out[i].index != lo + i || out[i].len != payload_len(lo + i) ||
                memcmp(out[i].data, want, out[i].len) != 0)
                atomic_fetch_add(&c->errors, 1);
        }
        atomic_fetch_add(&c->reads, 1);
    }
    mf_raftlog_release(c->log);
    return NULL;
}

static void *writer_main(void *arg)
{
    struct rw_ctx *c = arg;
    static struct mf_raft_entry ents[RW_BATCH];
    static uint8_t bufs[RW_BATCH][PAYLOAD_MAX];
    for (uint64_t b = 0; b < RW_BATCHES; b++) {
        uint64_t lo = 1 + b * RW_BATCH;
        for (size_t i = 0; i < RW_BATCH; i++) {
            ents[i] = (struct mf_raft_entry){
                .index = lo + i, .term = 1, .len = payload_len(lo + i), .data = bufs[i]};
            fill_payload(bufs[i], lo + i, 1, ents[i].len);
        }
        if (mf_raftlog_save(c->log, NULL, ents, RW_BATCH) != 0)
            atomic_fetch_add(&c->errors, 1);
        if (b % 50 == 49) { /* compaction runs on the writer thread too */
            struct mf_raft_snapshot_meta sm = {.index = lo - 100, .term = 1};
            if (mf_raftlog_compact(c->log, &sm) != 0)
                atomic_fetch_add(&c->errors, 1);
        }
    }
    atomic_store(&c->done, 1);
    return NULL;
}

/* One thread appends and compacts while another reads ranges and checks
 * every byte of what it gets (zero-copy pointers stay valid). */
static void test_store_log_reader_and_writer_threads(void **state)
{
    (void)state;
    struct rw_ctx c = {.log = open_log(0)};
    pthread_t r, w;
    assert_int_equal(pthread_create(&r, NULL, reader_main, &c), 0);
    assert_int_equal(pthread_create(&w, NULL, writer_main, &c), 0);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_true(atomic_load(&c.reads) > 0);
    /* The last compaction (batch 299) kept everything after 4785 - 100. */
    check_bounds(c.log, 4686, RW_BATCHES * RW_BATCH);
    mf_raftlog_close(c.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_log_fresh_is_empty, make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_append_read_ranges_max_bytes, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_compacted_and_unavailable, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_term_at_snapshot_boundary, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_suffix_replacement, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_compact, make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_install_snapshot_keeps_matching,
                                        make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_install_snapshot_drops_all, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_restart_restores_state, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_map_full_reported, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_bad_record_is_corrupt, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_storage_interface, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_creation_leftovers, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_open_twice_refused, make_tmpdir,
                                        remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_store_log_reader_and_writer_threads, make_tmpdir,
                                        remove_tmpdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
