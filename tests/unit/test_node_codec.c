/* Tests of the Raft peer codec (src/server/peer_codec.c): every field of
 * every message type survives the wire, and bad bytes are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "node/peer_codec.h"

static struct mf_raft_msg full_msg(uint32_t type)
{
    /* d2: a conf change the core can read (add voter 4). */
    static const uint8_t d1[] = "first", d2[] = {MF_RAFT_CONF_ADD_VOTER, 0, 0, 0, 0, 0, 0, 0, 4},
                         chunk[] = "chunk-bytes";
    static struct mf_raft_entry ents[2];
    ents[0] = (struct mf_raft_entry){.term = 3, .index = 10, .type = MF_RAFT_ENTRY_NORMAL,
                                     .len = sizeof(d1), .data = d1};
    ents[1] = (struct mf_raft_entry){.term = 4, .index = 11, .type = MF_RAFT_ENTRY_CONF,
                                     .len = sizeof(d2), .data = d2};
    struct mf_raft_msg m = {
        .type = type, .from = 1, .to = 2, .term = 7, .log_term = 6, .index = 9, .commit = 8,
        .reject = true, .reject_hint = 5, .ctx = UINT64_C(0x0102030405060708),
        .entries = ents, .entries_len = 2, .snapshot_offset = 65536,
        .snapshot_chunk = chunk, .snapshot_chunk_len = sizeof(chunk), .snapshot_done = true,
    };
    m.snapshot.index = 100;
    m.snapshot.term = 5;
    m.snapshot.conf.voters_len = 3;
    m.snapshot.conf.voters[0] = 1, m.snapshot.conf.voters[1] = 2, m.snapshot.conf.voters[2] = 3;
    m.snapshot.conf.learners_len = 1;
    m.snapshot.conf.learners[0] = 4;
    return m;
}

static void assert_same(const struct mf_raft_msg *a, const struct mf_raft_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->log_term, b->log_term);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->commit, b->commit);
    assert_int_equal(a->reject, b->reject);
    assert_int_equal(a->reject_hint, b->reject_hint);
    assert_int_equal(a->ctx, b->ctx);
    assert_int_equal(a->entries_len, b->entries_len);
    for (size_t i = 0; i < a->entries_len; i++) {
        assert_int_equal(a->entries[i].term, b->entries[i].term);
        assert_int_equal(a->entries[i].index, b->entries[i].index);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].len, b->entries[i].len);
        assert_memory_equal(a->entries[i].data, b->entries[i].data, a->entries[i].len);
    }
    assert_int_equal(a->snapshot.index, b->snapshot.index);
    assert_int_equal(a->snapshot.term, b->snapshot.term);
    assert_int_equal(a->snapshot.conf.voters_len, b->snapshot.conf.voters_len);
    assert_int_equal(a->snapshot.conf.learners_len, b->snapshot.conf.learners_len);
    assert_int_equal(a->snapshot.conf.learners[0], b->snapshot.conf.learners[0]);
    assert_int_equal(a->snapshot_offset, b->snapshot_offset);
    assert_int_equal(a->snapshot_chunk_len, b->snapshot_chunk_len);
    assert_memory_equal(a->snapshot_chunk, b->snapshot_chunk, a->snapshot_chunk_len);
    assert_int_equal(a->snapshot_done, b->snapshot_done);
}

/* Every message type keeps every field through encode and decode, including
 * the snapshot offset and done flag of a SNAP_RESP (which has no snapshot meta). */
static void test_node_codec_round_trips_every_type(void **state)
{
    (void)state;
    for (uint32_t t = MF_RAFT_MSG_APP; t <= MF_RAFT_MSG_READ_INDEX_RESP; t++) {
        struct mf_raft_msg m = full_msg(t);
        if (t == MF_RAFT_MSG_SNAP_RESP)
            memset(&m.snapshot, 0, sizeof(m.snapshot));
        uint8_t *buf;
        size_t len;
        assert_int_equal(mf_peer_msg_encode(&m, &buf, &len), 0);
        struct mf_peer_decoded d;
        assert_int_equal(mf_peer_msg_decode(buf, len, &d), 0);
        assert_same(&m, &d.msg);
        mf_peer_msg_free(&d);
        free(buf);
    }
}

/* Garbage, an unknown type and a truncated message are refused, never crash. */
static void test_node_codec_refuses_bad_bytes(void **state)
{
    (void)state;
    struct mf_peer_decoded d;
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(mf_peer_msg_decode(garbage, sizeof(garbage), &d), MF_ECORRUPT);
    struct mf_raft_msg m = full_msg(99);
    uint8_t *buf;
    size_t len;
    assert_int_equal(mf_peer_msg_encode(&m, &buf, &len), 0);
    assert_int_equal(mf_peer_msg_decode(buf, len, &d), MF_ECORRUPT);
    free(buf);
    /* Every truncation either decodes (a cut at a field boundary is a valid,
     * shorter message) or is refused; most cuts land inside a field. ASan
     * checks that none reads out of bounds. */
    m = full_msg(MF_RAFT_MSG_APP);
    assert_int_equal(mf_peer_msg_encode(&m, &buf, &len), 0);
    size_t refused = 0;
    for (size_t cut = 1; cut < len; cut++) {
        uint8_t *copy = malloc(cut);
        memcpy(copy, buf, cut);
        int rc = mf_peer_msg_decode(copy, cut, &d);
        if (rc == 0)
            mf_peer_msg_free(&d);
        else
            assert_int_equal(rc, MF_ECORRUPT), refused++;
        free(copy);
    }
    assert_true(refused > len / 2);
    free(buf);
}

/* Entries must follow msg.index one by one (the Raft core asserts it): a
 * peer's AppendEntries that skips, repeats or wraps an index is refused
 * (found by tests/fuzz/fuzz_raft_step). */
static void test_node_codec_refuses_entries_out_of_order(void **state)
{
    (void)state;
    struct mf_peer_decoded d;
    uint8_t *buf;
    size_t len;
    struct mf_raft_msg m = full_msg(MF_RAFT_MSG_APP);
    const uint64_t second[] = {10, 12, 9};
    for (size_t i = 0; i < 3; i++) {
        m.entries[1].index = second[i];
        assert_int_equal(mf_peer_msg_encode(&m, &buf, &len), 0);
        assert_int_equal(mf_peer_msg_decode(buf, len, &d), MF_ECORRUPT);
        free(buf);
    }
    m = full_msg(MF_RAFT_MSG_APP);
    m.index = UINT64_MAX - 1;
    m.entries[0].index = UINT64_MAX;
    m.entries[1].index = 0;
    assert_int_equal(mf_peer_msg_encode(&m, &buf, &len), 0);
    assert_int_equal(mf_peer_msg_decode(buf, len, &d), MF_ECORRUPT);
    free(buf);
    m = full_msg(MF_RAFT_MSG_APP);
    assert_int_equal(mf_peer_msg_encode(&m, &buf, &len), 0);
    assert_int_equal(mf_peer_msg_decode(buf, len, &d), 0);
    mf_peer_msg_free(&d);
    free(buf);
}

/* A conf change entry the core cannot read (it would latch MF_ECORRUPT and
 * stop the node) is refused (found by tests/fuzz/fuzz_raft_step). */
static void test_node_codec_refuses_bad_conf_entry(void **state)
{
    (void)state;
    struct mf_peer_decoded d;
    uint8_t *buf;
    size_t len;
    static const uint8_t bad_type[] = {9, 0, 0, 0, 0, 0, 0, 0, 4}, short_[] = {1, 4};
    const uint8_t *datas[] = {bad_type, short_, NULL};
    const uint32_t lens[] = {sizeof(bad_type), sizeof(short_), 0};
    for (size_t i = 0; i < 3; i++) {
        struct mf_raft_msg m = full_msg(MF_RAFT_MSG_APP);
        m.entries[1].data = datas[i];
        m.entries[1].len = lens[i];
        assert_int_equal(mf_peer_msg_encode(&m, &buf, &len), 0);
        assert_int_equal(mf_peer_msg_decode(buf, len, &d), MF_ECORRUPT);
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_codec_refuses_entries_out_of_order),
        cmocka_unit_test(test_node_codec_refuses_bad_conf_entry),
        cmocka_unit_test(test_node_codec_round_trips_every_type),
        cmocka_unit_test(test_node_codec_refuses_bad_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
