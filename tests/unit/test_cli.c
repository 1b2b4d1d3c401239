/* Tests of the mayfly CLI's contract (../shared/CLI.md): parsing, request
 * building, JSON shapes and errors. The end-to-end runs against a real server
 * live in tests/integration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli_testlib.h"
#include "cli/commands.h"
#include "common/err.h"

static int clear_env(void **state)
{
    (void)state;
    const char *vars[] = {"MAYFLY_ADDR", "MAYFLY_TOKEN", "MAYFLY_CACERT", "MAYFLY_FORMAT",
                          "MAYFLY_CONSISTENCY", "MAYFLY_CLIENT_CERT", "MAYFLY_CLIENT_KEY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    return 0;
}

/* Flags may come before or after the command words, with one or two dashes and '='. */
static void test_cli_flags_anywhere(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_equal(test_cli_parse(&a, err, 7, "--format=json", "kv", "get", "secret/a", "-version", "3",
                           "-addr=127.0.0.1:1"),
                     0);
    assert_int_equal(a.g.format, MF_CLI_FORMAT_JSON);
    assert_string_equal(a.g.addr, "127.0.0.1:1");
    assert_string_equal(a.cmd->words[1], "get");
    assert_int_equal(a.pos_len, 1);
    assert_string_equal(a.pos[0], "secret/a");
    assert_string_equal(mf_cli_flag(&a, "version"), "3");
}

/* The environment provides defaults and flags override them. */
static void test_cli_env_defaults_and_override(void **state)
{
    (void)state;
    setenv("MAYFLY_ADDR", "10.0.0.1:8270", 1);
    setenv("MAYFLY_FORMAT", "json", 1);
    setenv("MAYFLY_CONSISTENCY", "stale", 1);
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_equal(test_cli_parse(&a, err, 3, "status", "-addr", "127.0.0.1:2"), 0);
    assert_string_equal(a.g.addr, "127.0.0.1:2");
    assert_int_equal(a.g.format, MF_CLI_FORMAT_JSON);
    assert_true(a.g.stale);
    setenv("MAYFLY_FORMAT", "yaml", 1);
    assert_int_equal(test_cli_parse(&a, err, 1, "status"), MF_EINVAL);
    assert_non_null(strstr(err, "MAYFLY_FORMAT"));
    clear_env(NULL);
}

/* Unknown commands, unknown flags, misplaced flags and wrong arity are refused with a message. */
static void test_cli_rejects_bad_usage(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_equal(test_cli_parse(&a, err, 2, "kv", "frobnicate"), MF_EINVAL);
    assert_non_null(strstr(err, "unknown command"));
    assert_int_equal(test_cli_parse(&a, err, 3, "status", "-bogus", "1"), MF_EINVAL);
    assert_non_null(strstr(err, "unknown flag '-bogus'"));
    assert_int_equal(test_cli_parse(&a, err, 3, "status", "-ttl", "1s"), MF_EINVAL);
    assert_non_null(strstr(err, "-ttl does not apply"));
    assert_int_equal(test_cli_parse(&a, err, 2, "kv", "get"), MF_EINVAL);
    assert_non_null(strstr(err, "wrong number of arguments"));
    assert_int_equal(test_cli_parse(&a, err, 3, "lease", "grant", "-ttl"), MF_EINVAL);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(test_cli_parse(&a, err, 3, "lease", "revoke", "-prefix=yes"), MF_EINVAL);
    assert_non_null(strstr(err, "takes no value"));
}

/* The three-word command wins over a two-word prefix. */
static void test_cli_longest_command_match(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_equal(test_cli_parse(&a, err, 6, "kv", "metadata", "put", "-max-versions", "4", "p"), 0);
    assert_string_equal(a.cmd->words[2], "put");
    assert_int_equal(a.pos_len, 1);
}

/* kv put builds a map from KEY=VALUE, KEY=@FILE and KEY=- and carries -cas and -lease. */
static void test_cli_kv_put_builds_pairs(void **state)
{
    (void)state;
    char path[] = "/tmp/mf-cli-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from-file", 9), 9);
    close(fd);
    char filearg[64];
    snprintf(filearg, sizeof(filearg), "f=@%s", path);
    char stdin_text[] = "from-stdin";
    FILE *in = fmemopen(stdin_text, strlen(stdin_text), "r");

    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_equal(test_cli_parse(&a, err, 10, "kv", "put", "-cas", "0", "-lease", "lease/default/X",
                           "secret/db", "user=alice", filearg, "s=-"),
                     0);
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool is_write = false;
    assert_int_equal(mf_cli_build(&a, &ar, in, &req, &is_write, err, sizeof(err)), 0);
    assert_true(is_write);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_KV_PUT);
    assert_string_equal(req.kv_put->path, "secret/db");
    assert_true(req.kv_put->has_cas);
    assert_int_equal(req.kv_put->cas, 0);
    assert_string_equal(req.kv_put->lease_id, "lease/default/X");
    assert_int_equal(req.kv_put->n_data, 3);
    assert_string_equal(req.kv_put->data[0]->key, "user");
    assert_string_equal(req.kv_put->data[0]->value, "alice");
    assert_string_equal(req.kv_put->data[1]->value, "from-file");
    assert_string_equal(req.kv_put->data[2]->value, "from-stdin");
    mf_cli_arena_free(&ar);
    fclose(in);
    unlink(path);
}

/* Values that are not UTF-8, duplicate keys and missing files are refused before sending. */
static void test_cli_kv_put_refuses_bad_values(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w;
    assert_int_equal(test_cli_parse(&a, err, 4, "kv", "put", "p", "k=\xff\xfe"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "not UTF-8"));
    assert_int_equal(test_cli_parse(&a, err, 5, "kv", "put", "p", "k=1", "k=2"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "given twice"));
    assert_int_equal(test_cli_parse(&a, err, 4, "kv", "put", "p", "k=@/nonexistent/x"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/x: cannot open"));
    assert_int_equal(test_cli_parse(&a, err, 4, "kv", "put", "p", "novalue"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    mf_cli_arena_free(&ar);
}

/* UTF-8 validation rejects overlongs, surrogates and truncated sequences. */
static void test_cli_utf8_validation(void **state)
{
    (void)state;
    assert_true(mf_cli_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(mf_cli_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(mf_cli_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(mf_cli_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(mf_cli_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
}

/* lease grant parses durations, requires -ttl and checks max >= ttl. */
static void test_cli_lease_grant_durations(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w;
    assert_int_equal(test_cli_parse(&a, err, 6, "lease", "grant", "-ttl", "1h30m", "-max-ttl", "2h"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_int_equal(req.lease_grant->ttl_ms, 5400000);
    assert_int_equal(req.lease_grant->max_ttl_ms, 7200000);
    assert_int_equal(test_cli_parse(&a, err, 2, "lease", "grant"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "needs -ttl"));
    assert_int_equal(test_cli_parse(&a, err, 6, "lease", "grant", "-ttl", "2h", "-max-ttl", "1h"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 4, "lease", "grant", "-ttl", "soon"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "not a duration"));
    mf_cli_arena_free(&ar);
}

/* Reads are not writes and carry the requested consistency. */
static void test_cli_reads_carry_consistency(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = true;
    assert_int_equal(test_cli_parse(&a, err, 6, "lease", "list", "-consistency", "stale", "-state",
                           "irrevocable"),
                     0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_false(w);
    assert_int_equal(req.consistency, MAYFLY__API__CONSISTENCY__STALE);
    assert_int_equal(req.lease_list->state, MAYFLY__API__LEASE_STATE__IRREVOCABLE);
    assert_int_equal(test_cli_parse(&a, err, 4, "lease", "list", "-state", "dead"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    mf_cli_arena_free(&ar);
}

/* creds issue splits MOUNT/ROLE at the last slash and refuses a bare word. */
static void test_cli_creds_issue_mount_role(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w;
    assert_int_equal(test_cli_parse(&a, err, 3, "creds", "issue", "db/prod/readonly"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_string_equal(req.creds_issue->mount, "db/prod");
    assert_string_equal(req.creds_issue->role, "readonly");
    assert_int_equal(test_cli_parse(&a, err, 3, "creds", "issue", "readonly"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    mf_cli_arena_free(&ar);
}

/* token create collects every -policy flag. */
static void test_cli_token_create_policies(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w;
    assert_int_equal(test_cli_parse(&a, err, 7, "token", "create", "-policy", "a", "-policy", "b",
                           "-orphan"),
                     0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_int_equal(req.token_create->n_policies, 2);
    assert_string_equal(req.token_create->policies[1], "b");
    assert_true(req.token_create->orphan);
    mf_cli_arena_free(&ar);
}

/* kv get renders the contract's shape: lease_id null when unbound, read info, -field filter. */
static void test_cli_kv_get_json_shape(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_equal(test_cli_parse(&a, err, 3, "kv", "get", "secret/a"), 0);
    Mayfly__Api__KvGetResponse__DataEntry e1 = MAYFLY__API__KV_GET_RESPONSE__DATA_ENTRY__INIT;
    Mayfly__Api__KvGetResponse__DataEntry e2 = MAYFLY__API__KV_GET_RESPONSE__DATA_ENTRY__INIT;
    e1.key = "user", e1.value = "alice", e2.key = "pass", e2.value = "s3cr3t";
    Mayfly__Api__KvGetResponse__DataEntry *entries[] = {&e1, &e2};
    Mayfly__Api__ReadInfo ri = MAYFLY__API__READ_INFO__INIT;
    ri.node = 2, ri.consistency = MAYFLY__API__CONSISTENCY__STALE, ri.applied_index = 40,
    ri.lag_entries = 3;
    Mayfly__Api__KvGetResponse g = MAYFLY__API__KV_GET_RESPONSE__INIT;
    g.path = "secret/a", g.version = 7, g.created_ms = 1700000000000, g.n_data = 2,
    g.data = entries, g.read = &ri;
    Mayfly__Api__Response r = MAYFLY__API__RESPONSE__INIT;
    r.result_case = MAYFLY__API__RESPONSE__RESULT_KV_GET;
    r.kv_get = &g;

    json_t *doc = mf_cli_render_json(&a, &r);
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text,
                        "{\"created_ms\":1700000000000,\"data\":{\"pass\":\"s3cr3t\",\"user\":"
                        "\"alice\"},\"lease_id\":null,\"path\":\"secret/a\",\"read\":"
                        "{\"applied_index\":40,\"consistency\":\"stale\",\"lag_entries\":3,"
                        "\"node\":2},\"version\":7}");
    free(text);
    json_decref(doc);

    /* A response of another kind does not fit the command. */
    r.result_case = MAYFLY__API__RESPONSE__RESULT_KV_PUT;
    assert_null(mf_cli_render_json(&a, &r));
}

/* lease lookup and list render state names and nulls as the contract says. */
static void test_cli_lease_json_shapes(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    assert_int_equal(test_cli_parse(&a, err, 2, "lease", "list"), 0);
    Mayfly__Api__LeaseInfo l = MAYFLY__API__LEASE_INFO__INIT;
    l.lease_id = "lease/default/0000000000001", l.state = MAYFLY__API__LEASE_STATE__IRREVOCABLE;
    l.expire_at_ms = 5, l.last_error = "connection refused";
    Mayfly__Api__LeaseInfo *ls[] = {&l};
    Mayfly__Api__LeaseListResponse lr = MAYFLY__API__LEASE_LIST_RESPONSE__INIT;
    lr.n_leases = 1, lr.leases = ls;
    Mayfly__Api__Response r = MAYFLY__API__RESPONSE__INIT;
    r.result_case = MAYFLY__API__RESPONSE__RESULT_LEASE_LIST;
    r.lease_list = &lr;
    json_t *doc = mf_cli_render_json(&a, &r);
    assert_non_null(doc);
    json_t *first = json_array_get(json_object_get(doc, "leases"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "state")), "irrevocable");
    assert_string_equal(json_string_value(json_object_get(first, "last_error")),
                        "connection refused");
    assert_true(json_is_null(json_object_get(first, "engine")));
    assert_true(json_is_null(json_object_get(doc, "next")));
    assert_true(json_is_null(json_object_get(doc, "read")));
    json_decref(doc);
}

/* Errors in JSON format go to stdout in the contract's shape, and to stderr too. */
static void test_cli_error_json_shape(void **state)
{
    (void)state;
    char outbuf[256] = "", errbuf[256] = "";
    FILE *out = fmemopen(outbuf, sizeof(outbuf), "w");
    FILE *errf = fmemopen(errbuf, sizeof(errbuf), "w");
    mf_cli_print_error(MF_CLI_FORMAT_JSON, "NOT_FOUND", "no such path", out, errf);
    fclose(out);
    fclose(errf);
    json_error_t je;
    json_t *doc = json_loads(outbuf, 0, &je);
    assert_non_null(doc);
    json_t *e = json_object_get(doc, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "NOT_FOUND");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "no such path");
    assert_non_null(strstr(errbuf, "NOT_FOUND"));
    json_decref(doc);
}

/* Bad usage exits 1 with an INVALID_ARGUMENT error, without contacting anything. */
static void test_cli_main_exit_codes_local(void **state)
{
    (void)state;
    char outbuf[1024] = "", errbuf[1024] = "";
    FILE *out = fmemopen(outbuf, sizeof(outbuf), "w");
    FILE *errf = fmemopen(errbuf, sizeof(errbuf), "w");
    char *argv1[] = {"mayfly", "-format", "json", "lease", "grant", "-ttl", "x"};
    assert_int_equal(mf_cli_main(7, argv1, stdin, out, errf), MF_CLI_EXIT_LOCAL);
    fflush(out);
    assert_non_null(strstr(outbuf, "INVALID_ARGUMENT"));
    char *argv2[] = {"mayfly", "status"}; /* no address configured */
    assert_int_equal(mf_cli_main(2, argv2, stdin, out, errf), MF_CLI_EXIT_LOCAL);
    char *argv3[] = {"mayfly", "-help"};
    assert_int_equal(mf_cli_main(2, argv3, stdin, out, errf), MF_CLI_EXIT_OK);
    fclose(out);
    fclose(errf);
}

/* policy write sends the file's or stdin's text as is (the server's parser judges it). */
static void test_cli_policy_write_file_or_stdin(void **state)
{
    (void)state;
    char path[] = "/tmp/mf-cli-policy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"path\": {\"kv/data/*\": {\"capabilities\": [\"read\"]}}}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = false;
    assert_int_equal(test_cli_parse(&a, err, 4, "policy", "write", "app-read", path), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_true(w);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_POLICY_WRITE);
    assert_string_equal(req.policy_write->name, "app-read");
    assert_string_equal(req.policy_write->body, doc);
    char dup[] = "{\"path\": {}, \"path\": {}}"; /* not judged here */
    FILE *in = fmemopen(dup, strlen(dup), "r");
    assert_int_equal(test_cli_parse(&a, err, 4, "policy", "write", "x", "-"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, in, &req, &w, err, sizeof(err)), 0);
    assert_string_equal(req.policy_write->body, dup);
    fclose(in);
    assert_int_equal(test_cli_parse(&a, err, 4, "policy", "write", "x", "/nonexistent/p.json"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(test_cli_parse(&a, err, 3, "policy", "write", "x"), MF_EINVAL);
    mf_cli_arena_free(&ar);
    unlink(path);
}

/* policy check carries policies, address, claims, OP and PATH, and refuses an unknown OP,
 * bad claims and -token together with -policy. */
static void test_cli_policy_check_request(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = true;
    assert_int_equal(test_cli_parse(&a, err, 12, "policy", "check", "-policy", "A", "-policy", "B",
                           "-remote-addr", "10.1.2.3", "-claims", "{\"ns\": \"payments\"}", "read",
                           "kv/data/app/web/config"),
                     0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_false(w);
    const Mayfly__Api__PolicyCheckRequest *c = req.policy_check;
    assert_int_equal(c->n_policies, 2);
    assert_string_equal(c->policies[0], "A");
    assert_string_equal(c->policies[1], "B");
    assert_string_equal(c->token, "");
    assert_string_equal(c->remote_addr, "10.1.2.3");
    assert_string_equal(c->claims_json, "{\"ns\": \"payments\"}");
    assert_string_equal(c->capability, "read");
    assert_string_equal(c->path, "kv/data/app/web/config");
    assert_int_equal(test_cli_parse(&a, err, 4, "policy", "check", "fly", "kv/data/x"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "not an operation"));
    assert_int_equal(test_cli_parse(&a, err, 8, "policy", "check", "-policy", "A", "-claims", "[1]",
                           "read", "p"),
                     0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 8, "policy", "check", "-policy", "A", "-token", "mf.t",
                           "read", "p"),
                     0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "not both"));
    mf_cli_arena_free(&ar);
}

/* policy check -token T checks T and is sent with MAYFLY_TOKEN when set; without -token and
 * -policy it checks the caller's own token; other commands always send -token. */
static void test_cli_policy_check_token_roles(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w;
    setenv("MAYFLY_TOKEN", "mf.caller", 1);
    assert_int_equal(test_cli_parse(&a, err, 6, "policy", "check", "-token", "mf.checked", "list", "p"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_string_equal(req.policy_check->token, "mf.checked");
    assert_string_equal(mf_cli_caller_token(&a), "mf.caller");
    assert_int_equal(test_cli_parse(&a, err, 4, "policy", "check", "read", "p"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_string_equal(req.policy_check->token, "mf.caller");
    assert_string_equal(mf_cli_caller_token(&a), "mf.caller");
    assert_int_equal(test_cli_parse(&a, err, 4, "-token", "mf.flag", "policy", "list"), 0);
    assert_string_equal(mf_cli_caller_token(&a), "mf.flag");
    unsetenv("MAYFLY_TOKEN");
    assert_int_equal(test_cli_parse(&a, err, 6, "policy", "check", "-token", "mf.checked", "list", "p"), 0);
    assert_string_equal(mf_cli_caller_token(&a), "mf.checked");
    assert_int_equal(test_cli_parse(&a, err, 4, "policy", "check", "read", "p"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    mf_cli_arena_free(&ar);
}

/* token renew takes an optional TOKEN and -increment; token create takes -no-default-policy. */
static void test_cli_token_renew_and_no_default(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    struct mf_cli_arena ar = {0};
    Mayfly__Api__Request req;
    bool w = false;
    assert_int_equal(test_cli_parse(&a, err, 4, "token", "renew", "-increment", "1h"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_true(w);
    assert_int_equal(req.op_case, MAYFLY__API__REQUEST__OP_TOKEN_RENEW);
    assert_string_equal(req.token_renew->token, "");
    assert_int_equal(req.token_renew->increment_ms, 3600000);
    assert_int_equal(test_cli_parse(&a, err, 3, "token", "renew", "mf.other"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_string_equal(req.token_renew->token, "mf.other");
    assert_int_equal(req.token_renew->increment_ms, 0);
    assert_int_equal(test_cli_parse(&a, err, 4, "token", "renew", "-increment", "later"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(test_cli_parse(&a, err, 3, "token", "create", "-no-default-policy"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_true(req.token_create->no_default_policy);
    assert_int_equal(test_cli_parse(&a, err, 2, "token", "create"), 0);
    assert_int_equal(mf_cli_build(&a, &ar, stdin, &req, &w, err, sizeof(err)), 0);
    assert_false(req.token_create->no_default_policy);
    mf_cli_arena_free(&ar);
}

/* policy read, list and check render the contract's shapes (null policy and rule when no
 * rule matched). */
static void test_cli_policy_json_shapes(void **state)
{
    (void)state;
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    Mayfly__Api__Response r = MAYFLY__API__RESPONSE__INIT;

    assert_int_equal(test_cli_parse(&a, err, 3, "policy", "read", "app"), 0);
    Mayfly__Api__PolicyReadResponse pr = MAYFLY__API__POLICY_READ_RESPONSE__INIT;
    pr.name = "app";
    pr.policy_json = "{\"path\":{\"kv/data/*\":{\"capabilities\":[\"read\"]}}}";
    r.result_case = MAYFLY__API__RESPONSE__RESULT_POLICY_READ;
    r.policy_read = &pr;
    json_t *doc = mf_cli_render_json(&a, &r);
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"name\":\"app\",\"policy\":{\"path\":{\"kv/data/*\":"
                              "{\"capabilities\":[\"read\"]}}},\"read\":null}");
    free(text);
    json_decref(doc);
    pr.policy_json = "not json";
    assert_null(mf_cli_render_json(&a, &r));

    assert_int_equal(test_cli_parse(&a, err, 2, "policy", "list"), 0);
    char *names[] = {"app", "default", "root"};
    Mayfly__Api__PolicyListResponse pl = MAYFLY__API__POLICY_LIST_RESPONSE__INIT;
    pl.n_names = 3, pl.names = names;
    r.result_case = MAYFLY__API__RESPONSE__RESULT_POLICY_LIST;
    r.policy_list = &pl;
    doc = mf_cli_render_json(&a, &r);
    assert_int_equal(json_array_size(json_object_get(doc, "policies")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "policies"), 2)),
                        "root");
    json_decref(doc);

    assert_int_equal(test_cli_parse(&a, err, 6, "policy", "check", "-policy", "A", "read", "x"), 0);
    Mayfly__Api__PolicyCheckResponse pc = MAYFLY__API__POLICY_CHECK_RESPONSE__INIT;
    pc.reason = "no matching rule";
    r.result_case = MAYFLY__API__RESPONSE__RESULT_POLICY_CHECK;
    r.policy_check = &pc;
    doc = mf_cli_render_json(&a, &r);
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"allowed\":false,\"capabilities\":[],\"policy\":null,"
                              "\"reason\":\"no matching rule\",\"rule\":null}");
    free(text);
    json_decref(doc);
    char *caps[] = {"read", "update"};
    pc.allowed = true, pc.policy = "B", pc.rule = "kv/data/app/+/config", pc.reason = "allowed";
    pc.n_capabilities = 2, pc.capabilities = caps;
    doc = mf_cli_render_json(&a, &r);
    assert_true(json_is_true(json_object_get(doc, "allowed")));
    assert_string_equal(json_string_value(json_object_get(doc, "rule")), "kv/data/app/+/config");
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "capabilities"), 1)),
                        "update");
    json_decref(doc);
}

/* A server that does not know a write's outcome makes the CLI exit 3, as
 * a lost connection does; any other server error exits 2. */
static void server_unknown_outcome_exits_3(void **state)
{
    (void)state;
    assert_int_equal(mf_cli_exit_for_server_error(MAYFLY__API__ERROR_CODE__UNKNOWN_OUTCOME),
                     MF_CLI_EXIT_UNKNOWN);
    assert_int_equal(mf_cli_exit_for_server_error(MAYFLY__API__ERROR_CODE__UNAVAILABLE),
                     MF_CLI_EXIT_REFUSED);
    assert_int_equal(mf_cli_exit_for_server_error(MAYFLY__API__ERROR_CODE__QUOTA_EXCEEDED),
                     MF_CLI_EXIT_REFUSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_unknown_outcome_exits_3),
        cmocka_unit_test(test_cli_flags_anywhere),
        cmocka_unit_test(test_cli_env_defaults_and_override),
        cmocka_unit_test(test_cli_rejects_bad_usage),
        cmocka_unit_test(test_cli_longest_command_match),
        cmocka_unit_test(test_cli_kv_put_builds_pairs),
        cmocka_unit_test(test_cli_kv_put_refuses_bad_values),
        cmocka_unit_test(test_cli_utf8_validation),
        cmocka_unit_test(test_cli_lease_grant_durations),
        cmocka_unit_test(test_cli_reads_carry_consistency),
        cmocka_unit_test(test_cli_creds_issue_mount_role),
        cmocka_unit_test(test_cli_token_create_policies),
        cmocka_unit_test(test_cli_kv_get_json_shape),
        cmocka_unit_test(test_cli_lease_json_shapes),
        cmocka_unit_test(test_cli_error_json_shape),
        cmocka_unit_test(test_cli_main_exit_codes_local),
        cmocka_unit_test(test_cli_policy_write_file_or_stdin),
        cmocka_unit_test(test_cli_policy_check_request),
        cmocka_unit_test(test_cli_policy_check_token_roles),
        cmocka_unit_test(test_cli_token_renew_and_no_default),
        cmocka_unit_test(test_cli_policy_json_shapes),
    };
    return cmocka_run_group_tests(tests, clear_env, NULL);
}
