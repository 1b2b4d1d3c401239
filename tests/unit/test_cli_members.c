/* The CLI's `operator members list` (../shared/CLI.md "Operations"): what it
 * sends, its JSON shape ({"members": [...], "leader_id"}) and its table (one
 * row per member, the leader's role "leader", "never" for a member never
 * heard from). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli_testlib.h"
#include "common/err.h"

/* A leader (1), a lagging reachable voter (2) and a learner never heard
 * from, with no zone or API address configured (3). */
struct answer {
    Mayfly__Api__MemberView v[3];
    Mayfly__Api__MemberView *p[3];
    Mayfly__Api__MembersListResponse l;
    Mayfly__Api__Response r;
};

static void answer_init(struct answer *x)
{
    for (int i = 0; i < 3; i++) {
        mayfly__api__member_view__init(&x->v[i]);
        x->p[i] = &x->v[i];
    }
    x->v[0].id = 1, x->v[0].addr = (char *)"127.0.0.1:7001";
    x->v[0].api_addr = (char *)"127.0.0.1:8201";
    x->v[0].zone = (char *)"a", x->v[0].voter = true, x->v[0].reachable = true;
    x->v[0].match_index = 40;
    x->v[1].id = 2, x->v[1].addr = (char *)"127.0.0.1:7002";
    x->v[1].api_addr = (char *)"127.0.0.1:8202";
    x->v[1].zone = (char *)"b", x->v[1].voter = true, x->v[1].reachable = true;
    x->v[1].last_contact_ms = 12, x->v[1].match_index = 37, x->v[1].lag_entries = 3;
    x->v[2].id = 3, x->v[2].addr = (char *)"127.0.0.1:7003", x->v[2].api_addr = (char *)"";
    x->v[2].zone = (char *)"", x->v[2].voter = false, x->v[2].last_contact_ms = -1;
    x->v[2].lag_entries = 40;
    mayfly__api__members_list_response__init(&x->l);
    x->l.members = x->p, x->l.n_members = 3, x->l.leader_id = 1;
    mayfly__api__response__init(&x->r);
    x->r.result_case = MAYFLY__API__RESPONSE__RESULT_MEMBERS_LIST;
    x->r.members_list = &x->l;
}

/* A read (no idempotency key), no arguments. */
static void test_cli_members_builds(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = true;
    assert_int_equal(test_cli_parse(&a, err, 3, "operator", "members", "list"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_MEMBERS_LIST);
    assert_non_null(req.members_list);
    assert_false(w);
    mf_cli_arena_free(&ar);
    assert_int_not_equal(test_cli_parse(&a, err, 4, "operator", "members", "list", "extra"), 0);
}

/* CLI.md's shape: every field; "" is null; never heard: null. */
static void test_cli_members_json(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct answer x;
    answer_init(&x);
    assert_int_equal(test_cli_parse(&a, err, 3, "operator", "members", "list"), 0);
    json_t *doc = mf_cli_render_json(&a, &x.r);
    assert_non_null(doc);
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        s, "{\"leader_id\":1,\"members\":["
           "{\"addr\":\"127.0.0.1:7001\",\"api_addr\":\"127.0.0.1:8201\",\"id\":1,"
           "\"lag_entries\":0,\"last_contact_ms\":0,\"match_index\":40,\"reachable\":true,"
           "\"voter\":true,\"zone\":\"a\"},"
           "{\"addr\":\"127.0.0.1:7002\",\"api_addr\":\"127.0.0.1:8202\",\"id\":2,"
           "\"lag_entries\":3,\"last_contact_ms\":12,\"match_index\":37,\"reachable\":true,"
           "\"voter\":true,\"zone\":\"b\"},"
           "{\"addr\":\"127.0.0.1:7003\",\"api_addr\":null,\"id\":3,"
           "\"lag_entries\":40,\"last_contact_ms\":null,\"match_index\":0,\"reachable\":false,"
           "\"voter\":false,\"zone\":null}]}");
    free(s);
    json_decref(doc);
}

/* The table: a header and one row per member, in the answer's order. */
static void test_cli_members_table(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct answer x;
    answer_init(&x);
    assert_int_equal(test_cli_parse(&a, err, 3, "operator", "members", "list"), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    mf_cli_render_table(&a, &x.r, out);
    fclose(out);
    char *lines[8] = {0};
    int n = 0;
    for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l && n < 8;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    assert_int_equal(n, 4);
    assert_non_null(strstr(lines[0], "ID"));
    assert_non_null(strstr(lines[0], "REACHABLE"));
    assert_non_null(strstr(lines[0], "LAG"));
    char id[8], addr[32], api[32], zone[16], role[16], reach[8], ago[16], unit[8];
    long long match, lag;
    assert_int_equal(sscanf(lines[1], "%7s %31s %31s %15s %15s %7s %15s %7s %lld %lld", id, addr,
                            api, zone, role, reach, ago, unit, &match, &lag),
                     10);
    assert_string_equal(id, "1");
    assert_string_equal(role, "leader");
    assert_string_equal(reach, "yes");
    assert_string_equal(ago, "0");
    assert_int_equal(match, 40);
    assert_int_equal(lag, 0);
    assert_int_equal(sscanf(lines[2], "%7s %31s %31s %15s %15s %7s %15s %7s %lld %lld", id, addr,
                            api, zone, role, reach, ago, unit, &match, &lag),
                     10);
    assert_string_equal(id, "2");
    assert_string_equal(zone, "b");
    assert_string_equal(role, "voter");
    assert_string_equal(ago, "12");
    assert_int_equal(lag, 3);
    assert_int_equal(sscanf(lines[3], "%7s %31s %31s %15s %15s %7s %15s %lld %lld", id, addr, api,
                            zone, role, reach, ago, &match, &lag),
                     9);
    assert_string_equal(id, "3");
    assert_string_equal(api, "-");
    assert_string_equal(zone, "-");
    assert_string_equal(role, "learner");
    assert_string_equal(reach, "no");
    assert_string_equal(ago, "never");
    assert_int_equal(lag, 40);
    free(buf);
}

int main(void)
{
    unsetenv("MAYFLY_ADDR");
    unsetenv("MAYFLY_TOKEN");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_members_builds),
        cmocka_unit_test(test_cli_members_json),
        cmocka_unit_test(test_cli_members_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
