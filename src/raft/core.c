/* The pure Raft core (see core.h for the contract and README.md for the
 * decisions). Everything here is deterministic: time is mf_raft_tick, the only
 * randomness is a splitmix64 stream seeded from the config, the only reads are
 * through the storage interface and the snapshot callback.
 *
 * Memory: the unstable log (entries appended but not yet durable) owns a copy
 * of each entry's bytes (one malloc per proposal: the caller's buffer is not
 * ours to keep). Everything handed out in a ready batch lives in an arena of
 * grow-only blocks; there are two, one filling with the next batch while the
 * other holds the batch in flight, so steady state allocates nothing.
 *
 * This file: role changes and elections, tick, the API calls, ready/advance,
 * init/close. The log, progress, ReadIndex, configuration and message
 * handling have files of their own (README.md, "Files").
 */
#include "raft/core_int.h"

#ifdef MF_RAFT_BUG_HOOKS
struct mf_raft_bugs mf_raft_bugs;
#endif


static uint64_t rng_next(struct mf_raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void reset_rand_timeout(struct mf_raft *r)
{
    r->rand_timeout = r->cfg.election_ticks + (uint32_t)(rng_next(r) % r->cfg.election_ticks);
}

static void reset(struct mf_raft *r, uint64_t term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = 0;
    }
    r->lead = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_rand_timeout(r);
    r->transferee = 0;
    r->votes_len = 0;
    r->bcast_pending = false;
    mf_raft_ro_reset(r);
    mf_raft_pr_reset_all(r);
}

/* Sets the leader of the current term. Election safety as this node sees it:
 * once it knows a leader of a term, no other node leads that term. */
void mf_raft_note_lead(struct mf_raft *r, uint64_t lead)
{
    r->lead = lead;
    if (lead == 0)
        return;
    if (r->lead_seen_term == r->term && r->lead_seen != 0) /* 0: none seen yet */
        LOG_INVARIANT(r, r->lead_seen == lead);
    r->lead_seen_term = r->term;
    r->lead_seen = lead;
}

void mf_raft_become_follower(struct mf_raft *r, uint64_t term, uint64_t lead)
{
    reset(r, term);
    mf_raft_note_lead(r, lead);
    r->role = MF_RAFT_FOLLOWER;
}

static void become_pre_candidate(struct mf_raft *r)
{
    MF_ASSERT(r->role != MF_RAFT_LEADER);
    r->role = MF_RAFT_PRE_CANDIDATE;
    r->lead = 0;
    r->votes_len = 0;
    r->election_elapsed = 0;
    reset_rand_timeout(r);
}

static void become_candidate(struct mf_raft *r)
{
    MF_ASSERT(r->role != MF_RAFT_LEADER);
    reset(r, r->term + 1);
    r->vote = r->id;
    r->role = MF_RAFT_CANDIDATE;
}

void mf_raft_become_leader(struct mf_raft *r)
{
    MF_ASSERT(r->role == MF_RAFT_CANDIDATE);
    reset(r, r->term);
    mf_raft_note_lead(r, r->id);
    r->role = MF_RAFT_LEADER;
    uint64_t li = mf_raft_log_last_index(r);
    /* No conf change until the no-op of this term commits. */
    r->pending_conf_index = li + 1;
    mf_raft_log_append(r, r->term, li + 1, MF_RAFT_ENTRY_NOOP, NULL, 0);
    mf_raft_pr_bcast_append(r, APPEND_EMPTY_OK);
}

/* A node campaigns if it is a voter in its latest configuration, or in the
 * committed one: a leader that appended its own removal and then lost its
 * quorum may be the only node holding that entry, and must still be able to
 * lead until it commits (Ongaro's thesis, 4.2.2). Its own vote does not
 * count (the latest configuration decides). */

static bool promotable(struct mf_raft *r)
{
    /* The shell blocks campaigning while this node's clock disagrees with a
     * quorum (issue 16); the node still votes for others. */
    if (r->u_snap_pending || r->campaign_blocked)
        return false;
    if (mf_raft_conf_is_voter(&r->conf, r->id))
        return true;
    struct mf_raft_conf_state c;
    mf_raft_conf_at(r, r->commit, &c);
    return mf_raft_conf_is_voter(&c, r->id);
}

enum poll_result mf_raft_poll(struct mf_raft *r, uint64_t id, bool granted)
{
    if (!mf_raft_conf_is_voter(&r->conf, id))
        return POLL_PENDING;
    bool seen = false;
    for (size_t k = 0; k < r->votes_len; k++)
        if (r->votes_id[k] == id)
            seen = true;
    if (!seen && r->votes_len < MF_RAFT_NODES_MAX) {
        r->votes_id[r->votes_len] = id;
        r->votes_granted[r->votes_len] = granted;
        r->votes_len++;
    }
    size_t yes = 0, no = 0;
    for (size_t k = 0; k < r->votes_len; k++) {
        if (!mf_raft_conf_is_voter(&r->conf, r->votes_id[k]))
            continue;
        if (r->votes_granted[k])
            yes++;
        else
            no++;
    }
    size_t q = mf_raft_conf_quorum(&r->conf);
    if (yes >= q)
        return POLL_WON;
    if (r->conf.voters_len - no < q)
        return POLL_LOST;
    return POLL_PENDING;
}

void mf_raft_campaign_start(struct mf_raft *r, enum campaign_type ct)
{
    if (!promotable(r))
        return;
    uint32_t type;
    uint64_t term;
    bool pre = ct == CAMPAIGN_PRE_ELECTION;
    if (pre) {
        become_pre_candidate(r);
        type = MF_RAFT_MSG_PRE_VOTE;
        term = r->term + 1;
    } else {
        become_candidate(r);
        type = MF_RAFT_MSG_VOTE;
        term = r->term;
    }
    if (mf_raft_poll(r, r->id, true) == POLL_WON) {
        if (pre)
            mf_raft_campaign_start(r, CAMPAIGN_ELECTION);
        else
            mf_raft_become_leader(r);
        return;
    }
    uint64_t li = mf_raft_log_last_index(r);
    uint64_t lt = mf_raft_log_last_term(r);
    for (uint32_t i = 0; i < r->conf.voters_len; i++) {
        uint64_t id = r->conf.voters[i];
        if (id == r->id)
            continue;
        struct mf_raft_msg *m = mf_raft_msg_new(r, type, id);
        if (!m)
            return;
        m->term = term;
        m->index = li;
        m->log_term = lt;
        m->ctx = ct == CAMPAIGN_TRANSFER ? MF_RAFT_CAMPAIGN_TRANSFER : 0;
    }
}

void mf_raft_after_commit(struct mf_raft *r)
{
    mf_raft_pr_bcast_append(r, APPEND_EMPTY_OK);
    mf_raft_ro_maybe_start_round(r);
    /* A leader that removed itself steps down once the removal commits. */
    if (r->role == MF_RAFT_LEADER && !mf_raft_conf_is_voter(&r->conf, r->id) &&
        r->commit >= r->pending_conf_index)
        mf_raft_become_follower(r, r->term, 0);
}

int mf_raft_tick(struct mf_raft *r)
{
    if (r->fatal)
        return r->fatal;
    if (r->role != MF_RAFT_LEADER) {
        r->election_elapsed++;
        if (promotable(r) && r->election_elapsed >= r->rand_timeout) {
            r->election_elapsed = 0;
            mf_raft_campaign_start(r, r->cfg.pre_vote ? CAMPAIGN_PRE_ELECTION : CAMPAIGN_ELECTION);
        }
        return r->fatal;
    }
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            size_t active = 0;
            for (size_t k = 0; k < r->prs_len; k++) {
                struct progress *pr = &r->prs[k];
                if (pr->learner)
                    continue;
                if (pr->id == r->id || pr->recent_active)
                    active++;
                if (pr->id != r->id)
                    pr->recent_active = false;
            }
            if (active < mf_raft_conf_quorum(&r->conf)) {
                mf_raft_become_follower(r, r->term, 0);
                return r->fatal;
            }
        }
        r->transferee = 0; /* a transfer that did not finish in time is aborted */
    }
    for (size_t k = 0; k < r->prs_len; k++) {
        struct progress *pr = &r->prs[k];
        if (pr->state == PR_SNAPSHOT && pr->snap_wait &&
            ++pr->snap_stall_ticks > 2 * r->cfg.heartbeat_ticks) {
            pr->snap_wait = false; /* chunk or its ack lost: resend */
            mf_raft_pr_send_snap_chunk(r, pr);
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        mf_raft_pr_bcast_heartbeat(r);
    }
    return r->fatal;
}

int mf_raft_propose(struct mf_raft *r, const uint8_t *data, uint32_t len, uint64_t *index)
{
    if (r->fatal)
        return r->fatal;
    if (r->role != MF_RAFT_LEADER)
        return MF_ENOTLEADER;
    if (r->transferee)
        return MF_EUNAVAIL;
    if (len > r->cfg.max_msg_bytes)
        return MF_ETOOLARGE;
    if (r->u_bytes + len > r->cfg.max_uncommitted_bytes)
        return -ENOBUFS;
    uint64_t i = mf_raft_log_last_index(r) + 1;
    int rc = mf_raft_log_append(r, r->term, i, MF_RAFT_ENTRY_NORMAL, data, len);
    if (rc < 0)
        return rc;
    if (index)
        *index = i;
    r->bcast_pending = true;
    return 0;
}

int mf_raft_propose_conf_change(struct mf_raft *r, enum mf_raft_conf_change_type type,
                                uint64_t node, uint64_t *index)
{
    return mf_raft_propose_conf_change_tail(r, type, node, NULL, 0, index);
}

int mf_raft_propose_conf_change_tail(struct mf_raft *r, enum mf_raft_conf_change_type type,
                                     uint64_t node, const uint8_t *tail, uint32_t tail_len,
                                     uint64_t *index)
{
    if (r->fatal)
        return r->fatal;
    if (r->role != MF_RAFT_LEADER)
        return MF_ENOTLEADER;
    if (r->transferee)
        return MF_EUNAVAIL;
    if (node == 0 || (tail_len && !tail))
        return MF_EINVAL;
    if (tail_len > MF_RAFT_CONF_TAIL_MAX)
        return MF_ETOOLARGE;
    /* The single-server change rule: the no-op of this term is committed
     * and no other change is uncommitted. */
    if (!mf_raft_log_committed_in_term(r) || r->pending_conf_index > r->commit)
        return -EBUSY;
    const struct mf_raft_conf_state *c = &r->conf;
    switch (type) {
    case MF_RAFT_CONF_ADD_VOTER:
        if (mf_raft_conf_is_voter(c, node))
            return MF_EEXISTS;
        if (!mf_raft_conf_is_learner(c, node) && c->voters_len + c->learners_len >= MF_RAFT_NODES_MAX)
            return MF_ETOOLARGE;
        break;
    case MF_RAFT_CONF_ADD_LEARNER:
        if (mf_raft_conf_is_voter(c, node) || mf_raft_conf_is_learner(c, node))
            return MF_EEXISTS;
        if (c->voters_len + c->learners_len >= MF_RAFT_NODES_MAX)
            return MF_ETOOLARGE;
        break;
    case MF_RAFT_CONF_REMOVE:
        if (!mf_raft_conf_is_voter(c, node) && !mf_raft_conf_is_learner(c, node))
            return MF_ENOTFOUND;
        if (mf_raft_conf_is_voter(c, node) && c->voters_len == 1)
            return MF_EINVAL; /* would leave no voter */
        break;
    default:
        return MF_EINVAL;
    }
    uint8_t buf[MF_RAFT_CONF_ENTRY_LEN + MF_RAFT_CONF_TAIL_MAX];
    mf_raft_conf_encode(buf, type, node);
    if (tail_len)
        memcpy(buf + MF_RAFT_CONF_ENTRY_LEN, tail, tail_len);
    uint64_t i = mf_raft_log_last_index(r) + 1;
    int rc = mf_raft_log_append(r, r->term, i, MF_RAFT_ENTRY_CONF, buf,
                                MF_RAFT_CONF_ENTRY_LEN + tail_len);
    if (rc < 0)
        return rc;
    r->pending_conf_index = i;
    mf_raft_pr_sync(r);
    if (index)
        *index = i;
    r->bcast_pending = true;
    return 0;
}

int mf_raft_transfer_leader(struct mf_raft *r, uint64_t to)
{
    if (r->fatal)
        return r->fatal;
    if (r->role != MF_RAFT_LEADER)
        return MF_ENOTLEADER;
    if (to == r->id)
        return 0;
    if (!mf_raft_conf_is_voter(&r->conf, to))
        return MF_EINVAL;
    if (r->transferee == to)
        return 0;
    struct progress *pr = mf_raft_pr_find(r, to);
    if (!pr)
        return MF_EINVAL;
    r->transferee = to;
    r->election_elapsed = 0;
    if (pr->match == mf_raft_log_last_index(r))
        mf_raft_msg_new(r, MF_RAFT_MSG_TIMEOUT_NOW, to);
    else
        mf_raft_pr_send_append(r, pr, APPEND_EMPTY_OK);
    return r->fatal;
}

void mf_raft_set_campaign_allowed(struct mf_raft *r, bool allowed)
{
    r->campaign_blocked = !allowed;
}

int mf_raft_campaign(struct mf_raft *r)
{
    if (r->fatal)
        return r->fatal;
    if (r->campaign_blocked)
        return MF_EUNAVAIL;
    if (!promotable(r))
        return MF_EINVAL;
    if (r->role == MF_RAFT_LEADER)
        return 0;
    mf_raft_campaign_start(r, r->cfg.pre_vote ? CAMPAIGN_PRE_ELECTION : CAMPAIGN_ELECTION);
    return r->fatal;
}

int mf_raft_snapshot_taken(struct mf_raft *r, uint64_t index, struct mf_raft_snapshot_meta *meta)
{
    if (r->fatal)
        return r->fatal;
    if (index > r->applied || index > mf_raft_log_persisted_index(r))
        return MF_EINVAL;
    uint64_t t;
    int rc = mf_raft_log_term(r, index, &t);
    if (rc < 0)
        return rc;
    if (index < mf_raft_log_first_index(r))
        return MF_ECOMPACTED;
    memset(meta, 0, sizeof(*meta));
    meta->index = index;
    meta->term = t;
    mf_raft_conf_fold_to(r, index, &meta->conf);
    return 0;
}

void mf_raft_status(const struct mf_raft *cr, struct mf_raft_status *st)
{
    struct mf_raft *r = (struct mf_raft *)cr; /* reads may latch a storage error */
    memset(st, 0, sizeof(*st));
    st->id = r->id;
    st->term = r->term;
    st->vote = r->vote;
    st->lead = r->lead;
    st->role = r->role;
    st->commit = r->commit;
    st->applied = r->applied;
    st->first_index = mf_raft_log_first_index(r);
    st->last_index = mf_raft_log_last_index(r);
    st->persisted_index = mf_raft_log_persisted_index(r);
    st->conf = r->conf;
}

static bool hs_equal(const struct mf_raft_hard_state *a, const struct mf_raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

bool mf_raft_has_ready(const struct mf_raft *cr)
{
    struct mf_raft *r = (struct mf_raft *)cr;
    if (r->rd_inflight || r->fatal)
        return false;
    struct mf_raft_hard_state hs = {r->term, r->vote, r->commit};
    return !hs_equal(&hs, &r->hs_persisted) || r->soft_prev.lead != r->lead ||
           r->soft_prev.role != r->role || r->u_len || r->u_snap_pending || r->msgs.len ||
           r->chunks.len || r->reads.len || r->bcast_pending || mf_raft_log_apply_limit(r) > r->applied;
}

static bool may_go_before(const struct mf_raft_msg *m)
{
    switch (m->type) {
    case MF_RAFT_MSG_APP:
    case MF_RAFT_MSG_HEARTBEAT:
    case MF_RAFT_MSG_SNAP:
    case MF_RAFT_MSG_TIMEOUT_NOW:
    case MF_RAFT_MSG_READ_INDEX:
    case MF_RAFT_MSG_READ_INDEX_RESP:
        return true;
    default:
        return false;
    }
}

/* An acknowledgement queued before this batch that is no longer true: sent
 * in an older term (a newer leader may have truncated what it acknowledged
 * since), or for an entry past the log this batch saves. A stale leader
 * counting it could commit an entry this node no longer holds: dropped (the
 * old leader is deposed anyway; the current one gets fresh answers). Found by
 * the simulator's durability check (seeds 18887 and 19131, 3 voters). */
static bool stale_ack(const struct mf_raft *r, const struct mf_raft_msg *m, uint64_t last)
{
    return m->type == MF_RAFT_MSG_APP_RESP && !m->reject && (m->term < r->term || m->index > last);
}

int mf_raft_ready(struct mf_raft *r, struct mf_raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    if (r->fatal)
        return r->fatal;
    MF_ASSERT(!r->rd_inflight);
    LOG_INVARIANT(r, r->commit <= mf_raft_log_last_index(r));
    if (r->bcast_pending) {
        r->bcast_pending = false;
        if (r->role == MF_RAFT_LEADER) {
            mf_raft_pr_bcast_append(r, APPEND_IF_ENTRIES);
            /* A single voter commits at advance; nothing else to do. */
        }
    }
    rd->hard_state.term = r->term;
    rd->hard_state.vote = r->vote;
    rd->hard_state.commit = r->commit;
    rd->hard_state_changed = !hs_equal(&rd->hard_state, &r->hs_persisted);
    rd->soft_state.lead = r->lead;
    rd->soft_state.role = r->role;
    rd->soft_state_changed = r->soft_prev.lead != r->lead || r->soft_prev.role != r->role;
    r->soft_prev = rd->soft_state;

    if (r->u_snap_pending) {
        struct mf_raft_snapshot_meta *s = mf_raft_arena_alloc(r, sizeof(*s));
        if (!s)
            return r->fatal;
        *s = r->u_snap;
        rd->snapshot = s;
    }
    if (r->u_len) {
        if (mf_raft_log_copy_unstable(r, &rd->entries) < 0 || r->fatal)
            return r->fatal;
        rd->entries_len = r->u_len;
    }
    uint64_t hi = mf_raft_log_apply_limit(r);
    if (hi > r->applied) {
        int rc = mf_raft_log_fetch(r, r->applied + 1, hi + 1, r->cfg.max_apply_bytes, &rd->committed,
                               &rd->committed_len);
        if (rc < 0) {
            latch(r, rc == MF_ECOMPACTED ? MF_ECORRUPT : rc);
            return r->fatal;
        }
    }
    if (r->chunks.len) {
        rd->snapshot_chunks = mf_raft_arena_alloc(r, r->chunks.len * sizeof(*rd->snapshot_chunks));
        if (!rd->snapshot_chunks)
            return r->fatal;
        memcpy(rd->snapshot_chunks, r->chunks.v, r->chunks.len * sizeof(*r->chunks.v));
        rd->snapshot_chunks_len = r->chunks.len;
        r->chunks.len = 0;
    }
    if (r->reads.len) {
        rd->read_states = mf_raft_arena_alloc(r, r->reads.len * sizeof(*rd->read_states));
        if (!rd->read_states)
            return r->fatal;
        memcpy(rd->read_states, r->reads.v, r->reads.len * sizeof(*r->reads.v));
        rd->read_states_len = r->reads.len;
        r->reads.len = 0;
    }
    if (r->msgs.len) {
        /* If this batch changes term or vote, everything waits for the save:
         * a leader must not speak in a term it could forget. */
        bool hs_vote_change = rd->hard_state.term != r->hs_persisted.term ||
                              rd->hard_state.vote != r->hs_persisted.vote;
        size_t nb = 0, na = 0;
        struct mf_raft_msg *b = mf_raft_arena_alloc(r, r->msgs.len * sizeof(*b));
        struct mf_raft_msg *a = mf_raft_arena_alloc(r, r->msgs.len * sizeof(*a));
        if (!a || !b)
            return r->fatal;
        uint64_t li = mf_raft_log_last_index(r);
        for (size_t k = 0; k < r->msgs.len; k++) {
            const struct mf_raft_msg *m = &r->msgs.v[k];
            if (stale_ack(r, m, li))
                continue;
            bool before = !hs_vote_change && may_go_before(m);
            if (bug(r, MF_RAFT_BUG_VOTE_BEFORE_PERSIST) && !m->reject &&
                (m->type == MF_RAFT_MSG_VOTE_RESP || m->type == MF_RAFT_MSG_PRE_VOTE_RESP))
                before = true; /* planted bug (c) */
            if (before)
                b[nb++] = *m;
            else
                a[na++] = *m;
        }
        rd->msgs_before = nb ? b : NULL;
        rd->msgs_before_len = nb;
        rd->msgs_after = na ? a : NULL;
        rd->msgs_after_len = na;
        r->msgs.len = 0;
    }
    if (r->fatal)
        return r->fatal;
    /* The filled arena now belongs to rd; new output fills the other. */
    r->arena_cur ^= 1;
    mf_raft_arena_reset(&r->arenas[r->arena_cur]);
    r->rd_inflight = true;
    return 0;
}

int mf_raft_advance(struct mf_raft *r, struct mf_raft_ready *rd)
{
    if (r->fatal)
        return r->fatal;
    MF_ASSERT(r->rd_inflight);
    r->rd_inflight = false;
    r->hs_persisted = rd->hard_state;
    if (rd->snapshot && r->u_snap_pending && r->u_snap.index == rd->snapshot->index &&
        r->u_snap.term == rd->snapshot->term) {
        r->u_snap_pending = false;
    }
    if (rd->snapshot && rd->snapshot->index > r->applied)
        r->applied = rd->snapshot->index;
    if (rd->entries_len) {
        const struct mf_raft_entry *last = &rd->entries[rd->entries_len - 1];
        mf_raft_log_stable_to(r, last->index, last->term);
    }
    if (rd->committed_len) {
        uint64_t li = rd->committed[rd->committed_len - 1].index;
        if (li > r->applied)
            r->applied = li;
    }
    /* The batch's arena is the one not filling. */
    mf_raft_arena_reset(&r->arenas[r->arena_cur ^ 1]);
    memset(rd, 0, sizeof(*rd));
    if (r->role == MF_RAFT_LEADER && mf_raft_pr_maybe_commit(r))
        mf_raft_after_commit(r);
    return r->fatal;
}

int mf_raft_init(const struct mf_raft_config *cfg, struct mf_raft **out)
{
    *out = NULL;
    if (!cfg || cfg->id == 0 || !cfg->storage || cfg->election_ticks < 2 ||
        cfg->heartbeat_ticks == 0 || cfg->heartbeat_ticks >= cfg->election_ticks ||
        cfg->voters_len > MF_RAFT_NODES_MAX || cfg->learners_len > MF_RAFT_NODES_MAX ||
        cfg->voters_len + cfg->learners_len > MF_RAFT_NODES_MAX ||
        cfg->max_inflight > MF_RAFT_INFLIGHT_MAX)
        return MF_EINVAL;
    struct mf_raft *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->prs = calloc(MF_RAFT_NODES_MAX, sizeof(*r->prs));
    if (!r->prs) {
        free(r);
        return -ENOMEM;
    }
    r->cfg = *cfg;
    if (r->cfg.max_msg_bytes == 0)
        r->cfg.max_msg_bytes = 1024 * 1024;
    if (r->cfg.max_inflight == 0)
        r->cfg.max_inflight = 64;
    if (r->cfg.max_apply_bytes == 0)
        r->cfg.max_apply_bytes = 4 * 1024 * 1024;
    if (r->cfg.max_uncommitted_bytes == 0)
        r->cfg.max_uncommitted_bytes = 64ull * 1024 * 1024;
    if (r->cfg.max_pending_reads == 0)
        r->cfg.max_pending_reads = 4096;
    if (r->cfg.snapshot_chunk_bytes == 0)
        r->cfg.snapshot_chunk_bytes = 64 * 1024;
    r->st = cfg->storage;
    r->id = cfg->id;
    r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dull);

    int rc;
    struct mf_raft_hard_state hs;
    struct mf_raft_snapshot_meta snap;
    uint64_t fi = 0, li = 0;
    if ((rc = r->st->hard_state(r->st->ctx, &hs)) < 0 ||
        (rc = r->st->snapshot_meta(r->st->ctx, &snap)) < 0 ||
        (rc = r->st->first_index(r->st->ctx, &fi)) < 0 ||
        (rc = r->st->last_index(r->st->ctx, &li)) < 0)
        goto fail;
    if (snap.index) {
        r->base_conf = snap.conf;
    } else {
        for (size_t k = 0; k < cfg->voters_len; k++)
            mf_raft_conf_apply(&r->base_conf, MF_RAFT_CONF_ADD_VOTER, cfg->voters[k]);
        for (size_t k = 0; k < cfg->learners_len; k++)
            mf_raft_conf_apply(&r->base_conf, MF_RAFT_CONF_ADD_LEARNER, cfg->learners[k]);
    }
    r->base_index = snap.index;
    r->conf = r->base_conf;
    if (fi != snap.index + 1 || li + 1 < fi) {
        rc = MF_ECORRUPT;
        goto fail;
    }
    if (li >= fi && (rc = mf_raft_conf_load_history(r, fi, li)) < 0)
        goto fail;
    r->term = hs.term;
    r->vote = hs.vote;
    r->commit = hs.commit > snap.index ? hs.commit : snap.index;
    r->applied = cfg->applied > snap.index ? cfg->applied : snap.index;
    if (r->commit > li || r->applied > r->commit) {
        rc = MF_ECORRUPT;
        goto fail;
    }
    r->hs_persisted = hs;
    r->u_offset = li + 1;
    r->role = MF_RAFT_FOLLOWER;
    uint64_t vote = r->vote;
    mf_raft_become_follower(r, r->term, 0);
    r->vote = vote;
    r->soft_prev.lead = 0;
    r->soft_prev.role = MF_RAFT_FOLLOWER;
    if (r->fatal) {
        rc = r->fatal;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    mf_raft_close(r);
    return rc;
}

void mf_raft_close(struct mf_raft *r)
{
    if (!r)
        return;
    mf_raft_log_free_unstable(r, 0);
    free(r->u);
    free(r->hist.v);
    free(r->read_next.v);
    free(r->read_cur.v);
    free(r->msgs.v);
    free(r->chunks.v);
    free(r->reads.v);
    mf_raft_arena_free(&r->arenas[0]);
    mf_raft_arena_free(&r->arenas[1]);
    free(r->prs);
    free(r);
}

const char *mf_raft_role_name(enum mf_raft_role role)
{
    switch (role) {
    case MF_RAFT_FOLLOWER:
        return "follower";
    case MF_RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case MF_RAFT_CANDIDATE:
        return "candidate";
    case MF_RAFT_LEADER:
        return "leader";
    }
    return "?";
}

const char *mf_raft_msg_type_name(uint32_t type)
{
    static const char *names[] = {"?",         "APP",       "APP_RESP",       "VOTE",
                                  "VOTE_RESP", "PRE_VOTE",  "PRE_VOTE_RESP",  "HEARTBEAT",
                                  "HB_RESP",   "SNAP",      "SNAP_RESP",      "TIMEOUT_NOW",
                                  "READ_INDEX", "READ_INDEX_RESP"};
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}
