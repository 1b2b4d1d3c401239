/* Tests of the Raft core's membership changes (learners, promotion,
 * one-at-a-time voter changes, leader removal) and ReadIndex. */
#include "test_raft_harness.h"

/* A learner receives the log but is not counted toward a commit. */
static void test_raft_learner_receives_log_but_is_not_counted(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 2, 1, true, true);
    h_elect(&h, 1);
    uint64_t i = h_propose(&h, 1, 42);
    h_stabilize(&h);
    assert_int_equal(h.nodes[3].applied[i], 42);
    h_isolate(&h, 2, true);
    uint64_t j = h_propose(&h, 1, 43);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 3).last_index, j); /* learner has it */
    assert_true(h_status(&h, 1).commit < j);         /* but 1 of 2 voters is not a majority */
    h_isolate(&h, 2, false);
    h_tick_all(&h, 2);
    assert_int_equal(h_status(&h, 1).commit, j);
    h_free(&h);
}

/* Promoting a learner makes it a voter that counts and may lead. */
static void test_raft_promote_learner(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 2, 1, true, true);
    h_elect(&h, 1);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_VOTER, 3, NULL), 0);
    h_stabilize(&h);
    struct mf_raft_status st = h_status(&h, 3);
    assert_int_equal(st.conf.voters_len, 3);
    assert_int_equal(st.conf.learners_len, 0);
    /* With 2 isolated, 1 and 3 are a majority of 3. */
    h_isolate(&h, 2, true);
    uint64_t i = h_propose(&h, 1, 9);
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 1).commit, i);
    h_free(&h);
}

/* A new leader refuses conf changes until its no-op commits, and allows one uncommitted change at a time. */
static void test_raft_conf_change_needs_noop_and_one_at_a_time(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 5, 3, 0, false, false);
    assert_int_equal(mf_raft_campaign(h.nodes[1].r), 0);
    h_process(&h, 1);
    h_deliver(&h);
    h_process(&h, 2);
    h_process(&h, 3);
    h.cut[1][2] = h.cut[1][3] = true; /* the no-op cannot replicate */
    h_deliver(&h);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_LEARNER, 4, NULL),
                     -EBUSY);
    h.cut[1][2] = h.cut[1][3] = false;
    h_tick_all(&h, 2);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_LEARNER, 4, NULL), 0);
    /* takes effect on append, before it commits */
    assert_int_equal(h_status(&h, 1).conf.learners_len, 1);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_LEARNER, 5, NULL),
                     -EBUSY);
    h_stabilize(&h);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_LEARNER, 5, NULL), 0);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_VOTER, 1, NULL),
                     -EBUSY);
    h_stabilize(&h);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_ADD_VOTER, 1, NULL),
                     MF_EEXISTS);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_REMOVE, 7, NULL),
                     MF_ENOTFOUND);
    assert_int_equal(h_status(&h, 4).conf.learners_len, 2);
    h_free(&h);
}

/* A leader that removes itself keeps leading without counting itself until the removal commits, then steps down. */
static void test_raft_leader_removes_itself(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    uint64_t ci = 0;
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_REMOVE, 1, &ci), 0);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    /* Only 2 of the new voters {2,3} acks: not a majority of them. */
    h_isolate(&h, 3, true);
    h_stabilize(&h);
    assert_true(h_status(&h, 1).commit < ci);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    h_isolate(&h, 3, false);
    h_tick_all(&h, 2);
    assert_true(h_status(&h, 2).commit >= ci);
    assert_int_not_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    /* The others elect a leader; 1 never campaigns again. */
    h_tick_all(&h, 60);
    int leaders = 0;
    for (uint64_t id = 2; id <= 3; id++)
        leaders += h_status(&h, id).role == MF_RAFT_LEADER;
    assert_int_equal(leaders, 1);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_FOLLOWER);
    h_free(&h);
}

/* Removing a follower shrinks the quorum: the remaining two commit without it. */
static void test_raft_remove_follower_shrinks_quorum(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_REMOVE, 3, NULL), 0);
    h_stabilize(&h);
    h_isolate(&h, 3, true);
    h_isolate(&h, 2, true);
    uint64_t i = h_propose(&h, 1, 1);
    h_stabilize(&h);
    assert_true(h_status(&h, 1).commit < i); /* 2 voters: needs both */
    h_isolate(&h, 2, false);
    h_tick_all(&h, 2);
    assert_int_equal(h_status(&h, 1).commit, i);
    h_free(&h);
}

/* The first ReadIndex starts a heartbeat round at once; reads arriving during it join the next round. */
static void test_raft_read_index_batching(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    assert_int_equal(mf_raft_read_index(h.nodes[1].r, 100), 0);
    h_process(&h, 1);
    assert_int_equal(h_count(&h, MF_RAFT_MSG_HEARTBEAT, 1, 0), 2); /* no tick needed */
    assert_int_equal(mf_raft_read_index(h.nodes[1].r, 101), 0);
    assert_int_equal(mf_raft_read_index(h.nodes[1].r, 102), 0);
    h_process(&h, 1);
    assert_int_equal(h_count(&h, MF_RAFT_MSG_HEARTBEAT, 1, 0), 2); /* no new round yet */
    assert_int_equal(h.nodes[1].reads_len, 0);
    /* Deliver the round: 100 is answered and 101, 102 start one round together. */
    h_deliver(&h);
    for (uint64_t id = 2; id <= 3; id++)
        h_process(&h, id);
    h_deliver(&h);
    h_process(&h, 1);
    assert_int_equal(h.nodes[1].reads_len, 1);
    assert_int_equal(h.nodes[1].reads_ctx[0], 100);
    assert_int_equal(h.nodes[1].reads_index[0], h_status(&h, 1).commit);
    assert_int_equal(h_count(&h, MF_RAFT_MSG_HEARTBEAT, 1, 0), 2);
    h_stabilize(&h);
    assert_int_equal(h.nodes[1].reads_len, 3);
    assert_int_equal(h.nodes[1].reads_ctx[1], 101);
    assert_int_equal(h.nodes[1].reads_ctx[2], 102);
    h_free(&h);
}

/* A new leader answers reads only after it committed an entry of its own term. */
static void test_raft_read_index_waits_for_commit_in_term(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    assert_int_equal(mf_raft_campaign(h.nodes[1].r), 0);
    h_process(&h, 1);
    h_deliver(&h);
    h_process(&h, 2);
    h_process(&h, 3);
    h.cut[1][2] = h.cut[1][3] = true;
    h_deliver(&h);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_LEADER);
    assert_int_equal(mf_raft_read_index(h.nodes[1].r, 7), 0);
    h_stabilize(&h);
    assert_int_equal(h.nodes[1].reads_len, 0);
    h.cut[1][2] = h.cut[1][3] = false;
    h_tick_all(&h, 3);
    assert_int_equal(h.nodes[1].reads_len, 1);
    assert_int_equal(h.nodes[1].reads_index[0], h_status(&h, 1).commit);
    h_free(&h);
}

/* A follower's read is forwarded to the leader and comes back as a read state with the leader's commit. */
static void test_raft_follower_read_index_forwarded(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_propose(&h, 1, 3);
    h_stabilize(&h);
    assert_int_equal(mf_raft_read_index(h.nodes[2].r, 55), 0);
    h_stabilize(&h);
    assert_int_equal(h.nodes[2].reads_len, 1);
    assert_int_equal(h.nodes[2].reads_ctx[0], 55);
    assert_int_equal(h.nodes[2].reads_index[0], h_status(&h, 1).commit);
    h_free(&h);
}

/* A leader cut off from the majority cannot confirm a read: no read state is produced. */
static void test_raft_read_index_not_served_by_isolated_leader(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_isolate(&h, 1, true);
    assert_int_equal(mf_raft_read_index(h.nodes[1].r, 9), 0);
    h_stabilize(&h);
    h_tick(&h, 1, 5);
    h_stabilize(&h);
    assert_int_equal(h.nodes[1].reads_len, 0);
    h_free(&h);
}

/* A configuration entry takes effect on append and is undone when a conflict truncates it. */
static void test_raft_truncated_conf_entry_is_undone(void **state)
{
    (void)state;
    struct harness h;
    h_init_ex(&h, 3, 3, 0, false, false);
    uint8_t conf[MF_RAFT_CONF_ENTRY_LEN] = {MF_RAFT_CONF_ADD_LEARNER, 0, 0, 0, 0, 0, 0, 0, 4};
    struct mf_raft_entry e = {.term = 1, .index = 1, .type = MF_RAFT_ENTRY_CONF,
                              .len = sizeof(conf), .data = conf};
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .index = 0,
                            .log_term = 0, .entries = &e, .entries_len = 1};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m), 0);
    assert_int_equal(h_status(&h, 2).conf.learners_len, 1);
    uint64_t v = 5;
    struct mf_raft_entry e2 = {.term = 2, .index = 1, .type = MF_RAFT_ENTRY_NORMAL, .len = 8,
                               .data = (const uint8_t *)&v};
    struct mf_raft_msg m2 = {.type = MF_RAFT_MSG_APP, .from = 3, .to = 2, .term = 2, .index = 0,
                             .log_term = 0, .entries = &e2, .entries_len = 1};
    assert_int_equal(mf_raft_step(h.nodes[2].r, &m2), 0);
    assert_int_equal(h_status(&h, 2).conf.learners_len, 0);
    h_stabilize(&h);
    /* and after a restart, the log replays to the same configuration */
    h_crash(&h, 2);
    h_start(&h, 2);
    assert_int_equal(h_status(&h, 2).conf.learners_len, 0);
    assert_int_equal(h_status(&h, 2).conf.voters_len, 3);
    h_free(&h);
}

/* A leader that appended its own removal and then lost its quorum may campaign again to finish the change (thesis 4.2.2). */
static void test_raft_removed_leader_may_finish_its_removal(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    h_isolate(&h, 2, true);
    h_isolate(&h, 3, true);
    uint64_t ci = 0;
    assert_int_equal(mf_raft_propose_conf_change(h.nodes[1].r, MF_RAFT_CONF_REMOVE, 1, &ci), 0);
    h_stabilize(&h);
    h_tick(&h, 1, 25); /* check-quorum: steps down with the removal uncommitted */
    h_stabilize(&h);
    assert_int_equal(h_status(&h, 1).role, MF_RAFT_FOLLOWER);
    assert_int_equal(h_status(&h, 1).conf.voters_len, 2); /* latest conf: {2, 3} */
    /* 1 holds the only copy of the removal; it can still campaign and win. */
    h_isolate(&h, 2, false);
    h_isolate(&h, 3, false);
    assert_int_equal(mf_raft_campaign(h.nodes[1].r), 0);
    h_stabilize(&h);
    h_tick_all(&h, 60);
    assert_true(h_status(&h, 2).commit >= ci);
    assert_int_equal(h_status(&h, 2).conf.voters_len, 2); /* the removal survived */
    assert_int_equal(h_status(&h, 3).conf.voters_len, 2);
    int leaders = 0;
    for (uint64_t id = 2; id <= 3; id++)
        leaders += h_status(&h, id).role == MF_RAFT_LEADER;
    assert_int_equal(leaders, 1);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_learner_receives_log_but_is_not_counted),
        cmocka_unit_test(test_raft_promote_learner),
        cmocka_unit_test(test_raft_conf_change_needs_noop_and_one_at_a_time),
        cmocka_unit_test(test_raft_leader_removes_itself),
        cmocka_unit_test(test_raft_remove_follower_shrinks_quorum),
        cmocka_unit_test(test_raft_read_index_batching),
        cmocka_unit_test(test_raft_read_index_waits_for_commit_in_term),
        cmocka_unit_test(test_raft_follower_read_index_forwarded),
        cmocka_unit_test(test_raft_read_index_not_served_by_isolated_leader),
        cmocka_unit_test(test_raft_truncated_conf_entry_is_undone),
        cmocka_unit_test(test_raft_removed_leader_may_finish_its_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
