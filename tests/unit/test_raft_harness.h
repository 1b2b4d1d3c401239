/* A tiny synchronous cluster for the Raft unit tests: N cores over in-memory
 * storage, a message queue the test can inspect, cut or reorder, and
 * production's driver (raft/driver.h) in its synchronous mode: every write and
 * apply completes inside the callback that starts it. Header-only so each
 * test_raft_*.c binary stays self-contained. */
#ifndef MF_TEST_RAFT_HARNESS_H
#define MF_TEST_RAFT_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "raft/core.h"
#include "raft/driver.h"
#include "raft/memstorage.h"

#define H_MAX 8
#define H_QUEUE_MAX 4096
#define H_SNAP_BYTES 300

struct h_msg {
    struct mf_raft_msg m;
    struct mf_raft_entry ents[64];
    uint8_t data[64][32];
    uint8_t chunk[H_SNAP_BYTES];
};

struct harness;
struct h_node {
    struct harness *h;
    struct mf_raft_driver drv;
    struct mf_raft *r;
    struct mf_raft_memstorage *ms;
    struct mf_raft_storage st;
    struct mf_raft_config cfg;
    uint64_t applied[1024]; /* index -> first 8 data bytes (or 0) */
    uint64_t applied_index;
    uint64_t reads_ctx[64];
    uint64_t reads_index[64];
    size_t reads_len;
    uint8_t snap_bytes[H_SNAP_BYTES]; /* this node's application snapshot */
    uint64_t snap_index;
    uint8_t stage[H_SNAP_BYTES];
    size_t stage_len;
    bool installed;
};

struct harness {
    size_t n;
    struct h_node nodes[H_MAX + 1]; /* 1-based */
    struct h_msg *q;
    size_t q_len;
    bool cut[H_MAX + 1][H_MAX + 1];
    bool hold; /* queue messages but do not deliver in h_stabilize */
};

static inline int h_snapshot_read(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf, size_t cap,
                           size_t *len, bool *done)
{
    struct h_node *nd = ctx;
    if (index != nd->snap_index)
        return MF_ECOMPACTED;
    size_t n = H_SNAP_BYTES - offset;
    if (n > cap)
        n = cap;
    memcpy(buf, nd->snap_bytes + offset, n);
    *len = n;
    *done = offset + n == H_SNAP_BYTES;
    return 0;
}

static inline void h_driver_init(struct harness *h, struct h_node *nd);

static inline void h_start(struct harness *h, uint64_t id)
{
    struct h_node *nd = &h->nodes[id];
    nd->cfg.storage = &nd->st;
    nd->cfg.snapshot_ctx = nd;
    nd->cfg.applied = nd->snap_index;
    assert_int_equal(mf_raft_init(&nd->cfg, &nd->r), 0);
    h_driver_init(h, nd);
}

/* voters 1..nv, learners nv+1..nv+nl, all nodes 1..n exist. */
static inline void h_init_ex(struct harness *h, size_t n, size_t nv, size_t nl, bool pre_vote,
                      bool check_quorum)
{
    memset(h, 0, sizeof(*h));
    h->n = n;
    h->q = calloc(H_QUEUE_MAX, sizeof(*h->q));
    assert_non_null(h->q);
    for (uint64_t id = 1; id <= n; id++) {
        struct h_node *nd = &h->nodes[id];
        assert_int_equal(mf_raft_memstorage_init(&nd->ms), 0);
        mf_raft_memstorage_iface(nd->ms, &nd->st);
        struct mf_raft_config *c = &nd->cfg;
        c->id = id;
        for (uint64_t v = 1; v <= nv; v++)
            c->voters[c->voters_len++] = v;
        for (uint64_t l = nv + 1; l <= nv + nl; l++)
            c->learners[c->learners_len++] = l;
        c->election_ticks = 10;
        c->heartbeat_ticks = 1;
        c->max_msg_bytes = 1024;
        c->max_inflight = 8;
        c->pre_vote = pre_vote;
        c->check_quorum = check_quorum;
        c->seed = 42;
        c->snapshot_chunk_bytes = 128;
        c->snapshot_read = h_snapshot_read;
        h_start(h, id);
    }
}

static inline void h_init(struct harness *h, size_t n)
{
    h_init_ex(h, n, n, 0, true, true);
}

static inline void h_free(struct harness *h)
{
    for (uint64_t id = 1; id <= h->n; id++) {
        mf_raft_close(h->nodes[id].r);
        mf_raft_memstorage_close(h->nodes[id].ms);
    }
    free(h->q);
}

static inline void h_enqueue(struct harness *h, const struct mf_raft_msg *m)
{
    if (h->cut[m->from][m->to])
        return;
    assert_true(h->q_len < H_QUEUE_MAX);
    struct h_msg *hm = &h->q[h->q_len++];
    hm->m = *m;
    assert_true(m->entries_len <= 64);
    for (size_t k = 0; k < m->entries_len; k++) {
        hm->ents[k] = m->entries[k];
        assert_true(m->entries[k].len <= 32);
        if (m->entries[k].len)
            memcpy(hm->data[k], m->entries[k].data, m->entries[k].len);
        hm->ents[k].data = hm->data[k];
    }
    hm->m.entries = m->entries_len ? hm->ents : NULL;
    if (m->snapshot_chunk_len) {
        memcpy(hm->chunk, m->snapshot_chunk, m->snapshot_chunk_len);
        hm->m.snapshot_chunk = hm->chunk;
    }
}

/* ---- the driver's callbacks, all synchronous ---- */

static inline void h_drv_send(void *ctx, const struct mf_raft_msg *msgs, size_t len)
{
    struct h_node *nd = ctx;
    for (size_t k = 0; k < len; k++)
        h_enqueue(nd->h, &msgs[k]);
}

static inline int h_drv_persist(void *ctx, const struct mf_raft_ready *rd)
{
    struct h_node *nd = ctx;
    for (size_t k = 0; k < rd->snapshot_chunks_len; k++) {
        const struct mf_raft_snapshot_chunk *c = &rd->snapshot_chunks[k];
        if (c->offset == 0)
            nd->stage_len = 0;
        assert_int_equal(c->offset, nd->stage_len);
        memcpy(nd->stage + c->offset, c->data, c->len);
        nd->stage_len += c->len;
    }
    if (rd->snapshot) {
        assert_int_equal(nd->stage_len, H_SNAP_BYTES);
        assert_int_equal(nd->st.install_snapshot(nd->st.ctx, rd->snapshot), 0);
    }
    assert_int_equal(nd->st.save(nd->st.ctx, rd->hard_state_changed ? &rd->hard_state : NULL,
                                 rd->entries, rd->entries_len),
                     0);
    return mf_raft_driver_persisted(&nd->drv, 0);
}

static inline int h_drv_apply(void *ctx, const struct mf_raft_ready *rd)
{
    struct h_node *nd = ctx;
    if (rd->snapshot) {
        memcpy(nd->snap_bytes, nd->stage, H_SNAP_BYTES);
        nd->snap_index = rd->snapshot->index;
        nd->applied_index = rd->snapshot->index;
        nd->installed = true;
    }
    for (size_t k = 0; k < rd->committed_len; k++) {
        const struct mf_raft_entry *e = &rd->committed[k];
        assert_int_equal(e->index, nd->applied_index + 1);
        uint64_t v = 0;
        if (e->type == MF_RAFT_ENTRY_NORMAL && e->len >= 8)
            memcpy(&v, e->data, 8);
        if (e->index < 1024)
            nd->applied[e->index] = v;
        nd->applied_index = e->index;
    }
    mf_raft_driver_applied(&nd->drv);
    return 0;
}

static inline void h_drv_read_states(void *ctx, const struct mf_raft_read_state *rs, size_t len)
{
    struct h_node *nd = ctx;
    for (size_t k = 0; k < len && nd->reads_len < 64; k++) {
        nd->reads_ctx[nd->reads_len] = rs[k].ctx;
        nd->reads_index[nd->reads_len++] = rs[k].index;
    }
}

static inline void h_driver_init(struct harness *h, struct h_node *nd)
{
    struct mf_raft_driver_cbs cb = {
        .ctx = nd,
        .send = h_drv_send,
        .persist = h_drv_persist,
        .apply = h_drv_apply,
        .read_states = h_drv_read_states,
    };
    nd->h = h;
    mf_raft_driver_init(&nd->drv, nd->r, &cb, 1);
}

/* Runs one ready batch of node id (if any) through the driver, synchronously. */
static inline bool h_process(struct harness *h, uint64_t id)
{
    struct h_node *nd = &h->nodes[id];
    if (!nd->r || !mf_raft_has_ready(nd->r))
        return false;
    assert_int_equal(mf_raft_driver_pump(&nd->drv), 0);
    assert_false(mf_raft_driver_busy(&nd->drv));
    return true;
}

/* Delivers the queued messages (FIFO); returns how many were delivered. */
static inline size_t h_deliver(struct harness *h)
{
    size_t n = h->q_len;
    if (n == 0)
        return 0;
    struct h_msg *batch = malloc(n * sizeof(*batch));
    assert_non_null(batch);
    memcpy(batch, h->q, n * sizeof(*batch));
    h->q_len = 0;
    for (size_t k = 0; k < n; k++) {
        struct h_msg *hm = &batch[k];
        hm->m.entries = hm->m.entries_len ? hm->ents : NULL;
        if (hm->m.snapshot_chunk_len)
            hm->m.snapshot_chunk = hm->chunk;
        struct h_node *to = &h->nodes[hm->m.to];
        if (hm->m.to >= 1 && hm->m.to <= h->n && to->r && !h->cut[hm->m.from][hm->m.to])
            assert_int_equal(mf_raft_step(to->r, &hm->m), 0);
    }
    free(batch);
    return n;
}

static inline void h_stabilize(struct harness *h)
{
    for (int round = 0; round < 1000; round++) {
        bool any = false;
        for (uint64_t id = 1; id <= h->n; id++)
            while (h_process(h, id))
                any = true;
        if (h_deliver(h))
            any = true;
        if (!any)
            return;
    }
    fail_msg("cluster did not stabilize");
}

static inline void h_tick(struct harness *h, uint64_t id, int n)
{
    for (int k = 0; k < n; k++)
        assert_int_equal(mf_raft_tick(h->nodes[id].r), 0);
}

/* Ticks every live node once and stabilizes, n times. */
static inline void h_tick_all(struct harness *h, int n)
{
    for (int k = 0; k < n; k++) {
        for (uint64_t id = 1; id <= h->n; id++)
            if (h->nodes[id].r)
                h_tick(h, id, 1);
        h_stabilize(h);
    }
}

static inline struct mf_raft_status h_status(struct harness *h, uint64_t id)
{
    struct mf_raft_status st;
    mf_raft_status(h->nodes[id].r, &st);
    return st;
}

static inline void h_elect(struct harness *h, uint64_t id)
{
    assert_int_equal(mf_raft_campaign(h->nodes[id].r), 0);
    h_stabilize(h);
    assert_int_equal(h_status(h, id).role, MF_RAFT_LEADER);
}

static inline uint64_t h_propose(struct harness *h, uint64_t id, uint64_t value)
{
    uint8_t data[8];
    memcpy(data, &value, 8);
    uint64_t index = 0;
    assert_int_equal(mf_raft_propose(h->nodes[id].r, data, 8, &index), 0);
    return index;
}

static inline void h_isolate(struct harness *h, uint64_t id, bool on)
{
    for (uint64_t b = 1; b <= H_MAX; b++) {
        h->cut[id][b] = on && b != id;
        h->cut[b][id] = on && b != id;
    }
}

static inline void h_crash(struct harness *h, uint64_t id)
{
    mf_raft_close(h->nodes[id].r);
    h->nodes[id].r = NULL;
}

/* Counts queued messages of a type from -> to (0 = any). */
static inline size_t h_count(struct harness *h, uint32_t type, uint64_t from, uint64_t to)
{
    size_t n = 0;
    for (size_t k = 0; k < h->q_len; k++) {
        const struct mf_raft_msg *m = &h->q[k].m;
        if (m->type == type && (!from || m->from == from) && (!to || m->to == to))
            n++;
    }
    return n;
}

#endif
