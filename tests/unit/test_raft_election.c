/* Tests of the Raft core's elections: randomized timeouts, voting rules,
 * pre-vote, check-quorum, stale leaders, leadership transfer, restart. */
#include "test_raft_harness.h"

/* A lone voter elects itself on timeout and commits a proposal alone. */
static void test_raft_single_node_becomes_leader_and_commits(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 1);
    h_tick_all(&h, 25);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    uint64_t i = h_propose(&h, 1, 77);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 1).commit, i);
    assert_int_equal(h.nodes[1].applied[i], 77);
    h_free(&h);
}

/* Three nodes elect exactly one leader on timeouts and the others follow it. */
static void test_raft_leader_elected_in_three_node_cluster(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_tick_all(&h, 40);
    int leaders = 0;
    uint64_t lead = 0;
    for (uint64_t id = 1; id <= 3; id++) {
        if (h_status(&h, id).role == MF_RAFT_LEADER) {
            leaders++;
            lead = id;
        }
    }
    assert_int_equal(leaders, 1);
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(h_status(&h, id).lead, lead);
    h_free(&h);
}

/* Two candidates in one term split the vote; a later term elects a leader. */
static void test_raft_split_vote_retries_in_next_term(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 4, 4, 0, false, false);
    /* 1 and 2 campaign at once; 3 votes for 1, 4 for 2: 2 votes each of 4. */
    assert_int_equal(mf_raft_campaign(h.nodes[1].r), 0);
    assert_int_equal(mf_raft_campaign(h.nodes[2].r), 0);
    for (uint64_t id = 1; id <= 2; id++)
        h_process(&h, id);
    h.cut[2][3] = h.cut[1][4] = true;
    h_stabilize(&h);
    h.cut[2][3] = h.cut[1][4] = false;
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_CANDIDATE);
    assert_int_equal(h_status(&h, 2).role, MF_RAFT_CANDIDATE);
    assert_int_equal(h_status(&h, 1).term, 1);
    assert_int_equal(h_status(&h, 2).term, 1);
    h_tick_all(&h, 40);
    int leaders = 0;
    for (uint64_t id = 1; id <= 4; id++) {
        struct mf_raft_status st = h_status(&h, id);
        if (st.role == MF_RAFT_LEADER) {
            leaders++;
            assert_true(st.term >= 2);
        }
    }
    assert_int_equal(leaders, 1);
    h_free(&h);
}

/* A voter refuses a candidate whose log is less up to date than its own. */
static void test_raft_vote_requires_up_to_date_log(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    h_elect(&h, 1);
    h_isolate(&h, 3, true);
    h_propose(&h, 1, 5);
    h_stabilize(&h);
    h_isolate(&h, 3, false);
    /* 3 lacks the entry: 2 must refuse it, so 3 cannot win. */
    h_crash(&h, 1);
    assert_int_equal(mf_raft_campaign(h.nodes[3].r), 0);
    h_stabilize(&h);
    assert_int_not_equal(h_status(&h, 3).role, MF_RAFT_LEADER);
    h_free(&h);
}

/* A node votes at most once per term, and its vote is durable before the grant leaves. */
static void test_raft_vote_sent_only_after_persist(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_VOTE, .from = 2, .to = 1, .term = 1};
    assert_int_equal(mf_raft_step(h.nodes[1].r, &m), 0);
    struct mf_raft_ready rd;
    assert_int_equal(mf_raft_ready(h.nodes[1].r, &rd), 0);
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.term, 1);
    assert_int_equal(rd.hard_state.vote, 2);
    assert_int_equal(rd.msgs_before_len, 0);
    assert_int_equal(rd.msgs_after_len, 1);
    assert_int_equal(rd.msgs_after[0].type, MF_RAFT_MSG_VOTE_RESP);
    assert_false(rd.msgs_after[0].reject);
    assert_int_equal(mf_raft_advance(h.nodes[1].r, &rd), 0);
    /* Same term, another candidate: refused. */
    m.from = 3;
    assert_int_equal(mf_raft_step(h.nodes[1].r, &m), 0);
    assert_int_equal(mf_raft_ready(h.nodes[1].r, &rd), 0);
    assert_int_equal(rd.msgs_after_len, 1);
    assert_true(rd.msgs_after[0].reject);
    assert_int_equal(mf_raft_advance(h.nodes[1].r, &rd), 0);
    h_free(&h);
}

/* A deposed leader that was partitioned learns the new term and steps down; its uncommitted entry is replaced. */
static void test_raft_stale_leader_steps_down(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_isolate(&h, 1, true);
    uint64_t lost = h_propose(&h, 1, 111); /* never replicated */
    h_stabilize(&h);
    /* 2 and 3 stop hearing from 1 and elect one of them. */
    uint64_t nl = 0;
    for (int k = 0; k < 60 && !nl; k++) {
        h_tick(&h, 2, 1);
        h_tick(&h, 3, 1);
        h_stabilize(&h);
        for (uint64_t id = 2; id <= 3; id++)
            if (h_status(&h, id).role == MF_RAFT_LEADER)
                nl = id;
    }
    assert_true(nl != 0);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER); /* still thinks so */
    uint64_t kept = h_propose(&h, nl, 222);
    h_stabilize(&h);
    h_isolate(&h, 1, false);
    h_tick_all(&h, 3);
    struct mf_raft_status st = h_status(&h, 1);
    assert_int_equal(st.role, MF_RAFT_FOLLOWER);
    assert_int_equal(st.lead, nl);
    assert_int_equal(st.commit, h_status(&h, nl).commit);
    assert_int_equal(h.nodes[1].applied[kept], 222);
    assert_int_equal(h.nodes[1].applied[lost], 0); /* 111 was overwritten */
    h_free(&h);
}

/* With check-quorum, a leader that hears from no majority for an election timeout steps down. */
static void test_raft_check_quorum_leader_steps_down(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_isolate(&h, 1, true);
    h_tick(&h, 1, 25);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_FOLLOWER);
    h_free(&h);
}

/* A node rejoining after a partition does not raise the term or depose the leader (pre-vote + check-quorum). */
static void test_raft_pre_vote_does_not_disrupt(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    uint64_t term = h_status(&h, 1).term;
    h_isolate(&h, 3, true);
    /* 3 times out again and again: pre-votes never raise its term. */
    for (int k = 0; k < 100; k++) {
        h_tick(&h, 3, 1);
        for (uint64_t id = 1; id <= 2; id++)
            h_tick(&h, id, 1);
        h_stabilize(&h);
    }
    assert_int_equal(h_status(&h, 3).term, term);
    h_isolate(&h, 3, false);
    assert_int_equal(mf_raft_campaign(h.nodes[3].r), 0);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    assert_int_equal(h_status(&h, 1).term, term);
    h_tick_all(&h, 2);
    assert_int_equal(h_status(&h, 3).lead, 1);
    h_free(&h);
}

/* Without a leader lease, votes for a removed or restarted node with a higher term are refused while a leader is heard. */
static void test_raft_vote_ignored_while_leader_heard(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    uint64_t term = h_status(&h, 2).term;
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_VOTE, .from = 3, .to = 2, .term = term + 5,
                            .index = 100, .log_term = term + 4};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    assert_int_equal(h_status(&h, 2).term, term);
    assert_int_equal(h_status(&h, 2).lead, 1);
    h_free(&h);
}

/* Leadership transfer: the target catches up, receives TimeoutNow and wins without waiting for a timeout. */
static void test_raft_timeout_now_transfers_leadership(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_propose(&h, 1, 9);
    h_stabilize(&h);
    uint64_t term = h_status(&h, 1).term;
    assert_int_equal(mf_raft_transfer_leader(h.nodes[1].r, 3), 0);
    /* proposals are refused while the transfer runs */
    uint8_t d[8] = {0};
    assert_int_equal(mf_raft_propose(h.nodes[1].r, d, 8, NULL), MF_EUNAVAIL);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 3).role, MF_RAFT_LEADER);
    assert_int_equal(h_status(&h, 3).term, term + 1);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_FOLLOWER);
    h_free(&h);
}

/* The TimeoutNow campaign carries a flag so voters skip their leader-lease check. */
static void test_raft_transfer_campaign_skips_lease(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    uint64_t term = h_status(&h, 2).term;
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_VOTE, .from = 3, .to = 2, .term = term + 1,
                            .index = 100, .log_term = term, .ctx = MF_RAFT_CAMPAIGN_TRANSFER};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    assert_int_equal(h_status(&h, 2).term, term + 1);
    assert_int_equal(h_status(&h, 2).vote, 3);
    h_free(&h);
}

/* A restarted node recovers term, vote, log, commit and configuration from storage. */
static void test_raft_restart_restores_state(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 4, 3, 0, true, true);
    h_elect(&h, 1);
    uint64_t i = h_propose(&h, 1, 5);
    h_stabilize(&h);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_LEARNER, 4, NULL), 0);
    h_stabilize(&h);
    struct mf_raft_status before = h_status(&h, 2);
    h_crash(&h, 2);
    h_start(&h, 2);
    struct mf_raft_status after = h_status(&h, 2);
    assert_int_equal(after.term, before.term);
    assert_int_equal(after.vote, before.vote);
    assert_int_equal(after.last_index, before.last_index);
    assert_true(after.commit >= i);
    assert_int_equal(after.conf.learners_len, 1);
    assert_int_equal(after.conf.learners[0], 4);
    h_free(&h);
}

/* A node that is not a voter never campaigns, however long it waits. */
static void test_raft_learner_never_campaigns(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 2, 1, true, true);
    h_isolate(&h, 3, true);
    h_tick(&h, 3, 100);
    assert_int_equal(h_status(&h, 3).role, MF_RAFT_FOLLOWER);
    assert_int_equal(h_status(&h, 3).term, 0);
    assert_int_equal(mf_raft_campaign(h.nodes[3].r), MF_EINVAL);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_single_node_becomes_leader_and_commits),
        cmocka_unit_test(test_raft_leader_elected_in_three_node_cluster),
        cmocka_unit_test(test_raft_split_vote_retries_in_next_term),
        cmocka_unit_test(test_raft_vote_requires_up_to_date_log),
        cmocka_unit_test(test_raft_vote_sent_only_after_persist),
        cmocka_unit_test(test_raft_stale_leader_steps_down),
        cmocka_unit_test(test_raft_check_quorum_leader_steps_down),
        cmocka_unit_test(test_raft_pre_vote_does_not_disrupt),
        cmocka_unit_test(test_raft_vote_ignored_while_leader_heard),
        cmocka_unit_test(test_raft_timeout_now_transfers_leadership),
        cmocka_unit_test(test_raft_transfer_campaign_skips_lease),
        cmocka_unit_test(test_raft_restart_restores_state),
        cmocka_unit_test(test_raft_learner_never_campaigns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
