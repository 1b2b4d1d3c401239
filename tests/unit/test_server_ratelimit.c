/* The per-token bucket arithmetic (server/ratelimit.h) with an injected
 * clock: burst, refill, retry-after hints, independence of keys, the
 * fixed-size table's eviction, the single bucket quota rates use, and the
 * role-or-accessor key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/ratelimit.h"

static void test_burst_then_refill(void **st)
{
    (void)st;
    struct mf_ratelimit *rl = NULL;
    assert_int_equal(mf_ratelimit_new(2, 3, &rl), 0); /* 2/s, burst 3 */
    uint64_t retry = 0;
    for (int i = 0; i < 3; i++)
        assert_true(mf_ratelimit_take_at(rl, "a", 1000, &retry));
    assert_false(mf_ratelimit_take_at(rl, "a", 1000, &retry));
    assert_int_equal(retry, 500); /* one request back every 500 ms */
    assert_false(mf_ratelimit_take_at(rl, "a", 1499, &retry));
    assert_int_equal(retry, 1);
    assert_true(mf_ratelimit_take_at(rl, "a", 1500, &retry));
    assert_false(mf_ratelimit_take_at(rl, "a", 1500, &retry));
    /* A long pause refills to the burst, never beyond it. */
    for (int i = 0; i < 3; i++)
        assert_true(mf_ratelimit_take_at(rl, "a", 1000000, &retry));
    assert_false(mf_ratelimit_take_at(rl, "a", 1000000, &retry));
    /* A clock that steps back refills nothing. */
    assert_false(mf_ratelimit_take_at(rl, "a", 10, &retry));
    mf_ratelimit_free(rl);
}

static void test_keys_are_independent(void **st)
{
    (void)st;
    struct mf_ratelimit *rl = NULL;
    assert_int_equal(mf_ratelimit_new(1, 0, &rl), 0); /* burst = rate */
    uint64_t retry = 0;
    assert_true(mf_ratelimit_take_at(rl, "a", 0, &retry));
    assert_false(mf_ratelimit_take_at(rl, "a", 0, &retry));
    assert_int_equal(retry, 1000);
    assert_true(mf_ratelimit_take_at(rl, "b", 0, &retry));
    /* No table (rate 0) or no key: no limit. */
    assert_true(mf_ratelimit_take_at(rl, "", 0, &retry));
    mf_ratelimit_free(rl);
    assert_int_equal(mf_ratelimit_new(0, 10, &rl), 0);
    assert_null(rl);
    for (int i = 0; i < 100; i++)
        assert_true(mf_ratelimit_take_at(NULL, "a", 0, &retry));
}

static void test_table_is_bounded_busy_key_kept(void **st)
{
    (void)st;
    struct mf_ratelimit *rl = NULL;
    assert_int_equal(mf_ratelimit_new(1, 1, &rl), 0);
    uint64_t retry = 0;
    assert_true(mf_ratelimit_take_at(rl, "victim", 0, &retry));
    /* Far more keys than the table holds; the limited key stays busy, so
     * it is never the least recently used of its set and keeps its empty
     * bucket. */
    char key[32];
    for (int i = 0; i < MF_RATELIMIT_SETS * MF_RATELIMIT_WAYS * 4; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(mf_ratelimit_take_at(rl, key, 0, &retry));
        if (i % 4 == 0)
            assert_false(mf_ratelimit_take_at(rl, "victim", 0, &retry));
    }
    /* An idle key was evicted and comes back with a full bucket. */
    assert_true(mf_ratelimit_take_at(rl, "k0", 0, &retry));
    /* Keys longer than the limit are cut, not refused. */
    char longkey[200];
    memset(longkey, 'x', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_true(mf_ratelimit_take_at(rl, longkey, 0, &retry));
    assert_false(mf_ratelimit_take_at(rl, longkey, 0, &retry));
    mf_ratelimit_free(rl);
}

static void test_single_bucket(void **st)
{
    (void)st;
    struct mf_rate_bucket b;
    uint64_t retry = 0;
    mf_rate_bucket_init(&b, 2, 0, 1000); /* 2/s, burst 2 */
    for (int i = 0; i < 2; i++) {
        assert_true(mf_rate_bucket_ready(&b, 1000, &retry));
        mf_rate_bucket_take(&b);
    }
    /* Ready takes nothing: asking twice still refuses with the same hint. */
    assert_false(mf_rate_bucket_ready(&b, 1000, &retry));
    assert_int_equal(retry, 500);
    assert_false(mf_rate_bucket_ready(&b, 1250, &retry));
    assert_int_equal(retry, 250);
    assert_true(mf_rate_bucket_ready(&b, 1500, &retry));
    assert_true(mf_rate_bucket_ready(&b, 1500, &retry));
    mf_rate_bucket_take(&b);
    assert_false(mf_rate_bucket_ready(&b, 1500, &retry));
    /* Rate 0: never limited. */
    mf_rate_bucket_init(&b, 0, 0, 0);
    for (int i = 0; i < 10; i++) {
        assert_true(mf_rate_bucket_ready(&b, 0, &retry));
        mf_rate_bucket_take(&b);
    }
}

static void test_key_role_or_accessor(void **st)
{
    (void)st;
    char out[MF_RATELIMIT_KEY_MAX + 1];
    char *k[] = {"sub", "auth_role", "auth_mount"};
    char *v[] = {"repo:acme/x", "api", "jwt-prod"};
    mf_ratelimit_key("acc1", k, v, 3, out, sizeof(out));
    assert_string_equal(out, "role:jwt-prod/api");
    /* Two tokens of one role share the key, whatever their accessors. */
    char other[MF_RATELIMIT_KEY_MAX + 1];
    mf_ratelimit_key("acc2", k, v, 3, other, sizeof(other));
    assert_string_equal(out, other);
    /* No role (a token from token create), or half of it: the accessor. */
    mf_ratelimit_key("acc1", NULL, NULL, 0, out, sizeof(out));
    assert_string_equal(out, "acc1");
    mf_ratelimit_key("acc1", k, v, 2, out, sizeof(out)); /* auth_mount missing */
    assert_string_equal(out, "acc1");
    char *e[] = {"", "api", ""};
    mf_ratelimit_key("acc1", k, e, 3, out, sizeof(out)); /* empty values */
    assert_string_equal(out, "acc1");
    mf_ratelimit_key(NULL, NULL, NULL, 0, out, sizeof(out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_keys_are_independent),
        cmocka_unit_test(test_table_is_bounded_busy_key_kept),
        cmocka_unit_test(test_single_bucket),
        cmocka_unit_test(test_key_role_or_accessor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
