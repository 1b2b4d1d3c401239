/* The dispatcher's table and routes, without a server: every operation of
 * the wire protocol has one row, and a request goes where its row says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/dispatch.h"

/* The protocol's operations: the fields of Request's `op` oneof. */
static size_t wire_ops(const ProtobufCFieldDescriptor **out, size_t cap)
{
    const ProtobufCMessageDescriptor *d = &mayfly__api__request__descriptor;
    size_t n = 0;
    for (unsigned i = 0; i < d->n_fields; i++)
        if ((d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && n < cap)
            out[n++] = &d->fields[i];
    return n;
}

/* Every operation a client can send has exactly one row, and every row is
 * an operation of the protocol, with a handler and a name. */
static void test_server_dispatch_every_operation_has_one_row(void **state)
{
    (void)state;
    const ProtobufCFieldDescriptor *ops[128];
    size_t n_ops = wire_ops(ops, 128);
    assert_true(n_ops >= 24);
    size_t n_rows;
    const struct mf_op_def *rows = mf_dispatch_table(&n_rows);
    assert_int_equal(n_rows, n_ops);
    for (size_t i = 0; i < n_ops; i++) {
        const struct mf_op_def *d = mf_dispatch_find((Mayfly__Api__Request__OpCase)ops[i]->id);
        assert_non_null(d);
        assert_non_null(d->run);
        assert_non_null(d->name);
        assert_non_null(d->capability);
        assert_non_null(d->policy_path);
    }
    for (size_t i = 0; i < n_rows; i++)
        for (size_t k = i + 1; k < n_rows; k++) {
            assert_int_not_equal(rows[i].op_case, rows[k].op_case);
            assert_string_not_equal(rows[i].name, rows[k].name);
        }
    assert_null(mf_dispatch_find(MAYFLY__API__REQUEST__OP__NOT_SET));
}

/* Writes run on the leader; a follower forwards a client's write once, and
 * refuses one forwarded to it (it lost the leadership meanwhile). */
static void test_server_dispatch_writes_go_to_the_leader(void **state)
{
    (void)state;
    const Mayfly__Api__Request__OpCase writes[] = {
        MAYFLY__API__REQUEST__OP_KV_PUT, MAYFLY__API__REQUEST__OP_LEASE_GRANT,
        MAYFLY__API__REQUEST__OP_LEASE_REVOKE, MAYFLY__API__REQUEST__OP_TOKEN_CREATE,
        MAYFLY__API__REQUEST__OP_CREDS_ISSUE, MAYFLY__API__REQUEST__OP_INIT,
        MAYFLY__API__REQUEST__OP_ENGINE_ENABLE};
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        const struct mf_op_def *d = mf_dispatch_find(writes[i]);
        assert_int_equal(d->where, MF_WHERE_LEADER);
        assert_int_equal(mf_dispatch_route(d, true, false, false), MF_ROUTE_RUN);
        assert_int_equal(mf_dispatch_route(d, true, true, false), MF_ROUTE_RUN);
        assert_int_equal(mf_dispatch_route(d, false, false, false), MF_ROUTE_FORWARD);
        assert_int_equal(mf_dispatch_route(d, false, false, true), MF_ROUTE_FORWARD);
        assert_int_equal(mf_dispatch_route(d, false, true, false), MF_ROUTE_NOT_LEADER);
    }
}

/* Reads run on any node: after a read barrier, or at once when stale. */
static void test_server_dispatch_reads_run_anywhere(void **state)
{
    (void)state;
    const Mayfly__Api__Request__OpCase reads[] = {
        MAYFLY__API__REQUEST__OP_KV_GET, MAYFLY__API__REQUEST__OP_KV_LIST,
        MAYFLY__API__REQUEST__OP_LEASE_LOOKUP, MAYFLY__API__REQUEST__OP_TOKEN_LOOKUP};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        const struct mf_op_def *d = mf_dispatch_find(reads[i]);
        assert_int_equal(d->where, MF_WHERE_READ);
        assert_true(d->token);
        assert_int_equal(mf_dispatch_route(d, false, false, false), MF_ROUTE_BARRIER);
        assert_int_equal(mf_dispatch_route(d, true, false, false), MF_ROUTE_BARRIER);
        assert_int_equal(mf_dispatch_route(d, false, false, true), MF_ROUTE_RUN);
    }
}

/* Only status, init, unseal and snapshot restore (like init: only an
 * uninitialised, hence sealed, cluster takes it) run sealed; they and
 * generate-root (shares instead of a token, on an unsealed leader) need no
 * token. */
static void test_server_dispatch_tokenless_and_sealed_rows(void **state)
{
    (void)state;
    size_t n;
    const struct mf_op_def *rows = mf_dispatch_table(&n);
    size_t tokenless = 0;
    for (size_t i = 0; i < n; i++) {
        bool special = rows[i].op_case == MAYFLY__API__REQUEST__OP_STATUS ||
                       rows[i].op_case == MAYFLY__API__REQUEST__OP_INIT ||
                       rows[i].op_case == MAYFLY__API__REQUEST__OP_UNSEAL ||
                       rows[i].op_case == MAYFLY__API__REQUEST__OP_SNAPSHOT_RESTORE;
        /* login, generate-root and rekey need no token (a credential or
         * shares instead) but an unsealed node. */
        bool login = rows[i].op_case == MAYFLY__API__REQUEST__OP_LOGIN;
        bool root = rows[i].op_case == MAYFLY__API__REQUEST__OP_GENERATE_ROOT ||
                    rows[i].op_case == MAYFLY__API__REQUEST__OP_REKEY;
        assert_int_equal(!rows[i].token, special || login || root);
        assert_int_equal(rows[i].sealed_ok, special);
        tokenless += !rows[i].token;
    }
    assert_int_equal(tokenless, 7);
    const struct mf_op_def *gr = mf_dispatch_find(MAYFLY__API__REQUEST__OP_GENERATE_ROOT);
    assert_int_equal(gr->where, MF_WHERE_LEADER);
    assert_string_equal(gr->capability, "");
    const struct mf_op_def *status = mf_dispatch_find(MAYFLY__API__REQUEST__OP_STATUS);
    assert_int_equal(mf_dispatch_route(status, false, false, false), MF_ROUTE_RUN);
}

/* The auth method operations: admin with CLI.md "Policy paths", login on the
 * leader (it creates a token) with no token and no policy. */
static void test_server_dispatch_auth_rows(void **state)
{
    (void)state;
    static const struct {
        Mayfly__Api__Request__OpCase op;
        enum mf_where where;
        const char *cap, *path;
    } want[] = {
        {MAYFLY__API__REQUEST__OP_AUTH_ENABLE, MF_WHERE_LEADER, "sudo", "sys/auth/{mount}"},
        {MAYFLY__API__REQUEST__OP_AUTH_ROLE_PUT, MF_WHERE_LEADER, "update", "auth/{mount}/role/{role}"},
        {MAYFLY__API__REQUEST__OP_AUTH_LIST, MF_WHERE_READ, "read", "sys/auth"},
        {MAYFLY__API__REQUEST__OP_LOGIN, MF_WHERE_LEADER, "", ""},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct mf_op_def *d = mf_dispatch_find(want[i].op);
        assert_non_null(d);
        assert_int_equal(d->where, want[i].where);
        assert_string_equal(d->capability, want[i].cap);
        assert_string_equal(d->policy_path, want[i].path);
    }
    assert_false(mf_dispatch_find(MAYFLY__API__REQUEST__OP_LOGIN)->token);
}

/* The policy operations: writes on the leader, reads anywhere, with the
 * capability and path of CLI.md "Policy paths". */
static void test_server_dispatch_policy_rows(void **state)
{
    (void)state;
    static const struct {
        Mayfly__Api__Request__OpCase op;
        enum mf_where where;
        const char *cap, *path;
    } want[] = {
        {MAYFLY__API__REQUEST__OP_POLICY_WRITE, MF_WHERE_LEADER, "update", "sys/policies/acl/{name}"},
        {MAYFLY__API__REQUEST__OP_POLICY_READ, MF_WHERE_READ, "read", "sys/policies/acl/{name}"},
        {MAYFLY__API__REQUEST__OP_POLICY_LIST, MF_WHERE_READ, "list", "sys/policies/acl"},
        {MAYFLY__API__REQUEST__OP_POLICY_DELETE, MF_WHERE_LEADER, "delete", "sys/policies/acl/{name}"},
        {MAYFLY__API__REQUEST__OP_POLICY_CHECK, MF_WHERE_READ, "read", "sys/policies/check"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct mf_op_def *d = mf_dispatch_find(want[i].op);
        assert_non_null(d);
        assert_int_equal(d->where, want[i].where);
        assert_true(d->token);
        assert_false(d->sealed_ok);
        assert_string_equal(d->capability, want[i].cap);
        assert_string_equal(d->policy_path, want[i].path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_dispatch_every_operation_has_one_row),
        cmocka_unit_test(test_server_dispatch_writes_go_to_the_leader),
        cmocka_unit_test(test_server_dispatch_reads_run_anywhere),
        cmocka_unit_test(test_server_dispatch_tokenless_and_sealed_rows),
        cmocka_unit_test(test_server_dispatch_policy_rows),
        cmocka_unit_test(test_server_dispatch_auth_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
