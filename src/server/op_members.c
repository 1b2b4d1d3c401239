/* Runtime membership: add, promote, remove, the leader's automatic
 * promotion, and the registry's way into the node's table (op_members.h).
 * The zone guard and readiness are pure (member_rules.c); the registry's
 * records are the store's (store/members.c). */
#include "server/op_members.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "node/node.h"
#include "server/cluster_version.h"
#include "server/leader_rules.h"
#include "server/member_rules.h"
#include "server/srv.h"
#include "store/fsm.h"
#include "store/members.h"

#define LOG_MOD "members"
_Static_assert(MF_MEMBER_RULES_ADDR_MAX == MF_MEMBER_ADDR_MAX &&
                   MF_MEMBER_RULES_ZONE_MAX == MF_MEMBER_ZONE_MAX,
               "member_rules.h checks the registry's bounds");
#define MF_MEMBERS_FEATURE_OP 47 /* command.proto: membership's op number, its feature level */

struct track {
    uint64_t id;
    struct mf_member_catchup c;
    uint64_t warned_ms; /* last "not promoting" log (monotonic) */
};

struct mf_members {
    struct track track[MF_RAFT_NODES_MAX];
    uint64_t reload_ms;  /* monotonic: last registry reload */
    bool promoting;      /* an automatic promotion is in flight */
};

/* ---- the registry into the node's table ---- */

static void reload(struct mf_server *s)
{
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn) != 0)
        return;
    Mayfly__Cmd__MemberInfo **l = NULL;
    size_t n = 0;
    int rc = mf_members_list(txn, mf_fsm_state(s->fsm), &l, &n);
    mf_srv_read_end(s, txn);
    if (rc) {
        MF_WARN(LOG_MOD, "cannot read the member registry: %s", mf_strerror(rc));
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (mf_members_info_ok(l[i]))
            (void)mf_node_member_put(s->node, l[i]->id, l[i]->addr, l[i]->api_addr, l[i]->zone);
    mf_members_list_free(l, n);
}

int mf_members_start(struct mf_server *s)
{
    if (!(s->members = calloc(1, sizeof(*s->members))))
        return -ENOMEM;
    reload(s);
    s->members->reload_ms = mf_now_mono_ms();
    return 0;
}

void mf_members_free(struct mf_server *s)
{
    free(s->members);
    s->members = NULL;
}

/* A member of the configuration without an address: the registry knows it
 * (a snapshot was installed, or the entry that added it applied before). */
static bool table_incomplete(struct mf_server *s, const struct mf_raft_status *st)
{
    for (uint32_t i = 0; i < st->conf.voters_len + st->conf.learners_len; i++) {
        uint64_t id = i < st->conf.voters_len ? st->conf.voters[i]
                                               : st->conf.learners[i - st->conf.voters_len];
        if (id != st->id && !mf_node_member_addr(s->node, id))
            return true;
    }
    return false;
}

/* ---- the voters, before and after a change, for the zone guard ---- */

static const char *zone_of(struct mf_server *s, uint64_t id)
{
    if (id == s->cfg->node_id) {
        const char *z = mf_node_member_zone(s->node, id);
        return z ? z : s->cfg->zone;
    }
    return mf_node_member_zone(s->node, id);
}

/* Voters of st, without `drop` and with `add` (0: none). */
static size_t voters(struct mf_server *s, const struct mf_raft_status *st, uint64_t drop,
                     uint64_t add, struct mf_member_voter *v)
{
    size_t n = 0;
    for (uint32_t i = 0; i < st->conf.voters_len; i++)
        if (st->conf.voters[i] != drop)
            v[n++] = (struct mf_member_voter){st->conf.voters[i], zone_of(s, st->conf.voters[i])};
    if (add)
        v[n++] = (struct mf_member_voter){add, zone_of(s, add)};
    return n;
}

static int guard(struct mf_server *s, const struct mf_raft_status *st, uint64_t drop,
                 uint64_t add, const char *what, bool force, char *why, size_t why_len)
{
    struct mf_member_voter b[MF_RAFT_NODES_MAX + 1], a[MF_RAFT_NODES_MAX + 1];
    size_t nb = voters(s, st, 0, 0, b), na = voters(s, st, drop, add, a);
    return mf_member_zone_guard(b, nb, a, na, what, force, why, why_len);
}

static bool in_ids(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}
#define is_voter(st, id) in_ids((st)->conf.voters, (st)->conf.voters_len, (id))
#define is_learner(st, id) in_ids((st)->conf.learners, (st)->conf.learners_len, (id))

/* Old builds refuse a configuration entry longer than 9 bytes: the tail
 * needs the cluster feature version of op 47 (store/features.h). */
static bool tails_allowed(struct mf_server *s)
{
    return mf_cluster_version_applied(s) >= mf_feature_op_level(MF_MEMBERS_FEATURE_OP);
}

/* ---- the entry's tail ---- */

/* What this node knows of member `id` (its table; itself: its config). */
static void info_of(struct mf_server *s, uint64_t id, Mayfly__Cmd__MemberInfo *m)
{
    mayfly__cmd__member_info__init(m);
    m->id = id;
    const char *addr = NULL, *api = mf_node_member_api_addr(s->node, id);
    if (id == s->cfg->node_id) {
        for (size_t i = 0; i < s->cfg->peers_len; i++)
            if (s->cfg->peers[i].id == id)
                addr = s->cfg->peers[i].addr;
        if (!api)
            api = mf_api_client_addr(s);
    }
    if (!addr)
        addr = mf_node_member_addr(s->node, id);
    /* A listener's own wildcard address reaches nobody: leave it out. */
    if (addr && (strncmp(addr, "0.0.0.0:", 8) == 0 || strncmp(addr, "[::]:", 5) == 0))
        addr = NULL;
    if (api && (strncmp(api, "0.0.0.0:", 8) == 0 || strncmp(api, "[::]:", 5) == 0))
        api = NULL;
    const char *zone = zone_of(s, id);
    m->addr = (char *)(addr ? addr : "");
    m->api_addr = (char *)(api ? api : "");
    m->zone = (char *)(zone ? zone : "");
}

/* MemberChange{member, known: every other member of st this node knows}. */
static int tail_make(struct mf_server *s, const struct mf_raft_status *st,
                     const Mayfly__Cmd__MemberInfo *member, uint8_t **out, size_t *len)
{
    Mayfly__Cmd__MemberInfo k[2 * MF_RAFT_NODES_MAX];
    Mayfly__Cmd__MemberInfo *kp[2 * MF_RAFT_NODES_MAX];
    size_t n = 0;
    for (uint32_t i = 0; i < st->conf.voters_len + st->conf.learners_len; i++) {
        uint64_t id = i < st->conf.voters_len ? st->conf.voters[i]
                                               : st->conf.learners[i - st->conf.voters_len];
        if (member && id == member->id)
            continue;
        info_of(s, id, &k[n]);
        k[n].voter = i < st->conf.voters_len;
        if (!mf_members_info_ok(&k[n]))
            continue;
        kp[n] = &k[n];
        n++;
    }
    return mf_members_tail_encode(member, kp, n, MF_RAFT_CONF_TAIL_MAX, out, len);
}

/* ---- a change waiting for its entry ---- */

struct change {
    uv_timer_t timer;
    struct mf_server *s;
    struct req *r;            /* NULL: an automatic promotion */
    enum mf_raft_conf_change_type type;
    uint64_t id;
    uint8_t *tail;
    size_t tail_len;
    uint64_t deadline_ms;
    bool proposed;
    bool added_peer;          /* add: the peer was put in the table before the entry */
};

static void change_closed(uv_handle_t *h)
{
    struct change *c = h->data;
    struct mf_server *s = c->s;
    free(c->tail);
    free(c);
    if (s->node)
        s->handles_open--;
    else
        mf_srv_handle_released(s);
}

static void change_end(struct change *c)
{
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, change_closed);
}

#define type_name(t) \
    ((t) == MF_RAFT_CONF_ADD_LEARNER ? "add" : (t) == MF_RAFT_CONF_ADD_VOTER ? "promote" : "remove")

static void change_fail(struct change *c, int rc, const char *fmt, uint64_t id)
{
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, id);
    if (c->r)
        mf_api_reply_error(c->r, rc, "%s", msg);
    else
        MF_WARN(LOG_MOD, "%s", msg);
    if (c->added_peer && c->s->node) {
        struct mf_raft_status st;
        mf_node_status(c->s->node, &st);
        if (!is_voter(&st, c->id) && !is_learner(&st, c->id))
            mf_node_member_drop(c->s->node, c->id);
    }
    if (c->s->members && !c->r)
        c->s->members->promoting = false;
    change_end(c);
}

static void on_applied(void *arg, int rc, uint64_t index, void *result)
{
    (void)result;
    struct change *c = arg;
    struct mf_server *s = c->s;
    if (rc) {
        char msg[200];
        snprintf(msg, sizeof(msg), "members %s of node %%" PRIu64 ": the entry did not apply (%s)",
                 type_name(c->type), mf_strerror(rc));
        return change_fail(c, rc == MF_ENOTLEADER || rc == MF_ECLOSED ? MF_EUNAVAIL : rc, msg,
                           c->id);
    }
    MF_INFO(LOG_MOD, "members %s of node %" PRIu64 " applied at index %" PRIu64,
            type_name(c->type), c->id, index);
    if (s->members && !c->r)
        s->members->promoting = false;
    if (c->r) {
        Mayfly__Api__MembersChangeResponse out = MAYFLY__API__MEMBERS_CHANGE_RESPONSE__INIT;
        out.index = index;
        out.leader_id = s->cfg->node_id;
        Resp resp = MAYFLY__API__RESPONSE__INIT;
        switch (c->type) {
        case MF_RAFT_CONF_ADD_LEARNER:
            resp.result_case = MAYFLY__API__RESPONSE__RESULT_MEMBERS_ADD;
            resp.members_add = &out;
            break;
        case MF_RAFT_CONF_ADD_VOTER:
            resp.result_case = MAYFLY__API__RESPONSE__RESULT_MEMBERS_PROMOTE;
            resp.members_promote = &out;
            break;
        case MF_RAFT_CONF_REMOVE:
            resp.result_case = MAYFLY__API__RESPONSE__RESULT_MEMBERS_REMOVE;
            resp.members_remove = &out;
            break;
        }
        mf_api_reply(c->r, &resp);
    }
    change_end(c);
}

/* A new member starts from a snapshot (a joining node drops entries from
 * index 1: it has no bootstrap configuration to replay them on), so the
 * leader's log must have been compacted once before it is added: on a young
 * cluster, ask for a snapshot and compaction now and wait for it. */
static bool needs_compaction(struct change *c)
{
    if (c->type != MF_RAFT_CONF_ADD_LEARNER)
        return false;
    struct mf_raft_status st;
    mf_node_status(c->s->node, &st);
    if (st.first_index > 1)
        return false;
    mf_node_compact_now(c->s->node);
    return true;
}

/* Propose now, or again after MF_OP_MEMBERS_RETRY_MS while another change
 * is pending. */
static void try_propose(struct change *c)
{
    struct mf_server *s = c->s;
    if (!s->node)
        return change_fail(c, MF_EUNAVAIL, "the node stopped before node %" PRIu64 " changed", c->id);
    int rc = needs_compaction(c) ? MF_ECOMPACTED
             : mf_node_conf_change(s->node, c->type, c->id, c->tail, c->tail_len, on_applied, c);
    if (rc == 0) {
        c->proposed = true;
        uv_timer_stop(&c->timer);
        return;
    }
    if (rc == MF_ECOMPACTED && mf_now_mono_ms() < c->deadline_ms)
        return; /* the timer repeats until the log is compacted */
    if ((rc == -EBUSY || rc == MF_EUNAVAIL) && mf_now_mono_ms() < c->deadline_ms)
        return; /* the timer repeats */
    char fmt[200];
    const char *why = rc == MF_ECOMPACTED ? "the leader is still compacting its log (a new "
                                            "member starts from a snapshot); retry"
                      : rc == -EBUSY ? "another configuration change is still pending; retry"
                      : rc == MF_EUNAVAIL ? "a leadership transfer is pending; retry"
                                          : mf_strerror(rc);
    snprintf(fmt, sizeof(fmt), "members %s of node %%" PRIu64 ": %s", type_name(c->type), why);
    int code = rc == -EBUSY || rc == MF_ENOTLEADER || rc == MF_ECOMPACTED ? MF_EUNAVAIL
               : rc == MF_EEXISTS || rc == MF_ENOTFOUND ? MF_EINVAL
                                                         : rc;
    change_fail(c, code, fmt, c->id);
}

static void on_retry(uv_timer_t *t)
{
    try_propose(t->data);
}

static void change_start(struct mf_server *s, struct req *r, enum mf_raft_conf_change_type type,
                         uint64_t id, uint8_t *tail, size_t tail_len, bool added_peer)
{
    struct change *c = calloc(1, sizeof(*c));
    if (!c) {
        free(tail);
        if (r)
            mf_api_reply_error(r, -ENOMEM, "out of memory");
        return;
    }
    *c = (struct change){.s = s, .r = r, .type = type, .id = id, .tail = tail,
                         .tail_len = tail_len, .added_peer = added_peer,
                         .deadline_ms = mf_now_mono_ms() + MF_OP_MEMBERS_WAIT_MS};
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    s->handles_open++; /* until change_closed: the server outlives the timer */
    int rc = needs_compaction(c) ? MF_ECOMPACTED
             : mf_node_conf_change(s->node, type, id, tail, tail_len, on_applied, c);
    if (rc == 0) {
        c->proposed = true;
        return;
    }
    if (rc == -EBUSY || rc == MF_EUNAVAIL || rc == MF_ECOMPACTED) {
        uv_timer_start(&c->timer, on_retry, MF_OP_MEMBERS_RETRY_MS, MF_OP_MEMBERS_RETRY_MS);
        return;
    }
    try_propose(c); /* answers the error */
}

/* ---- the handlers ---- */

/* The leader's status, or an answer when this node no longer leads. */
static bool leading(struct req *r, struct mf_raft_status *st)
{
    struct mf_server *s = r->srv;
    if (!s->node || !mf_node_is_leader(s->node)) {
        mf_api_reply_error(r, MF_EUNAVAIL, "this node no longer leads: retry");
        return false;
    }
    mf_node_status(s->node, st);
    return true;
}

void mf_op_members_add(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__MembersAddRequest *m = r->pb->members_add;
    if (m->id == 0)
        return mf_api_reply_error(r, MF_EINVAL, "members add needs -id N (N >= 1)");
    if (!mf_member_addr_ok(m->addr))
        return mf_api_reply_error(r, MF_EINVAL,
                                  "members add needs -addr HOST:PORT (the peer address, at most "
                                  "%d bytes)", MF_MEMBER_ADDR_MAX);
    if (!mf_member_addr_ok(m->api_addr))
        return mf_api_reply_error(r, MF_EINVAL,
                                  "members add needs -api-addr HOST:PORT (the client address, at "
                                  "most %d bytes)", MF_MEMBER_ADDR_MAX);
    if (!mf_member_zone_ok(m->zone))
        return mf_api_reply_error(r, MF_EINVAL,
                                  "a zone is at most %d bytes of [A-Za-z0-9._-]", MF_MEMBER_ZONE_MAX);
    struct mf_raft_status st;
    if (!leading(r, &st))
        return;
    if (is_voter(&st, m->id) || is_learner(&st, m->id))
        return mf_api_reply_error(r, MF_EINVAL, "node %" PRIu64 " is already a member (%s)", m->id,
                                  is_voter(&st, m->id) ? "voter" : "learner");
    if (!tails_allowed(s))
        return mf_api_reply_error(r, MF_EUNAVAIL, "cluster feature version %u: members add needs "
                                  "%u (its entry carries the member's addresses); upgrade every "
                                  "member first", mf_cluster_version_applied(s),
                                  mf_feature_op_level(MF_MEMBERS_FEATURE_OP));
    Mayfly__Cmd__MemberInfo info = MAYFLY__CMD__MEMBER_INFO__INIT;
    info.id = m->id;
    info.addr = m->addr;
    info.api_addr = m->api_addr;
    info.zone = m->zone;
    info.promote = true;
    info.force = m->force;
    uint8_t *tail = NULL;
    size_t tail_len = 0;
    int rc = tail_make(s, &st, &info, &tail, &tail_len);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot describe the members in a configuration entry: %s",
                                  mf_strerror(rc));
    /* The leader dials the new member from the entry's append on. */
    rc = mf_node_member_put(s->node, m->id, m->addr, m->api_addr, m->zone);
    if (rc == MF_ETOOLARGE || rc == -ENOMEM) {
        free(tail);
        return mf_api_reply_error(r, rc, "no room for another member in this node's table");
    }
    MF_INFO(LOG_MOD, "members add: node %" PRIu64 " at %s (api %s, zone %s) as a learner",
            m->id, m->addr, m->api_addr, m->zone && *m->zone ? m->zone : "none");
    change_start(s, r, MF_RAFT_CONF_ADD_LEARNER, m->id, tail, tail_len, true);
}

/* Promotion, by an operator (r) or by this leader (r NULL). */
static void promote(struct mf_server *s, struct req *r, const struct mf_raft_status *st,
                    uint64_t id)
{
    Mayfly__Cmd__MemberInfo info;
    info_of(s, id, &info);
    uint8_t *tail = NULL;
    size_t tail_len = 0;
    if (tails_allowed(s) && mf_members_info_ok(&info) &&
        tail_make(s, st, &info, &tail, &tail_len) != 0)
        tail = NULL, tail_len = 0; /* the registry keeps its record */
    change_start(s, r, MF_RAFT_CONF_ADD_VOTER, id, tail, tail_len, false);
}

void mf_op_members_promote(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__MembersPromoteRequest *m = r->pb->members_promote;
    struct mf_raft_status st;
    if (!leading(r, &st))
        return;
    if (is_voter(&st, m->id))
        return mf_api_reply_error(r, MF_EINVAL, "node %" PRIu64 " is already a voter", m->id);
    if (!is_learner(&st, m->id))
        return mf_api_reply_error(r, MF_ENOTFOUND, "node %" PRIu64 " is not a member", m->id);
    char what[64], why[MF_MEMBER_WHY_MAX];
    snprintf(what, sizeof(what), "promoting node %" PRIu64, m->id);
    if (guard(s, &st, 0, m->id, what, m->force, why, sizeof(why)))
        return mf_api_reply_error(r, MF_EINVAL, "%s", why);
    MF_INFO(LOG_MOD, "members promote: node %" PRIu64 "%s", m->id, m->force ? " (-force)" : "");
    promote(s, r, &st, m->id);
}

/* ---- the leader removing itself: hand leadership off first ----
 *
 * Removing itself directly, the leader steps down once the entry commits
 * and the others elect after an election timeout with no leader. Handing
 * leadership to the most caught-up voter first (TimeoutNow: no gap) and
 * forwarding the request to it avoids that gap; the new leader removes this
 * node as any other. A request that was itself forwarded here, or a
 * hand-off that does not happen within its wait, falls back to the direct
 * self-removal. */

struct handoff {
    uv_timer_t timer;
    struct mf_server *s;
    struct req *r;
    uint64_t self, target;
    uint64_t deadline_ms, next_issue_ms, reissue_ms; /* monotonic */
};

static void handoff_closed(uv_handle_t *h)
{
    struct handoff *w = h->data;
    struct mf_server *s = w->s;
    free(w);
    if (s->node)
        s->handles_open--;
    else
        mf_srv_handle_released(s);
}

static void handoff_end(struct handoff *w)
{
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, handoff_closed);
}

static void on_handoff_poll(uv_timer_t *t)
{
    struct handoff *w = t->data;
    struct mf_server *s = w->s;
    if (!s->node) {
        mf_api_reply_error(w->r, MF_EUNAVAIL, "the node stopped before it left");
        return handoff_end(w);
    }
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    bool leads = mf_node_is_leader(s->node) || st.role == MF_RAFT_LEADER;
    if (!leads && s->leader && s->leader != w->self) {
        MF_INFO(LOG_MOD, "members remove: leadership moved to node %" PRIu64
                         "; it removes node %" PRIu64, s->leader, w->self);
        int rc = mf_api_forward(s, w->r);
        if (rc)
            mf_api_reply_error(w->r, MF_EUNAVAIL,
                               "leadership moved to node %" PRIu64 " but the request could not "
                               "follow (%s): retry", s->leader, mf_strerror(rc));
        return handoff_end(w);
    }
    uint64_t now = mf_now_mono_ms();
    if (now >= w->deadline_ms) {
        if (leads) {
            MF_WARN(LOG_MOD, "members remove: leadership did not move to node %" PRIu64
                             "; this leader removes itself", w->target);
            change_start(s, w->r, MF_RAFT_CONF_REMOVE, w->self, NULL, 0, false);
        } else {
            mf_api_reply_error(w->r, MF_EUNAVAIL, "this node no longer leads: retry");
        }
        return handoff_end(w);
    }
    if (leads && now >= w->next_issue_ms) {
        w->next_issue_ms = now + w->reissue_ms;
        (void)mf_node_transfer(s->node, w->target);
    }
}

/* @return true when r is taken (a hand-off started). */
static bool remove_self_by_handoff(struct mf_server *s, struct req *r,
                                   const struct mf_raft_status *st)
{
    if (r->peer)
        return false;
    struct mf_leader_candidate c[MF_RAFT_NODES_MAX];
    size_t n = 0;
    for (uint32_t i = 0; i < st->conf.voters_len; i++) {
        uint64_t id = st->conf.voters[i];
        struct mf_node_peer_view v = {0};
        bool self = id == st->id;
        if (!self && mf_node_peer_view(s->node, id, &v))
            v = (struct mf_node_peer_view){0};
        c[n++] = (struct mf_leader_candidate){.id = id, .voter = true,
                                              .match_index = self ? st->last_index : v.match_index,
                                              .clock_ok = self || v.clock_ok};
    }
    uint64_t target = 0;
    char why[MF_LEADER_WHY_MAX];
    if (mf_leader_choose(st->id, c, n, 0, &target, why, sizeof(why)) || target == st->id ||
        mf_node_transfer(s->node, target) != 0)
        return false;
    struct handoff *w = calloc(1, sizeof(*w));
    if (!w)
        return false;
    uint64_t now = mf_now_mono_ms(), e = (uint64_t)s->cfg->election_ticks * s->cfg->tick_ms;
    *w = (struct handoff){.s = s, .r = r, .self = st->id, .target = target,
                          .reissue_ms = e ? e : 10};
    w->deadline_ms = now + (4 * e > 3000 ? 4 * e : 3000);
    w->next_issue_ms = now + w->reissue_ms;
    MF_INFO(LOG_MOD, "members remove: node %" PRIu64 " leads: handing leadership to node %" PRIu64
                     " first", st->id, target);
    uv_timer_init(s->loop, &w->timer);
    w->timer.data = w;
    s->handles_open++;
    uv_timer_start(&w->timer, on_handoff_poll, 10, 10);
    return true;
}

void mf_op_members_remove(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__MembersRemoveRequest *m = r->pb->members_remove;
    struct mf_raft_status st;
    if (!leading(r, &st))
        return;
    bool voter = is_voter(&st, m->id);
    if (!voter && !is_learner(&st, m->id))
        return mf_api_reply_error(r, MF_ENOTFOUND, "node %" PRIu64 " is not a member", m->id);
    if (voter && st.conf.voters_len == 1)
        return mf_api_reply_error(r, MF_EINVAL, "node %" PRIu64 " is the last voter", m->id);
    char what[64], why[MF_MEMBER_WHY_MAX];
    snprintf(what, sizeof(what), "removing node %" PRIu64, m->id);
    if (voter && guard(s, &st, m->id, 0, what, m->force, why, sizeof(why)))
        return mf_api_reply_error(r, MF_EINVAL, "%s", why);
    if (m->id == st.id && remove_self_by_handoff(s, r, &st))
        return;
    MF_INFO(LOG_MOD, "members remove: node %" PRIu64 "%s%s", m->id,
            m->id == st.id ? " (this leader: it steps down once the removal commits)" : "",
            m->force ? " (-force)" : "");
    change_start(s, r, MF_RAFT_CONF_REMOVE, m->id, NULL, 0, false);
}

/* ---- housekeeping ---- */

static struct track *track_of(struct mf_members *mm, uint64_t id)
{
    struct track *free_slot = NULL;
    for (size_t i = 0; i < MF_RAFT_NODES_MAX; i++) {
        if (mm->track[i].id == id)
            return &mm->track[i];
        if (!mm->track[i].id && !free_slot)
            free_slot = &mm->track[i];
    }
    if (free_slot)
        *free_slot = (struct track){.id = id};
    return free_slot;
}

/* The registry's promote and force flags of learner `id`. */
static bool wants_promotion(struct mf_server *s, uint64_t id, bool *force)
{
    MDB_txn *txn;
    *force = false;
    if (mf_srv_read_begin(s, &txn) != 0)
        return false;
    Mayfly__Cmd__MemberInfo **l = NULL;
    size_t n = 0;
    bool want = false;
    if (mf_members_list(txn, mf_fsm_state(s->fsm), &l, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (l[i]->id == id) {
                want = l[i]->promote;
                *force = l[i]->force;
            }
        mf_members_list_free(l, n);
    }
    mf_srv_read_end(s, txn);
    return want;
}

static void auto_promote(struct mf_server *s, const struct mf_raft_status *st)
{
    struct mf_members *mm = s->members;
    uint64_t now = mf_now_mono_ms();
    for (size_t i = 0; i < MF_RAFT_NODES_MAX; i++)
        if (mm->track[i].id && !is_learner(st, mm->track[i].id))
            mm->track[i] = (struct track){0};
    for (uint32_t i = 0; i < st->conf.learners_len && !mm->promoting; i++) {
        uint64_t id = st->conf.learners[i];
        struct mf_node_peer_view v = {0};
        struct track *t = track_of(mm, id);
        if (!t || mf_node_peer_view(s->node, id, &v) != 0)
            continue;
        if (!mf_member_catchup_ready(&t->c, st->last_index, v.match_index, now))
            continue;
        bool force;
        if (!wants_promotion(s, id, &force))
            continue;
        char what[64], why[MF_MEMBER_WHY_MAX];
        snprintf(what, sizeof(what), "promoting node %" PRIu64, id);
        if (guard(s, st, 0, id, what, force, why, sizeof(why))) {
            if (!t->warned_ms || now - t->warned_ms >= 30000) {
                t->warned_ms = now;
                MF_WARN(LOG_MOD, "node %" PRIu64 " caught up but stays a learner: %s (members "
                                 "promote %" PRIu64 " -force)", id, why, id);
            }
            continue;
        }
        MF_INFO(LOG_MOD, "node %" PRIu64 " caught up (match %" PRIu64 " of %" PRIu64
                         "): promoting it to voter", id, v.match_index, st->last_index);
        mm->promoting = true;
        promote(s, NULL, st, id);
    }
}

void mf_members_tick(struct mf_server *s)
{
    if (!s->node || !s->members || s->failed)
        return;
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    uint64_t now = mf_now_mono_ms();
    if (now - s->members->reload_ms >= MF_MEMBERS_RELOAD_MS && table_incomplete(s, &st)) {
        s->members->reload_ms = now;
        reload(s);
    }
    if (st.conf.learners_len && mf_node_is_leader(s->node))
        auto_promote(s, &st);
}
