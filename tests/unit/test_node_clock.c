/* Tests of clock agreement (src/node/clock.c) and the clock probe codec: NTP
 * offsets from a probe and its answer, freshness, the quorum rule, learners,
 * a single voter, and answers that must not be trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/err.h"
#include "node/clock.h"
#include "node/peer_codec.h"

#define W UINT64_C(1700000000000) /* a wall time (Unix ms) */
#define SKEW 500

static const uint64_t VOTERS3[] = {1, 2, 3};

/* One probe round trip to `peer`: sent at mono m0, answered with the peer's
 * wall t1, received at mono m0 + rtt and our wall w2. */
static int measure(struct mf_clock *c, uint64_t peer, uint64_t m0, uint64_t rtt, uint64_t t1,
                   uint64_t w2)
{
    uint64_t seq = mf_clock_probe(c, peer, m0);
    assert_true(seq != 0);
    return mf_clock_answer(c, peer, seq, t1, m0 + rtt, w2, true);
}

/* A peer whose clock is `off` ms ahead of ours, measured over `rtt`, with the
 * answer stamped exactly at the middle of the round trip. */
static void measure_off(struct mf_clock *c, uint64_t peer, uint64_t m0, uint64_t rtt, int64_t off)
{
    uint64_t w2 = W + m0 + rtt;
    uint64_t t1 = (uint64_t)((int64_t)(w2 - rtt / 2) + off);
    assert_int_equal(measure(c, peer, m0, rtt, t1, w2), 0);
}

/* Offset and round trip come out of the four times, with rtt/2 as uncertainty. */
static void test_node_clock_offset_and_uncertainty(void **state)
{
    (void)state;
    struct mf_clock c;
    mf_clock_init(&c, 1, SKEW);
    /* Sent at mono 1000, back at 1100 (wall W+100); the peer said W+350. */
    assert_int_equal(measure(&c, 2, 1000, 100, W + 350, W + 100), 0);
    const struct mf_clock_peer *p = mf_clock_peer(&c, 2);
    assert_non_null(p);
    assert_int_equal(p->rtt_ms, 100);
    assert_int_equal(p->offset_ms, 300); /* 350 - (100 - 50) */
    assert_int_equal(p->at_mono_ms, 1100);
    /* 300 + 50 <= 500: agrees. A long round trip widens the uncertainty:
     * the same 300 ms offset over 500 ms is 300 + 250 > 500. */
    assert_true(mf_clock_agrees(&c, 2, 1100));
    measure_off(&c, 3, 2000, 500, 300);
    assert_int_equal(mf_clock_peer(&c, 3)->offset_ms, 300);
    assert_false(mf_clock_agrees(&c, 3, 2500));
}

/* |offset| + rtt/2 exactly at the bound agrees; one ms more does not. */
static void test_node_clock_exactly_at_bound(void **state)
{
    (void)state;
    struct mf_clock c;
    mf_clock_init(&c, 1, SKEW);
    measure_off(&c, 2, 1000, 100, 450);
    assert_true(mf_clock_agrees(&c, 2, 1100));
    measure_off(&c, 2, 1200, 100, -450);
    assert_true(mf_clock_agrees(&c, 2, 1300));
    measure_off(&c, 2, 1400, 100, 451);
    assert_false(mf_clock_agrees(&c, 2, 1500));
    measure_off(&c, 2, 1600, 102, -450);
    assert_false(mf_clock_agrees(&c, 2, 1702));
}

/* Our wall clock jumps 10 s forward, then 10 s back: every peer shows the
 * jump as an offset, this node no longer agrees, and its estimate says by
 * how much and which way. */
static void test_node_clock_jump_forward_and_back(void **state)
{
    (void)state;
    struct mf_clock c;
    struct mf_clock_view v;
    mf_clock_init(&c, 1, SKEW);
    measure_off(&c, 2, 1000, 2, 20);
    measure_off(&c, 3, 1000, 2, -30);
    mf_clock_view(&c, VOTERS3, 3, 1002, &v);
    assert_true(v.agrees && v.measured);
    assert_int_equal(v.agreeing, 3);
    assert_int_equal(v.offset_ms, 0); /* median of {0, -20, 30} */
    /* Forward: the peers look 10 s behind us. */
    measure_off(&c, 2, 1250, 2, -10000);
    measure_off(&c, 3, 1250, 2, -10000);
    mf_clock_view(&c, VOTERS3, 3, 1252, &v);
    assert_false(v.agrees);
    assert_true(v.measured);
    assert_int_equal(v.voters, 3);
    assert_int_equal(v.agreeing, 1);
    assert_int_equal(v.offset_ms, 10000);
    /* Back, past true time: they look 10 s ahead. */
    measure_off(&c, 2, 1500, 2, 10000);
    measure_off(&c, 3, 1500, 2, 10000);
    mf_clock_view(&c, VOTERS3, 3, 1502, &v);
    assert_false(v.agrees);
    assert_int_equal(v.offset_ms, -10000);
    /* Corrected: agrees again. */
    measure_off(&c, 2, 1750, 2, 0);
    mf_clock_view(&c, VOTERS3, 3, 1752, &v);
    assert_true(v.agrees);
    assert_int_equal(v.agreeing, 2);
}

/* A measurement older than MF_CLOCK_FRESH_MS counts for nothing: not for
 * agreement, not for being measured, not for the estimate. */
static void test_node_clock_stale_measurements_do_not_count(void **state)
{
    (void)state;
    struct mf_clock c;
    struct mf_clock_view v;
    mf_clock_init(&c, 1, SKEW);
    measure_off(&c, 2, 1000, 10, 100);
    measure_off(&c, 3, 1000, 10, 100);
    mf_clock_view(&c, VOTERS3, 3, 1010 + MF_CLOCK_FRESH_MS, &v);
    assert_true(v.agrees && v.measured);
    assert_int_equal(v.agreeing, 3);
    mf_clock_view(&c, VOTERS3, 3, 1011 + MF_CLOCK_FRESH_MS, &v);
    assert_false(v.agrees);
    assert_false(v.measured);
    assert_int_equal(v.agreeing, 1);
    assert_int_equal(v.offset_ms, 0);
    assert_false(mf_clock_fresh(&c, 2, 1011 + MF_CLOCK_FRESH_MS));
    assert_false(mf_clock_agrees(&c, 2, 1011 + MF_CLOCK_FRESH_MS));
    /* Nothing measured at all: not agreeing either (start-up). */
    mf_clock_init(&c, 1, SKEW);
    mf_clock_view(&c, VOTERS3, 3, 0, &v);
    assert_false(v.agrees || v.measured);
}

/* Five voters: agreement needs three (ourselves included). */
static void test_node_clock_no_majority_agreeing(void **state)
{
    (void)state;
    static const uint64_t voters[] = {1, 2, 3, 4, 5};
    struct mf_clock c;
    struct mf_clock_view v;
    mf_clock_init(&c, 1, SKEW);
    measure_off(&c, 2, 1000, 2, 100);
    measure_off(&c, 3, 1000, 2, 2000);
    measure_off(&c, 4, 1000, 2, 2000);
    measure_off(&c, 5, 1000, 2, 2000);
    mf_clock_view(&c, voters, 5, 1002, &v);
    assert_false(v.agrees);
    assert_true(v.measured);
    assert_int_equal(v.agreeing, 2);
    assert_int_equal(v.offset_ms, -2000); /* median of {0, -100, -2000 x3} */
    measure_off(&c, 3, 1100, 2, -100);
    mf_clock_view(&c, voters, 5, 1102, &v);
    assert_true(v.agrees);
    assert_int_equal(v.agreeing, 3);
}

/* Learners neither help nor hurt: only voters count, and a learner node does
 * not count itself. */
static void test_node_clock_learners_ignored(void **state)
{
    (void)state;
    static const uint64_t voters[] = {1, 2, 3};
    struct mf_clock c;
    struct mf_clock_view v;
    mf_clock_init(&c, 1, SKEW);
    measure_off(&c, 4, 1000, 2, 0);  /* a learner, agreeing */
    measure_off(&c, 5, 1000, 2, 0);  /* another */
    mf_clock_view(&c, voters, 3, 1002, &v);
    assert_false(v.agrees);
    assert_int_equal(v.agreeing, 1);
    assert_int_equal(mf_clock_transfer_target(&c, voters, 3, 1002), 0);
    /* Node 9 is a learner itself: with one agreeing voter of three it has no
     * quorum, since it does not count. */
    mf_clock_init(&c, 9, SKEW);
    measure_off(&c, 1, 1000, 2, 0);
    measure_off(&c, 2, 1000, 2, 0);
    mf_clock_view(&c, voters, 3, 1002, &v);
    assert_true(v.agrees);
    assert_int_equal(v.agreeing, 2);
    measure_off(&c, 2, 1100, 2, 5000);
    mf_clock_view(&c, voters, 3, 1102, &v);
    assert_false(v.agrees);
    assert_int_equal(v.agreeing, 1);
}

/* A single voter trusts its own clock, measured or not. */
static void test_node_clock_single_voter(void **state)
{
    (void)state;
    static const uint64_t self[] = {1};
    struct mf_clock c;
    struct mf_clock_view v;
    mf_clock_init(&c, 1, SKEW);
    mf_clock_view(&c, self, 1, 123456, &v);
    assert_true(v.agrees && v.measured);
    assert_int_equal(v.voters, 1);
    assert_int_equal(v.agreeing, 1);
    assert_int_equal(v.offset_ms, 0);
    /* A learner far off changes nothing. */
    measure_off(&c, 2, 1000, 2, 60000);
    mf_clock_view(&c, self, 1, 1002, &v);
    assert_true(v.agrees);
    assert_int_equal(mf_clock_transfer_target(&c, self, 1, 1002), 0);
}

/* Answers that do not match a probe we sent, in time, are dropped and leave
 * the last measurement as it was. */
static void test_node_clock_untrusted_answers_dropped(void **state)
{
    (void)state;
    struct mf_clock c;
    mf_clock_init(&c, 1, SKEW);
    assert_int_equal(mf_clock_answer(&c, 2, 1, W, 100, W, true), MF_EINVAL); /* nothing sent */
    measure_off(&c, 2, 1000, 10, 7);
    uint64_t seq = mf_clock_probe(&c, 2, 2000);
    assert_int_equal(mf_clock_answer(&c, 2, seq + 1, W, 2010, W, true), MF_EINVAL); /* unknown seq */
    assert_int_equal(mf_clock_answer(&c, 3, seq, W, 2010, W, true), MF_EINVAL);     /* other peer */
    assert_int_equal(mf_clock_answer(&c, 2, seq, W, 1999, W, true), MF_EINVAL);     /* before m0 */
    assert_int_equal(mf_clock_answer(&c, 2, seq, W + 99999, 2001 + MF_CLOCK_RTT_MAX_MS, W,
                                     true),
                     MF_ETIMEOUT);                                            /* too old */
    assert_int_equal(mf_clock_answer(&c, 2, seq, W, 2010, W, true), MF_EINVAL);     /* used up */
    assert_int_equal(mf_clock_answer(&c, 2, 0, W, 2010, W, true), MF_EINVAL);
    seq = mf_clock_probe(&c, 2, 2100);
    assert_int_equal(mf_clock_answer(&c, 2, seq, MF_CLOCK_WALL_MAX_MS + 1, 2110, W, true),
                     MF_EINVAL); /* a wall time no clock can have */
    seq = mf_clock_probe(&c, 2, 2200);
    assert_int_equal(mf_clock_answer(&c, 2, seq, W, 2210, MF_CLOCK_WALL_MAX_MS + 1, true),
                     MF_EINVAL);
    assert_int_equal(mf_clock_peer(&c, 2)->offset_ms, 7);
    assert_int_equal(mf_clock_peer(&c, 2)->at_mono_ms, 1010);
    /* Several probes in flight: an answer to an older one still counts; one
     * older than the window does not. */
    uint64_t first = mf_clock_probe(&c, 2, 3000);
    for (int k = 1; k < MF_CLOCK_INFLIGHT; k++)
        mf_clock_probe(&c, 2, 3000 + (uint64_t)k);
    assert_int_equal(mf_clock_answer(&c, 2, first, W + 3010, 3020, W + 3020, true), 0);
    assert_int_equal(mf_clock_peer(&c, 2)->rtt_ms, 20);
    uint64_t old = mf_clock_probe(&c, 2, 4000);
    for (int k = 0; k < MF_CLOCK_INFLIGHT; k++)
        mf_clock_probe(&c, 2, 4001 + (uint64_t)k);
    assert_int_equal(mf_clock_answer(&c, 2, old, W, 4010, W, true), MF_EINVAL);
    /* Ourselves and id 0 are never probed. */
    assert_int_equal(mf_clock_probe(&c, 1, 5000), 0);
    assert_int_equal(mf_clock_probe(&c, 0, 5000), 0);
}

/* A transfer goes to a fresh voter other than us, the one nearest the others. */
static void test_node_clock_transfer_target(void **state)
{
    (void)state;
    static const uint64_t voters[] = {1, 2, 3, 4};
    struct mf_clock c;
    mf_clock_init(&c, 1, SKEW);
    assert_int_equal(mf_clock_transfer_target(&c, voters, 4, 0), 0);
    measure_off(&c, 2, 1000, 2, -3000);  /* the odd one out */
    measure_off(&c, 3, 1000, 2, -10000); /* the median */
    measure_off(&c, 4, 1000, 2, -10020);
    assert_int_equal(mf_clock_transfer_target(&c, voters, 4, 1002), 3);
    /* A node that says its own clock disagrees may not campaign: not a target. */
    uint64_t seq = mf_clock_probe(&c, 3, 1100);
    uint64_t w2 = W + 1102;
    assert_int_equal(mf_clock_answer(&c, 3, seq, w2 - 1 - 10000, 1102, w2, false), 0);
    assert_int_equal(mf_clock_transfer_target(&c, voters, 4, 1102), 4);
    /* Once stale, nobody. */
    assert_int_equal(mf_clock_transfer_target(&c, voters, 4, 1003 + MF_CLOCK_FRESH_MS), 0);
}

/* Clock probes and answers survive the wire; bad bytes are refused. */
static void test_node_clock_codec(void **state)
{
    (void)state;
    uint8_t buf[MF_PEER_CLOCK_MAX_BYTES];
    struct mf_peer_clock out;
    struct mf_peer_clock probe = {.kind = MF_PEER_CLOCK_PROBE, .seq = UINT64_C(0x0102030405060708)};
    size_t len = mf_peer_clock_encode(&probe, buf);
    assert_int_equal(len, 9);
    assert_int_equal(mf_peer_clock_decode(buf, len, &out), 0);
    assert_int_equal(out.kind, MF_PEER_CLOCK_PROBE);
    assert_true(out.seq == probe.seq);
    struct mf_peer_clock ans = {.kind = MF_PEER_CLOCK_ANSWER, .seq = 5, .wall_ms = W,
                                .flags = MF_PEER_CLOCK_AGREES};
    len = mf_peer_clock_encode(&ans, buf);
    assert_int_equal(len, 18);
    assert_int_equal(mf_peer_clock_decode(buf, len, &out), 0);
    assert_true(out.kind == MF_PEER_CLOCK_ANSWER && out.seq == 5 && out.wall_ms == W);
    assert_int_equal(out.flags, MF_PEER_CLOCK_AGREES);
    assert_int_equal(mf_peer_clock_decode(buf, 17, &out), MF_ECORRUPT); /* short */
    buf[17] = 0x82;
    assert_int_equal(mf_peer_clock_decode(buf, 18, &out), MF_ECORRUPT); /* unknown flag */
    assert_int_equal(mf_peer_clock_decode(buf, 9, &out), MF_ECORRUPT);  /* answer w/o time */
    buf[0] = 7;
    assert_int_equal(mf_peer_clock_decode(buf, 18, &out), MF_ECORRUPT); /* kind */
    memset(buf, 0, sizeof(buf));
    buf[0] = MF_PEER_CLOCK_PROBE;
    assert_int_equal(mf_peer_clock_decode(buf, 9, &out), MF_ECORRUPT);  /* seq 0 */
    ans.wall_ms = UINT64_MAX;
    ans.flags = 0;
    len = mf_peer_clock_encode(&ans, buf);
    assert_int_equal(mf_peer_clock_decode(buf, len, &out), MF_ECORRUPT); /* past INT64_MAX */
    assert_int_equal(mf_peer_clock_decode(buf, 0, &out), MF_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_clock_offset_and_uncertainty),
        cmocka_unit_test(test_node_clock_exactly_at_bound),
        cmocka_unit_test(test_node_clock_jump_forward_and_back),
        cmocka_unit_test(test_node_clock_stale_measurements_do_not_count),
        cmocka_unit_test(test_node_clock_no_majority_agreeing),
        cmocka_unit_test(test_node_clock_learners_ignored),
        cmocka_unit_test(test_node_clock_single_voter),
        cmocka_unit_test(test_node_clock_untrusted_answers_dropped),
        cmocka_unit_test(test_node_clock_transfer_target),
        cmocka_unit_test(test_node_clock_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
