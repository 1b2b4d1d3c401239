/* Tests of the ready/advance driver (raft/driver.h) in its asynchronous mode,
 * as the node runs it: the write and the apply complete when the test says,
 * and the test checks what the driver did in between. */
#include "test_raft_harness.h"

/* A driver whose write and apply wait for the test; events in order:
 * 'A' apply started, 'P' persist started, 'S' messages sent. */
struct rec {
    struct h_node *nd;
    char events[64];
    size_t events_len;
    const struct mf_raft_ready *rd; /* the batch being written */
};

static void rec_event(struct rec *r, char e)
{
    assert_true(r->events_len + 1 < sizeof(r->events));
    r->events[r->events_len++] = e;
    r->events[r->events_len] = 0;
}

static void rec_send(void *ctx, const struct mf_raft_msg *msgs, size_t len)
{
    struct rec *r = ctx;
    rec_event(r, 'S');
    h_drv_send(r->nd, msgs, len);
}

static int rec_persist(void *ctx, const struct mf_raft_ready *rd)
{
    struct rec *r = ctx;
    rec_event(r, 'P');
    r->rd = rd;
    return 0;
}

static int rec_apply(void *ctx, const struct mf_raft_ready *rd)
{
    struct rec *r = ctx;
    rec_event(r, 'A');
    assert_null(rd->snapshot);
    for (size_t k = 0; k < rd->committed_len; k++)
        r->nd->applied_index = rd->committed[k].index; /* counted, not yet applied */
    return 0;
}

static void rec_init(struct rec *r, struct h_node *nd, unsigned applies_max)
{
    memset(r, 0, sizeof(*r));
    r->nd = nd;
    struct mf_raft_driver_cbs cb = {
        .ctx = r, .send = rec_send, .persist = rec_persist, .apply = rec_apply};
    mf_raft_driver_init(&nd->drv, nd->r, &cb, applies_max);
}

/* The test's disk: writes the batch in flight, then reports it durable. */
static void rec_persisted(struct rec *r)
{
    const struct mf_raft_ready *rd = r->rd;
    struct h_node *nd = r->nd;
    assert_int_equal(nd->st.save(nd->st.ctx, rd->hard_state_changed ? &rd->hard_state : NULL,
                                 rd->entries, rd->entries_len),
                     0);
    r->rd = NULL;
    assert_int_equal(mf_raft_driver_persisted(&nd->drv, 0), 0);
}

/* A follower's acknowledgement leaves only once the batch's write completed,
 * and no second batch starts while one is being written. */
static void test_raft_driver_ack_waits_for_persist(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    struct rec r;
    rec_init(&r, &h.nodes[2], 4);
    h_propose(&h, 1, 7);
    h_process(&h, 1);
    h_deliver(&h); /* the AppendEntries reaches 2 and 3 */
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), 0);
    assert_string_equal(r.events, "P");
    assert_true(mf_raft_driver_busy(&h.nodes[2].drv));
    assert_int_equal(h_count(&h, MF_RAFT_MSG_APP_RESP, 2, 1), 0);
    /* Another message arrives meanwhile: its output waits for the next batch. */
    h_propose(&h, 1, 8);
    h_process(&h, 1);
    h_deliver(&h);
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), 0);
    assert_string_equal(r.events, "P");
    rec_persisted(&r);
    assert_string_equal(r.events, "PS");
    assert_int_equal(h_count(&h, MF_RAFT_MSG_APP_RESP, 2, 1), 1);
    assert_false(mf_raft_driver_busy(&h.nodes[2].drv));
    h_free(&h);
}

/* Committed entries are applied beside the write, the core advances before
 * the apply finishes, and applies_max holds the next batch back until the
 * state machine catches up. */
static void test_raft_driver_apply_beside_write_and_backpressure(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    struct rec r;
    rec_init(&r, &h.nodes[2], 1);
    uint64_t i = h_propose(&h, 1, 7);
    h_process(&h, 1);
    h_deliver(&h);
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), 0);
    rec_persisted(&r); /* 2 holds the entry and acknowledges it */
    h_process(&h, 3);
    h_deliver(&h);
    h_process(&h, 1); /* committed: the leader tells 2 */
    h_deliver(&h);
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), 0);
    assert_string_equal(r.events, "PSAP"); /* the apply starts before the write */
    assert_int_equal(h.nodes[2].applied_index, i);
    rec_persisted(&r);
    assert_false(mf_raft_driver_busy(&h.nodes[2].drv)); /* advanced, apply still running */
    /* More work for 2, but its one apply slot is taken. */
    h_propose(&h, 1, 9);
    h_process(&h, 1);
    h_deliver(&h);
    assert_true(mf_raft_has_ready(h.nodes[2].r));
    size_t before = r.events_len;
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), 0);
    assert_int_equal(r.events_len, before);
    assert_false(mf_raft_driver_busy(&h.nodes[2].drv));
    mf_raft_driver_applied(&h.nodes[2].drv);
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), 0);
    assert_true(mf_raft_driver_busy(&h.nodes[2].drv));
    h_free(&h);
}

/* A failed write is latched: nothing waiting for it is sent, the core is not
 * advanced, and every later call reports the error. */
static void test_raft_driver_failed_persist_latches(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, 3);
    h_elect(&h, 1);
    struct rec r;
    rec_init(&r, &h.nodes[2], 4);
    h_propose(&h, 1, 7);
    h_process(&h, 1);
    h_deliver(&h);
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), 0);
    assert_int_equal(mf_raft_driver_persisted(&h.nodes[2].drv, -EIO), -EIO);
    assert_string_equal(r.events, "P");
    assert_int_equal(h_count(&h, MF_RAFT_MSG_APP_RESP, 2, 1), 0);
    assert_int_equal(mf_raft_driver_pump(&h.nodes[2].drv), -EIO);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_driver_ack_waits_for_persist),
        cmocka_unit_test(test_raft_driver_apply_beside_write_and_backpressure),
        cmocka_unit_test(test_raft_driver_failed_persist_latches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
