/* ReadIndex (etcd's readonly): reads queue for the next heartbeat round,
 * which confirms leadership with a quorum and answers them at the commit index
 * of when the round started. Only once the leader committed an entry of its
 * own term; dropped on a role or term change. */
#include "raft/core_int.h"

/* Reads in flight are dropped on a role or term change (callers retry). */
void mf_raft_ro_reset(struct mf_raft *r)
{
    r->read_next.len = 0;
    r->read_cur.len = 0;
    r->read_round = false;
    r->read_acks_len = 0;
}

static void read_respond(struct mf_raft *r, const struct read_req *q, uint64_t index)
{
    if (q->from == r->id) {
        struct mf_raft_read_state rs = {.index = index, .ctx = q->ctx};
        VEC_PUSH(r, r->reads, rs);
    } else {
        struct mf_raft_msg *m = mf_raft_msg_new(r, MF_RAFT_MSG_READ_INDEX_RESP, q->from);
        if (m) {
            m->index = index;
            m->ctx = q->ctx;
        }
    }
}

/* Starts a ReadIndex confirmation round for the queued reads, at once. */
void mf_raft_ro_maybe_start_round(struct mf_raft *r)
{
    if (r->role != MF_RAFT_LEADER || r->read_round || r->read_next.len == 0 ||
        !mf_raft_log_committed_in_term(r))
        return;
    bool self_voter = mf_raft_conf_is_voter(&r->conf, r->id);
    if (self_voter && r->conf.voters_len == 1) {
        for (size_t k = 0; k < r->read_next.len; k++)
            read_respond(r, &r->read_next.v[k], r->commit);
        r->read_next.len = 0;
        return;
    }
    /* Swap the queues: next becomes the round in flight. */
    struct read_req *v = r->read_cur.v;
    size_t cap = r->read_cur.cap;
    r->read_cur.v = r->read_next.v;
    r->read_cur.cap = r->read_next.cap;
    r->read_cur.len = r->read_next.len;
    r->read_next.v = v;
    r->read_next.cap = cap;
    r->read_next.len = 0;
    r->read_round = true;
    r->read_index = r->commit;
    r->read_seq++;
    r->read_acks_len = 0;
    if (self_voter)
        r->read_acks[r->read_acks_len++] = r->id;
    mf_raft_pr_bcast_heartbeat(r);
    r->heartbeat_elapsed = 0;
}

void mf_raft_ro_ack(struct mf_raft *r, uint64_t from, uint64_t seq)
{
    if (!r->read_round || seq != r->read_seq || !mf_raft_conf_is_voter(&r->conf, from))
        return;
    for (size_t k = 0; k < r->read_acks_len; k++)
        if (r->read_acks[k] == from)
            return;
    r->read_acks[r->read_acks_len++] = from;
    if (r->read_acks_len < mf_raft_conf_quorum(&r->conf))
        return;
    for (size_t k = 0; k < r->read_cur.len; k++)
        read_respond(r, &r->read_cur.v[k], r->read_index);
    r->read_cur.len = 0;
    r->read_round = false;
    mf_raft_ro_maybe_start_round(r);
}

void mf_raft_ro_leader_read(struct mf_raft *r, uint64_t from, uint64_t ctx)
{
    if (r->read_next.len + r->read_cur.len >= r->cfg.max_pending_reads) {
        if (from != r->id) {
            struct mf_raft_msg *o = mf_raft_msg_new(r, MF_RAFT_MSG_READ_INDEX_RESP, from);
            if (o) {
                o->ctx = ctx;
                o->reject = true;
            }
        }
        return;
    }
    struct read_req q = {.ctx = ctx, .from = from};
    VEC_PUSH(r, r->read_next, q);
    mf_raft_ro_maybe_start_round(r);
}

int mf_raft_read_index(struct mf_raft *r, uint64_t ctx)
{
    if (r->fatal)
        return r->fatal;
    if (r->role == MF_RAFT_LEADER) {
        if (r->read_next.len + r->read_cur.len >= r->cfg.max_pending_reads)
            return -ENOBUFS;
        mf_raft_ro_leader_read(r, r->id, ctx);
        return r->fatal;
    }
    if (r->lead == 0 || r->role != MF_RAFT_FOLLOWER)
        return MF_EUNAVAIL;
    struct mf_raft_msg *m = mf_raft_msg_new(r, MF_RAFT_MSG_READ_INDEX, r->lead);
    if (m)
        m->ctx = ctx;
    return r->fatal;
}
