/* Tests of the Raft core's campaign gate (mf_raft_set_campaign_allowed): a
 * blocked node starts no campaign by timeout, TimeoutNow or mf_raft_campaign,
 * but still votes; unblocked it campaigns again. */
#include "test_raft_harness.h"

static bool ever_candidate(struct harness *h, uint64_t id)
{
    enum mf_raft_role r = h_status(h, id).role;
    return r == MF_RAFT_CANDIDATE || r == MF_RAFT_PRE_CANDIDATE || r == MF_RAFT_LEADER;
}

/* Two of three nodes are blocked: only the third ever campaigns, and the
 * blocked two elect it with their votes. */
static void test_raft_blocked_nodes_never_campaign_but_vote(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    mf_raft_set_campaign_allowed(h.nodes[1].r, false);
    mf_raft_set_campaign_allowed(h.nodes[2].r, false);
    for (int k = 0; k < 100; k++) {
        h_tick_all(&h, 1);
        assert_false(ever_candidate(&h, 1));
        assert_false(ever_candidate(&h, 2));
    }
    assert_int_equal(h_status(&h, 3).role, MF_RAFT_LEADER);
    assert_int_equal(h_status(&h, 1).lead, 3);
    assert_int_equal(mf_raft_campaign(h.nodes[1].r), MF_EUNAVAIL);
    h_free(&h);
}

/* A lone voter that is blocked never elects itself; unblocked it does. */
static void test_raft_single_voter_blocked_then_unblocked(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 1);
    mf_raft_set_campaign_allowed(h.nodes[1].r, false);
    h_tick_all(&h, 100);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_FOLLOWER);
    assert_int_equal(h_status(&h, 1).term, 0);
    mf_raft_set_campaign_allowed(h.nodes[1].r, true);
    h_tick_all(&h, 40);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    h_free(&h);
}

/* TimeoutNow to a blocked node starts no election: the leader keeps its
 * term; once unblocked, the same transfer succeeds. */
static void test_raft_blocked_node_ignores_timeout_now(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_stabilize(&h);
    uint64_t term = h_status(&h, 1).term;
    mf_raft_set_campaign_allowed(h.nodes[3].r, false);
    assert_int_equal(mf_raft_transfer_leader(h.nodes[1].r, 3), 0);
    h_process(&h, 1);
    assert_int_equal(h_count(&h, MF_RAFT_MSG_TIMEOUT_NOW, 1, 3), 1);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 3).role, MF_RAFT_FOLLOWER);
    assert_int_equal(h_status(&h, 3).term, term);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    /* The transfer times out (election_ticks); then try again, unblocked. */
    h_tick_all(&h, 40);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    mf_raft_set_campaign_allowed(h.nodes[3].r, true);
    assert_int_equal(mf_raft_transfer_leader(h.nodes[1].r, 3), 0);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 3).role, MF_RAFT_LEADER);
    assert_int_equal(h_status(&h, 3).term, term + 1);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_blocked_nodes_never_campaign_but_vote),
        cmocka_unit_test(test_raft_single_voter_blocked_then_unblocked),
        cmocka_unit_test(test_raft_blocked_node_ignores_timeout_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
