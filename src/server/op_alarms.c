/* Alarms: list and disarm (op_alarms.h). */
#include "server/op_alarms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "node/node.h"
#include "server/storage.h"
#include "store/alarms.h"

/* One alarm as an API message, with its strings copied. */
struct info {
    Mayfly__Api__AlarmInfo pb;
    char kind[MF_ALARM_KIND_MAX + 1];
    char detail[MF_STORAGE_WHY_MAX];
};

static void info_fill(struct info *i, uint64_t node, const char *kind, uint64_t since_ms,
                      const char *detail)
{
    mayfly__api__alarm_info__init(&i->pb);
    snprintf(i->kind, sizeof(i->kind), "%s", kind);
    snprintf(i->detail, sizeof(i->detail), "%s", detail);
    i->pb.node_id = node;
    i->pb.kind = i->kind;
    i->pb.since_ms = since_ms;
    i->pb.detail = i->detail;
}

void mf_op_alarms_free(Mayfly__Api__AlarmInfo **list, size_t n)
{
    (void)n;
    if (list)
        free(list[0]); /* the one block of infos (NULL when none) */
    free(list);
}

int mf_op_alarms_read(struct mf_server *s, Mayfly__Api__AlarmInfo ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    Mayfly__Cmd__AlarmRecord **recs = NULL;
    size_t k = 0;
    rc = mf_alarm_list(txn, mf_fsm_state(s->fsm), &recs, &k);
    mf_srv_read_end(s, txn);
    if (rc)
        return rc;
    struct info *infos = calloc(k ? k : 1, sizeof(*infos));
    Mayfly__Api__AlarmInfo **ptrs = calloc(k ? k : 1, sizeof(*ptrs));
    if (!infos || !ptrs) {
        free(infos);
        free(ptrs);
        mf_alarm_list_free(recs, k);
        return -ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        info_fill(&infos[i], recs[i]->node_id, recs[i]->kind, recs[i]->since_ms,
                  recs[i]->detail);
        ptrs[i] = &infos[i].pb;
    }
    /* ptrs[0] is the block's address (pb is the first member), also when
     * there is no alarm: mf_op_alarms_free frees it. */
    ptrs[0] = &infos[0].pb;
    mf_alarm_list_free(recs, k);
    *out = ptrs;
    *n = k;
    return 0;
}

void mf_op_alarm_list(struct req *r)
{
    Mayfly__Api__AlarmInfo **list;
    size_t n;
    int rc = mf_op_alarms_read(r->srv, &list, &n);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot read the alarms: %s", mf_strerror(rc));
    Mayfly__Api__AlarmListResponse out = MAYFLY__API__ALARM_LIST_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.alarms = list;
    out.n_alarms = n;
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_ALARM_LIST;
    resp.alarm_list = &out;
    mf_api_reply(r, &resp);
    mf_op_alarms_free(list, n);
}

/* ---- disarm ---- */

struct disarm {
    uint64_t clear[MF_RAFT_NODES_MAX];
    size_t n_clear, next;
    uint64_t keep[MF_RAFT_NODES_MAX];
    char why[MF_RAFT_NODES_MAX][MF_STORAGE_WHY_MAX];
    size_t n_keep;
    uint64_t cleared;
};

static void disarm_answer(struct req *r, struct disarm *d)
{
    struct info kept[MF_RAFT_NODES_MAX];
    Mayfly__Api__AlarmInfo *ptrs[MF_RAFT_NODES_MAX];
    for (size_t i = 0; i < d->n_keep; i++) {
        info_fill(&kept[i], d->keep[i], MF_ALARM_KIND_STORAGE, 0, d->why[i]);
        ptrs[i] = &kept[i].pb;
    }
    Mayfly__Api__AlarmDisarmResponse out = MAYFLY__API__ALARM_DISARM_RESPONSE__INIT;
    out.cleared = d->cleared;
    out.kept = ptrs;
    out.n_kept = d->n_keep;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_ALARM_DISARM;
    resp.alarm_disarm = &out;
    mf_api_reply(r, &resp);
}

static void propose_clear(struct req *r);

/* One clear applied: the next, or the answer. Each is a command of its own
 * (rid_suffix), so a retried disarm is answered from the first results. */
static void finish_clear(struct req *r, const Result *res, Resp *resp)
{
    (void)resp;
    struct disarm *d = r->op_state;
    d->cleared += res ? res->count : 0;
    d->next++;
    if (d->next < d->n_clear)
        return propose_clear(r);
    disarm_answer(r, d);
}

static void propose_clear(struct req *r)
{
    struct disarm *d = r->op_state;
    Mayfly__Cmd__AlarmSet m = MAYFLY__CMD__ALARM_SET__INIT;
    m.node_id = d->clear[d->next];
    m.kind = MF_ALARM_KIND_STORAGE;
    m.active = false;
    m.detail = "";
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_ALARM_SET;
    cmd.alarm_set = &m;
    r->rid_suffix = (uint8_t)d->next;
    mf_handler_propose(r, &cmd, finish_clear);
}

void mf_op_alarm_disarm(struct req *r)
{
    struct disarm *d = calloc(1, sizeof(*d));
    if (!d)
        return mf_api_reply_error(r, -ENOMEM, "out of memory");
    r->op_state = d;
    r->op_state_free = free;
    int rc = mf_storage_disarm_plan(r->srv, d->clear, &d->n_clear, d->keep, d->why, &d->n_keep);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot read the alarms: %s", mf_strerror(rc));
    if (d->n_clear == 0)
        return disarm_answer(r, d);
    propose_clear(r);
}
