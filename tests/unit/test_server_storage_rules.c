/* The storage quota's pure rules (server/storage_rules.h): derived limits,
 * the decision with hysteresis, and messages that name the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "server/storage_rules.h"

#define MIB MF_STORAGE_MIB

static void cfg_init(struct mf_config *c)
{
    memset(c, 0, sizeof(*c));
    c->storage_quota_enabled = 1;
    c->state_map_size_mb = 8192;
    c->log_map_size_mb = 8192;
}

/* Zeros derive from the map sizes and the filesystem; set keys win. */
static void test_server_storage_rules_limits(void **s)
{
    (void)s;
    struct mf_config c;
    cfg_init(&c);
    struct mf_storage_limits l;
    mf_storage_limits(&c, 100 * MIB * 1024, &l); /* a 100 GiB filesystem */
    assert_int_equal(l.state_bytes, 6144 * MIB);
    assert_int_equal(l.log_bytes, 6144 * MIB);
    assert_int_equal(l.snapshots_bytes, 2 * 6144 * MIB);
    assert_int_equal(l.free_floor_bytes, 2048 * MIB); /* 5 GiB capped at 2 GiB */
    mf_storage_limits(&c, 40 * MIB, &l);
    assert_int_equal(l.free_floor_bytes, 4 * MIB); /* 2 MiB raised to 4 MiB */
    mf_storage_limits(&c, 1000 * MIB, &l);
    assert_int_equal(l.free_floor_bytes, 50 * MIB);
    c.state_quota_mb = 1;
    c.log_quota_mb = 10;
    c.snapshots_quota_mb = 7;
    c.storage_free_floor_mb = 3;
    mf_storage_limits(&c, 1000 * MIB, &l);
    assert_int_equal(l.state_bytes, MIB);
    assert_int_equal(l.log_bytes, 10 * MIB);
    assert_int_equal(l.snapshots_bytes, 7 * MIB);
    assert_int_equal(l.free_floor_bytes, 3 * MIB);
    assert_true(l.enabled);
}

/* Raised at the limit, held until under 90% of it, named in the message. */
static void test_server_storage_rules_hysteresis(void **s)
{
    (void)s;
    struct mf_storage_limits l = {true, 192 * MIB, 100 * MIB, 400 * MIB, 4 * MIB};
    struct mf_storage_usage u = {.state_used_bytes = 191 * MIB, .fs_free_bytes = 1000 * MIB};
    char d[256];
    assert_false(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_string_equal(d, "");
    u.state_used_bytes = 192 * MIB;
    assert_true(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_string_equal(d, "storage quota: state database 192.0 of 192.0 MiB used (state_quota_mb)");
    u.state_used_bytes = 175 * MIB; /* under the limit, above 90% (172.8) */
    assert_false(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_true(mf_storage_decide(&l, &u, true, "/data", d, sizeof(d)));
    assert_non_null(strstr(d, "clears below 90%"));
    u.state_used_bytes = 172 * MIB;
    assert_false(mf_storage_decide(&l, &u, true, "/data", d, sizeof(d)));
    /* The log and the snapshots name their own keys. */
    u.log_used_bytes = 100 * MIB;
    assert_true(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_non_null(strstr(d, "Raft log 100.0 of 100.0 MiB used (log_quota_mb)"));
    u.log_used_bytes = 0;
    u.snapshots_bytes = 401 * MIB;
    assert_true(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_non_null(strstr(d, "(snapshots_quota_mb)"));
}

/* The free-space floor: raised below it, cleared only at 1.25 x. */
static void test_server_storage_rules_free_floor(void **s)
{
    (void)s;
    struct mf_storage_limits l = {true, 192 * MIB, 100 * MIB, 400 * MIB, 4 * MIB};
    struct mf_storage_usage u = {.fs_free_bytes = 3 * MIB};
    char d[256];
    assert_true(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_string_equal(d, "free space on /data 3.0 MiB below the floor of 4.0 MiB "
                           "(storage_free_floor_mb)");
    u.fs_free_bytes = 4 * MIB;
    assert_false(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_true(mf_storage_decide(&l, &u, true, "/data", d, sizeof(d)));
    assert_string_equal(d, "free space on /data 4.0 MiB above the floor of 4.0 MiB "
                           "(storage_free_floor_mb); clears at 125%");
    u.fs_free_bytes = 5 * MIB;
    assert_false(mf_storage_decide(&l, &u, true, "/data", d, sizeof(d)));
}

/* With the quota off only a blocked node is over; a blocked node is over
 * whatever its figures, with its cause. */
static void test_server_storage_rules_disabled_and_blocked(void **s)
{
    (void)s;
    struct mf_storage_limits l = {false, MIB, MIB, MIB, 4 * MIB};
    struct mf_storage_usage u = {.state_used_bytes = 100 * MIB, .fs_free_bytes = 0};
    char d[256];
    assert_false(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    u.blocked = true;
    u.blocked_cause = "no space left on device";
    assert_true(mf_storage_decide(&l, &u, false, "/data", d, sizeof(d)));
    assert_string_equal(d, "storage blocked: no space left on device");
}

/* Near a limit (measured ten times as often): above 3/4 of a used limit or
 * under twice the floor; never with the quota off. */
static void test_server_storage_rules_near(void **s)
{
    (void)s;
    struct mf_storage_limits l = {true, 100 * MIB, 100 * MIB, 400 * MIB, 4 * MIB};
    struct mf_storage_usage u = {.state_used_bytes = 74 * MIB, .fs_free_bytes = 1000 * MIB};
    assert_false(mf_storage_near(&l, &u));
    u.state_used_bytes = 75 * MIB;
    assert_true(mf_storage_near(&l, &u));
    u.state_used_bytes = 0;
    u.log_used_bytes = 80 * MIB;
    assert_true(mf_storage_near(&l, &u));
    u.log_used_bytes = 0;
    u.fs_free_bytes = 8 * MIB;
    assert_false(mf_storage_near(&l, &u));
    u.fs_free_bytes = 8 * MIB - 1;
    assert_true(mf_storage_near(&l, &u));
    l.enabled = false;
    assert_false(mf_storage_near(&l, &u));
}

static void test_server_storage_rules_report_codec(void **s)
{
    (void)s;
    struct mf_storage_report r = {.over = true, .crossed = false, .blocked = true,
                                  .since_ms = 1764800000000ull};
    snprintf(r.detail, sizeof(r.detail), "free space on /d 3.0 MiB below the floor");
    char *text = NULL;
    assert_int_equal(mf_storage_report_encode(&r, &text), 0);
    struct mf_storage_report back;
    assert_int_equal(mf_storage_report_decode((const uint8_t *)text, strlen(text), &back), 0);
    assert_true(back.over);
    assert_false(back.crossed);
    assert_true(back.blocked);
    assert_true(back.since_ms == r.since_ms);
    assert_string_equal(back.detail, r.detail);
    free(text);
    /* An older node sends no "crossed": its "over" stands for it. */
    const char *old = "{\"over\":true,\"detail\":\"x\",\"since_ms\":5}";
    assert_int_equal(mf_storage_report_decode((const uint8_t *)old, strlen(old), &back), 0);
    assert_true(back.crossed);
    assert_false(back.blocked);
    const char *bad[] = {
        "", "null", "[]", "{\"over\":1,\"detail\":\"x\",\"since_ms\":5}",
        "{\"over\":true,\"detail\":\"x\",\"since_ms\":-1}",
        "{\"over\":true,\"detail\":\"x\"}", "{\"over\":true,\"since_ms\":1}",
        "{\"over\":true,\"over\":false,\"detail\":\"x\",\"since_ms\":1}",
        "{\"over\":true,\"crossed\":\"yes\",\"detail\":\"x\",\"since_ms\":1}",
        "{\"over\":true,\"blocked\":1,\"detail\":\"x\",\"since_ms\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mf_storage_report_decode((const uint8_t *)bad[i], strlen(bad[i]), &back),
                         MF_EINVAL);
    /* A detail past the bound, and a report past its size, are refused. */
    char big[MF_STORAGE_REPORT_MAX + 64];
    int n = snprintf(big, sizeof(big), "{\"over\":true,\"detail\":\"");
    memset(big + n, 'a', MF_STORAGE_REPORT_DETAIL_MAX + 1);
    snprintf(big + n + MF_STORAGE_REPORT_DETAIL_MAX + 1, 32, "\",\"since_ms\":1}");
    assert_int_equal(mf_storage_report_decode((const uint8_t *)big, strlen(big), &back), MF_EINVAL);
    memset(r.detail, 'a', MF_STORAGE_REPORT_DETAIL_MAX);
    r.detail[MF_STORAGE_REPORT_DETAIL_MAX] = 0;
    assert_int_equal(mf_storage_report_encode(&r, &text), 0);
    assert_true(strlen(text) <= MF_STORAGE_REPORT_MAX);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_storage_rules_limits),
        cmocka_unit_test(test_server_storage_rules_hysteresis),
        cmocka_unit_test(test_server_storage_rules_free_floor),
        cmocka_unit_test(test_server_storage_rules_disabled_and_blocked),
        cmocka_unit_test(test_server_storage_rules_near),
        cmocka_unit_test(test_server_storage_rules_report_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
