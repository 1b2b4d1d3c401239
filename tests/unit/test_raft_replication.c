/* Tests of the Raft core's log replication: the Figure 8 commit rule,
 * truncation only on real conflicts, back-tracking hints, the leader's own
 * durability, flow control and batching, snapshots. */
#include "test_raft_harness.h"

/* Replaces node id's storage with entries of the given terms (1-based) and
 * hard state, then restarts its core. */
static void preload(struct harness *h, uint64_t id, const uint64_t *terms, size_t n, uint64_t term,
                    uint64_t commit)
{
    h_crash(h, id);
    struct h_node *nd = &h->nodes[id];
    mf_raft_memstorage_close(nd->ms);
    assert_int_equal(mf_raft_memstorage_init(&nd->ms), 0);
    mf_raft_memstorage_iface(nd->ms, &nd->st);
    struct mf_raft_entry e[32];
    uint8_t data[32][8];
    for (size_t k = 0; k < n; k++) {
        uint64_t v = 1000 + k;
        memcpy(data[k], &v, 8);
        e[k] = (struct mf_raft_entry){.term = terms[k], .index = k + 1, .type = MF_RAFT_ENTRY_NORMAL,
                                      .len = 8, .data = data[k]};
    }
    struct mf_raft_hard_state hs = {.term = term, .vote = 0, .commit = commit};
    assert_int_equal(nd->st.save(nd->st.ctx, &hs, e, n), 0);
    nd->applied_index = commit;
    nd->cfg.applied = commit;
    assert_int_equal(mf_raft_init(&nd->cfg, &nd->r), 0);
    h_driver_init(h, nd);
}

static void ready_advance(struct harness *h, uint64_t id, struct mf_raft_ready *rd)
{
    (void)h;
    assert_int_equal(mf_raft_advance(h->nodes[id].r, rd), 0);
}

/* Figure 8: a leader never commits an entry of an older term by counting replicas; it commits with its own. */
static void test_raft_old_term_entries_not_committed_by_counting(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    uint64_t terms[] = {1, 2};
    preload(&h, 1, terms, 2, 2, 1);
    /* 1 wins term 3 with 2's vote; its log has (2, term 2) uncommitted. */
    h.cut[1][3] = h.cut[3][1] = true;
    assert_int_equal(mf_raft_campaign(h.nodes[1].r), 0);
    h_process(&h, 1);
    h_deliver(&h);
    h_process(&h, 2);
    h.q_len = 0;
    struct mf_raft_msg vr = {.type = MF_RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 3};
    assert_int_equal(mf_raft_step(h.nodes[1].r, &vr), 0);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    h_process(&h, 1); /* the no-op (3, term 3) is now durable on 1 */
    h.q_len = 0;
    /* 2 acknowledges index 2 (term 2): a majority holds it, yet no commit. */
    struct mf_raft_msg ack = {.type = MF_RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 3, .index = 2};
    assert_int_equal(mf_raft_step(h.nodes[1].r, &ack), 0);
    assert_int_equal(h_status(&h, 1).commit, 1);
    /* Once the no-op of term 3 is replicated, both commit together. */
    ack.index = 3;
    assert_int_equal(mf_raft_step(h.nodes[1].r, &ack), 0);
    assert_int_equal(h_status(&h, 1).commit, 3);
    h_free(&h);
}

/* A delayed AppendEntries shorter than the follower's log truncates nothing. */
static void test_raft_stale_short_append_does_not_truncate(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    uint64_t terms[] = {1, 1, 1, 1, 1};
    preload(&h, 2, terms, 5, 1, 0);
    struct mf_raft_entry e = {.term = 1, .index = 2, .type = MF_RAFT_ENTRY_NORMAL, .len = 8,
                              .data = (const uint8_t *)"\xe9\x03\0\0\0\0\0\0"};
    uint64_t v = 1001;
    e.data = (const uint8_t *)&v;
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .index = 1,
                            .log_term = 1, .entries = &e, .entries_len = 1, .commit = 0};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    assert_int_equal(h_status(&h, 2).last_index, 5);
    struct mf_raft_ready rd;
    assert_int_equal(mf_raft_ready(h.nodes[2].r, &rd), 0);
    assert_int_equal(rd.entries_len, 0); /* nothing to rewrite */
    assert_int_equal(rd.msgs_after_len, 1);
    assert_int_equal(rd.msgs_after[0].type, MF_RAFT_MSG_APP_RESP);
    assert_int_equal(rd.msgs_after[0].index, 2); /* acknowledges only what it was sent */
    ready_advance(&h, 2, &rd);
    h_free(&h);
}

/* An entry with the same index and a different term truncates the follower's suffix from there. */
static void test_raft_conflicting_append_truncates_suffix(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    uint64_t terms[] = {1, 1, 1, 1, 1};
    preload(&h, 2, terms, 5, 1, 0);
    uint64_t v = 7;
    struct mf_raft_entry e = {.term = 2, .index = 3, .type = MF_RAFT_ENTRY_NORMAL, .len = 8,
                              .data = (const uint8_t *)&v};
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_APP, .from = 1, .to = 2, .term = 2, .index = 2,
                            .log_term = 1, .entries = &e, .entries_len = 1};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    assert_int_equal(h_status(&h, 2).last_index, 3);
    uint64_t t = 0;
    assert_int_equal(mf_raft_term(h.nodes[2].r, 3, &t), 0);
    assert_int_equal(t, 2);
    h_process(&h, 2);
    uint64_t li = 0;
    h.nodes[2].st.last_index(h.nodes[2].st.ctx, &li);
    assert_int_equal(li, 3);
    h_free(&h);
}

/* A rejection names the follower's last index with a term no newer than the probe's, so the leader skips whole terms. */
static void test_raft_reject_carries_conflict_hint(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    uint64_t terms[] = {1, 1, 2, 2, 2};
    preload(&h, 2, terms, 5, 2, 0);
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_APP, .from = 1, .to = 2, .term = 3, .index = 8,
                            .log_term = 1};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    struct mf_raft_ready rd;
    assert_int_equal(mf_raft_ready(h.nodes[2].r, &rd), 0);
    assert_int_equal(rd.msgs_after_len, 1);
    const struct mf_raft_msg *r = &rd.msgs_after[0];
    assert_true(r->reject);
    assert_int_equal(r->index, 8);
    assert_int_equal(r->reject_hint, 2); /* last index whose term <= 1 */
    assert_int_equal(r->log_term, 1);
    ready_advance(&h, 2, &rd);
    h_free(&h);
}

/* The leader counts itself toward a commit only once its own write is durable (advance). */
static void test_raft_leader_counts_itself_only_after_persist(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    h_elect(&h, 1);
    uint64_t i = h_propose(&h, 1, 5);
    struct mf_raft_ready rd;
    assert_int_equal(mf_raft_ready(h.nodes[1].r, &rd), 0);
    assert_int_equal(rd.entries_len, 1);
    assert_true(rd.msgs_before_len >= 2); /* replication starts before the leader's fsync */
    struct mf_raft_msg ack = {.type = MF_RAFT_MSG_APP_RESP, .from = 2, .to = 1,
                              .term = h_status(&h, 1).term, .index = i};
    assert_int_equal(mf_raft_step(h.nodes[1].r, &ack), 0);
    assert_int_equal(h_status(&h, 1).commit, i - 1); /* 1 of 3 durable: not yet */
    assert_int_equal(h.nodes[1].st.save(h.nodes[1].st.ctx, &rd.hard_state, rd.entries,
                                        rd.entries_len),
                     0);
    ready_advance(&h, 1, &rd);
    assert_int_equal(h_status(&h, 1).commit, i);
    h_free(&h);
}

/* Many proposals between two ready batches go to each follower in one AppendEntries. */
static void test_raft_leader_batches_proposals(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    h_elect(&h, 1);
    for (int k = 0; k < 20; k++)
        h_propose(&h, 1, 100 + (uint64_t)k);
    h_process(&h, 1);
    assert_int_equal(h_count(&h, MF_RAFT_MSG_APP, 1, 2), 1);
    assert_int_equal(h.q[0].m.entries_len, 20);
    h_stabilize(&h);
    assert_int_equal(h.nodes[3].applied[h_status(&h, 1).commit], 119);
    h_free(&h);
}

/* A follower in the replicate state gets at most max_inflight unacknowledged AppendEntries. */
static void test_raft_pipelining_respects_inflight_window(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    for (uint64_t id = 1; id <= 3; id++) {
        h_crash(&h, id);
        h.nodes[id].cfg.max_inflight = 2;
        h_start(&h, id);
    }
    h_elect(&h, 1);
    for (int k = 0; k < 6; k++) {
        h_propose(&h, 1, 10 + (uint64_t)k);
        h_process(&h, 1);
    }
    assert_int_equal(h_count(&h, MF_RAFT_MSG_APP, 1, 2), 2);
    h_stabilize(&h); /* acks open the window: everything commits */
    assert_int_equal(h.nodes[2].applied_index, h_status(&h, 1).last_index);
    h_free(&h);
}

/* A follower behind the leader's compaction point catches up with a chunked snapshot, then the log. */
static void test_raft_snapshot_brings_lagging_follower_up(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_isolate(&h, 3, true);
    for (int k = 0; k < 20; k++)
        h_propose(&h, 1, 500 + (uint64_t)k);
    h_stabilize(&h);
    struct h_node *l = &h.nodes[1];
    uint64_t at = l->applied_index;
    struct mf_raft_snapshot_meta meta;
    assert_int_equal(mf_raft_snapshot_taken(l->r, at, &meta), 0);
    assert_int_equal(meta.index, at);
    assert_int_equal(meta.conf.voters_len, 3);
    for (int k = 0; k < H_SNAP_BYTES; k++)
        l->snap_bytes[k] = (uint8_t)(k * 7);
    l->snap_index = at;
    assert_int_equal(l->st.compact(l->st.ctx, &meta), 0);
    h_propose(&h, 1, 999);
    h_stabilize(&h);
    h_isolate(&h, 3, false);
    h_tick_all(&h, 10);
    struct h_node *f = &h.nodes[3];
    assert_true(f->installed);
    assert_int_equal(f->snap_index, at);
    assert_memory_equal(f->snap_bytes, l->snap_bytes, H_SNAP_BYTES);
    assert_int_equal(h_status(&h, 3).commit, h_status(&h, 1).commit);
    assert_int_equal(f->applied[h_status(&h, 1).commit], 999);
    h_free(&h);
}

/* A snapshot at or below the follower's commit index is ignored: commit and applied never move back. */
static void test_raft_old_snapshot_never_moves_commit_back(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    uint64_t terms[] = {1, 1, 1, 1, 1};
    preload(&h, 2, terms, 5, 1, 5);
    uint8_t chunk[4] = {1, 2, 3, 4};
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1,
                            .snapshot = {.index = 3, .term = 1}, .snapshot_chunk = chunk,
                            .snapshot_chunk_len = 4, .snapshot_done = true};
    m.snapshot.conf.voters_len = 3;
    for (int k = 0; k < 3; k++)
        m.snapshot.conf.voters[k] = (uint64_t)k + 1;
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    struct mf_raft_ready rd;
    assert_int_equal(mf_raft_ready(h.nodes[2].r, &rd), 0);
    assert_null(rd.snapshot);
    assert_int_equal(rd.snapshot_chunks_len, 0);
    assert_int_equal(h_status(&h, 2).commit, 5);
    ready_advance(&h, 2, &rd);
    h_free(&h);
}

/* A snapshot whose last entry the follower already holds fast-forwards commit and keeps the log. */
static void test_raft_snapshot_matching_log_is_kept(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    uint64_t terms[] = {1, 1, 1, 1, 1};
    preload(&h, 2, terms, 5, 1, 1);
    uint8_t chunk[4] = {1, 2, 3, 4};
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1,
                            .snapshot = {.index = 3, .term = 1}, .snapshot_chunk = chunk,
                            .snapshot_chunk_len = 4, .snapshot_done = true};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    assert_int_equal(h_status(&h, 2).commit, 3);
    assert_int_equal(h_status(&h, 2).last_index, 5);
    h_free(&h);
}

/* A ready batch stays valid while the driver keeps stepping and proposing before advance. */
static void test_raft_ready_batch_valid_until_advance(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    h_elect(&h, 1);
    uint64_t v = 0x1122334455667788ull;
    uint8_t d[8];
    memcpy(d, &v, 8);
    assert_int_equal(mf_raft_propose(h.nodes[1].r, d, 8, NULL), 0);
    struct mf_raft_ready rd;
    assert_int_equal(mf_raft_ready(h.nodes[1].r, &rd), 0);
    assert_false(mf_raft_has_ready(h.nodes[1].r));
    assert_true(rd.msgs_before_len >= 1);
    assert_int_equal(rd.msgs_before[0].entries_len, 1);
    /* Lots of activity in between: proposals, ticks, stale messages. */
    for (int k = 0; k < 40; k++) {
        uint64_t w = (uint64_t)k;
        uint8_t e[8];
        memcpy(e, &w, 8);
        assert_int_equal(mf_raft_propose(h.nodes[1].r, e, 8, NULL), 0);
        assert_int_equal(mf_raft_tick(h.nodes[1].r), 0);
    }
    assert_memory_equal(rd.msgs_before[0].entries[0].data, d, 8);
    assert_memory_equal(rd.entries[0].data, d, 8);
    assert_int_equal(h.nodes[1].st.save(h.nodes[1].st.ctx, &rd.hard_state, rd.entries,
                                        rd.entries_len),
                     0);
    ready_advance(&h, 1, &rd);
    assert_true(mf_raft_has_ready(h.nodes[1].r));
    h.q_len = 0;
    h_stabilize(&h);
    h_tick_all(&h, 3);
    assert_int_equal(h_status(&h, 2).commit, h_status(&h, 1).last_index);
    h_free(&h);
}

/* A follower reported unreachable drops from pipelining to probing and recovers on its next response. */
static void test_raft_report_unreachable_probes(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    h_elect(&h, 1);
    h.cut[1][2] = true;
    for (int k = 0; k < 3; k++) {
        h_propose(&h, 1, 7 + (uint64_t)k);
        h_stabilize(&h);
    }
    mf_raft_report_unreachable(h.nodes[1].r, 2);
    h.cut[1][2] = false;
    h_tick_all(&h, 3);
    assert_int_equal(h_status(&h, 2).last_index, h_status(&h, 1).last_index);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_old_term_entries_not_committed_by_counting),
        cmocka_unit_test(test_raft_stale_short_append_does_not_truncate),
        cmocka_unit_test(test_raft_conflicting_append_truncates_suffix),
        cmocka_unit_test(test_raft_reject_carries_conflict_hint),
        cmocka_unit_test(test_raft_leader_counts_itself_only_after_persist),
        cmocka_unit_test(test_raft_leader_batches_proposals),
        cmocka_unit_test(test_raft_pipelining_respects_inflight_window),
        cmocka_unit_test(test_raft_snapshot_brings_lagging_follower_up),
        cmocka_unit_test(test_raft_old_snapshot_never_moves_commit_back),
        cmocka_unit_test(test_raft_snapshot_matching_log_is_kept),
        cmocka_unit_test(test_raft_ready_batch_valid_until_advance),
        cmocka_unit_test(test_raft_report_unreachable_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
