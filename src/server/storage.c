/* The storage quota on a node (storage.h): the measurement timer, a
 * follower's reports to the leader, and the leader's AlarmSet proposals. */
#include "server/storage.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/env.h"
#include "common/fsstat.h"
#include "common/err.h"
#include "common/log.h"
#include "node/node.h"
#include "server/proposer.h"
#include "store/alarms.h"
#include "store/usage.h"

#define LOG_MOD "storage"

/* A follower's last report, as the leader heard it. */
_Static_assert(MF_STORAGE_REPORT_DETAIL_MAX == MF_ALARM_DETAIL_MAX,
               "a report carries an alarm's detail");

struct report {
    uint64_t node;
    bool over;
    bool crossed; /* over at the limits themselves (no hysteresis) */
    bool blocked; /* it could not commit when it sent this */
    uint64_t match_at; /* its acknowledged index as this node knew it then */
    uint64_t since_ms;
    uint64_t at_mono_ms;
    char detail[MF_ALARM_DETAIL_MAX + 1];
};

struct mf_storage {
    uv_timer_t timer;
    struct mf_storage_limits limits;
    struct mf_storage_usage usage; /* blocked_cause points into `cause` */
    char cause[256];
    bool measured;
    bool over;  /* the decision, with the hysteresis */
    bool crossed; /* over the limits themselves: what raises an alarm, what disarm keeps */
    uint64_t since_ms;
    char detail[MF_ALARM_DETAIL_MAX + 1];
    /* follower: what was last sent, to whom and when */
    bool sent, sent_over;
    uint64_t sent_leader, sent_mono_ms;
    /* leader: reports from followers, AlarmSets in flight (node ids) */
    struct report reports[MF_RAFT_NODES_MAX];
    size_t n_reports;
    uint64_t inflight[MF_RAFT_NODES_MAX];
    /* the applied alarms, as last read */
    bool alarm;
    char alarm_text[600];
};

/* ---- measurement ---- */

static uint64_t snapshots_bytes(const char *data_dir)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", data_dir, MF_NODE_SNAPSHOT_DIR);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &sb, 0) == 0 &&
            S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

/* Live leases in the applied state; the caller holds state_lock. */
static bool live_leases(struct mf_state *state, uint64_t *live)
{
    MDB_txn *txn;
    if (mf_state_read_begin(state, &txn) != 0)
        return false;
    int rc = mf_state_live_leases(txn, state, live);
    mf_state_read_end(txn);
    return rc == 0;
}

/* Fills st->usage; a part that cannot be measured now keeps its last value
 * (the state being swapped by a snapshot install, the log reopening). */
static void measure(struct mf_server *s, struct mf_storage *st)
{
    struct mf_storage_usage *u = &st->usage;
    struct mf_fsstat fs;
    if (mf_fsstat_get(s->cfg->data_dir, &fs) == 0) {
        u->fs_free_bytes = fs.avail_bytes;
        u->fs_size_bytes = fs.total_bytes;
    }
    struct mf_lmdb_usage lu;
    uint64_t live = 0;
    bool live_known = false; /* else the reserve keeps its last size */
    /* Never wait on the loop for a snapshot install (writer thread). */
    if (pthread_rwlock_tryrdlock(&s->state_lock) == 0) {
        struct mf_state *state = mf_fsm_state(s->fsm);
        if (mf_state_usage(state, &lu) == 0)
            u->state_used_bytes = lu.used_bytes;
        live_known = live_leases(state, &live);
        pthread_rwlock_unlock(&s->state_lock);
    }
    if (mf_node_log_usage(s->node, &lu) == 0)
        u->log_used_bytes = lu.used_bytes;
    u->snapshots_bytes = snapshots_bytes(s->cfg->data_dir);
    /* A node whose commits are blocked (full disk or map at commit time) is
     * over with its cause; the reserve follows the live lease count. */
    struct mf_node_storage ns;
    mf_node_storage(s->node, &ns);
    u->blocked = ns.blocked;
    snprintf(st->cause, sizeof(st->cause), "%s", ns.cause);
    if (live_known)
        mf_node_set_reserve_hint(s->node, live);
    u->blocked_cause = st->cause;
    mf_storage_limits(s->cfg, u->fs_size_bytes, &st->limits);
    st->measured = true;
}

/* ---- the leader's proposals ---- */

struct set_ctx {
    struct mf_server *srv;
    uint64_t node;
};

static bool inflight(struct mf_storage *st, uint64_t node)
{
    for (size_t i = 0; i < MF_RAFT_NODES_MAX; i++)
        if (st->inflight[i] == node)
            return true;
    return false;
}

static void inflight_set(struct mf_storage *st, uint64_t node, bool on)
{
    for (size_t i = 0; i < MF_RAFT_NODES_MAX; i++)
        if (on ? st->inflight[i] == 0 : st->inflight[i] == node) {
            st->inflight[i] = on ? node : 0;
            return;
        }
}

static void on_set_applied(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    struct set_ctx *c = arg;
    struct mf_storage *st = c->srv->storage;
    if (st)
        inflight_set(st, c->node, false);
    if (rc)
        MF_WARN(LOG_MOD, "alarm for node %" PRIu64 " not applied: %s", c->node,
                res && res->error && *res->error ? res->error : mf_strerror(rc));
    free(c);
}

/* Proposes node's alarm raised (detail) or cleared (detail NULL). */
static void propose_alarm(struct mf_server *s, uint64_t node, const char *detail,
                          uint64_t since_ms)
{
    struct mf_storage *st = s->storage;
    if (inflight(st, node))
        return;
    struct set_ctx *c = malloc(sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    c->node = node;
    Mayfly__Cmd__AlarmSet m = MAYFLY__CMD__ALARM_SET__INIT;
    m.node_id = node;
    m.kind = MF_ALARM_KIND_STORAGE;
    m.active = detail != NULL;
    m.detail = detail ? (char *)detail : (char *)"";
    m.since_ms = since_ms;
    Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_ALARM_SET;
    cmd.alarm_set = &m;
    MF_INFO(LOG_MOD, "%s the storage alarm of node %" PRIu64 "%s%s", detail ? "raising" : "clearing",
            node, detail ? ": " : "", detail ? detail : "");
    inflight_set(st, node, true);
    int rc = mf_propose(s->prop, &cmd, on_set_applied, c);
    if (rc) {
        inflight_set(st, node, false);
        free(c);
    }
}

static const struct report *report_of(const struct mf_storage *st, uint64_t node)
{
    for (size_t i = 0; i < st->n_reports; i++)
        if (st->reports[i].node == node)
            return &st->reports[i];
    return NULL;
}

/* The index `node` acknowledged, as this node (if it leads) knows it. */
static uint64_t match_of(struct mf_server *s, uint64_t node)
{
    struct mf_node_peer_view v;
    return mf_node_peer_view(s->node, node, &v) == 0 ? v.match_index : 0;
}

/* A report of a block is stale once the node acknowledged entries after
 * it: it can commit again (its next report says so within a second, but a
 * leader elected as a whole cluster recovers must not raise an alarm on
 * the word of a node that already resumed). */
static bool resumed_since(struct mf_server *s, const struct report *r)
{
    return r->blocked && match_of(s, r->node) > r->match_at;
}

static bool fresh(const struct report *r, uint64_t now_mono)
{
    return r && now_mono - r->at_mono_ms <= MF_STORAGE_REPORT_FRESH_MS;
}

static const Mayfly__Cmd__AlarmRecord *applied_of(Mayfly__Cmd__AlarmRecord **list, size_t n,
                                                  uint64_t node)
{
    for (size_t i = 0; i < n; i++)
        if (list[i]->node_id == node && strcmp(list[i]->kind, MF_ALARM_KIND_STORAGE) == 0)
            return list[i];
    return NULL;
}

/* Leader: brings the applied alarms in line with the measurements. An
 * alarm is raised at the limits themselves and cleared once the hysteresis
 * lets go: so one that disarm cleared inside the hysteresis band is not
 * raised again until a limit is crossed again. */
static void reconcile(struct mf_server *s, Mayfly__Cmd__AlarmRecord **list, size_t n)
{
    struct mf_storage *st = s->storage;
    uint64_t self = s->cfg->node_id, now = mf_now_mono_ms();
    bool mine = applied_of(list, n, self) != NULL;
    if (st->crossed && !mine)
        propose_alarm(s, self, st->detail, st->since_ms);
    else if (!st->over && mine)
        propose_alarm(s, self, NULL, 0);
    for (size_t i = 0; i < st->n_reports; i++) {
        const struct report *r = &st->reports[i];
        if (r->node == self || !fresh(r, now))
            continue;
        bool set = applied_of(list, n, r->node) != NULL;
        if (r->crossed && !set && !resumed_since(s, r))
            propose_alarm(s, r->node, r->detail, r->since_ms);
        else if (!r->over && set)
            propose_alarm(s, r->node, NULL, 0);
    }
}

/* ---- a follower's reports ---- */

static void report(struct mf_server *s)
{
    struct mf_storage *st = s->storage;
    uint64_t leader = s->leader, now = mf_now_mono_ms();
    /* A storage-blocked node forgets its leader (it drops Raft messages:
     * node.h), yet that leader must hear it is blocked to raise its alarm:
     * the last one known gets the report (a leader elected meanwhile hears
     * from it once it resumes). The server keeps it as the role changes: a
     * node that blocks within a second of learning its leader may never have
     * reported while it knew it. */
    if (!leader && st->usage.blocked)
        leader = s->last_leader;
    if (leader == 0 || leader == s->cfg->node_id)
        return;
    bool due = st->over || !st->sent || st->sent_over != st->over || st->sent_leader != leader ||
               now - st->sent_mono_ms >= MF_STORAGE_REPORT_IDLE_MS;
    if (!due)
        return;
    struct mf_storage_report rep = {.over = st->over, .crossed = st->crossed,
                                    .blocked = st->usage.blocked, .since_ms = st->since_ms};
    snprintf(rep.detail, sizeof(rep.detail), "%s", st->detail);
    char *text = NULL;
    if (mf_storage_report_encode(&rep, &text) != 0)
        text = NULL;
    if (text && mf_node_send(s->node, leader, MF_STORAGE_PEER_TAG, text, strlen(text)) == 0) {
        st->sent = true;
        st->sent_over = st->over;
        st->sent_leader = leader;
        st->sent_mono_ms = now;
    }
    free(text);
}

void mf_storage_peer_message(struct mf_server *s, uint64_t from, const uint8_t *data, size_t len)
{
    struct mf_storage *st = s->storage;
    if (!st || from == 0 || from == s->cfg->node_id)
        return;
    struct mf_storage_report rep;
    if (mf_storage_report_decode(data, len, &rep) != 0) {
        MF_WARN(LOG_MOD, "node %" PRIu64 " sent a malformed storage report", from);
        return;
    }
    struct report *r = (struct report *)report_of(st, from);
    if (!r && st->n_reports < MF_RAFT_NODES_MAX)
        r = &st->reports[st->n_reports++];
    if (r) {
        r->node = from;
        r->over = rep.over;
        r->crossed = rep.crossed;
        r->blocked = rep.blocked;
        r->match_at = match_of(s, from);
        r->since_ms = rep.since_ms;
        r->at_mono_ms = mf_now_mono_ms();
        snprintf(r->detail, sizeof(r->detail), "%s", rep.detail);
    }
}

/* ---- the timer ---- */

/* Keeps the first applied storage alarm for /metrics and /health. */
static const Mayfly__Cmd__AlarmRecord *note_alarms(struct mf_storage *st,
                                                   Mayfly__Cmd__AlarmRecord **list, size_t n)
{
    const Mayfly__Cmd__AlarmRecord *first = NULL;
    for (size_t i = 0; i < n && !first; i++)
        if (strcmp(list[i]->kind, MF_ALARM_KIND_STORAGE) == 0)
            first = list[i];
    st->alarm = first != NULL;
    st->alarm_text[0] = 0;
    if (first)
        snprintf(st->alarm_text, sizeof(st->alarm_text), "storage alarm on node %" PRIu64 ": %s",
                 first->node_id, first->detail);
    return first;
}

static void on_tick(uv_timer_t *t)
{
    struct mf_server *s = t->data;
    struct mf_storage *st = s->storage;
    if (s->failed)
        return;
    measure(s, st);
    bool was = st->over;
    char detail[sizeof(st->detail)];
    st->over = mf_storage_decide(&st->limits, &st->usage, was, s->cfg->data_dir, detail,
                                 sizeof(detail));
    if (st->over && !was) {
        st->since_ms = mf_now_wall_ms();
        MF_WARN(LOG_MOD, "node %" PRIu64 " over its storage limit: %s", s->cfg->node_id, detail);
    } else if (!st->over && was) {
        MF_INFO(LOG_MOD, "node %" PRIu64 " back under its storage limits", s->cfg->node_id);
    }
    memcpy(st->detail, detail, sizeof(detail));
    st->crossed = st->over && mf_storage_decide(&st->limits, &st->usage, false, NULL, NULL, 0);

    Mayfly__Cmd__AlarmRecord **list = NULL;
    size_t n = 0;
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn) == 0) {
        if (mf_alarm_list(txn, mf_fsm_state(s->fsm), &list, &n))
            n = 0, list = NULL;
        mf_srv_read_end(s, txn);
    }
    const Mayfly__Cmd__AlarmRecord *first = note_alarms(st, list, n);

    bool leading = mf_node_is_leader(s->node);
    char why[700];
    if (first)
        mf_alarm_refusal_text(why, sizeof(why), first->node_id, first->detail);
    else if (leading && st->crossed)
        mf_alarm_refusal_text(why, sizeof(why), s->cfg->node_id, st->detail);
    mf_proposer_storage_refuse(s->prop, first || (leading && st->crossed) ? why : NULL);
    /* Near a limit, measure ten times as often (a burst runs past it for at
     * most that long). Restarting the timer from its callback is allowed. */
    uint64_t period = mf_storage_near(&st->limits, &st->usage) ? MF_STORAGE_MEASURE_NEAR_MS
                                                               : MF_STORAGE_MEASURE_MS;
    if (uv_timer_get_repeat(&st->timer) != period)
        uv_timer_start(&st->timer, on_tick, period, period);
    if (leading)
        reconcile(s, list, n);
    else
        report(s);
    mf_alarm_list_free(list, n);
}

int mf_storage_init(struct mf_server *s)
{
    struct mf_storage *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    s->storage = st;
    uv_timer_init(s->loop, &st->timer);
    st->timer.data = s;
    uv_timer_start(&st->timer, on_tick, MF_STORAGE_MEASURE_MS / 10, MF_STORAGE_MEASURE_MS);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mf_server *s = h->data;
    free(s->storage); /* h lives in it */
    s->storage = NULL;
    mf_srv_handle_released(s);
}

void mf_storage_close(struct mf_server *s)
{
    struct mf_storage *st = s->storage;
    if (!st)
        return;
    uv_timer_stop(&st->timer);
    s->handles_open++;
    uv_close((uv_handle_t *)&st->timer, on_timer_closed);
}

void mf_storage_figures(struct mf_server *s, struct mf_storage_figures *out)
{
    memset(out, 0, sizeof(*out));
    struct mf_storage *st = s->storage;
    if (!st)
        return;
    /* The applied alarms now, not as of the last tick: /health follows an
     * applied AlarmSet at the next publish. */
    Mayfly__Cmd__AlarmRecord **list = NULL;
    size_t n = 0;
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn) == 0) {
        if (mf_alarm_list(txn, mf_fsm_state(s->fsm), &list, &n) == 0)
            note_alarms(st, list, n);
        mf_srv_read_end(s, txn);
        mf_alarm_list_free(list, n);
    }
    out->measured = st->measured;
    out->usage = st->usage;
    out->usage.blocked_cause = NULL;
    out->limits = st->limits;
    out->over = st->over;
    out->alarm = st->alarm;
    memcpy(out->alarm_text, st->alarm_text, sizeof(out->alarm_text));
    if (st->usage.blocked)
        snprintf(out->blocked_cause, sizeof(out->blocked_cause), "%s",
                 st->cause[0] ? st->cause : "a commit failed");
}

int mf_storage_disarm_plan(struct mf_server *s, uint64_t *clear, size_t *n_clear, uint64_t *keep,
                           char (*why)[MF_STORAGE_WHY_MAX], size_t *n_keep)
{
    *n_clear = *n_keep = 0;
    struct mf_storage *st = s->storage;
    Mayfly__Cmd__AlarmRecord **list = NULL;
    size_t n = 0;
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    rc = mf_alarm_list(txn, mf_fsm_state(s->fsm), &list, &n);
    mf_srv_read_end(s, txn);
    if (rc)
        return rc;
    uint64_t now = mf_now_mono_ms();
    for (size_t i = 0; i < n; i++) {
        const Mayfly__Cmd__AlarmRecord *a = list[i];
        if (strcmp(a->kind, MF_ALARM_KIND_STORAGE) != 0)
            continue;
        bool self = a->node_id == s->cfg->node_id;
        const struct report *r = self ? NULL : report_of(st, a->node_id);
        /* The cause, not the hysteresis: clearing inside the band is what
         * disarm is for (the alarm clears there by itself otherwise). */
        bool over = self ? st->crossed || !st->measured : !fresh(r, now) || r->crossed;
        if (!over && *n_clear < MF_RAFT_NODES_MAX) {
            clear[(*n_clear)++] = a->node_id;
        } else if (over && *n_keep < MF_RAFT_NODES_MAX) {
            keep[*n_keep] = a->node_id;
            if (self)
                snprintf(why[*n_keep], MF_STORAGE_WHY_MAX, "%s",
                         st->measured ? st->detail : "not measured yet");
            else if (fresh(r, now))
                snprintf(why[*n_keep], MF_STORAGE_WHY_MAX, "%s", r->detail);
            else
                snprintf(why[*n_keep], MF_STORAGE_WHY_MAX,
                         "no measurement from node %" PRIu64 " in the last %d s",
                         a->node_id, MF_STORAGE_REPORT_FRESH_MS / 1000);
            (*n_keep)++;
        }
    }
    mf_alarm_list_free(list, n);
    return 0;
}
