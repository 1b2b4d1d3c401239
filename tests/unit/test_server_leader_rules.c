/* Where leadership goes (server/leader_rules.h): a named target checked,
 * else the most caught-up voter whose clock lets it campaign. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "server/leader_rules.h"

/* Leader 1, voters 2 and 3, learner 4. */
static const struct mf_leader_candidate three[] = {
    {.id = 1, .voter = true, .match_index = 100, .clock_ok = true},
    {.id = 2, .voter = true, .match_index = 90, .clock_ok = true},
    {.id = 3, .voter = true, .match_index = 95, .clock_ok = true},
    {.id = 4, .voter = false, .match_index = 100, .clock_ok = true},
};

/* Without -to the most caught-up other voter wins; learners never do. */
static void test_server_leader_rules_best(void **s)
{
    (void)s;
    uint64_t t = 9;
    char why[MF_LEADER_WHY_MAX];
    assert_int_equal(mf_leader_choose(1, three, 4, 0, &t, why, sizeof(why)), 0);
    assert_int_equal(t, 3);
}

/* A tie goes to the lowest id; a voter whose clock disagrees is passed over
 * even when it is the most caught up. */
static void test_server_leader_rules_tie_and_clock(void **s)
{
    (void)s;
    struct mf_leader_candidate c[4];
    memcpy(c, three, sizeof(c));
    c[1].match_index = 95;
    uint64_t t = 0;
    char why[MF_LEADER_WHY_MAX];
    assert_int_equal(mf_leader_choose(1, c, 4, 0, &t, why, sizeof(why)), 0);
    assert_int_equal(t, 2);
    c[1].clock_ok = false;
    c[2].match_index = 10;
    assert_int_equal(mf_leader_choose(1, c, 4, 0, &t, why, sizeof(why)), 0);
    assert_int_equal(t, 3);
    c[2].clock_ok = false;
    assert_int_equal(mf_leader_choose(1, c, 4, 0, &t, why, sizeof(why)), MF_EUNAVAIL);
    assert_int_equal(t, 0);
    assert_non_null(strstr(why, "clock"));
}

/* -to N: a voter is taken as named; the leader itself is nothing to do. */
static void test_server_leader_rules_named(void **s)
{
    (void)s;
    uint64_t t = 0;
    char why[MF_LEADER_WHY_MAX];
    assert_int_equal(mf_leader_choose(1, three, 4, 2, &t, why, sizeof(why)), 0);
    assert_int_equal(t, 2);
    assert_int_equal(mf_leader_choose(1, three, 4, 1, &t, why, sizeof(why)), 0);
    assert_int_equal(t, 1);
}

/* Refusals name the reason: unknown id, a learner, a voter whose clock
 * disagrees, no other voter at all. */
static void test_server_leader_rules_refused(void **s)
{
    (void)s;
    uint64_t t = 7;
    char why[MF_LEADER_WHY_MAX];
    assert_int_equal(mf_leader_choose(1, three, 4, 9, &t, why, sizeof(why)), MF_ENOTFOUND);
    assert_non_null(strstr(why, "node 9 is not a member"));
    assert_int_equal(mf_leader_choose(1, three, 4, 4, &t, why, sizeof(why)), MF_EINVAL);
    assert_non_null(strstr(why, "learner"));
    struct mf_leader_candidate c[4];
    memcpy(c, three, sizeof(c));
    c[2].clock_ok = false;
    assert_int_equal(mf_leader_choose(1, c, 4, 3, &t, why, sizeof(why)), MF_EUNAVAIL);
    assert_non_null(strstr(why, "node 3 cannot campaign"));
    /* A single voter with a learner: nowhere to go. */
    const struct mf_leader_candidate one[] = {three[0], three[3]};
    assert_int_equal(mf_leader_choose(1, one, 2, 0, &t, why, sizeof(why)), MF_EINVAL);
    assert_non_null(strstr(why, "no other voter"));
    assert_int_equal(t, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_leader_rules_best),
        cmocka_unit_test(test_server_leader_rules_tie_and_clock),
        cmocka_unit_test(test_server_leader_rules_named),
        cmocka_unit_test(test_server_leader_rules_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
