/* The member registry (store/members.h): configuration entries with a
 * MemberChange tail recorded as they apply, removals, known members filled
 * in only where missing, malformed tails ignored, and snapshots carrying it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"
#include "raft/core.h"
#include "store/members.h"
#include "store/snapshot.h"

/* Applies a conf entry (type, id) with a tail for `info` (NULL: none) and
 * known members k[0..nk). */
static void conf(struct tf *t, int type, uint64_t id, const Mayfly__Cmd__MemberInfo *info,
                 Mayfly__Cmd__MemberInfo *const *k, size_t nk)
{
    uint8_t buf[MF_RAFT_CONF_ENTRY_LEN + MF_RAFT_CONF_TAIL_MAX] = {(uint8_t)type};
    for (int i = 8; i >= 1; i--, id >>= 8)
        buf[i] = (uint8_t)id;
    size_t len = MF_RAFT_CONF_ENTRY_LEN;
    if (info || nk) {
        uint8_t *tail;
        size_t tl;
        assert_int_equal(mf_members_tail_encode(info, k, nk, MF_RAFT_CONF_TAIL_MAX, &tail, &tl), 0);
        memcpy(buf + len, tail, tl);
        len += tl;
        free(tail);
    }
    struct mf_fsm_entry e = {++t->index, buf, len, true};
    assert_int_equal(mf_fsm_apply_batch(t->fsm, &e, 1, NULL), 0);
}

static Mayfly__Cmd__MemberInfo info(uint64_t id, const char *addr, const char *api,
                                    const char *zone)
{
    Mayfly__Cmd__MemberInfo m = MAYFLY__CMD__MEMBER_INFO__INIT;
    m.id = id;
    m.addr = (char *)addr;
    m.api_addr = (char *)api;
    m.zone = (char *)zone;
    return m;
}

static size_t list(struct tf *t, Mayfly__Cmd__MemberInfo ***l)
{
    MDB_txn *txn;
    size_t n;
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    assert_int_equal(mf_members_list(txn, tf_st(t), l, &n), 0);
    mf_state_read_end(txn);
    return n;
}

/* Add as a learner, promote (the addresses stay), remove; by id. */
static void test_store_members_add_promote_remove(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    Mayfly__Cmd__MemberInfo m4 = info(4, "127.0.0.1:7004", "127.0.0.1:8204", "b");
    Mayfly__Cmd__MemberInfo m2 = info(2, "127.0.0.1:7002", "", "a");
    conf(&t, MF_RAFT_CONF_ADD_LEARNER, 4, &m4, NULL, 0);
    conf(&t, MF_RAFT_CONF_ADD_LEARNER, 2, &m2, NULL, 0);
    Mayfly__Cmd__MemberInfo **l;
    size_t n = list(&t, &l);
    assert_int_equal(n, 2);
    assert_int_equal(l[0]->id, 2);
    assert_int_equal(l[1]->id, 4);
    assert_string_equal(l[1]->addr, "127.0.0.1:7004");
    assert_string_equal(l[1]->api_addr, "127.0.0.1:8204");
    assert_string_equal(l[1]->zone, "b");
    assert_false(l[1]->voter);
    mf_members_list_free(l, n);
    conf(&t, MF_RAFT_CONF_ADD_VOTER, 4, NULL, NULL, 0); /* a promotion without a tail */
    n = list(&t, &l);
    assert_int_equal(n, 2);
    assert_true(l[1]->voter);
    assert_string_equal(l[1]->zone, "b");
    mf_members_list_free(l, n);
    conf(&t, MF_RAFT_CONF_REMOVE, 2, NULL, NULL, 0);
    n = list(&t, &l);
    assert_int_equal(n, 1);
    assert_int_equal(l[0]->id, 4);
    mf_members_list_free(l, n);
    assert_int_equal(mf_fsm_applied(t.fsm), t.index);
    tf_close(&t);
}

/* Known members enter only where the registry has no record; a malformed
 * tail changes nothing but the entry still applies. */
static void test_store_members_known_and_malformed(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    Mayfly__Cmd__MemberInfo m5 = info(5, "h5:1", "h5:2", "c");
    Mayfly__Cmd__MemberInfo k1 = info(1, "h1:1", "h1:2", "a");
    Mayfly__Cmd__MemberInfo k5 = info(5, "stale:1", "", "z");
    Mayfly__Cmd__MemberInfo bad = info(6, "", "", ""); /* no address: ignored */
    Mayfly__Cmd__MemberInfo *known[] = {&k1, &k5, &bad};
    conf(&t, MF_RAFT_CONF_ADD_LEARNER, 5, &m5, known, 3);
    Mayfly__Cmd__MemberInfo k1b = info(1, "moved:1", "", "q");
    Mayfly__Cmd__MemberInfo *known2[] = {&k1b};
    Mayfly__Cmd__MemberInfo m7 = info(7, "h7:1", "", "");
    conf(&t, MF_RAFT_CONF_ADD_LEARNER, 7, &m7, known2, 1);
    Mayfly__Cmd__MemberInfo **l;
    size_t n = list(&t, &l);
    assert_int_equal(n, 3);
    assert_int_equal(l[0]->id, 1);
    assert_string_equal(l[0]->addr, "h1:1"); /* the first record stays */
    assert_string_equal(l[1]->addr, "h5:1"); /* the member's own tail wins over known */
    assert_int_equal(l[2]->id, 7);
    mf_members_list_free(l, n);
    /* A tail that is not a MemberChange. */
    uint8_t raw[MF_RAFT_CONF_ENTRY_LEN + 3] = {MF_RAFT_CONF_ADD_LEARNER, 0, 0, 0, 0, 0, 0, 0, 9,
                                               0xff, 0xff, 0xff};
    struct mf_fsm_entry e = {++t.index, raw, sizeof(raw), true};
    assert_int_equal(mf_fsm_apply_batch(t.fsm, &e, 1, NULL), 0);
    n = list(&t, &l);
    assert_int_equal(n, 3); /* node 9 has no address to record */
    mf_members_list_free(l, n);
    assert_int_equal(mf_fsm_applied(t.fsm), t.index);
    tf_close(&t);
}

/* The codec: a tail hands back, short and oversized entries are refused. */
static void test_store_members_conf_codec(void **s)
{
    (void)s;
    uint8_t buf[MF_RAFT_CONF_ENTRY_LEN + MF_RAFT_CONF_TAIL_MAX + 1] = {MF_RAFT_CONF_REMOVE, 0, 0,
                                                                       0, 0, 0, 0, 1, 2, 'x'};
    enum mf_raft_conf_change_type ty;
    uint64_t node;
    const uint8_t *tail;
    uint32_t tl;
    assert_int_equal(mf_raft_conf_decode_tail(buf, 10, &ty, &node, &tail, &tl), 0);
    assert_int_equal(ty, MF_RAFT_CONF_REMOVE);
    assert_int_equal(node, 0x102);
    assert_int_equal(tl, 1);
    assert_ptr_equal(tail, buf + 9);
    assert_int_equal(mf_raft_conf_decode_tail(buf, 9, &ty, &node, &tail, &tl), 0);
    assert_null(tail);
    assert_int_equal(tl, 0);
    assert_int_equal(mf_raft_conf_decode(buf, 10, &ty, &node), 0);
    assert_int_equal(mf_raft_conf_decode(buf, 8, &ty, &node), MF_ECORRUPT);
    assert_int_equal(mf_raft_conf_decode(buf, sizeof(buf), &ty, &node), MF_ECORRUPT);
    buf[0] = 4;
    assert_int_equal(mf_raft_conf_decode(buf, 9, &ty, &node), MF_ECORRUPT);
}

/* A snapshot carries the registry. */
static void test_store_members_travel_in_snapshots(void **s)
{
    (void)s;
    struct tf a, b;
    tf_open(&a);
    tf_open(&b);
    Mayfly__Cmd__MemberInfo m3 = info(3, "h3:1", "h3:2", "c");
    conf(&a, MF_RAFT_CONF_ADD_VOTER, 3, &m3, NULL, 0);
    char path[256], err[256] = "";
    snprintf(path, sizeof(path), "%s/snap.mfs", a.dir);
    uint64_t idx = 0;
    assert_int_equal(mf_snapshot_create(tf_st(&a), path, &idx, err, sizeof(err)), 0);
    assert_int_equal(mf_snapshot_install(b.fsm, path, &idx, err, sizeof(err)), 0);
    Mayfly__Cmd__MemberInfo **l;
    size_t n = list(&b, &l);
    assert_int_equal(n, 1);
    assert_string_equal(l[0]->zone, "c");
    assert_true(l[0]->voter);
    mf_members_list_free(l, n);
    tf_close(&a);
    tf_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_members_add_promote_remove),
        cmocka_unit_test(test_store_members_known_and_malformed),
        cmocka_unit_test(test_store_members_conf_codec),
        cmocka_unit_test(test_store_members_travel_in_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
