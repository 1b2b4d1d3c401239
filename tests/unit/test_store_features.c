/* Feature levels (store/features.h): the op table, the leader's version
 * rule, the proposer's refusal text, and the state machine meeting commands
 * this build does not know (it stops) or a cluster version (kept, never
 * lowered). Built at the tree's latest level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"
#include "store/features.h"

#define T0 1700000000000ULL /* a command time, ms */

/* Every op on main before this round is level 1; 45..49 are level 2;
 * numbers that are no op are 0. */
static void test_store_features_op_table(void **s)
{
    (void)s;
    static const int level1[] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                                 30, 31, 32, 33, 40, 41, 42, 43, 44};
    for (size_t i = 0; i < sizeof(level1) / sizeof(level1[0]); i++)
        assert_int_equal(mf_feature_op_level(level1[i]), 1);
    for (int op = 45; op <= 49; op++)
        assert_int_equal(mf_feature_op_level(op), 2);
    static const int none[] = {-1, 0, 1, 9, 24, 29, 34, 39, 50, MF_FEATURE_OP_MAX, 1000};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        assert_int_equal(mf_feature_op_level(none[i]), 0);
    assert_int_equal(mf_feature_op_level(MAYFLY__CMD__COMMAND__OP_CLUSTER_VERSION), 2);
    assert_int_equal(mf_feature_level(), MF_FEATURE_LEVEL_LATEST);
}

/* The version rises to the lowest level every member reported, never
 * lowers, and a member that has not reported (0) holds it back. */
static void test_store_features_next_version(void **s)
{
    (void)s;
    struct mf_feature_member all2[] = {{1, 2}, {2, 2}, {3, 2}};
    struct mf_feature_member one_old[] = {{1, 2}, {2, 2}, {3, 1}};
    struct mf_feature_member silent[] = {{1, 2}, {2, 0}, {3, 2}};
    assert_int_equal(mf_feature_next_version(1, all2, 3), 2);
    assert_int_equal(mf_feature_next_version(1, one_old, 3), 1);
    assert_int_equal(mf_feature_next_version(1, silent, 3), 1);
    assert_int_equal(mf_feature_next_version(2, one_old, 3), 2); /* never lower */
    assert_int_equal(mf_feature_next_version(1, all2, 0), 1);
}

/* A level-2 op at cluster version 1 is refused naming the old members; a
 * level-1 op, or version 2, passes. */
static void test_store_features_refusal(void **s)
{
    (void)s;
    struct mf_feature_member m[] = {{1, 2}, {2, 2}, {3, 1}, {4, 0}};
    char why[256];
    assert_int_equal(mf_feature_refusal(1, 47, m, 4, why, sizeof(why)), MF_EUNAVAIL);
    assert_string_equal(why, "cluster feature version 1: this command needs 2; members not yet "
                             "upgraded: 3 (level 1), 4 (not reported)");
    assert_int_equal(mf_feature_refusal(1, 44, m, 4, why, sizeof(why)), 0);
    assert_int_equal(mf_feature_refusal(2, 47, m, 4, why, sizeof(why)), 0);
    /* Truncation stays NUL-terminated. */
    char small[16];
    assert_int_equal(mf_feature_refusal(1, 46, m, 4, small, sizeof(small)), MF_EUNAVAIL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static int cluster_version(struct tf *t, uint32_t level)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__ClusterVersion m = MAYFLY__CMD__CLUSTER_VERSION__INIT;
    m.level = level;
    c.op_case = MAYFLY__CMD__COMMAND__OP_CLUSTER_VERSION;
    c.cluster_version = &m;
    return tf_cmd(t, &c, T0);
}

static uint32_t stored_version(struct tf *t)
{
    MDB_txn *txn;
    uint32_t v = 0;
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    assert_int_equal(mf_feature_cluster_version(txn, tf_st(t), &v), 0);
    mf_state_read_end(txn);
    return v;
}

/* Absent is 1; ClusterVersion raises it, the same level again changes
 * nothing, a lower one is refused; it survives a reopen. */
static void test_store_features_cluster_version_applied(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(stored_version(&t), 1);
    assert_int_equal(cluster_version(&t, 2), 0);
    assert_int_equal(t.last->count, 1);
    assert_int_equal(stored_version(&t), 2);
    assert_int_equal(cluster_version(&t, 2), 0);
    assert_int_equal(t.last->count, 0);
    assert_int_equal(cluster_version(&t, 1), MF_EINVAL);
    assert_non_null(strstr(t.last->error, "never goes back"));
    assert_int_equal(cluster_version(&t, 0), MF_EINVAL);
    assert_int_equal(mf_fsm_reload(t.fsm), 0);
    assert_int_equal(stored_version(&t), 2);
    assert_null(mf_fsm_stop_reason(t.fsm));
    tf_close(&t);
}

/* A ClusterVersion above this build's level is a command it cannot apply:
 * the apply stops with the reason, and nothing is stored. */
static void test_store_features_version_above_build_stops(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__ClusterVersion m = MAYFLY__CMD__CLUSTER_VERSION__INIT;
    m.level = MF_FEATURE_LEVEL_LATEST + 1;
    c.op_case = MAYFLY__CMD__COMMAND__OP_CLUSTER_VERSION;
    c.cluster_version = &m;
    c.now_ms = T0;
    uint8_t buf[64];
    size_t len = mayfly__cmd__command__pack(&c, buf);
    Mayfly__Cmd__Result *res = NULL;
    assert_int_equal(mf_fsm_apply(t.fsm, t.index + 1, buf, len, &res), MF_ECORRUPT);
    assert_null(res);
    char want[200];
    mf_feature_unknown_text(want, sizeof(want), t.index + 1, 45);
    assert_string_equal(mf_fsm_stop_reason(t.fsm), want);
    assert_int_equal(stored_version(&t), 1);
    tf_close(&t);
}

/* An op field this proto lacks (47, say) is unknown: the command is not
 * known and names the field. */
static void test_store_features_unknown_field(void **s)
{
    (void)s;
    /* now_ms = 1 (field 2) and field 47, length-delimited, empty. */
    uint8_t b[] = {0x10, 0x01, 0xfa, 0x02, 0x00};
    Mayfly__Cmd__Command *c = mayfly__cmd__command__unpack(NULL, sizeof(b), b);
    assert_non_null(c);
    int op = 0;
    assert_false(mf_feature_cmd_known(c, &op));
    assert_int_equal(op, 47);
    mayfly__cmd__command__free_unpacked(c, NULL);
    /* No op at all stays a deterministic error, as before. */
    uint8_t e[] = {0x10, 0x01};
    c = mayfly__cmd__command__unpack(NULL, sizeof(e), e);
    assert_true(mf_feature_cmd_known(c, &op));
    mayfly__cmd__command__free_unpacked(c, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_features_op_table),
        cmocka_unit_test(test_store_features_next_version),
        cmocka_unit_test(test_store_features_refusal),
        cmocka_unit_test(test_store_features_cluster_version_applied),
        cmocka_unit_test(test_store_features_version_above_build_stops),
        cmocka_unit_test(test_store_features_unknown_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
