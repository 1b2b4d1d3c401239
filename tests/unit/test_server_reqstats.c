/* Requests by operation and code (server/reqstats.h): codes land on their
 * public name, latencies in the first bucket that holds them, and ops out
 * of range are ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "server/reqstats.h"

static int idx_of(const char *name)
{
    for (int i = 0; i < MF_REQSTATS_CODES; i++)
        if (strcmp(mf_reqstats_code_name(i), name) == 0)
            return i;
    return -1;
}

/* Counts by code (an internal code under its public name), buckets by
 * latency, totals and sums per op. */
static void test_server_reqstats_counts(void **s)
{
    (void)s;
    static struct mf_reqstats st;
    memset(&st, 0, sizeof(st));
    mf_reqstats_done(&st, 12, 0, 300);             /* 0.3 ms: first bucket */
    mf_reqstats_done(&st, 12, MF_ENOTFOUND, 2000); /* 2 ms: the 2.5 ms bucket */
    mf_reqstats_done(&st, 12, MF_ENOTLEADER, 7e6); /* 7 s: only +Inf */
    mf_reqstats_done(&st, 0, 0, 1);                /* no op: ignored */
    mf_reqstats_done(&st, MF_REQSTATS_OPS, 0, 1);  /* out of range: ignored */
    mf_reqstats_done(NULL, 12, 0, 1);              /* no stats: ignored */
    assert_int_equal(st.total[12], 3);
    assert_int_equal(st.sum_us[12], 300 + 2000 + 7000000);
    assert_int_equal(st.count[12][idx_of("OK")], 1);
    assert_int_equal(st.count[12][idx_of("NOT_FOUND")], 1);
    assert_int_equal(st.count[12][idx_of("UNAVAILABLE")], 1);
    assert_int_equal(st.bucket[12][0], 1);
    assert_int_equal(st.bucket[12][2], 1);
    uint64_t finite = 0;
    for (int b = 0; b < MF_REQSTATS_BUCKETS; b++)
        finite += st.bucket[12][b];
    assert_int_equal(finite, 2);
    assert_int_equal(st.total[0], 0);
}

/* Every code index has a distinct public name. */
static void test_server_reqstats_code_names(void **s)
{
    (void)s;
    assert_string_equal(mf_reqstats_code_name(0), "OK");
    assert_string_equal(mf_reqstats_code_name(MF_REQSTATS_CODES - 1), "INTERNAL");
    for (int i = 0; i < MF_REQSTATS_CODES; i++)
        for (int j = i + 1; j < MF_REQSTATS_CODES; j++)
            assert_string_not_equal(mf_reqstats_code_name(i), mf_reqstats_code_name(j));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_reqstats_counts),
        cmocka_unit_test(test_server_reqstats_code_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
