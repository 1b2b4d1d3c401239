/* The per-token bucket arithmetic (server/ratelimit.h) with an injected
 * clock: burst, refill, retry-after hints, independence of keys, and the
 * fixed-size table's eviction. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_keys_are_independent),
        cmocka_unit_test(test_table_is_bounded_busy_key_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
