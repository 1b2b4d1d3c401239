/* Message handling (etcd's Step and stepLeader/stepCandidate/stepFollower):
 * term checks and votes, then the handler of the node's role. */
#include "raft/core_int.h"

/* What a follower tells the leader about a snapshot chunk. */
enum snap_ack { SNAP_ACK_NEXT, SNAP_ACK_REJECT, SNAP_ACK_DONE };

static void snap_resp(struct mf_raft *r, uint64_t to, uint64_t index, uint64_t offset,
                      enum snap_ack ack)
{
    struct mf_raft_msg *o = mf_raft_msg_new(r, MF_RAFT_MSG_SNAP_RESP, to);
    if (!o)
        return;
    o->index = index;
    o->snapshot_offset = offset;
    o->reject = ack == SNAP_ACK_REJECT;
    o->snapshot_done = ack == SNAP_ACK_DONE;
}

static void handle_append(struct mf_raft *r, const struct mf_raft_msg *m)
{
    if (m->index < r->commit) {
        struct mf_raft_msg *o = mf_raft_msg_new(r, MF_RAFT_MSG_APP_RESP, m->from);
        if (o)
            o->index = r->commit;
        return;
    }
    if (mf_raft_log_match_term(r, m->index, m->log_term)) {
        uint64_t lastnew = m->index + m->entries_len;
        /* Find the first entry that is new or conflicts (truncate only on a
         * real conflict: same index, different term). */
        size_t k = 0;
        for (; k < m->entries_len; k++) {
            const struct mf_raft_entry *e = &m->entries[k];
            MF_ASSERT(e->index == m->index + 1 + k);
            if (!mf_raft_log_match_term(r, e->index, e->term))
                break;
        }
        if (k < m->entries_len) {
            uint64_t ci = m->entries[k].index;
            LOG_INVARIANT(r, ci > r->commit);
            if (r->fatal)
                return;
            if (ci <= mf_raft_log_last_index(r))
                mf_raft_log_truncate_from(r, ci);
            for (; k < m->entries_len && !r->fatal; k++) {
                const struct mf_raft_entry *e = &m->entries[k];
                mf_raft_log_append(r, e->term, e->index, e->type, e->data, e->len);
            }
        } else if (bug(r, MF_RAFT_BUG_TRUNCATE_STALE) && lastnew < mf_raft_log_last_index(r)) {
            /* Planted bug (b): drop the suffix a stale, shorter message does
             * not mention, by rewriting its last entry. */
            uint64_t cut = lastnew > r->commit ? lastnew : r->commit;
            if (cut >= mf_raft_log_first_index(r) && cut < mf_raft_log_last_index(r)) {
                struct mf_raft_entry *e;
                size_t n;
                if (mf_raft_log_fetch(r, cut, cut + 1, UINT64_MAX, &e, &n) == 0 && n == 1) {
                    mf_raft_log_truncate_from(r, cut);
                    mf_raft_log_append(r, e->term, e->index, e->type, e->data, e->len);
                }
            }
        }
        uint64_t c = m->commit < lastnew ? m->commit : lastnew;
        mf_raft_log_commit_to(r, c);
        struct mf_raft_msg *o = mf_raft_msg_new(r, MF_RAFT_MSG_APP_RESP, m->from);
        if (o)
            o->index = lastnew;
        return;
    }
    /* Reject with a hint: the last index at or before the probe whose term
     * is <= the leader's term there, so the leader skips whole terms. */
    uint64_t hint = m->index;
    uint64_t li = mf_raft_log_last_index(r);
    if (hint > li)
        hint = li;
    uint64_t ht = 0;
    for (;;) {
        int rc = mf_raft_log_term(r, hint, &ht);
        if (rc != 0) {
            ht = 0;
            break;
        }
        if (ht <= m->log_term || hint == 0)
            break;
        hint--;
    }
    struct mf_raft_msg *o = mf_raft_msg_new(r, MF_RAFT_MSG_APP_RESP, m->from);
    if (o) {
        o->index = m->index;
        o->reject = true;
        o->reject_hint = hint;
        o->log_term = ht;
    }
}

static void handle_heartbeat(struct mf_raft *r, const struct mf_raft_msg *m)
{
    uint64_t li = mf_raft_log_last_index(r);
    mf_raft_log_commit_to(r, m->commit < li ? m->commit : li);
    struct mf_raft_msg *o = mf_raft_msg_new(r, MF_RAFT_MSG_HEARTBEAT_RESP, m->from);
    if (o)
        o->ctx = m->ctx;
}

static void handle_snapshot(struct mf_raft *r, const struct mf_raft_msg *m)
{
    const struct mf_raft_snapshot_meta *meta = &m->snapshot;
    if (meta->index <= r->commit) {
        /* Already have it (never move commit or applied backwards). */
        r->srecv_active = false;
        snap_resp(r, m->from, meta->index, 0, SNAP_ACK_DONE);
        return;
    }
    if (mf_raft_log_match_term(r, meta->index, meta->term)) {
        /* Our log already holds the snapshot's last entry: fast-forward. */
        mf_raft_log_commit_to(r, meta->index);
        r->srecv_active = false;
        snap_resp(r, m->from, meta->index, 0, SNAP_ACK_DONE);
        return;
    }
    if (m->snapshot_offset == 0) {
        r->srecv_active = true;
        r->srecv_meta = *meta;
        r->srecv_offset = 0;
    }
    if (!r->srecv_active || r->srecv_meta.index != meta->index ||
        r->srecv_meta.term != meta->term || m->snapshot_offset != r->srecv_offset) {
        bool same = r->srecv_active && r->srecv_meta.index == meta->index &&
                    r->srecv_meta.term == meta->term;
        snap_resp(r, m->from, meta->index, same ? r->srecv_offset : 0, SNAP_ACK_REJECT);
        return;
    }
    struct mf_raft_snapshot_chunk ch;
    memset(&ch, 0, sizeof(ch));
    ch.meta = *meta;
    ch.offset = m->snapshot_offset;
    ch.len = m->snapshot_chunk_len;
    ch.done = m->snapshot_done;
    if (ch.len) {
        uint8_t *d = mf_raft_arena_alloc(r, ch.len);
        if (!d)
            return;
        memcpy(d, m->snapshot_chunk, ch.len);
        ch.data = d;
    }
    VEC_PUSH(r, r->chunks, ch);
    r->srecv_offset += ch.len;
    if (!m->snapshot_done) {
        snap_resp(r, m->from, meta->index, r->srecv_offset, SNAP_ACK_NEXT);
        return;
    }
    r->srecv_active = false;
    mf_raft_log_restore(r, meta);
    snap_resp(r, m->from, meta->index, r->srecv_offset, SNAP_ACK_DONE);
}

static void leader_heartbeat_resp(struct mf_raft *r, struct progress *pr,
                                  const struct mf_raft_msg *m)
{
    if (pr->state == PR_PROBE)
        pr->probe_sent = false;
    /* A full window whose messages were lost would stall forever:
     * release one slot per heartbeat round (etcd does the same). */
    if (pr->state == PR_REPLICATE && pr->infl_count >= r->cfg.max_inflight)
        mf_raft_pr_infl_free_le(pr, pr->infl[pr->infl_start]);
    /* A lagging follower gets an AppendEntries even if nothing new is
     * left to send optimistically: if our earlier ones were lost, its
     * rejection brings the progress back to probing. */
    if (pr->match < mf_raft_log_last_index(r))
        mf_raft_pr_send_append(r, pr, APPEND_EMPTY_OK);
    mf_raft_ro_ack(r, m->from, m->ctx);
}

/* A rejected AppendEntries: probe back, skipping whole terms with the
 * follower's hint; a stale reject never moves next back. */
static void leader_app_reject(struct mf_raft *r, struct progress *pr, const struct mf_raft_msg *m)
{
    uint64_t hint = m->reject_hint;
    if (m->log_term > 0)
        hint = mf_raft_log_find_conflict_by_term(r, m->reject_hint, m->log_term);
    bool decr = false;
    if (pr->state == PR_REPLICATE) {
        if (m->index > pr->match) {
            mf_raft_pr_become_probe(pr);
            decr = true;
        }
    } else if (pr->state == PR_PROBE && pr->next - 1 == m->index) {
        uint64_t n = m->index < hint + 1 ? m->index : hint + 1;
        if (n < pr->match + 1)
            n = pr->match + 1;
        pr->next = n;
        pr->probe_sent = false;
        decr = true;
    }
    if (decr)
        mf_raft_pr_send_append(r, pr, APPEND_EMPTY_OK);
}

static void leader_app_resp(struct mf_raft *r, struct progress *pr, const struct mf_raft_msg *m)
{
    if (m->index < pr->match || (m->index == pr->match && pr->state != PR_PROBE))
        return; /* stale or duplicate */
    pr->match = m->index;
    if (pr->next < m->index + 1)
        pr->next = m->index + 1;
    if (pr->state == PR_PROBE)
        mf_raft_pr_become_replicate(pr);
    else if (pr->state == PR_SNAPSHOT && pr->match >= pr->snap.index)
        mf_raft_pr_become_probe(pr);
    else if (pr->state == PR_REPLICATE)
        mf_raft_pr_infl_free_le(pr, m->index);
    MF_ASSERT(pr->match < pr->next);
    if (mf_raft_pr_maybe_commit(r)) {
        mf_raft_after_commit(r);
        if (r->role != MF_RAFT_LEADER)
            return;
    }
    while (mf_raft_pr_send_append(r, pr, APPEND_IF_ENTRIES))
        ;
    if (m->from == r->transferee && pr->match == mf_raft_log_last_index(r)) {
        mf_raft_msg_new(r, MF_RAFT_MSG_TIMEOUT_NOW, m->from);
    }
}

static void leader_snap_resp(struct mf_raft *r, struct progress *pr, const struct mf_raft_msg *m)
{
    if (pr->state != PR_SNAPSHOT || m->index != pr->snap.index)
        return;
    if (m->snapshot_done && !m->reject) {
        if (pr->match < pr->snap.index)
            pr->match = pr->snap.index;
        mf_raft_pr_become_probe(pr);
        if (mf_raft_pr_maybe_commit(r)) {
            mf_raft_after_commit(r);
            if (r->role != MF_RAFT_LEADER)
                return;
        }
        mf_raft_pr_send_append(r, pr, APPEND_EMPTY_OK);
        return;
    }
    /* An ack or a reject names the offset the follower wants next. */
    pr->snap_offset = m->snapshot_offset;
    pr->snap_wait = false;
    mf_raft_pr_send_snap_chunk(r, pr);
}

static void step_leader(struct mf_raft *r, const struct mf_raft_msg *m)
{
    struct progress *pr = mf_raft_pr_find(r, m->from);
    if (!pr)
        return;
    switch (m->type) {
    case MF_RAFT_MSG_READ_INDEX:
        mf_raft_ro_leader_read(r, m->from, m->ctx);
        return;
    case MF_RAFT_MSG_HEARTBEAT_RESP:
        pr->recent_active = true;
        leader_heartbeat_resp(r, pr, m);
        return;
    case MF_RAFT_MSG_APP_RESP:
        pr->recent_active = true;
        if (m->reject)
            leader_app_reject(r, pr, m);
        else
            leader_app_resp(r, pr, m);
        return;
    case MF_RAFT_MSG_SNAP_RESP:
        pr->recent_active = true;
        leader_snap_resp(r, pr, m);
        return;
    default:
        return;
    }
}

static void step_candidate(struct mf_raft *r, const struct mf_raft_msg *m)
{
    uint32_t want = r->role == MF_RAFT_PRE_CANDIDATE ? MF_RAFT_MSG_PRE_VOTE_RESP
                                                      : MF_RAFT_MSG_VOTE_RESP;
    switch (m->type) {
    case MF_RAFT_MSG_APP:
        mf_raft_become_follower(r, m->term, m->from);
        handle_append(r, m);
        return;
    case MF_RAFT_MSG_HEARTBEAT:
        mf_raft_become_follower(r, m->term, m->from);
        handle_heartbeat(r, m);
        return;
    case MF_RAFT_MSG_SNAP:
        mf_raft_become_follower(r, m->term, m->from);
        handle_snapshot(r, m);
        return;
    default:
        break;
    }
    if (m->type != want)
        return;
    switch (mf_raft_poll(r, m->from, !m->reject)) {
    case POLL_WON:
        if (r->role == MF_RAFT_PRE_CANDIDATE) {
            mf_raft_campaign_start(r, CAMPAIGN_ELECTION);
        } else {
            mf_raft_become_leader(r);
        }
        return;
    case POLL_LOST:
        mf_raft_become_follower(r, r->term, 0);
        return;
    case POLL_PENDING:
        return;
    }
}

static void step_follower(struct mf_raft *r, const struct mf_raft_msg *m)
{
    switch (m->type) {
    case MF_RAFT_MSG_APP:
        r->election_elapsed = 0;
        mf_raft_note_lead(r, m->from);
        handle_append(r, m);
        return;
    case MF_RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        mf_raft_note_lead(r, m->from);
        handle_heartbeat(r, m);
        return;
    case MF_RAFT_MSG_SNAP:
        r->election_elapsed = 0;
        mf_raft_note_lead(r, m->from);
        handle_snapshot(r, m);
        return;
    case MF_RAFT_MSG_TIMEOUT_NOW:
        /* Leadership transfer: campaign at once, no pre-vote, and voters
         * skip their leader-lease check. */
        mf_raft_campaign_start(r, CAMPAIGN_TRANSFER);
        return;
    case MF_RAFT_MSG_READ_INDEX_RESP:
        if (!m->reject) {
            struct mf_raft_read_state rs = {.index = m->index, .ctx = m->ctx};
            VEC_PUSH(r, r->reads, rs);
        }
        return;
    default:
        return;
    }
}

/* A leader's message for this term from another node than the leader this
 * node already knows for it. Among honest peers that cannot happen (election
 * safety), so such a message is malformed or hostile: refused, never
 * followed, and it never stops the node (found by fuzz_raft_step). */
static bool second_leader(const struct mf_raft *r, const struct mf_raft_msg *m)
{
    bool from_leader = m->type == MF_RAFT_MSG_APP || m->type == MF_RAFT_MSG_HEARTBEAT ||
                       m->type == MF_RAFT_MSG_SNAP;
    return from_leader && m->term == r->term && r->lead_seen_term == r->term &&
           r->lead_seen != 0 && r->lead_seen != m->from;
}

int mf_raft_step(struct mf_raft *r, const struct mf_raft_msg *m)
{
    if (r->fatal)
        return r->fatal;
    if (!m || m->to != r->id || m->from == 0 || m->from == r->id)
        return MF_EINVAL;
    if (m->entries_len && !m->entries)
        return MF_EINVAL;
    bool vote_req = m->type == MF_RAFT_MSG_VOTE || m->type == MF_RAFT_MSG_PRE_VOTE;
    if (m->term > r->term) {
        if (vote_req) {
            bool force = m->ctx == MF_RAFT_CAMPAIGN_TRANSFER;
            bool in_lease = (r->cfg.check_quorum || m->type == MF_RAFT_MSG_PRE_VOTE) &&
                            r->lead != 0 &&
                            r->election_elapsed < r->cfg.election_ticks;
            if (!force && in_lease)
                return 0; /* heard from a leader recently: do not disrupt it */
        }
        if (m->type == MF_RAFT_MSG_PRE_VOTE) {
            /* pre-votes never change our term */
        } else if (m->type == MF_RAFT_MSG_PRE_VOTE_RESP && !m->reject) {
            /* granted with term+1: counted below */
        } else if (m->type == MF_RAFT_MSG_APP || m->type == MF_RAFT_MSG_HEARTBEAT ||
                   m->type == MF_RAFT_MSG_SNAP) {
            mf_raft_become_follower(r, m->term, m->from);
        } else {
            mf_raft_become_follower(r, m->term, 0);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == MF_RAFT_MSG_APP || m->type == MF_RAFT_MSG_HEARTBEAT)) {
            /* Tell a stale leader about the newer term. */
            mf_raft_msg_new(r, MF_RAFT_MSG_APP_RESP, m->from);
        } else if (m->type == MF_RAFT_MSG_PRE_VOTE) {
            struct mf_raft_msg *o = mf_raft_msg_new(r, MF_RAFT_MSG_PRE_VOTE_RESP, m->from);
            if (o)
                o->reject = true;
        }
        return r->fatal;
    }

    if (vote_req) {
        bool pre = m->type == MF_RAFT_MSG_PRE_VOTE;
        bool can_vote = r->vote == m->from || (r->vote == 0 && r->lead == 0) ||
                        (pre && m->term > r->term);
        uint64_t lt = mf_raft_log_last_term(r), li = mf_raft_log_last_index(r);
        bool up_to_date = m->log_term > lt || (m->log_term == lt && m->index >= li);
        struct mf_raft_msg *o = mf_raft_msg_new(r, pre ? MF_RAFT_MSG_PRE_VOTE_RESP : MF_RAFT_MSG_VOTE_RESP,
                                        m->from);
        if (can_vote && up_to_date) {
            if (o)
                o->term = m->term;
            if (!pre) {
                r->election_elapsed = 0;
                r->vote = m->from;
            }
        } else if (o) {
            o->reject = true;
        }
        return r->fatal;
    }

    if (second_leader(r, m))
        return MF_EINVAL;
    switch (r->role) {
    case MF_RAFT_LEADER:
        step_leader(r, m);
        break;
    case MF_RAFT_CANDIDATE:
    case MF_RAFT_PRE_CANDIDATE:
        step_candidate(r, m);
        break;
    case MF_RAFT_FOLLOWER:
        step_follower(r, m);
        break;
    }
    return r->fatal;
}
