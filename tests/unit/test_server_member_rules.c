/* Membership rules (server/member_rules.h): zone tolerance on many shapes,
 * the zone guard's refusal and its words, and promotion readiness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "server/member_rules.h"

/* Voters 1.. with the zones of a space-separated string ("-": no zone). */
static size_t shape(const char *zones, struct mf_member_voter *v, char store[][16])
{
    size_t n = 0;
    const char *p = zones;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t k = strcspn(p, " ");
        memcpy(store[n], p, k);
        store[n][k] = 0;
        v[n].id = n + 1;
        v[n].zone = strcmp(store[n], "-") == 0 ? NULL : store[n];
        n++;
        p += k;
    }
    return n;
}

static unsigned tol(const char *zones)
{
    struct mf_member_voter v[MF_MEMBER_VOTERS_MAX];
    char store[MF_MEMBER_VOTERS_MAX][16];
    size_t n = shape(zones, v, store);
    return mf_member_zone_tolerance(v, n);
}

/* The worst k zones are the largest; voters without a zone are their own. */
static void test_server_member_rules_tolerance(void **s)
{
    (void)s;
    assert_int_equal(tol(""), 0);
    assert_int_equal(tol("a"), 0);
    assert_int_equal(tol("a b"), 0);
    assert_int_equal(tol("a b c"), 1);
    assert_int_equal(tol("a a b"), 0);
    assert_int_equal(tol("a a b b"), 0);
    assert_int_equal(tol("a b c d"), 1);
    assert_int_equal(tol("a a b b c"), 1);
    assert_int_equal(tol("a b c d e"), 2);
    assert_int_equal(tol("a a b c d"), 1);
    assert_int_equal(tol("a a a b c"), 0);
    assert_int_equal(tol("a a b b c c d"), 1);
    assert_int_equal(tol("- - -"), 1);
    assert_int_equal(tol("- - - - -"), 2);
    assert_int_equal(tol("a a -"), 0);
    assert_int_equal(tol("a - -"), 1);
    assert_int_equal(tol("a a a"), 0);
    assert_int_equal(tol("a a b b c c"), 1);
    assert_int_equal(tol("a a a b b b c c c"), 1);
}

/* The zone text: zones by name, zone-less voters as node<ID>. */
static void test_server_member_rules_text(void **s)
{
    (void)s;
    struct mf_member_voter v[MF_MEMBER_VOTERS_MAX];
    char store[MF_MEMBER_VOTERS_MAX][16];
    char buf[128];
    size_t n = shape("b a a -", v, store);
    mf_member_zone_text(v, n, buf, sizeof(buf));
    assert_string_equal(buf, "a=2 b=1 node4=1");
    mf_member_zone_text(v, 0, buf, sizeof(buf));
    assert_string_equal(buf, "none");
    mf_member_zone_text(v, n, buf, 6); /* truncated, still a string */
    assert_int_equal(strlen(buf), 5);
}

static int guard(const char *before, const char *after, bool force, char *why)
{
    struct mf_member_voter b[MF_MEMBER_VOTERS_MAX], a[MF_MEMBER_VOTERS_MAX];
    char sb[MF_MEMBER_VOTERS_MAX][16], sa[MF_MEMBER_VOTERS_MAX][16];
    size_t nb = shape(before, b, sb), na = shape(after, a, sa);
    return mf_member_zone_guard(b, nb, a, na, "removing node 3", force, why, MF_MEMBER_WHY_MAX);
}

/* A change that lowers the tolerance is refused from 3 voters on, with the
 * before, after and zones in the reason; -force lets it through. */
static void test_server_member_rules_guard(void **s)
{
    (void)s;
    char why[MF_MEMBER_WHY_MAX];
    assert_int_equal(guard("a a b c", "a a b", false, why), 0); /* 0 -> 0 */
    assert_int_equal(guard("a a b b c", "a a b c", false, why), MF_EINVAL);
    assert_string_equal(why, "removing node 3 lowers the zones this cluster can lose from 1 to 0 "
                             "(voters per zone: a=2 b=2 c=1 -> a=2 b=1 c=1); use -force");
    assert_int_equal(guard("a a b b c", "a a b c", true, why), 0);
    assert_string_equal(why, "");
    /* Fewer than 3 voters: never refused. */
    assert_int_equal(guard("a b", "a", false, why), 0);
    /* Growing can lower it too: a voter in a zone that holds enough to sink a majority. */
    assert_int_equal(guard("a b c", "a a b c", false, why), MF_EINVAL);
    assert_non_null(strstr(why, "from 1 to 0"));
    /* Same or better: allowed. */
    assert_int_equal(guard("a a b c", "a a b b c", false, why), 0);
    assert_int_equal(guard("a b c d e", "a b c d", false, why), MF_EINVAL);
    assert_int_equal(guard("a a b b", "a b b", false, why), 0);
}

/* Ready only after staying within reach for the hold time; falling behind
 * restarts the wait; a match of 0 is never ready. */
static void test_server_member_rules_catchup(void **s)
{
    (void)s;
    struct mf_member_catchup c = {0};
    assert_false(mf_member_catchup_ready(&c, 1000, 0, 5000));
    assert_false(mf_member_catchup_ready(&c, 1000, 10, 5000)); /* far behind */
    assert_int_equal(c.since_ms, 0);
    assert_false(mf_member_catchup_ready(&c, 1000, 990, 5000)); /* starts the wait */
    assert_false(mf_member_catchup_ready(&c, 1000, 995, 5000 + MF_MEMBER_CATCHUP_HOLD_MS - 1));
    assert_true(mf_member_catchup_ready(&c, 1010, 1000, 5000 + MF_MEMBER_CATCHUP_HOLD_MS));
    /* Behind again: the wait restarts. */
    assert_false(mf_member_catchup_ready(&c, 5000, 1000, 7000));
    assert_int_equal(c.since_ms, 0);
    assert_false(mf_member_catchup_ready(&c, 5000, 5000 - MF_MEMBER_CATCHUP_ENTRIES, 8000));
    assert_true(mf_member_catchup_ready(&c, 5000, 5000, 8000 + MF_MEMBER_CATCHUP_HOLD_MS));
}

static void test_server_member_rules_addr_and_zone(void **s)
{
    (void)s;
    assert_true(mf_member_addr_ok("10.0.0.1:8271"));
    assert_true(mf_member_addr_ok("db1.example:1"));
    assert_true(mf_member_addr_ok("[::1]:8271"));
    const char *bad[] = {NULL, "", "a:", ":1", "host", "host:12x", "ho st:1", "h\x01:1", "a:1\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(mf_member_addr_ok(bad[i]));
    char big[MF_MEMBER_RULES_ADDR_MAX + 8];
    memset(big, 'a', sizeof(big));
    memcpy(big + MF_MEMBER_RULES_ADDR_MAX - 2, ":1", 3); /* 255 bytes */
    assert_true(mf_member_addr_ok(big));
    memset(big, 'a', sizeof(big));
    memcpy(big + MF_MEMBER_RULES_ADDR_MAX - 1, ":1", 3); /* 256 bytes */
    assert_false(mf_member_addr_ok(big));
    assert_true(mf_member_zone_ok(""));
    assert_true(mf_member_zone_ok(NULL));
    assert_true(mf_member_zone_ok("eu-west-1a"));
    assert_false(mf_member_zone_ok("a b"));
    assert_false(mf_member_zone_ok("a/b"));
    char zone[MF_MEMBER_RULES_ZONE_MAX + 2];
    memset(zone, 'z', sizeof(zone));
    zone[MF_MEMBER_RULES_ZONE_MAX] = 0;
    assert_true(mf_member_zone_ok(zone));
    zone[MF_MEMBER_RULES_ZONE_MAX] = 'z';
    zone[MF_MEMBER_RULES_ZONE_MAX + 1] = 0;
    assert_false(mf_member_zone_ok(zone));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_member_rules_tolerance),
        cmocka_unit_test(test_server_member_rules_text),
        cmocka_unit_test(test_server_member_rules_guard),
        cmocka_unit_test(test_server_member_rules_catchup),
        cmocka_unit_test(test_server_member_rules_addr_and_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
