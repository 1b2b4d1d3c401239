/* Tests of src/common: config loading, durations, error codes, logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "tmpdir.h"

static char tmpdir[64]; /* a longer $TMPDIR makes setup fail */

static int make_tmpdir(void **state)
{
    (void)state;
    return mf_tmpdir_make("test-config", tmpdir, sizeof(tmpdir));
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return mf_tmpdir_remove(tmpdir);
}

/* Writes text to a file under tmpdir and returns its path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* A full, valid file overrides the defaults field by field. */
static void test_config_loads_valid_file(void **state)
{
    (void)state;
    const char *p = write_file("ok.json",
                               "{\"node_id\": 2, \"data_dir\": \"/var/lib/mayfly\","
                               " \"listen\": \"127.0.0.1:0\", \"max_clock_skew_ms\": 250,"
                               " \"peers\": [{\"id\": 1, \"addr\": \"127.0.0.1:9001\","
                               " \"api_addr\": \"127.0.0.1:9101\", \"zone\": \"a\"}, {\"id\": 3, \"addr\": \"127.0.0.1:9003\","
                               " \"learner\": true}]}");
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_load(&cfg, p, err, sizeof(err)), 0);
    assert_int_equal(cfg.node_id, 2);
    assert_string_equal(cfg.data_dir, "/var/lib/mayfly");
    assert_string_equal(cfg.listen, "127.0.0.1:0");
    assert_string_equal(cfg.peer_listen, "127.0.0.1:8271"); /* default kept */
    assert_int_equal(cfg.max_clock_skew_ms, 250);
    assert_int_equal(cfg.peers_len, 2);
    assert_int_equal(cfg.peers[0].id, 1);
    assert_string_equal(cfg.peers[0].zone, "a");
    assert_string_equal(cfg.peers[0].api_addr, "127.0.0.1:9101");
    assert_null(cfg.peers[1].api_addr);
    assert_true(cfg.peers[1].learner);
    assert_null(cfg.peers[1].zone);
    assert_int_equal(mf_config_validate(&cfg, err, sizeof(err)), 0);
    mf_config_free(&cfg);
}

/* The example config shipped in deploy/ loads and validates. */
static void test_config_example_in_deploy_is_valid(void **state)
{
    (void)state;
    const char *src = getenv("MF_SOURCE_DIR");
    assert_non_null(src);
    char path[512];
    snprintf(path, sizeof(path), "%s/deploy/config/node.example.json", src);
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    assert_int_equal(mf_config_defaults(&cfg), 0);
    int rc = mf_config_load(&cfg, path, err, sizeof(err));
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(mf_config_validate(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.peers_len, 2);
    mf_config_free(&cfg);
}

/* A missing file names the file and says it does not exist. */
static void test_config_missing_file(void **state)
{
    (void)state;
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    char path[128];
    snprintf(path, sizeof(path), "%s/nope.json", tmpdir);
    assert_int_equal(mf_config_defaults(&cfg), 0);
    int rc = mf_config_load(&cfg, path, err, sizeof(err));
    assert_true(rc < 0);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
    mf_config_free(&cfg);
}

/* Broken JSON names the file, the line and the parser's complaint. */
static void test_config_bad_json(void **state)
{
    (void)state;
    const char *p = write_file("bad.json", "{\n \"node_id\": 1,\n \"data_dir\": \n}\n");
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_load(&cfg, p, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "line 4"));
    assert_non_null(strstr(err, "invalid JSON"));
    mf_config_free(&cfg);
}

/* A misspelt key is refused, and the message quotes it. */
static void test_config_unknown_key(void **state)
{
    (void)state;
    const char *p = write_file("typo.json", "{\"node_id\": 1, \"data_dri\": \"/x\"}");
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_load(&cfg, p, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "unknown key 'data_dri'"));
    mf_config_free(&cfg);
}

/* Unknown keys inside a peer entry are refused too, with their position. */
static void test_config_unknown_peer_key(void **state)
{
    (void)state;
    const char *p = write_file("peer.json",
                               "{\"peers\": [{\"id\": 1, \"addr\": \"a:1\", \"zonee\": \"x\"}]}");
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_load(&cfg, p, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, "peers[0].zonee"));
    mf_config_free(&cfg);
}

/* Wrong types and out-of-range numbers name the key. */
static void test_config_wrong_type_and_range(void **state)
{
    (void)state;
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    const char *p = write_file("type.json", "{\"data_dir\": 7}");
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_load(&cfg, p, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, "'data_dir' must be a string"));
    mf_config_free(&cfg);

    p = write_file("range.json", "{\"tick_ms\": 0}");
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_load(&cfg, p, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, "'tick_ms' is 0"));
    mf_config_free(&cfg);

    p = write_file("dup.json", "{\"node_id\": 1, \"node_id\": 2}");
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_load(&cfg, p, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, "duplicate"));
    mf_config_free(&cfg);
}

/* Validation catches missing required fields and contradictions. */
static void test_config_validate_rules(void **state)
{
    (void)state;
    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN] = "";
    assert_int_equal(mf_config_defaults(&cfg), 0);
    assert_int_equal(mf_config_validate(&cfg, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, "node_id"));
    cfg.node_id = 1;
    assert_int_equal(mf_config_set_str(&cfg.data_dir, "/d"), 0);
    assert_int_equal(mf_config_validate(&cfg, err, sizeof(err)), 0);
    cfg.heartbeat_ticks = cfg.election_ticks;
    assert_int_equal(mf_config_validate(&cfg, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, "election_ticks"));
    cfg.heartbeat_ticks = 1;
    /* HTTPS on the metrics listener needs both the certificate and the key. */
    assert_int_equal(mf_config_set_str(&cfg.metrics_tls_cert_file, "/c.pem"), 0);
    assert_int_equal(mf_config_validate(&cfg, err, sizeof(err)), MF_ECONFIG);
    assert_non_null(strstr(err, "metrics_tls_key_file"));
    assert_int_equal(mf_config_set_str(&cfg.metrics_tls_key_file, "/k.pem"), 0);
    assert_int_equal(mf_config_validate(&cfg, err, sizeof(err)), 0);
    mf_config_free(&cfg);
}

/* Durations parse in the CLI's forms and reject the rest. */
static void test_config_duration_parse(void **state)
{
    (void)state;
    uint64_t ms = 0;
    assert_int_equal(mf_duration_parse_ms("500ms", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(mf_duration_parse_ms("2s", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(mf_duration_parse_ms("90m", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(mf_duration_parse_ms("1h30m", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(mf_duration_parse_ms("30", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(mf_duration_parse_ms("", &ms), MF_EINVAL);
    assert_int_equal(mf_duration_parse_ms("1h30", &ms), MF_EINVAL);
    assert_int_equal(mf_duration_parse_ms("5x", &ms), MF_EINVAL);
    assert_int_equal(mf_duration_parse_ms("-5s", &ms), MF_EINVAL);
    assert_int_equal(mf_duration_parse_ms("99999999999999999999s", &ms), MF_EINVAL);
}

/* Error codes have stable names that round-trip, and text for errno too. */
static void test_config_error_names(void **state)
{
    (void)state;
    assert_string_equal(mf_err_name(MF_ELEASEEXPIRED), "LEASE_EXPIRED");
    assert_string_equal(mf_err_name(MF_ENOTLEADER), "UNAVAILABLE");
    assert_int_equal(mf_err_from_name("CAS_MISMATCH"), MF_ECAS);
    assert_int_equal(mf_err_from_name("NO_SUCH_CODE"), MF_EINTERNAL);
    assert_string_equal(mf_strerror(-2), "No such file or directory");
    assert_string_equal(mf_err_name(-2), "INTERNAL");
}

struct captured {
    int lines;
    char last[256];
};

static void capture_sink(void *ctx, enum mf_log_level level, const char *module, const char *line)
{
    struct captured *c = ctx;
    c->lines++;
    snprintf(c->last, sizeof(c->last), "%s %s %s", mf_log_level_name(level), module, line);
}

/* The level filter drops lines below it; the sink sees the rest. */
static void test_config_log_levels_and_sink(void **state)
{
    (void)state;
    struct captured c = {0};
    mf_log_set_sink(capture_sink, &c);
    mf_log_set_level(MF_LOG_WARN);
    MF_INFO("test", "dropped %d", 1);
    MF_ERROR("test", "kept %d", 2);
    mf_log_set_sink(NULL, NULL);
    mf_log_set_level(MF_LOG_INFO);
    assert_int_equal(c.lines, 1);
    assert_string_equal(c.last, "error test kept 2");
    enum mf_log_level l;
    assert_int_equal(mf_log_level_parse("debug", &l), 0);
    assert_int_equal(l, MF_LOG_DEBUG);
    assert_int_equal(mf_log_level_parse("loud", &l), MF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_loads_valid_file),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_config_example_in_deploy_is_valid),
        cmocka_unit_test(test_config_bad_json),
        cmocka_unit_test(test_config_unknown_key),
        cmocka_unit_test(test_config_unknown_peer_key),
        cmocka_unit_test(test_config_wrong_type_and_range),
        cmocka_unit_test(test_config_validate_rules),
        cmocka_unit_test(test_config_duration_parse),
        cmocka_unit_test(test_config_error_names),
        cmocka_unit_test(test_config_log_levels_and_sink),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
