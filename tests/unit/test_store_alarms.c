/* Replicated alarms (store/alarms.h): which commands grow the data, and an
 * applied storage alarm refusing those with MF_EQUOTA while revocations,
 * deletes and the clear itself go on. Each test uses a fresh store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"
#include "store/alarms.h"
#include "store/snapshot.h"

#define T0 1700000000000ULL /* a command time, ms */

static int tf_alarm(struct tf *t, uint64_t now, uint64_t node, bool active, const char *detail)
{
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__AlarmSet m = MAYFLY__CMD__ALARM_SET__INIT;
    m.node_id = node;
    m.kind = MF_ALARM_KIND_STORAGE;
    m.active = active;
    m.detail = (char *)detail;
    c.op_case = MAYFLY__CMD__COMMAND__OP_ALARM_SET;
    c.alarm_set = &m;
    return tf_cmd(t, &c, now);
}

static size_t alarms_count(struct tf *t, uint64_t *node, uint64_t *since)
{
    MDB_txn *txn;
    Mayfly__Cmd__AlarmRecord **list;
    size_t n;
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    assert_int_equal(mf_alarm_list(txn, tf_st(t), &list, &n), 0);
    mf_state_read_end(txn);
    if (n && node)
        *node = list[0]->node_id;
    if (n && since)
        *since = list[0]->since_ms;
    mf_alarm_list_free(list, n);
    return n;
}

/* The growth rule, command by command. */
static void test_store_alarms_which_commands_grow(void **s)
{
    (void)s;
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KvPut kp = MAYFLY__CMD__KV_PUT__INIT;
    Mayfly__Cmd__QuotaSet qs = MAYFLY__CMD__QUOTA_SET__INIT;
    static const struct {
        Mayfly__Cmd__Command__OpCase op;
        bool grows;
    } rows[] = {
        {MAYFLY__CMD__COMMAND__OP_LEASE_GRANT, true},
        {MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE, true},
        {MAYFLY__CMD__COMMAND__OP_KV_METADATA_PUT, true},
        {MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE, true},
        {MAYFLY__CMD__COMMAND__OP_POLICY_PUT, true},
        {MAYFLY__CMD__COMMAND__OP_LEASE_RENEW, false},
        {MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE, false},
        {MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE_PREFIX, false},
        {MAYFLY__CMD__COMMAND__OP_LEASE_EXPIRE, false},
        {MAYFLY__CMD__COMMAND__OP_LEASE_REVOKED, false},
        {MAYFLY__CMD__COMMAND__OP_LEASE_IRREVOCABLE, false},
        {MAYFLY__CMD__COMMAND__OP_LEASE_FORCE_REVOKE, false},
        {MAYFLY__CMD__COMMAND__OP_LEASE_TIDY, false},
        {MAYFLY__CMD__COMMAND__OP_KV_VERSIONS, false},
        {MAYFLY__CMD__COMMAND__OP_KV_DELETE_ALL, false},
        {MAYFLY__CMD__COMMAND__OP_TOKEN_REVOKE, false},
        {MAYFLY__CMD__COMMAND__OP_TOKEN_RENEW, false},
        {MAYFLY__CMD__COMMAND__OP_TOKEN_EXPIRE, false},
        {MAYFLY__CMD__COMMAND__OP_POLICY_DELETE, false},
        {MAYFLY__CMD__COMMAND__OP_KEYRING_PUT, false},
        {MAYFLY__CMD__COMMAND__OP_ALARM_SET, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        c.op_case = rows[i].op;
        assert_int_equal(mf_alarm_cmd_grows(&c), rows[i].grows);
    }
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    c.kv_put = &kp;
    kp.path = "app/db";
    assert_true(mf_alarm_cmd_grows(&c));
    kp.path = "sys/engines/db";
    assert_true(mf_alarm_cmd_grows(&c));
    kp.path = "sys/crl/pki";
    assert_false(mf_alarm_cmd_grows(&c));
    kp.path = "sys/audit/anchors/2/file";
    assert_false(mf_alarm_cmd_grows(&c));
    c.op_case = MAYFLY__CMD__COMMAND__OP_QUOTA_SET;
    c.quota_set = &qs;
    qs.max_leases = 5;
    assert_true(mf_alarm_cmd_grows(&c));
    qs.max_leases = 0; /* a quota's removal */
    assert_false(mf_alarm_cmd_grows(&c));
}

/* An active alarm refuses a KV put and a lease grant with MF_EQUOTA and a
 * message naming the node and the limit, while a lease revoke, a KV delete
 * and the clear apply; after the clear the put applies again. */
static void test_store_alarms_refuse_growth_until_cleared(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 60000, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "app/a", "v1", 0, 0, 0), 0);
    const char *detail = "state database 190 of 192 MiB used (state_quota_mb)";
    assert_int_equal(tf_alarm(&t, T0 + 1, 2, true, detail), 0);
    assert_int_equal(t.last->count, 1);
    uint64_t node = 0, since = 0;
    assert_int_equal(alarms_count(&t, &node, &since), 1);
    assert_int_equal(node, 2);
    assert_int_equal(since, T0 + 1);

    uint8_t d0[32], d1[32];
    tf_digest(&t, 1, d0);
    assert_int_equal(tf_kv_put(&t, T0 + 2, "app/b", "v", 0, 0, 0), MF_EQUOTA);
    assert_non_null(strstr(t.last->error, "node 2"));
    assert_non_null(strstr(t.last->error, "state_quota_mb"));
    assert_int_equal(tf_grant(&t, T0 + 2, 2, 60000, 0), MF_EQUOTA);
    assert_int_equal(tf_kv_meta(&t, T0 + 2, "app/a", 3, 0, 0), MF_EQUOTA);
    tf_digest(&t, 1, d1);
    assert_memory_equal(d0, d1, 32); /* refused: nothing changed */

    /* A repeated raise keeps the first since. */
    assert_int_equal(tf_alarm(&t, T0 + 5, 2, true, detail), 0);
    assert_int_equal(t.last->count, 0);
    assert_int_equal(alarms_count(&t, NULL, &since), 1);
    assert_int_equal(since, T0 + 1);

    assert_int_equal(tf_revoke(&t, T0 + 3, 1), 0);
    assert_int_equal(tf_kv_op(&t, T0 + 3, "app/a", 1 /* delete */, NULL, 0), 0);
    assert_int_equal(tf_kv_delete_all(&t, T0 + 3, "app/a"), 0);

    /* A refused request is not kept for its id: its retry applies once
     * the alarm is cleared. */
    t.rid = "req-1";
    assert_int_equal(tf_kv_put(&t, T0 + 3, "app/r", "v", 0, 0, 0), MF_EQUOTA);

    assert_int_equal(tf_alarm(&t, T0 + 4, 2, false, ""), 0);
    assert_int_equal(t.last->count, 1);
    t.rid = "req-1";
    assert_int_equal(tf_kv_put(&t, T0 + 4, "app/r", "v", 0, 0, 0), 0);
    assert_false(t.last->duplicate);
    assert_int_equal(alarms_count(&t, NULL, NULL), 0);
    assert_int_equal(tf_kv_put(&t, T0 + 5, "app/b", "v", 0, 0, 0), 0);
    assert_int_equal(tf_grant(&t, T0 + 5, 3, 60000, 0), 0);
    /* Clearing what is not set changes nothing. */
    assert_int_equal(tf_alarm(&t, T0 + 6, 2, false, ""), 0);
    assert_int_equal(t.last->count, 0);
    tf_close(&t);
}

/* Malformed alarms are refused; an alarm survives closing and reopening. */
static void test_store_alarms_rules_and_restart(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_alarm(&t, T0, 0, true, "x"), MF_EINVAL);
    char big[MF_ALARM_DETAIL_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(tf_alarm(&t, T0, 1, true, big), MF_EINVAL);
    assert_int_equal(tf_alarm(&t, T0, 3, true, "free space below the floor"), 0);
    assert_int_equal(tf_alarm(&t, T0, 1, true, "log"), 0);
    mf_fsm_close(t.fsm);
    assert_int_equal(mf_fsm_open(t.dir, NULL, &t.fsm), 0);
    uint64_t node = 0;
    assert_int_equal(alarms_count(&t, &node, NULL), 2);
    assert_int_equal(node, 1); /* ordered by node id */
    assert_int_equal(tf_kv_put(&t, T0 + 1, "app/x", "v", 0, 0, 0), MF_EQUOTA);
    tf_close(&t);
}

/* A snapshot carries the alarms: a store installed from it refuses growth. */
static void test_store_alarms_travel_in_snapshots(void **s)
{
    (void)s;
    struct tf a, b;
    tf_open(&a);
    tf_open(&b);
    assert_int_equal(tf_alarm(&a, T0, 2, true, "state database full"), 0);
    char path[256], err[256] = "";
    snprintf(path, sizeof(path), "%s/snap.mfs", a.dir);
    uint64_t idx = 0;
    assert_int_equal(mf_snapshot_create(tf_st(&a), path, &idx, err, sizeof(err)), 0);
    assert_int_equal(mf_snapshot_install(b.fsm, path, &idx, err, sizeof(err)), 0);
    b.index = idx;
    uint64_t node = 0;
    assert_int_equal(alarms_count(&b, &node, NULL), 1);
    assert_int_equal(node, 2);
    assert_int_equal(tf_kv_put(&b, T0 + 1, "app/x", "v", 0, 0, 0), MF_EQUOTA);
    tf_close(&a);
    tf_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_alarms_which_commands_grow),
        cmocka_unit_test(test_store_alarms_refuse_growth_until_cleared),
        cmocka_unit_test(test_store_alarms_rules_and_restart),
        cmocka_unit_test(test_store_alarms_travel_in_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
