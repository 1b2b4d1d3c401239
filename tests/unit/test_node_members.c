/* The node's first Raft configuration from its config file: a node listed as
 * a learner must not count itself as a voter (issue 12: two misconfigured
 * learners could otherwise make a quorum with one real voter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "node/node.h"

static bool has(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void peer(struct mf_config *c, uint64_t id, bool learner)
{
    c->peers[c->peers_len].id = id;
    c->peers[c->peers_len].learner = learner;
    c->peers_len++;
}

/* A node whose own entry says learner is a learner in its first
 * configuration, not a voter. */
static void test_node_members_learner_is_not_a_voter(void **state)
{
    (void)state;
    struct mf_config c = {.node_id = 4};
    peer(&c, 1, false);
    peer(&c, 2, false);
    peer(&c, 3, false);
    peer(&c, 4, true);
    struct mf_raft_config rc = {0};
    assert_int_equal(mf_node_initial_members(&c, &rc), 0);
    assert_int_equal(rc.voters_len, 3);
    assert_int_equal(rc.learners_len, 1);
    assert_false(has(rc.voters, rc.voters_len, 4));
    assert_true(has(rc.learners, rc.learners_len, 4));
}

/* A voter listed among the peers is there once; one absent from the peers (a
 * single node) is a voter. */
static void test_node_members_self_voter_once_or_added(void **state)
{
    (void)state;
    struct mf_config c = {.node_id = 2};
    peer(&c, 1, false);
    peer(&c, 2, false);
    peer(&c, 3, true);
    struct mf_raft_config rc = {0};
    assert_int_equal(mf_node_initial_members(&c, &rc), 0);
    assert_int_equal(rc.voters_len, 2);
    assert_true(has(rc.voters, rc.voters_len, 2));
    assert_true(has(rc.learners, rc.learners_len, 3));
    struct mf_config single = {.node_id = 7};
    struct mf_raft_config rs = {0};
    assert_int_equal(mf_node_initial_members(&single, &rs), 0);
    assert_int_equal(rs.voters_len, 1);
    assert_int_equal(rs.voters[0], 7);
    assert_int_equal(rs.learners_len, 0);
}

/* Sixteen peers without this node leave no room for it: refused, not cut. */
static void test_node_members_too_many_refused(void **state)
{
    (void)state;
    struct mf_config c = {.node_id = 99};
    for (uint64_t id = 1; id <= MF_RAFT_NODES_MAX; id++)
        peer(&c, id, false);
    struct mf_raft_config rc = {0};
    assert_int_equal(mf_node_initial_members(&c, &rc), MF_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_members_learner_is_not_a_voter),
        cmocka_unit_test(test_node_members_self_voter_once_or_added),
        cmocka_unit_test(test_node_members_too_many_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
