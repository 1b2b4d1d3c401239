/* bench_fsm: the state machine's apply throughput and the expiry index's cost.
 *
 *   bench_fsm [-n LEASES] [-dir DIR]
 *
 * 1. Lease-grant commands applied per second with 1, 16 and 256 commands per
 *    write transaction (each commit is one fsync of the state DB, on DIR's
 *    file system: default /var/tmp, a disk, not tmpfs). Commands are packed
 *    beforehand; the figure covers decode, rules, indexes, commit.
 * 2. Grant LEASES (default 1,000,000) leases in batches of 256, then report
 *    the state DB's size per live lease (the data file as it stands, and a
 *    compacted snapshot of it) and the time to find the next due lease.
 * Prints figures; never a timed assertion.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "command.pb-c.h"
#include "common/err.h"
#include "store/fsm.h"
#include "store/leases.h"
#include "store/snapshot.h"
#include "store/state.h"
#include "tmpdir.h"

#define T0 1700000000000ULL

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_fsm: %s: %s\n", what, mf_strerror(rc));
    exit(1);
}

static uint8_t owner_hash[32];

/* Packed commands for leases [first, first + n). */
struct packed {
    uint8_t *buf;
    size_t *off, *len;
    size_t n;
};

/* with_rid: every command carries a 16-character request id (as client
 * retries need): 1 = time-ordered (ULID-like: the client's clock in ms, then
 * a counter), 2 = random; 0 = none. TTLs come from four roles (5 min,
 * 15 min, 1 h, 4 h) as engines configure them, so each role's expire_at
 * grows with now; random_ttl instead draws each TTL at random (the expiry
 * index then takes random inserts). */
static int with_rid, random_ttl;

static void pack_grants(struct packed *p, uint64_t first, size_t n, uint64_t now)
{
    static const char *roles[] = {"readonly", "readwrite", "admin", "batch"};
    static const uint64_t ttls[] = {300000, 900000, 3600000, 14400000};
    p->n = n;
    p->buf = malloc(n * 112);
    p->off = malloc(n * sizeof(size_t));
    p->len = malloc(n * sizeof(size_t));
    if (!p->buf || !p->off || !p->len)
        die("malloc", -12);
    size_t used = 0;
    uint64_t x = first * 2654435761u + 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
        Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
        char rid[24];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        g.seq = first + i;
        g.mount = "db";
        g.name = (char *)roles[(first + i) % 4];
        g.ttl_ms = random_ttl ? 60000 + x % 3600000 : ttls[(first + i) % 4];
        g.max_ttl_ms = 24 * 3600000ULL;
        g.state = MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE;
        g.owner_token_hash.data = owner_hash;
        g.owner_token_hash.len = 32;
        c.now_ms = now + i / 64;
        c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
        c.lease_grant = &g;
        if (with_rid) {
            unsigned long long r = with_rid == 1 ? ((now + i / 64) << 20 | ((first + i) & 0xfffff))
                                                 : x * 0x9E3779B97F4A7C15ULL;
            snprintf(rid, sizeof(rid), "%016llx", r);
            c.request_id.data = (uint8_t *)rid;
            c.request_id.len = 16;
        }
        size_t len = mayfly__cmd__command__get_packed_size(&c);
        if (len > 112)
            die("command larger than expected", MF_EINTERNAL);
        mayfly__cmd__command__pack(&c, p->buf + used);
        p->off[i] = used;
        p->len[i] = len;
        used += len;
    }
}

static void packed_free(struct packed *p)
{
    free(p->buf);
    free(p->off);
    free(p->len);
}

static void apply_packed(struct mf_fsm *fsm, struct packed *p, size_t batch, uint64_t *index)
{
    struct mf_fsm_entry *e = malloc(batch * sizeof(*e));
    if (!e)
        die("malloc", -12);
    for (size_t i = 0; i < p->n; i += batch) {
        size_t k = p->n - i < batch ? p->n - i : batch;
        for (size_t j = 0; j < k; j++) {
            e[j].index = ++*index;
            e[j].data = p->buf + p->off[i + j];
            e[j].len = p->len[i + j];
            e[j].conf = false;
        }
        int rc = mf_fsm_apply_batch(fsm, e, k, NULL);
        if (rc)
            die("apply", rc);
    }
    free(e);
}

static void make_owner(struct mf_fsm *fsm, uint64_t *index)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__TokenCreate t = MAYFLY__CMD__TOKEN_CREATE__INIT;
    memset(owner_hash, 0x5a, sizeof(owner_hash));
    t.hash.data = owner_hash;
    t.hash.len = 32;
    t.accessor = "bench";
    c.now_ms = T0;
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE;
    c.token_create = &t;
    uint8_t buf[256];
    size_t n = mayfly__cmd__command__pack(&c, buf);
    Mayfly__Cmd__Result *r;
    int rc = mf_fsm_apply(fsm, ++*index, buf, n, &r);
    if (rc || r->code)
        die("token create", rc ? rc : r->code);
    mf_fsm_result_free(r);
}

static void rm_rf(const char *dir)
{
    if (mf_tmpdir_remove(dir) != 0)
        fprintf(stderr, "bench_fsm: could not remove %s: %s\n", dir, strerror(errno));
}

int main(int argc, char **argv)
{
    uint64_t nleases = 1000000;
    const char *base = "/var/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            nleases = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-dir") && i + 1 < argc)
            base = argv[++i];
        else {
            fprintf(stderr, "usage: bench_fsm [-n LEASES] [-dir DIR]\n");
            return 1;
        }
    }
    char dir[512];
    if (mf_tmpdir_make_in(base, "bench-fsm", dir, sizeof(dir)) != 0) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_fsm: state DB under %s\n", dir);

    /* 0. The disk's floor for one commit: a 4 KiB pwrite + fdatasync. */
    {
        char f[600];
        snprintf(f, sizeof(f), "%s/floor", dir);
        int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0600);
        static char page[4096];
        double t0 = now_s();
        for (int i = 0; i < 200; i++)
            if (pwrite(fd, page, sizeof(page), (off_t)(i % 8) * 4096) != 4096 || fdatasync(fd))
                die("floor", -5);
        printf("disk floor: %.0f us per 4 KiB pwrite + fdatasync\n", (now_s() - t0) * 1e6 / 200);
        close(fd);
        unlink(f);
    }

    /* 1. Throughput by batch size, each on a fresh store. */
    const size_t batches[] = {1, 16, 256, 4096};
    const size_t counts[] = {2000, 40000, 400000, 800000};
    static const char *modes[] = {"", "+request-id(time-ordered)", "+request-id(random)",
                                  "+random-ttl"};
    for (int mode = 0; mode < 4; mode++) {
        with_rid = mode == 1 ? 1 : mode == 2 ? 2 : 0;
        random_ttl = mode == 3;
        for (int b = 0; b < 4; b++) {
            if (b == 3 && mode != 0)
                continue; /* one line to show where larger batches go */
            char sub[700];
            snprintf(sub, sizeof(sub), "%s/tp%zu", dir, batches[b]);
            struct mf_fsm *fsm;
            int rc = mf_fsm_open(sub, NULL, &fsm);
            if (rc)
                die("open", rc);
            uint64_t index = 0;
            make_owner(fsm, &index);
            struct packed p;
            pack_grants(&p, 1, counts[b], T0);
            double t0 = now_s();
            apply_packed(fsm, &p, batches[b], &index);
            double dt = now_s() - t0;
            printf("apply lease-grant%s batch=%zu commands=%zu cmds/s=%.0f us/commit=%.1f\n",
                   modes[mode], batches[b],
                   counts[b], (double)counts[b] / dt,
                   dt * 1e6 / (double)((counts[b] + batches[b] - 1) / batches[b]));
            packed_free(&p);
            mf_fsm_close(fsm);
            rm_rf(sub);
        }
    }
    with_rid = 0;
    random_ttl = 0;

    /* 2. 1M leases: size and next due. */
    char sub[700];
    snprintf(sub, sizeof(sub), "%s/big", dir);
    struct mf_fsm *fsm;
    int rc = mf_fsm_open(sub, NULL, &fsm);
    if (rc)
        die("open", rc);
    uint64_t index = 0;
    make_owner(fsm, &index);
    double t0 = now_s();
    for (uint64_t first = 1; first <= nleases; first += 65536) {
        size_t n = nleases - first + 1 < 65536 ? nleases - first + 1 : 65536;
        struct packed p;
        pack_grants(&p, first, n, T0 + first / 64);
        apply_packed(fsm, &p, 256, &index);
        packed_free(&p);
    }
    double dt = now_s() - t0;
    printf("granted %llu leases in %.1f s (%.0f cmds/s incl. packing)\n",
           (unsigned long long)nleases, dt, (double)nleases / dt);

    struct mf_state *st = mf_fsm_state(fsm);
    MDB_txn *txn;
    uint64_t live = 0;
    if ((rc = mf_state_read_begin(st, &txn)))
        die("read", rc);
    mf_state_live_leases(txn, st, &live);
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(st->env, &info);
    mdb_env_stat(st->env, &est);
    uint64_t used_bytes = (uint64_t)(info.me_last_pgno + 1) * est.ms_psize;
    printf("state DB pages in use: %.1f MiB = %.0f bytes per live lease (%llu live)\n",
           (double)used_bytes / 1048576.0, (double)used_bytes / (double)live,
           (unsigned long long)live);
    for (int i = 0; i < MF_DB_COUNT; i++) {
        MDB_stat s;
        if (mdb_stat(txn, st->dbi[i], &s) == 0 && s.ms_entries)
            printf("  %-12s entries=%-8zu pages=%-7zu (%.0f bytes/lease; DUPSORT: main tree only)\n",
                   mf_state_db_name(i),
                   s.ms_entries, s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages,
                   (double)(s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages) *
                       s.ms_psize / (double)live);
    }

    /* Next due: one read transaction + cursor per lookup (the scheduler's
     * way), and the cursor read alone inside one transaction. */
    const int iters = 200000;
    uint64_t e, q, sink = 0;
    double a = now_s();
    for (int i = 0; i < iters; i++) {
        if (mf_lease_next_due(txn, st, &e, &q))
            die("next due", MF_EINTERNAL);
        sink += q;
    }
    double in_txn_ns = (now_s() - a) * 1e9 / iters;
    mf_state_read_end(txn);
    a = now_s();
    for (int i = 0; i < iters; i++) {
        MDB_txn *t;
        if (mf_state_read_begin(st, &t) || mf_lease_next_due(t, st, &e, &q))
            die("next due", MF_EINTERNAL);
        sink += q;
        mf_state_read_end(t);
    }
    double with_txn_ns = (now_s() - a) * 1e9 / iters;
    printf("next-due lookup at %llu leases: %.0f ns (cursor in an open read txn), %.0f ns "
           "(with its own read txn) [%llu]\n",
           (unsigned long long)live, in_txn_ns, with_txn_ns, (unsigned long long)(sink % 3));

    /* A compacted snapshot: the size a new node receives. */
    char snap[800];
    snprintf(snap, sizeof(snap), "%s/snap.bin", dir);
    char err[256];
    a = now_s();
    if ((rc = mf_snapshot_create(st, snap, NULL, err, sizeof(err))))
        die(err, rc);
    struct stat sb;
    stat(snap, &sb);
    printf("compacted snapshot: %.1f MiB = %.0f bytes per live lease, made in %.2f s\n",
           (double)sb.st_size / 1048576.0, (double)sb.st_size / (double)live, now_s() - a);
    char data[800];
    snprintf(data, sizeof(data), "%s/state/data.mdb", sub);
    stat(data, &sb);
    printf("data.mdb on disk: %.1f MiB allocated = %.0f bytes per live lease\n",
           (double)sb.st_blocks * 512 / 1048576.0, (double)sb.st_blocks * 512 / (double)live);
    mf_fsm_close(fsm);
    rm_rf(dir);
    return 0;
}
