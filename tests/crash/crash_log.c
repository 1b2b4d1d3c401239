/* crash_log: crash-safety proof for the Raft log (src/store/log.c).
 *
 * Each round forks a child that runs random operations on one log directory
 * (append batches with the hard state, replace a suffix, compact, install a
 * snapshot). Before each operation the child sends an "intent" record down a
 * pipe and, once the call has returned (so the data is acknowledged), an
 * "ack" record. The child dies at a random point; the parent then reopens the
 * log (which must open cleanly) and compares it with its model: the state after
 * every acknowledged operation, or after that plus the one operation that was
 * in flight. Anything else (a lost acknowledged batch, half a batch, a hard
 * state that disagrees with the entries, different bytes) fails the round.
 * The directory carries over to the next round, so the log goes through many
 * crashes in a row.
 *
 *   crash_log kill [--rounds N] [--seed S]
 *       The child is killed with SIGKILL after a random delay. This keeps the
 *       page cache, so it proves atomicity, not durability.
 *   crash_log powercut --shim PATH [--rounds N] [--seed S] [--keep-pct P]
 *                      [--flush-pct P] [--nosync] [--expect-loss]
 *       The child runs under the powercut LD_PRELOAD shim (powercut.c), which
 *       cuts the power at a random write or sync, keeping each write that was
 *       not yet durable or dropping it at random (--keep-pct, default 50;
 *       --flush-pct: chance of an early write-back, default 25).
 *       --nosync opens the log with MDB_NOSYNC (a test hook here, never in
 *       the production API) and --expect-loss turns the verdict around: the
 *       run passes only if the checker catches a lost acknowledged write or a
 *       broken store, which shows the shim has teeth.
 *
 * MF_CRASH_ROUNDS overrides --rounds. On failure it prints the seed, the
 * round and the directory (kept), and exits 1.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "store/log.h"
#include "tmpdir.h"

/* --- the NOSYNC test hook ---
 * This program's own mdb_env_open is the one log.c links against; it adds
 * MDB_NOSYNC when MF_TEST_LOG_NOSYNC is set and calls LMDB's. */
int mdb_env_open(MDB_env *env, const char *path, unsigned int flags, mdb_mode_t mode)
{
    static int (*real)(MDB_env *, const char *, unsigned int, mdb_mode_t);
    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "mdb_env_open");
        if (!real) {
            fprintf(stderr, "crash_log: cannot find LMDB's mdb_env_open\n");
            abort();
        }
    }
    if (getenv("MF_TEST_LOG_NOSYNC"))
        flags |= MDB_NOSYNC;
    return real(env, path, flags, mode);
}

/* --- operations and their records --- */

enum op_kind { OP_SAVE = 1, OP_COMPACT = 2, OP_INSTALL = 3 };
enum { PHASE_INTENT = 1, PHASE_ACK = 2, PHASE_DONE = 3 };
#define REC_MAGIC 0x4d464352u

struct rec {
    uint32_t magic;
    uint32_t phase;
    uint32_t kind;
    uint32_t n;       /* OP_SAVE: entries */
    uint64_t seq;     /* operation number, also the term of saved entries */
    uint64_t index;   /* OP_SAVE: first index; else the snapshot index */
    uint64_t term;    /* OP_COMPACT/OP_INSTALL: the snapshot term */
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t payload_len(uint64_t index, uint64_t term)
{
    return (uint32_t)(8 + (index * 7 + term * 13) % 300);
}

static void payload_fill(uint8_t *p, uint64_t index, uint64_t term, uint32_t len)
{
    memcpy(p, &index, 8);
    for (uint32_t i = 8; i < len; i++)
        p[i] = (uint8_t)(index * 131 + term * 17 + i);
}

static struct mf_raft_hard_state hs_for(uint64_t seq, uint64_t last)
{
    return (struct mf_raft_hard_state){.term = seq, .vote = seq % 3, .commit = last};
}

/* --- the child --- */

#define BATCH_MAX 256
#define CHILD_OPS_MAX 60

static void send_rec(int fd, const struct rec *r)
{
    if (write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
        _exit(5);
}

static int child_main(const char *dir, int fd, uint64_t seed, uint64_t seq)
{
    static struct mf_raft_entry ents[BATCH_MAX];
    static uint8_t bufs[BATCH_MAX][320];
    struct mf_raftlog *log;
    mf_log_set_level(MF_LOG_WARN);
    int rc = mf_raftlog_open(dir, NULL, &log);
    if (rc != 0) {
        fprintf(stderr, "child: open: %s\n", mf_strerror(rc));
        return 3;
    }
    for (int op = 0; op < CHILD_OPS_MAX; op++, seq++) {
        uint64_t first, last, r = splitmix(&seed) % 100;
        struct rec rec = {.magic = REC_MAGIC, .phase = PHASE_INTENT, .seq = seq};
        if (mf_raftlog_first_index(log, &first) != 0 || mf_raftlog_last_index(log, &last) != 0)
            return 3;
        if (r < 10 && last >= first + 2) { /* a conflicting suffix */
            uint64_t span = last - first < 6 ? last - first : 6;
            rec.kind = OP_SAVE;
            rec.index = last - splitmix(&seed) % span;
            rec.n = 1 + (uint32_t)(splitmix(&seed) % 8);
        } else if (r < 15 && last > first + 20) {
            rec.kind = OP_COMPACT;
            rec.index = first + splitmix(&seed) % (last - first - 10);
            if (mf_raftlog_term(log, rec.index, &rec.term) != 0)
                return 3;
        } else if (r < 18) {
            rec.kind = OP_INSTALL;
            if (splitmix(&seed) % 2 && last >= first) { /* matching: keeps a suffix */
                rec.index = first + splitmix(&seed) % (last - first + 1);
                if (mf_raftlog_term(log, rec.index, &rec.term) != 0)
                    return 3;
            } else { /* newer term or beyond the log: drops everything */
                rec.index = last + splitmix(&seed) % 3;
                if (rec.index < first)
                    rec.index = first;
                rec.term = seq;
            }
        } else {
            rec.kind = OP_SAVE;
            rec.index = last + 1;
            rec.n = 1 + (uint32_t)(splitmix(&seed) % (splitmix(&seed) % 4 ? 32 : BATCH_MAX));
        }
        send_rec(fd, &rec);
        if (rec.kind == OP_SAVE) {
            for (uint32_t i = 0; i < rec.n; i++) {
                uint64_t idx = rec.index + i;
                ents[i] = (struct mf_raft_entry){
                    .index = idx, .term = seq, .type = MF_RAFT_ENTRY_NORMAL,
                    .len = payload_len(idx, seq), .data = bufs[i]};
                payload_fill(bufs[i], idx, seq, ents[i].len);
            }
            struct mf_raft_hard_state hs = hs_for(seq, rec.index + rec.n - 1);
            rc = mf_raftlog_save(log, &hs, ents, rec.n);
        } else {
            struct mf_raft_snapshot_meta sm = {.index = rec.index, .term = rec.term};
            sm.conf.voters_len = 3;
            sm.conf.voters[0] = 1, sm.conf.voters[1] = 2, sm.conf.voters[2] = 3;
            rc = rec.kind == OP_COMPACT ? mf_raftlog_compact(log, &sm)
                                        : mf_raftlog_install_snapshot(log, &sm);
        }
        if (rc != 0) {
            fprintf(stderr, "child: op %llu kind %u: %s\n", (unsigned long long)seq, rec.kind,
                    mf_strerror(rc));
            return 3;
        }
        rec.phase = PHASE_ACK;
        send_rec(fd, &rec);
    }
    mf_raftlog_close(log);
    struct rec done = {.magic = REC_MAGIC, .phase = PHASE_DONE, .seq = seq};
    send_rec(fd, &done);
    return 0;
}

/* --- the model --- */

struct model {
    uint64_t snap_index, snap_term;
    uint64_t last;
    struct mf_raft_hard_state hs;
    uint64_t *terms; /* terms[i]: term of entry i, for i in (snap_index, last] */
    size_t cap;
};

static void model_copy(struct model *dst, const struct model *src)
{
    uint64_t *t = dst->terms;
    size_t cap = dst->cap;
    if (cap < src->cap) {
        t = realloc(t, src->cap * sizeof(*t));
        cap = src->cap;
        if (!t)
            abort();
    }
    *dst = *src;
    dst->terms = t;
    dst->cap = cap;
    if (src->cap)
        memcpy(t, src->terms, src->cap * sizeof(*t));
}

static uint64_t model_term(const struct model *m, uint64_t idx)
{
    return idx == m->snap_index ? m->snap_term : m->terms[idx];
}

/* The effect of one acknowledged operation, per src/raft/storage.h. */
static void model_apply(struct model *m, const struct rec *r)
{
    if (r->kind == OP_SAVE) {
        uint64_t last = r->index + r->n - 1;
        if (last + 1 > m->cap) {
            size_t cap = m->cap ? m->cap : 4096;
            while (cap < last + 1)
                cap *= 2;
            m->terms = realloc(m->terms, cap * sizeof(*m->terms));
            if (!m->terms)
                abort();
            memset(m->terms + m->cap, 0, (cap - m->cap) * sizeof(*m->terms));
            m->cap = cap;
        }
        for (uint64_t i = r->index; i <= last; i++)
            m->terms[i] = r->seq;
        m->last = last;
        m->hs = hs_for(r->seq, last);
    } else if (r->kind == OP_COMPACT) {
        if (r->index > m->snap_index) {
            m->snap_term = model_term(m, r->index);
            m->snap_index = r->index;
        }
    } else if (r->kind == OP_INSTALL && r->index >= m->snap_index) {
        int keep = r->index <= m->last && model_term(m, r->index) == r->term;
        m->snap_index = r->index;
        m->snap_term = r->term;
        if (!keep)
            m->last = r->index;
    }
}

/* 0 if the log on disk is exactly the model; else prints why (when loud). */
static int model_matches(struct mf_raftlog *log, const struct model *m, int loud)
{
    struct mf_raft_hard_state hs;
    struct mf_raft_snapshot_meta sm;
    struct mf_raft_entry out[256];
    uint8_t want[320];
    uint64_t first, last;
    if (mf_raftlog_hard_state(log, &hs) != 0 || mf_raftlog_snapshot_meta(log, &sm) != 0 ||
        mf_raftlog_first_index(log, &first) != 0 || mf_raftlog_last_index(log, &last) != 0) {
        if (loud)
            fprintf(stderr, "  cannot read the log's metadata\n");
        return -1;
    }
    if (memcmp(&hs, &m->hs, sizeof(hs)) != 0 || sm.index != m->snap_index ||
        sm.term != m->snap_term || first != m->snap_index + 1 || last != m->last) {
        if (loud)
            fprintf(stderr,
                    "  disk: hs (%llu %llu %llu) snap %llu/%llu log [%llu, %llu]\n"
                    "  want: hs (%llu %llu %llu) snap %llu/%llu log [%llu, %llu]\n",
                    (unsigned long long)hs.term, (unsigned long long)hs.vote,
                    (unsigned long long)hs.commit, (unsigned long long)sm.index,
                    (unsigned long long)sm.term, (unsigned long long)first,
                    (unsigned long long)last, (unsigned long long)m->hs.term,
                    (unsigned long long)m->hs.vote, (unsigned long long)m->hs.commit,
                    (unsigned long long)m->snap_index, (unsigned long long)m->snap_term,
                    (unsigned long long)m->snap_index + 1, (unsigned long long)m->last);
        return -1;
    }
    for (uint64_t lo = first; lo <= last;) {
        size_t n;
        int rc = mf_raftlog_entries(log, lo, last + 1, UINT64_MAX, out, 256, &n);
        if (rc != 0 || n == 0) {
            if (loud)
                fprintf(stderr, "  entries from %llu: %s\n", (unsigned long long)lo,
                        mf_strerror(rc));
            return -1;
        }
        for (size_t i = 0; i < n; i++, lo++) {
            uint64_t t = m->terms[lo];
            payload_fill(want, lo, t, payload_len(lo, t));
            if (out[i].index != lo || out[i].term != t || out[i].len != payload_len(lo, t) ||
                memcmp(out[i].data, want, out[i].len) != 0) {
                if (loud)
                    fprintf(stderr, "  entry %llu: term %llu len %u, want term %llu len %u\n",
                            (unsigned long long)lo, (unsigned long long)out[i].term,
                            out[i].len, (unsigned long long)t, payload_len(lo, t));
                return -1;
            }
        }
    }
    return 0;
}

/* --- the parent --- */

struct run {
    const char *mode;
    const char *shim;
    const char *self;
    uint64_t seed;
    int rounds;
    int nosync;
    int expect_loss;
    const char *keep_pct;  /* passed to the shim; NULL: its default */
    const char *flush_pct;
    char dir[64];
};

static int read_recs(int fd, struct rec **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (;;) {
        struct rec r;
        ssize_t got = 0;
        while (got < (ssize_t)sizeof(r)) {
            ssize_t k = read(fd, (char *)&r + got, sizeof(r) - (size_t)got);
            if (k == 0)
                return got == 0 ? 0 : -1;
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            got += k;
        }
        if (r.magic != REC_MAGIC)
            return -1;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            *out = realloc(*out, cap * sizeof(**out));
            if (!*out)
                abort();
        }
        (*out)[(*n)++] = r;
    }
}

/* Runs one child to its death; returns its records. */
static int run_child(struct run *run, uint64_t round_seed, uint64_t seq, struct rec **recs,
                     size_t *nrecs, int *status)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        if (strcmp(run->mode, "kill") == 0)
            _exit(child_main(run->dir, p[1], round_seed, seq));
        char fdbuf[16], seedbuf[32], seqbuf[32], cutbuf[32];
        uint64_t s = round_seed ^ 0x5eed;
        snprintf(fdbuf, sizeof(fdbuf), "%d", p[1]);
        snprintf(seedbuf, sizeof(seedbuf), "%llu", (unsigned long long)round_seed);
        snprintf(seqbuf, sizeof(seqbuf), "%llu", (unsigned long long)seq);
        /* A child does up to CHILD_OPS_MAX operations of a few writes and
         * syncs each; cut somewhere in there (now and then never). */
        snprintf(cutbuf, sizeof(cutbuf), "%llu", (unsigned long long)(1 + splitmix(&s) % 260));
        setenv("LD_PRELOAD", run->shim, 1);
        setenv("MF_PC_MATCH", run->dir, 1);
        setenv("MF_PC_CUT_AT", cutbuf, 1);
        setenv("MF_PC_SEED", seedbuf, 1);
        if (run->nosync)
            setenv("MF_TEST_LOG_NOSYNC", "1", 1);
        if (run->keep_pct)
            setenv("MF_PC_KEEP_PCT", run->keep_pct, 1);
        if (run->flush_pct)
            setenv("MF_PC_FLUSH_PCT", run->flush_pct, 1);
        execl(run->self, run->self, "child", run->dir, fdbuf, seedbuf, seqbuf, (char *)NULL);
        _exit(4);
    }
    close(p[1]);
    if (strcmp(run->mode, "kill") == 0) {
        uint64_t s = round_seed ^ 0x4b1;
        struct timespec ts = {0, (long)(splitmix(&s) % 120000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int rc = read_recs(p[0], recs, nrecs);
    close(p[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return rc;
}

enum { VERDICT_OK = 0, VERDICT_ERROR = -1, VERDICT_BROKEN = 1, VERDICT_LOST = 2,
       VERDICT_OK_INFLIGHT = 3 /* matches, with the operation in flight done */ };

static int verify_round(struct run *run, struct model *m, const struct rec *recs, size_t n,
                        int status, int round, uint64_t round_seed, uint64_t *next_seq)
{
    static struct model alt;
    const struct rec *inflight = NULL;
    struct mf_raftlog *log;

    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        fprintf(stderr, "round %d: child failed with exit code %d\n", round,
                WEXITSTATUS(status));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i].phase == PHASE_INTENT) {
            inflight = &recs[i];
        } else if (recs[i].phase == PHASE_ACK) {
            if (!inflight || inflight->seq != recs[i].seq)
                return -1;
            model_apply(m, &recs[i]);
            inflight = NULL;
            *next_seq = recs[i].seq + 1;
        }
    }
    if (inflight)
        *next_seq = inflight->seq + 1;
    if (inflight) {
        model_copy(&alt, m);
        model_apply(&alt, inflight);
    }
    /* Check in a child process: LMDB trusts its file, and a log broken by a
     * NOSYNC run can crash the reader; that counts as a broken log here. */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return VERDICT_ERROR;
    if (pid == 0) {
        int rc = mf_raftlog_open(run->dir, NULL, &log);
        if (rc != 0) {
            fprintf(stderr, "round %d (seed %llu): the log does not open after the crash: %s\n",
                    round, (unsigned long long)round_seed, mf_strerror(rc));
            _exit(VERDICT_BROKEN);
        }
        if (model_matches(log, m, 0) == 0)
            _exit(0);
        if (inflight && model_matches(log, &alt, 0) == 0)
            _exit(10);
        fprintf(stderr,
                "round %d (seed %llu): the log matches neither the acknowledged state nor "
                "that plus the operation in flight (%s)\n",
                round, (unsigned long long)round_seed,
                inflight ? (inflight->kind == OP_SAVE ? "a save" : "a snapshot op") : "none");
        fprintf(stderr, " against the acknowledged state:\n");
        model_matches(log, m, 1);
        if (inflight) {
            fprintf(stderr, " against it plus the operation in flight:\n");
            model_matches(log, &alt, 1);
        }
        fflush(stderr);
        _exit(VERDICT_LOST);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "round %d (seed %llu): reading the log after the crash killed the "
                "reader (signal %d)\n", round, (unsigned long long)round_seed, WTERMSIG(st));
        return VERDICT_BROKEN;
    }
    switch (WEXITSTATUS(st)) {
    case 0:
        return VERDICT_OK;
    case 10:
        model_copy(m, &alt);
        return VERDICT_OK_INFLIGHT;
    case VERDICT_BROKEN:
    case VERDICT_LOST:
        return WEXITSTATUS(st);
    default:
        return VERDICT_ERROR;
    }
}

/* Starts over in a fresh log (after a NOSYNC round broke the old one). */
static int reset_dir(struct run *run, struct model *m)
{
    char path[PATH_MAX];
    struct mf_raftlog *log;
    snprintf(path, sizeof(path), "%s/log", run->dir);
    if (mf_tmpdir_remove(path) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/log.tmp", run->dir);
    if (mf_tmpdir_remove(path) != 0)
        return -1;
    free(m->terms);
    memset(m, 0, sizeof(*m));
    /* Created with the real sync flags, so what a NOSYNC child is caught at
     * is what it does to acknowledged batches, not a torn creation. */
    if (mf_raftlog_open(run->dir, NULL, &log) != 0)
        return -1;
    mf_raftlog_close(log);
    return 0;
}

static int parent_main(struct run *run)
{
    struct model m = {0};
    uint64_t seq = 1;
    int failures = 0, cut_rounds = 0, lost = 0, broken = 0, inflight_done = 0;
    char self[PATH_MAX];

    if (mf_tmpdir_make("crash-log", run->dir, sizeof(run->dir)) != 0) {
        perror("mkdtemp");
        return 2;
    }
    if (!realpath("/proc/self/exe", self)) {
        perror("realpath");
        return 2;
    }
    run->self = self;
    mf_log_set_level(MF_LOG_OFF);
    printf("crash_log %s%s: seed %llu, %d rounds, dir %s\n", run->mode,
           run->nosync ? " (MDB_NOSYNC)" : "", (unsigned long long)run->seed, run->rounds,
           run->dir);
    fflush(stdout);
    if (run->expect_loss && reset_dir(run, &m) != 0)
        return 2;
    for (int round = 0; round < run->rounds; round++) {
        uint64_t s = run->seed + (uint64_t)round;
        uint64_t round_seed = splitmix(&s);
        struct rec *recs = NULL;
        size_t n = 0;
        int status = 0;
        if (run_child(run, round_seed, seq, &recs, &n, &status) != 0) {
            fprintf(stderr, "round %d: bad records from the child\n", round);
            free(recs);
            failures++;
            break;
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            cut_rounds++;
        int rc = verify_round(run, &m, recs, n, status, round, round_seed, &seq);
        free(recs);
        if (rc == VERDICT_OK_INFLIGHT)
            inflight_done++;
        if (rc == VERDICT_OK || rc == VERDICT_OK_INFLIGHT)
            continue;
        failures++;
        if (!run->expect_loss || rc == VERDICT_ERROR)
            break;
        /* Count what NOSYNC did, then start over from a clean log. */
        if (rc == VERDICT_LOST)
            lost++;
        else
            broken++;
        if (reset_dir(run, &m) != 0)
            return 2;
    }
    free(m.terms);
    if (run->expect_loss) {
        printf("crash_log: MDB_NOSYNC over %d power cuts: %d lost or mangled acknowledged "
               "batches, %d left a log that does not open, %d undetected\n",
               cut_rounds, lost, broken, cut_rounds - lost - broken);
        if (lost > 0) {
            printf("crash_log: caught losing acknowledged batches, as it must: the shim "
                   "has teeth\n");
            return mf_tmpdir_remove(run->dir) == 0 ? 0 : 2;
        }
        printf("crash_log: FAIL: MDB_NOSYNC was never caught losing an acknowledged batch "
               "(seed %llu)\n", (unsigned long long)run->seed);
        return 1;
    }
    if (failures) {
        printf("crash_log: FAIL (seed %llu; rerun with --seed %llu --rounds %d; directory "
               "kept: %s)\n", (unsigned long long)run->seed, (unsigned long long)run->seed,
               run->rounds, run->dir);
        return 1;
    }
    printf("crash_log %s: %d rounds passed (%d died mid-run; the operation in flight "
           "was found done in %d, not done in the rest), last seq %llu\n",
           run->mode, run->rounds, cut_rounds, inflight_done, (unsigned long long)seq);
    return mf_tmpdir_remove(run->dir) == 0 ? 0 : 2;
}

static int usage(void)
{
    fprintf(stderr, "usage: crash_log kill|powercut [--shim PATH] [--rounds N] [--seed S] "
                    "[--keep-pct P] [--flush-pct P] [--nosync] [--expect-loss]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct run run = {.rounds = 100};
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "child") == 0) {
        if (argc != 6)
            return usage();
        return child_main(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10),
                          strtoull(argv[5], NULL, 10));
    }
    run.mode = argv[1];
    run.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            run.rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            run.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--shim") == 0 && i + 1 < argc)
            run.shim = argv[++i];
        else if (strcmp(argv[i], "--keep-pct") == 0 && i + 1 < argc)
            run.keep_pct = argv[++i];
        else if (strcmp(argv[i], "--flush-pct") == 0 && i + 1 < argc)
            run.flush_pct = argv[++i];
        else if (strcmp(argv[i], "--nosync") == 0)
            run.nosync = 1;
        else if (strcmp(argv[i], "--expect-loss") == 0)
            run.expect_loss = 1;
        else
            return usage();
    }
    if (getenv("MF_CRASH_ROUNDS"))
        run.rounds = atoi(getenv("MF_CRASH_ROUNDS"));
    if (strcmp(run.mode, "kill") != 0 && strcmp(run.mode, "powercut") != 0)
        return usage();
    if (strcmp(run.mode, "powercut") == 0 && run.shim == NULL)
        return usage();
    return parent_main(&run);
}
