/* Tests of src/server/leader_clock.c: the leader's stamped now under wall
 * clock jumps forward and back, an idle cluster hours later, a view that
 * disagrees, recovery once the clock is put back, a single voter, and never
 * backwards. Times are simulated: wall = true time + the clock's error,
 * mono = true time since start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/leader_clock.h"

#define T0 UINT64_C(1700000000000) /* true time at the start */
#define BOUND 500
#define HOUR_MS UINT64_C(3600000)

static const struct mf_leader_clock_view agree3 = {.agrees = true, .voters = 3, .max_skew_ms = BOUND};
static const struct mf_leader_clock_view disagree3 = {.agrees = false, .voters = 3, .max_skew_ms = BOUND};
static const struct mf_leader_clock_view single = {.agrees = true, .voters = 1, .max_skew_ms = BOUND};

/* A leader that applied `now` = T0 at true time 0 (a live anchor). */
static void warm(struct mf_leader_clock *c)
{
    mf_leader_clock_init(c, T0 - 5000, 0);
    mf_leader_clock_observe(c, T0, 0);
}

/* Stamps at true time t (ms since start) with the wall clock off by err. */
static uint64_t stamp_at(struct mf_leader_clock *c, uint64_t t, int64_t err,
                         const struct mf_leader_clock_view *v)
{
    return mf_leader_clock_stamp(c, (uint64_t)((int64_t)(T0 + t) + err), t, 0, v);
}

static void test_server_leader_clock_honest(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    assert_int_equal(stamp_at(&c, 100, 0, &agree3), T0 + 100);
    assert_true(c.wall_used);
    /* A drift within the bound is taken as is. */
    assert_int_equal(stamp_at(&c, 200, 300, &agree3), T0 + 500);
    assert_true(c.wall_used);
}

static void test_server_leader_clock_jump_forward(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    stamp_at(&c, 1000, 0, &agree3);
    /* +10 s while the measurements still say it agrees: the jump is seen
     * against the monotonic clock, and the candidate is stamped. */
    uint64_t now = stamp_at(&c, 2000, 10000, &agree3);
    assert_false(c.wall_used);
    assert_int_equal(now, T0 + 2000);
    for (uint64_t t = 2100; t < 30000; t += 700) {
        now = stamp_at(&c, t, 10000, &agree3);
        assert_int_equal(now, T0 + t); /* never ahead of true time */
    }
}

static void test_server_leader_clock_jump_back(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    stamp_at(&c, 1000, 0, &agree3);
    /* -10 s: the candidate goes on with monotonic time, not the stale wall. */
    uint64_t prev = 0;
    for (uint64_t t = 1500; t < 20000; t += 500) {
        uint64_t now = stamp_at(&c, t, -10000, &agree3);
        assert_false(c.wall_used);
        assert_int_equal(now, T0 + t);
        assert_true(now > prev);
        prev = now;
    }
}

static void test_server_leader_clock_jumps_repeated(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    uint64_t prev = 0;
    /* +10 s and back every 3 s; stamped now stays within the bound of true
     * time and never runs backwards. */
    for (uint64_t t = 100; t < 60000; t += 250) {
        int64_t err = (t / 3000) % 2 ? 10000 : 0;
        uint64_t now = stamp_at(&c, t, err, &agree3);
        assert_true(now >= prev);
        assert_true(now <= T0 + t + BOUND);
        assert_true(now + BOUND >= T0 + t);
        prev = now;
    }
}

static void test_server_leader_clock_idle_hours(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    stamp_at(&c, 1000, 0, &agree3);
    /* Hours later, nothing committed since: the wall clock is hours past
     * the last committed now, but so is the monotonic clock: not a jump. */
    uint64_t t = 5 * HOUR_MS;
    assert_int_equal(stamp_at(&c, t, 0, &agree3), T0 + t);
    assert_true(c.wall_used);
}

static void test_server_leader_clock_cold_start(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    /* Restarted: the last applied now is 3 hours old and the time since
     * it is unknown; a view that agrees takes the wall clock ... */
    mf_leader_clock_init(&c, T0 - 3 * HOUR_MS, 0);
    assert_int_equal(stamp_at(&c, 10, 0, &agree3), T0 + 10);
    assert_true(c.wall_used);
    /* ... and from then on jumps are measured against it. */
    assert_int_equal(stamp_at(&c, 20, 10000, &agree3), T0 + 20);
    /* A cold start that disagrees advances from disk by monotonic time only. */
    mf_leader_clock_init(&c, T0 - 3 * HOUR_MS, 0);
    assert_int_equal(stamp_at(&c, 10, 0, &disagree3), T0 - 3 * HOUR_MS + 10);
    /* A cold clock far behind the last applied now is not taken either. */
    mf_leader_clock_init(&c, T0, 0);
    assert_int_equal(stamp_at(&c, 10, -600000, &agree3), T0 + 10);
}

static void test_server_leader_clock_disagreeing_view(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    stamp_at(&c, 1000, 0, &agree3);
    /* Even an honest-looking wall clock is not taken while the view
     * disagrees: the candidate is. */
    assert_int_equal(stamp_at(&c, 2000, 200, &disagree3), T0 + 2000);
    assert_false(c.wall_used);
    assert_false(mf_leader_clock_trusted(&disagree3));
    assert_true(mf_leader_clock_trusted(&agree3));
    assert_true(mf_leader_clock_trusted(&single));
    struct mf_leader_clock_view lone_disagreeing = {.agrees = false, .voters = 1, .max_skew_ms = BOUND};
    assert_true(mf_leader_clock_trusted(&lone_disagreeing));
}

static void test_server_leader_clock_recovery(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    stamp_at(&c, 1000, 0, &agree3);
    stamp_at(&c, 2000, 600000, &disagree3); /* 600 s ahead */
    stamp_at(&c, 5000, 600000, &disagree3);
    /* Put back: the wall clock is taken again at once, with no 600 s of
     * poison to wait out. */
    uint64_t now = stamp_at(&c, 6000, 0, &agree3);
    assert_true(c.wall_used);
    assert_int_equal(now, T0 + 6000);
    assert_int_equal(stamp_at(&c, 36000, 0, &agree3), T0 + 36000);
}

static void test_server_leader_clock_never_backwards(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    stamp_at(&c, 1000, 400, &agree3); /* taken: T0 + 1400 */
    /* The wall clock steps back 400 ms (within the bound): now holds. */
    uint64_t now = stamp_at(&c, 1100, 0, &agree3);
    assert_true(now >= T0 + 1400);
    /* An applied now ahead of everything (another leader's) is not gone
     * below, and becomes the anchor. */
    now = mf_leader_clock_stamp(&c, T0 + 1200, 1200, T0 + 1700, &agree3);
    assert_int_equal(now, T0 + 1700);
    assert_true(mf_leader_clock_candidate(&c, 1300) >= T0 + 1800);
    /* A monotonic clock reported backwards holds still. */
    assert_true(mf_leader_clock_stamp(&c, T0, 1000, 0, &disagree3) >= T0 + 1700);
}

static void test_server_leader_clock_single_voter(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    warm(&c);
    stamp_at(&c, 1000, 0, &single);
    /* A single voter trusts its own clock: a step forward is taken ... */
    assert_int_equal(stamp_at(&c, 2000, 10000, &single), T0 + 12000);
    assert_true(c.wall_used);
    /* ... and a step back is never below what it stamped. */
    uint64_t now = stamp_at(&c, 3000, 0, &single);
    assert_true(now >= T0 + 12000);
}

static void test_server_leader_clock_reason(void **state)
{
    (void)state;
    char buf[256];
    mf_leader_clock_reason(buf, sizeof(buf), true, 10012, 1, 3, 500);
    assert_non_null(strstr(buf, "clock skew"));
    assert_non_null(strstr(buf, "10012 ms off"));
    assert_non_null(strstr(buf, "bound 500 ms"));
    mf_leader_clock_reason(buf, sizeof(buf), false, 0, 1, 3, 500);
    assert_non_null(strstr(buf, "not measured"));
}

static void test_server_leader_clock_jumped(void **state)
{
    (void)state;
    struct mf_leader_clock c;
    int64_t jump = 0;
    /* Cold: nothing known about the time since the anchor. */
    mf_leader_clock_init(&c, T0 - HOUR_MS, 0);
    assert_false(mf_leader_clock_jumped(&c, T0 + 10000, 10, 1000, &jump));
    /* A follower that applied T0 at true time 0: its own +10 s jump shows,
     * hours later as well; a drift within the allowance does not. */
    warm(&c);
    assert_true(mf_leader_clock_jumped(&c, T0 + 5000 + 10000, 5000, 1000, &jump));
    assert_int_equal(jump, 10000);
    assert_true(mf_leader_clock_jumped(&c, T0 + 5 * HOUR_MS - 2000, 5 * HOUR_MS, 1000, &jump));
    assert_int_equal(jump, -2000);
    assert_false(mf_leader_clock_jumped(&c, T0 + 5 * HOUR_MS + 900, 5 * HOUR_MS, 1000, &jump));
    char buf[200];
    mf_leader_clock_jump_reason(buf, sizeof(buf), 10000, 1000);
    assert_non_null(strstr(buf, "is 10000 ms off"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_leader_clock_honest),
        cmocka_unit_test(test_server_leader_clock_jump_forward),
        cmocka_unit_test(test_server_leader_clock_jump_back),
        cmocka_unit_test(test_server_leader_clock_jumps_repeated),
        cmocka_unit_test(test_server_leader_clock_idle_hours),
        cmocka_unit_test(test_server_leader_clock_cold_start),
        cmocka_unit_test(test_server_leader_clock_disagreeing_view),
        cmocka_unit_test(test_server_leader_clock_recovery),
        cmocka_unit_test(test_server_leader_clock_never_backwards),
        cmocka_unit_test(test_server_leader_clock_single_voter),
        cmocka_unit_test(test_server_leader_clock_reason),
        cmocka_unit_test(test_server_leader_clock_jumped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
