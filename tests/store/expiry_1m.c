/* The expiry index at 1,000,000 leases (ctest store_expiry_1m, label slow):
 * after grants, renewals, revocations and expiries, "next due" (the first key
 * of the index) and "all due by T" match a model kept in memory. Leases are
 * granted in batches of 4096 commands per write transaction.
 * Usage: store_expiry_1m [LEASES] (default 1000000). Prints the time of a
 * next-due lookup. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "fsm_testlib.h"

#define T0 1700000000000ULL
#define BATCH 4096

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static uint64_t nleases;
static uint64_t *model; /* expire_at per seq; 0: not in the index */

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static void model_min(uint64_t *exp, uint64_t *seq)
{
    *exp = UINT64_MAX;
    *seq = 0;
    for (uint64_t s = 1; s <= nleases; s++)
        if (model[s] && model[s] < *exp) {
            *exp = model[s];
            *seq = s;
        }
}

static void check_next_due(struct tf *t, const char *when)
{
    uint64_t me, ms, e, s;
    model_min(&me, &ms);
    int rc = tf_next_due(t, &e, &s);
    if (ms == 0) {
        CHECK(rc == MF_ENOTFOUND);
        return;
    }
    CHECK(rc == 0);
    if (e != me || s != ms) {
        fprintf(stderr, "%s: next due %llu/%llu, model %llu/%llu\n", when,
                (unsigned long long)e, (unsigned long long)s, (unsigned long long)me,
                (unsigned long long)ms);
        exit(1);
    }
    printf("next due after %s: lease %llu at +%llu ms (ok)\n", when, (unsigned long long)s,
           (unsigned long long)(e - T0));
}

/* Pack `n` commands made by fill(i, cmd) and apply them in one batch. */
struct batch {
    uint8_t *buf;
    size_t cap, used;
    struct mf_fsm_entry e[BATCH];
    size_t n;
};

static void batch_add(struct batch *b, struct tf *t, Mayfly__Cmd__Command *c)
{
    size_t len = mayfly__cmd__command__get_packed_size(c);
    CHECK(b->used + len <= b->cap);
    mayfly__cmd__command__pack(c, b->buf + b->used);
    b->e[b->n].index = ++t->index;
    b->e[b->n].data = b->buf + b->used;
    b->e[b->n].len = len;
    b->e[b->n].conf = false;
    b->used += len;
    b->n++;
}

static void batch_flush(struct batch *b, struct tf *t)
{
    if (!b->n)
        return;
    /* Offsets were taken before the buffer was final: data pointers are
     * stable because buf is never reallocated. */
    CHECK(mf_fsm_apply_batch(t->fsm, b->e, b->n, NULL) == 0);
    b->n = 0;
    b->used = 0;
}

int main(int argc, char **argv)
{
    nleases = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    model = calloc(nleases + 1, sizeof(*model));
    struct batch *b = calloc(1, sizeof(*b));
    CHECK(model && b);
    b->cap = BATCH * 128;
    b->buf = malloc(b->cap);
    CHECK(b->buf);
    struct tf t;
    tf_open(&t);

    /* 1. Grant: TTLs from 1 s to 1 h, max TTL 10 h. */
    uint64_t now = T0;
    for (uint64_t s = 1; s <= nleases; s++) {
        Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
        Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
        g.seq = s;
        g.mount = "db";
        g.name = s % 2 ? "ro" : "rw";
        g.ttl_ms = 1000 + rng() % 3600000;
        g.max_ttl_ms = 36000000;
        g.state = LSTATE(ACTIVE);
        c.now_ms = now;
        c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
        c.lease_grant = &g;
        batch_add(b, &t, &c);
        model[s] = now + g.ttl_ms;
        if (b->n == BATCH)
            batch_flush(b, &t);
    }
    batch_flush(b, &t);
    check_next_due(&t, "grants");

    /* 2. Renew 20,000 random leases and the 100 first due. */
    now = T0 + 500;
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < (round ? 100 : 20000); i++) {
            uint64_t s, e;
            if (round)
                model_min(&e, &s);
            else
                s = rng() % nleases + 1;
            Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
            Mayfly__Cmd__LeaseRenew r = MAYFLY__CMD__LEASE_RENEW__INIT;
            r.seq = s;
            r.increment_ms = rng() % 7200000;
            c.now_ms = now;
            c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_RENEW;
            c.lease_renew = &r;
            batch_add(b, &t, &c);
            uint64_t ne = now + r.increment_ms;
            if (ne > T0 + 36000000)
                ne = T0 + 36000000;
            if (ne > model[s])
                model[s] = ne;
            if (round || b->n == BATCH)
                batch_flush(b, &t);
        }
        batch_flush(b, &t);
        check_next_due(&t, round ? "renewing the first due" : "random renewals");
    }

    /* 3. Revoke 20,000 random leases and the 100 first due. */
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < (round ? 100 : 20000); i++) {
            uint64_t s, e;
            if (round)
                model_min(&e, &s);
            else
                s = rng() % nleases + 1;
            Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
            Mayfly__Cmd__LeaseRevoke r = MAYFLY__CMD__LEASE_REVOKE__INIT;
            r.seq = s;
            c.now_ms = now;
            c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE;
            c.lease_revoke = &r;
            batch_add(b, &t, &c);
            model[s] = 0;
            if (round || b->n == BATCH)
                batch_flush(b, &t);
        }
        batch_flush(b, &t);
        check_next_due(&t, round ? "revoking the first due" : "random revocations");
    }

    /* 4. All due by T in pages, then expire them in batches. */
    uint64_t by = T0 + 600000, want = 0;
    for (uint64_t s = 1; s <= nleases; s++)
        want += model[s] && model[s] <= by;
    static uint64_t seqs[10000];
    uint64_t got = 0, prev_exp = 0;
    struct mf_lease_due_cursor cur, *after = NULL;
    MDB_txn *txn;
    CHECK(mf_state_read_begin(tf_st(&t), &txn) == 0);
    for (;;) {
        size_t n;
        CHECK(mf_lease_due(txn, tf_st(&t), by, after, seqs, 10000, &n, &cur) == 0);
        for (size_t i = 0; i < n; i++) {
            CHECK(model[seqs[i]] && model[seqs[i]] <= by && model[seqs[i]] >= prev_exp);
            prev_exp = model[seqs[i]];
        }
        got += n;
        if (n < 10000)
            break;
        after = &cur;
    }
    mf_state_read_end(txn);
    CHECK(got == want);
    printf("due by +600 s: %llu leases (ok)\n", (unsigned long long)got);
    now = by;
    for (;;) {
        size_t n;
        CHECK(mf_state_read_begin(tf_st(&t), &txn) == 0);
        CHECK(mf_lease_due(txn, tf_st(&t), by, NULL, seqs, 10000, &n, NULL) == 0);
        mf_state_read_end(txn);
        if (n == 0)
            break;
        Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
        Mayfly__Cmd__LeaseExpire x = MAYFLY__CMD__LEASE_EXPIRE__INIT;
        x.seqs = seqs;
        x.n_seqs = n;
        c.now_ms = now;
        c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_EXPIRE;
        c.lease_expire = &x;
        Mayfly__Cmd__Result *r;
        size_t len = mayfly__cmd__command__get_packed_size(&c);
        uint8_t *buf = malloc(len);
        CHECK(buf);
        mayfly__cmd__command__pack(&c, buf);
        CHECK(mf_fsm_apply(t.fsm, ++t.index, buf, len, &r) == 0);
        CHECK(r->code == 0 && r->count == n);
        mf_fsm_result_free(r);
        free(buf);
        for (size_t i = 0; i < n; i++)
            model[seqs[i]] = 0;
    }
    check_next_due(&t, "expiring all due by +600 s");

    /* 5. Time the next-due lookup (one read transaction per lookup, as the
     * scheduler does). */
    struct timespec a0, a1;
    const int iters = 100000;
    uint64_t e, s, sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &a0);
    for (int i = 0; i < iters; i++) {
        CHECK(tf_next_due(&t, &e, &s) == 0);
        sink += s;
    }
    clock_gettime(CLOCK_MONOTONIC, &a1);
    double ns = ((a1.tv_sec - a0.tv_sec) * 1e9 + (a1.tv_nsec - a0.tv_nsec)) / iters;
    printf("next-due lookup at %llu leases: %.0f ns (read txn + cursor first), checksum %llu\n",
           (unsigned long long)nleases, ns, (unsigned long long)(sink % 7));
    tf_close(&t);
    free(b->buf);
    free(b);
    free(model);
    printf("PASS\n");
    return 0;
}
