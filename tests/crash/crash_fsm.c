/* Crash test of the state machine (ctest store_crash_fsm, label crash): a
 * child applies command batches (mode apply) or installs snapshots (mode
 * snapshot) and reports each completed step down a pipe; the parent SIGKILLs
 * it at a random moment, reopens the store and requires that
 *  - it opens cleanly;
 *  - everything acknowledged is there, and the state is exactly the state
 *    after some whole number of steps (digest over every record compared with
 *    a reference built one step at a time): nothing half-applied;
 *  - it carries on: the rest of the commands (or installs) apply and end in
 *    the reference's final state.
 * SIGKILL keeps the page cache, so that shows atomicity, not fsync. With
 * --shim (the powercut LD_PRELOAD shim, powercut.c), each child is instead cut
 * off at a random write or sync as by a power failure (writes not yet durable
 * kept or dropped per sector); then the store must open, hold every
 * acknowledged step but possibly the last commit (MDB_NOMETASYNC: the Raft log
 * replays it; a snapshot install is durable when it returns), be a whole
 * number of steps, and carry on.
 * Usage: store_crash_fsm [--rounds N] [--seed S] [--shim PATH [--keep-pct P]
 *        [--flush-pct P]]
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "fsm_testlib.h"
#include "store/snapshot.h"

#define T0 1700000000000ULL
#define NCMDS 1500

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FAILED %s:%d: %s (seed %llu)\n", __FILE__, __LINE__, #cond, \
                    (unsigned long long)seed);                                      \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static uint64_t seed, rs;
static uint64_t rng(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return rs * 2685821657736338717ULL;
}

/* Commands recorded from a generator run on a scratch store. */
static struct tf gen;
static uint8_t digests[NCMDS + 1][32]; /* state after i commands */

static void generate(int with_digests)
{
    tf_open(&gen);
    gen.record = 1;
    uint64_t now = T0, seq = 0;
    tf_token(&gen, now, 1, "acc", 0, 0);
    while (gen.nrec < NCMDS) {
        now += rng() % 20;
        uint64_t r = rng() % 10, pick = seq ? rng() % seq + 1 : 1;
        char path[32], val[32];
        snprintf(path, sizeof(path), "p/%llu", (unsigned long long)(rng() % 50));
        snprintf(val, sizeof(val), "V%llu", (unsigned long long)rng());
        if (r < 4)
            tf_grant_full(&gen, now, ++seq, "db", "ro", 100 + rng() % 2000, 5000, LSTATE(ACTIVE),
                          rng() % 2);
        else if (r < 6)
            tf_kv_put(&gen, now, path, val, 0, 0, rng() % 3 ? 0 : pick);
        else if (r < 7)
            tf_renew(&gen, now, pick, 1000);
        else if (r < 8)
            tf_revoke(&gen, now, pick);
        else {
            uint64_t s[1] = {pick};
            tf_revoked(&gen, now, s, 1);
        }
    }
    /* No environment may be open across fork(): keep only the recording. */
    mf_fsm_close(gen.fsm);
    gen.fsm = NULL;
    if (!with_digests)
        return;
    /* Reference digests, one command at a time. */
    struct tf ref;
    tf_open(&ref);
    tf_digest(&ref, 0, digests[0]);
    for (size_t i = 0; i < NCMDS; i++) {
        Mayfly__Cmd__Result *r;
        CHECK(mf_fsm_apply(ref.fsm, i + 1, gen.rec[i], gen.rec_len[i], &r) == 0);
        mf_fsm_result_free(r);
        tf_digest(&ref, 0, digests[i + 1]);
    }
    tf_close(&ref);
}

/* Apply commands [from, NCMDS) in random batches, writing the applied index
 * to fd after each commit. */
static void apply_from(struct mf_fsm *fsm, size_t from, int fd)
{
    static struct mf_fsm_entry e[64];
    size_t i = from;
    while (i < NCMDS) {
        size_t n = 1 + rng() % 64;
        if (n > NCMDS - i)
            n = NCMDS - i;
        for (size_t j = 0; j < n; j++) {
            e[j].index = i + j + 1;
            e[j].data = gen.rec[i + j];
            e[j].len = gen.rec_len[i + j];
        }
        CHECK(mf_fsm_apply_batch(fsm, e, n, NULL) == 0);
        i += n;
        uint64_t ack = i;
        if (fd >= 0)
            CHECK(write(fd, &ack, sizeof(ack)) == sizeof(ack));
    }
}

static uint64_t span_us[2]; /* how long a child's whole run takes, per mode */

static double mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

#define READY UINT64_MAX /* the child has opened the store */

/* Kill at a uniform moment of the child's work, timed from its READY (after
 * it opened the store), a little past its end too. The first call of each
 * mode lets the child finish and measures that span. */
static uint64_t kill_child_and_read_acks(pid_t pid, int rfd, int mode)
{
    int st;
    uint64_t v, last = 0;
    CHECK(read(rfd, &v, sizeof(v)) == sizeof(v) && v == READY);
    double a = mono_us();
    if (span_us[mode] == 0) {
        waitpid(pid, &st, 0);
        span_us[mode] = (uint64_t)(mono_us() - a) + 1;
        printf("kill window for %s: %llu us\n", mode ? "snapshot installs" : "apply",
               (unsigned long long)span_us[mode]);
    } else {
        usleep((useconds_t)(rng() % (span_us[mode] * 11 / 10 + 1)));
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    while (read(rfd, &v, sizeof(v)) == sizeof(v))
        last = v;
    close(rfd);
    return last;
}

static void ready(int fd)
{
    uint64_t r = READY;
    CHECK(write(fd, &r, sizeof(r)) == sizeof(r));
}

static int digest_index(const uint8_t d[32], size_t lo)
{
    for (size_t i = lo; i <= NCMDS; i++)
        if (memcmp(digests[i], d, 32) == 0)
            return (int)i;
    return -1;
}

static void round_apply(void)
{
    struct tf t;
    tf_open(&t);
    mf_fsm_close(t.fsm); /* the child opens its own (never across fork) */
    t.fsm = NULL;
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        CHECK(mf_fsm_open(t.dir, NULL, &t.fsm) == 0);
        ready(p[1]);
        apply_from(t.fsm, 0, p[1]);
        _exit(0);
    }
    close(p[1]);
    uint64_t acked = kill_child_and_read_acks(pid, p[0], 0);
    CHECK(mf_fsm_open(t.dir, NULL, &t.fsm) == 0);
    uint64_t applied = mf_fsm_applied(t.fsm);
    CHECK(applied >= acked);
    uint8_t d[32];
    tf_digest(&t, 0, d);
    CHECK(memcmp(d, digests[applied], 32) == 0); /* exactly `applied` whole commands */
    apply_from(t.fsm, applied, -1);
    tf_digest(&t, 0, d);
    CHECK(memcmp(d, digests[NCMDS], 32) == 0);
    printf("apply round: acked %llu, found %llu, resumed to %d\n", (unsigned long long)acked,
           (unsigned long long)applied, NCMDS);
    tf_close(&t);
}

/* Snapshots of the reference at three points, made once. */
static char snaps[3][256];
static const size_t snap_at[3] = {NCMDS / 4, NCMDS / 2, NCMDS};

static void make_snapshots(const char *dir)
{
    struct tf t;
    tf_open(&t);
    size_t done = 0;
    for (int k = 0; k < 3; k++) {
        static struct mf_fsm_entry e[NCMDS];
        size_t n = snap_at[k] - done;
        for (size_t j = 0; j < n; j++) {
            e[j].index = done + j + 1;
            e[j].data = gen.rec[done + j];
            e[j].len = gen.rec_len[done + j];
        }
        CHECK(mf_fsm_apply_batch(t.fsm, e, n, NULL) == 0);
        done += n;
        snprintf(snaps[k], sizeof(snaps[k]), "%s/snap%d", dir, k);
        char err[256];
        CHECK(mf_snapshot_create(tf_st(&t), snaps[k], NULL, err, sizeof(err)) == 0);
    }
    tf_close(&t);
}

static void round_snapshot(void)
{
    struct tf t;
    tf_open(&t);
    mf_fsm_close(t.fsm);
    t.fsm = NULL;
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        CHECK(mf_fsm_open(t.dir, NULL, &t.fsm) == 0);
        ready(p[1]);
        for (int k = 0; k < 3; k++) {
            char err[256];
            CHECK(mf_snapshot_install(t.fsm, snaps[k], NULL, err, sizeof(err)) == 0);
            uint64_t ack = snap_at[k];
            CHECK(write(p[1], &ack, sizeof(ack)) == sizeof(ack));
        }
        _exit(0);
    }
    close(p[1]);
    uint64_t acked = kill_child_and_read_acks(pid, p[0], 1);
    CHECK(mf_fsm_open(t.dir, NULL, &t.fsm) == 0);
    uint64_t applied = mf_fsm_applied(t.fsm);
    CHECK(applied >= acked);
    CHECK(applied == 0 || applied == snap_at[0] || applied == snap_at[1] || applied == snap_at[2]);
    uint8_t d[32];
    tf_digest(&t, 0, d);
    CHECK(digest_index(d, 0) == (int)applied);
    /* The store carries on: the last snapshot installs. */
    char err[256];
    CHECK(mf_snapshot_install(t.fsm, snaps[2], NULL, err, sizeof(err)) == 0);
    tf_digest(&t, 0, d);
    CHECK(memcmp(d, digests[NCMDS], 32) == 0);
    printf("snapshot round: acked %llu, found %llu\n", (unsigned long long)acked,
           (unsigned long long)applied);
    tf_close(&t);
}

/* --- power cut (LD_PRELOAD shim) --- */

static const char *self_path, *shim, *keep_pct, *flush_pct;

static int child_main(const char *what, const char *dir, int fd, const char *snapdir)
{
    struct mf_fsm *fsm;
    CHECK(mf_fsm_open(dir, NULL, &fsm) == 0);
    if (!strcmp(what, "child-apply")) {
        apply_from(fsm, 0, fd);
    } else {
        for (int k = 0; k < 3; k++) {
            char path[512], err[256];
            snprintf(path, sizeof(path), "%s/snap%d", snapdir, k);
            CHECK(mf_snapshot_install(fsm, path, NULL, err, sizeof(err)) == 0);
            uint64_t ack = snap_at[k];
            CHECK(write(fd, &ack, sizeof(ack)) == sizeof(ack));
        }
    }
    mf_fsm_close(fsm);
    return 0;
}

/* One round: exec a child under the shim, cut at a random operation, then
 * check the store in a separate process (LMDB trusts its file). */
static void round_powercut(int snapshot_mode)
{
    char dir[128];
    CHECK(mf_tmpdir_make_in("/dev/shm", "crash-pc", dir, sizeof(dir)) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    uint64_t cut = 1 + rng() % (snapshot_mode ? 14 : 600);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        char fdb[16], seedb[32], cutb[32], pcseed[32];
        snprintf(fdb, sizeof(fdb), "%d", p[1]);
        snprintf(seedb, sizeof(seedb), "%llu", (unsigned long long)seed);
        snprintf(cutb, sizeof(cutb), "%llu", (unsigned long long)cut);
        snprintf(pcseed, sizeof(pcseed), "%llu", (unsigned long long)rng());
        setenv("LD_PRELOAD", shim, 1);
        setenv("MF_PC_MATCH", dir, 1);
        setenv("MF_PC_CUT_AT", cutb, 1);
        setenv("MF_PC_SEED", pcseed, 1);
        if (keep_pct)
            setenv("MF_PC_KEEP_PCT", keep_pct, 1);
        if (flush_pct)
            setenv("MF_PC_FLUSH_PCT", flush_pct, 1);
        execl(self_path, self_path, snapshot_mode ? "child-snap" : "child-apply", dir, fdb, seedb,
              gen.dir, (char *)NULL);
        _exit(4);
    }
    close(p[1]);
    uint64_t v, last = 0, prev = 0;
    while (read(p[0], &v, sizeof(v)) == sizeof(v)) {
        prev = last;
        last = v;
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0) || (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
    /* Everything acknowledged is there, except possibly the last commit of
     * a batch apply (its meta page is not synced until the next commit). */
    uint64_t must = snapshot_mode ? last : prev;
    fflush(stdout);
    pid_t chk = fork();
    CHECK(chk >= 0);
    if (chk == 0) {
        struct mf_fsm *fsm;
        int rc = mf_fsm_open(dir, NULL, &fsm);
        if (rc) {
            fprintf(stderr, "store does not open after the cut: %s\n", mf_strerror(rc));
            _exit(2);
        }
        uint64_t applied = mf_fsm_applied(fsm);
        uint8_t d[32];
        CHECK(mf_state_digest(mf_fsm_state(fsm), 0, d) == 0);
        if (applied < must || memcmp(d, digests[applied], 32) != 0) {
            fprintf(stderr, "after a cut at op %llu: applied %llu, acked %llu/%llu, %s\n",
                    (unsigned long long)cut, (unsigned long long)applied,
                    (unsigned long long)prev, (unsigned long long)last,
                    applied < must ? "acknowledged steps lost" : "state is not a whole step");
            _exit(3);
        }
        if (snapshot_mode) {
            char path[512], err[256];
            snprintf(path, sizeof(path), "%s/snap2", gen.dir);
            CHECK(mf_snapshot_install(fsm, path, NULL, err, sizeof(err)) == 0);
        } else {
            apply_from(fsm, applied, -1);
        }
        CHECK(mf_state_digest(mf_fsm_state(fsm), 0, d) == 0);
        CHECK(memcmp(d, digests[NCMDS], 32) == 0);
        printf("powercut %s round: cut at op %llu, acked %llu, found %llu, carried on\n",
               snapshot_mode ? "snapshot" : "apply", (unsigned long long)cut,
               (unsigned long long)last, (unsigned long long)applied);
        mf_fsm_close(fsm);
        fflush(stdout);
        _exit(0);
    }
    while (waitpid(chk, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tf_rm(dir);
}

int main(int argc, char **argv)
{
    int rounds = 20;
    seed = (uint64_t)time(NULL);
    self_path = argv[0];
    if (argc == 6 && !strncmp(argv[1], "child-", 6)) {
        seed = strtoull(argv[4], NULL, 10);
        rs = seed * 0x9E3779B97F4A7C15ULL + 1;
        generate(0);
        int rc = child_main(argv[1], argv[2], atoi(argv[3]), argv[5]);
        tf_close(&gen);
        return rc;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--shim") && i + 1 < argc)
            shim = argv[++i];
        else if (!strcmp(argv[i], "--keep-pct") && i + 1 < argc)
            keep_pct = argv[++i];
        else if (!strcmp(argv[i], "--flush-pct") && i + 1 < argc)
            flush_pct = argv[++i];
        else {
            fprintf(stderr, "usage: store_crash_fsm [--rounds N] [--seed S] [--shim PATH "
                            "[--keep-pct P] [--flush-pct P]]\n");
            return 1;
        }
    }
    printf("store_crash_fsm: seed %llu (rerun with --seed)\n", (unsigned long long)seed);
    rs = seed * 0x9E3779B97F4A7C15ULL + 1;
    generate(1);
    make_snapshots(gen.dir);
    for (int r = 0; r < rounds; r++) {
        if (shim) {
            round_powercut(0);
            round_powercut(1);
        } else {
            round_apply();
            round_snapshot();
        }
    }
    tf_close(&gen);
    printf("PASS\n");
    return 0;
}
