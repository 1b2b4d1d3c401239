/* Leadership: transfer-leader and step-down, and the members list
 * (op_raft.h). The choice of the target is pure (leader_rules.c); here the
 * node is asked and watched. */
#include "server/op_raft.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "node/node.h"
#include "server/leader_rules.h"
#include "server/srv.h"

#define LOG_MOD "raft-op"

struct wait {
    uv_timer_t timer;
    struct mf_server *s;
    struct req *r;
    bool step_down;
    uint64_t self, target;
    uint64_t wait_ms, deadline_ms, reissue_ms, next_issue_ms; /* monotonic */
};

static uint64_t election_ms(const struct mf_server *s)
{
    return (uint64_t)s->cfg->election_ticks * s->cfg->tick_ms;
}

/* The members of the configuration as candidates; this leader is the most
 * caught up of all (its own log). */
static size_t candidates(struct mf_server *s, const struct mf_raft_status *st,
                         struct mf_leader_candidate *c)
{
    size_t n = 0;
    for (uint32_t i = 0; i < st->conf.voters_len; i++) {
        struct mf_node_peer_view v = {0};
        uint64_t id = st->conf.voters[i];
        bool self = id == st->id;
        if (!self && mf_node_peer_view(s->node, id, &v))
            v = (struct mf_node_peer_view){0};
        c[n++] = (struct mf_leader_candidate){.id = id, .voter = true,
                                              .match_index = self ? st->last_index : v.match_index,
                                              .clock_ok = self || v.clock_ok};
    }
    for (uint32_t i = 0; i < st->conf.learners_len; i++)
        c[n++] = (struct mf_leader_candidate){.id = st->conf.learners[i], .voter = false};
    return n;
}

/* The timer is counted in s->handles_open from its start, so a server
 * stopped meanwhile is not freed under it (mf_server_stop frees only with
 * no handle open). A running server is not freed when the count drops: it
 * only counts handles still closing then, and ours is simply done. */
static void wait_closed(uv_handle_t *h)
{
    struct wait *w = h->data;
    struct mf_server *s = w->s;
    free(w);
    if (s->node)
        s->handles_open--;
    else
        mf_srv_handle_released(s);
}

static void wait_end(struct wait *w)
{
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void answer(struct req *r, bool step_down, uint64_t leader)
{
    if (step_down)
        return mf_handler_reply_empty(r);
    Mayfly__Api__TransferLeaderResponse out = MAYFLY__API__TRANSFER_LEADER_RESPONSE__INIT;
    out.leader_id = leader;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_TRANSFER_LEADER;
    resp.transfer_leader = &out;
    mf_api_reply(r, &resp);
}

/* Every MF_OP_RAFT_POLL_MS: has leadership moved? Else ask again once the
 * core may have given the last transfer up, until the deadline. */
static void on_poll(uv_timer_t *t)
{
    struct wait *w = t->data;
    struct mf_server *s = w->s;
    if (!s->node) {
        mf_api_reply_error(w->r, MF_EUNAVAIL, "the node stopped before leadership moved");
        return wait_end(w);
    }
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    bool moved = !mf_node_is_leader(s->node) && st.role != MF_RAFT_LEADER;
    if (moved && (w->step_down || (st.lead && st.lead != w->self))) {
        MF_INFO(LOG_MOD, "leadership moved from node %" PRIu64 " to node %" PRIu64
                         " (asked for node %" PRIu64 ")", w->self, st.lead, w->target);
        answer(w->r, w->step_down, st.lead);
        return wait_end(w);
    }
    uint64_t now = mf_now_mono_ms();
    if (now >= w->deadline_ms) {
        MF_WARN(LOG_MOD, "leadership did not move to node %" PRIu64 " within %" PRIu64 " ms",
                w->target, w->wait_ms);
        mf_api_reply_error(w->r, MF_EUNAVAIL, "leadership did not move within %" PRIu64 " ms",
                           w->wait_ms);
        return wait_end(w);
    }
    if (!moved && now >= w->next_issue_ms) {
        w->next_issue_ms = now + w->reissue_ms;
        int rc = mf_node_transfer(s->node, w->target);
        if (rc && rc != MF_ENOTLEADER)
            MF_WARN(LOG_MOD, "transfer to node %" PRIu64 " asked again: %s", w->target,
                    mf_strerror(rc));
    }
}

static void hand_off(struct req *r, uint64_t to, bool step_down)
{
    struct mf_server *s = r->srv;
    if (!s->node || !mf_node_is_leader(s->node))
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node no longer leads: retry");
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    struct mf_leader_candidate c[2 * MF_RAFT_NODES_MAX];
    size_t n = candidates(s, &st, c);
    uint64_t target;
    char why[MF_LEADER_WHY_MAX];
    int rc = mf_leader_choose(st.id, c, n, to, &target, why, sizeof(why));
    if (rc)
        return mf_api_reply_error(r, rc, "%s", why);
    if (target == st.id) /* -to the leader itself */
        return answer(r, step_down, st.id);
    rc = mf_node_transfer(s->node, target);
    if (rc)
        return mf_api_reply_error(r, rc == MF_ENOTLEADER ? MF_EUNAVAIL : rc,
                                  "cannot hand leadership to node %" PRIu64 ": %s", target,
                                  mf_strerror(rc));
    struct wait *w = calloc(1, sizeof(*w));
    if (!w)
        return mf_api_reply_error(r, -ENOMEM, "out of memory");
    uint64_t now = mf_now_mono_ms(), e = election_ms(s);
    *w = (struct wait){.s = s, .r = r, .step_down = step_down, .self = st.id, .target = target,
                       .reissue_ms = e ? e : MF_OP_RAFT_POLL_MS};
    w->wait_ms = 4 * e > MF_OP_RAFT_WAIT_MS ? 4 * e : MF_OP_RAFT_WAIT_MS;
    w->deadline_ms = now + w->wait_ms;
    w->next_issue_ms = now + w->reissue_ms;
    MF_INFO(LOG_MOD, "%s: handing leadership from node %" PRIu64 " to node %" PRIu64,
            step_down ? "step-down" : "transfer-leader", st.id, target);
    uv_timer_init(s->loop, &w->timer);
    w->timer.data = w;
    s->handles_open++; /* until wait_closed: the server outlives the timer */
    uv_timer_start(&w->timer, on_poll, MF_OP_RAFT_POLL_MS, MF_OP_RAFT_POLL_MS);
}

void mf_op_transfer_leader(struct req *r)
{
    hand_off(r, r->pb->transfer_leader->to, false);
}

void mf_op_step_down(struct req *r)
{
    hand_off(r, 0, true);
}

/* ---- operator members list ---- */

/* One member as the leader sees it. */
static void member_fill(struct mf_server *s, const struct mf_raft_status *st, uint64_t id,
                        bool voter, uint64_t now, Mayfly__Api__MemberView *m)
{
    mayfly__api__member_view__init(m);
    bool self = id == st->id;
    const char *addr = mf_node_member_addr(s->node, id);
    /* This node is not among its configured peers: its own listener and zone. */
    const char *api = self ? mf_api_client_addr(s) : mf_node_member_api_addr(s->node, id);
    const char *zone = self ? s->cfg->zone : mf_node_member_zone(s->node, id);
    /* The strings live as long as the node and the server; the reply is
     * packed before this handler returns. */
    m->id = id;
    m->addr = (char *)(addr ? addr : "");
    m->api_addr = (char *)(api ? api : "");
    m->zone = (char *)(zone ? zone : "");
    m->voter = voter;
    if (self) {
        m->reachable = true;
        m->last_contact_ms = 0;
        m->match_index = st->last_index;
        return;
    }
    struct mf_node_peer_view v = {0};
    if (mf_node_peer_view(s->node, id, &v))
        v = (struct mf_node_peer_view){0};
    uint64_t e = election_ms(s);
    m->last_contact_ms = v.heard_mono_ms ? (int64_t)(now - v.heard_mono_ms) : -1;
    m->reachable = v.heard_mono_ms && now - v.heard_mono_ms <= 2 * e;
    m->match_index = v.match_index;
    m->lag_entries = st->last_index > v.match_index ? st->last_index - v.match_index : 0;
}

static int by_id(const void *a, const void *b)
{
    const Mayfly__Api__MemberView *x = *(Mayfly__Api__MemberView *const *)a;
    const Mayfly__Api__MemberView *y = *(Mayfly__Api__MemberView *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

void mf_op_members_list(struct req *r)
{
    struct mf_server *s = r->srv;
    if (!s->node || !mf_node_is_leader(s->node))
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node no longer leads: retry");
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    Mayfly__Api__MemberView views[2 * MF_RAFT_NODES_MAX];
    Mayfly__Api__MemberView *ptrs[2 * MF_RAFT_NODES_MAX];
    size_t n = 0;
    uint64_t now = mf_now_mono_ms();
    for (uint32_t i = 0; i < st.conf.voters_len; i++, n++)
        member_fill(s, &st, st.conf.voters[i], true, now, &views[n]);
    for (uint32_t i = 0; i < st.conf.learners_len; i++, n++)
        member_fill(s, &st, st.conf.learners[i], false, now, &views[n]);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &views[i];
    qsort(ptrs, n, sizeof(ptrs[0]), by_id);
    Mayfly__Api__MembersListResponse out = MAYFLY__API__MEMBERS_LIST_RESPONSE__INIT;
    out.members = ptrs;
    out.n_members = n;
    out.leader_id = st.id;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_MEMBERS_LIST;
    resp.members_list = &out;
    mf_api_reply(r, &resp);
}
