/* The leader's view of each follower (etcd's tracker): progress in probe,
 * replicate or snapshot state, the inflight window, the AppendEntries,
 * heartbeats and snapshot chunks that progress drives, and the commit index
 * a quorum of matches allows. */
#include "raft/core_int.h"

struct progress *mf_raft_pr_find(struct mf_raft *r, uint64_t id)
{
    for (size_t k = 0; k < r->prs_len; k++)
        if (r->prs[k].id == id)
            return &r->prs[k];
    return NULL;
}

void mf_raft_pr_become_probe(struct progress *pr)
{
    uint64_t n = pr->state == PR_SNAPSHOT ? (pr->snap.index > pr->match ? pr->snap.index : pr->match) + 1
                                          : pr->match + 1;
    pr->state = PR_PROBE;
    pr->next = n;
    pr->probe_sent = false;
    pr->infl_count = 0;
    pr->infl_start = 0;
    pr->snap_wait = false;
}

void mf_raft_pr_become_replicate(struct progress *pr)
{
    pr->state = PR_REPLICATE;
    pr->next = pr->match + 1;
    pr->probe_sent = false;
    pr->infl_count = 0;
    pr->infl_start = 0;
}

static bool pr_paused(const struct mf_raft *r, const struct progress *pr)
{
    switch (pr->state) {
    case PR_PROBE:
        return pr->probe_sent;
    case PR_REPLICATE:
        return pr->infl_count >= r->cfg.max_inflight;
    case PR_SNAPSHOT:
        return true;
    }
    return true;
}

void mf_raft_pr_infl_free_le(struct progress *pr, uint64_t index)
{
    while (pr->infl_count && pr->infl[pr->infl_start] <= index) {
        pr->infl_start = (pr->infl_start + 1) % MF_RAFT_INFLIGHT_MAX;
        pr->infl_count--;
    }
}

void mf_raft_pr_send_snap_chunk(struct mf_raft *r, struct progress *pr)
{
    if (pr->state != PR_SNAPSHOT || pr->snap_wait)
        return;
    uint32_t cap = r->cfg.snapshot_chunk_bytes;
    uint8_t *buf = mf_raft_arena_alloc(r, cap);
    if (!buf)
        return;
    size_t len = 0;
    bool done = false;
    int rc = r->cfg.snapshot_read ? r->cfg.snapshot_read(r->cfg.snapshot_ctx, pr->snap.index,
                                                         pr->snap_offset, buf, cap, &len, &done)
                                  : MF_ECOMPACTED;
    if (rc < 0 || len > cap) {
        /* The snapshot went away or failed: probe again later, which
         * starts a fresh transfer from the newest snapshot. */
        pr->state = PR_PROBE;
        pr->next = pr->match + 1;
        pr->probe_sent = true; /* wait for the next heartbeat response */
        return;
    }
    struct mf_raft_msg *m = mf_raft_msg_new(r, MF_RAFT_MSG_SNAP, pr->id);
    if (!m)
        return;
    m->snapshot = pr->snap;
    m->snapshot_offset = pr->snap_offset;
    m->snapshot_chunk = buf;
    m->snapshot_chunk_len = (uint32_t)len;
    m->snapshot_done = done;
    pr->snap_wait = true;
    pr->snap_stall_ticks = 0;
}

static void start_snapshot(struct mf_raft *r, struct progress *pr)
{
    struct mf_raft_snapshot_meta meta;
    int rc = r->st->snapshot_meta(r->st->ctx, &meta);
    if (rc < 0) {
        latch(r, rc);
        return;
    }
    if (meta.index == 0)
        return; /* nothing compacted: cannot happen with a sane storage */
    pr->state = PR_SNAPSHOT;
    pr->snap = meta;
    pr->snap_offset = 0;
    pr->snap_wait = false;
    pr->infl_count = 0;
    pr->infl_start = 0;
    mf_raft_pr_send_snap_chunk(r, pr);
}

/* Sends one AppendEntries to pr if its flow control allows (APPEND_EMPTY_OK:
                                                             * even with no entries, as a probe or to carry the commit index). Returns
 * true if a message went out. */
bool mf_raft_pr_send_append(struct mf_raft *r, struct progress *pr, enum append_mode mode)
{
    if (pr->id == r->id || pr_paused(r, pr) || r->fatal)
        return false;
    MF_ASSERT(pr->match < pr->next); /* prev = next - 1 is at or after match */
    uint64_t prev = pr->next - 1;
    uint64_t pt = 0;
    int rc = mf_raft_log_term(r, prev, &pt);
    if (rc == MF_ECOMPACTED) {
        start_snapshot(r, pr);
        return false;
    }
    if (rc < 0)
        return false;
    struct mf_raft_entry *ents = NULL;
    size_t n = 0;
    uint64_t li = mf_raft_log_last_index(r);
    rc = mf_raft_log_fetch(r, pr->next, li + 1, r->cfg.max_msg_bytes, &ents, &n);
    if (rc == MF_ECOMPACTED) {
        start_snapshot(r, pr);
        return false;
    }
    if (rc < 0)
        return false;
    if (n == 0 && mode == APPEND_IF_ENTRIES)
        return false;
    struct mf_raft_msg *m = mf_raft_msg_new(r, MF_RAFT_MSG_APP, pr->id);
    if (!m)
        return false;
    m->index = prev;
    m->log_term = pt;
    m->entries = ents;
    m->entries_len = n;
    m->commit = r->commit;
    if (pr->state == PR_REPLICATE && n > 0) {
        uint64_t last = ents[n - 1].index;
        pr->next = last + 1;
        MF_ASSERT(pr->infl_count < MF_RAFT_INFLIGHT_MAX);
        pr->infl[(pr->infl_start + pr->infl_count) % MF_RAFT_INFLIGHT_MAX] = last;
        pr->infl_count++;
    } else if (pr->state == PR_PROBE) {
        pr->probe_sent = true;
    }
    return true;
}

void mf_raft_pr_bcast_append(struct mf_raft *r, enum append_mode mode)
{
    for (size_t k = 0; k < r->prs_len; k++)
        mf_raft_pr_send_append(r, &r->prs[k], mode);
}

void mf_raft_pr_bcast_heartbeat(struct mf_raft *r)
{
    for (size_t k = 0; k < r->prs_len; k++) {
        struct progress *pr = &r->prs[k];
        if (pr->id == r->id)
            continue;
        struct mf_raft_msg *m = mf_raft_msg_new(r, MF_RAFT_MSG_HEARTBEAT, pr->id);
        if (!m)
            return;
        /* Never tell a follower to commit past what it holds. */
        m->commit = pr->match < r->commit ? pr->match : r->commit;
        m->ctx = r->read_seq;
    }
}

void mf_raft_pr_sync(struct mf_raft *r)
{
    /* Keep progress of current members, add new ones, drop removed ones. */
    struct progress *old = r->prs;
    size_t old_len = r->prs_len;
    struct progress tmp[MF_RAFT_NODES_MAX];
    size_t n = 0;
    uint64_t li = mf_raft_log_last_index(r);
    const struct mf_raft_conf_state *c = &r->conf;
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t *ids = pass == 0 ? c->voters : c->learners;
        uint32_t len = pass == 0 ? c->voters_len : c->learners_len;
        for (uint32_t i = 0; i < len; i++) {
            struct progress *p = NULL;
            for (size_t k = 0; k < old_len; k++)
                if (old[k].id == ids[i])
                    p = &old[k];
            if (p) {
                tmp[n] = *p;
            } else {
                memset(&tmp[n], 0, sizeof(tmp[n]));
                tmp[n].id = ids[i];
                tmp[n].next = li + 1;
                tmp[n].state = PR_PROBE;
                tmp[n].recent_active = true;
            }
            tmp[n].learner = pass == 1;
            n++;
        }
    }
    memcpy(r->prs, tmp, n * sizeof(*tmp));
    r->prs_len = n;
    if (r->transferee && !mf_raft_conf_is_voter(c, r->transferee))
        r->transferee = 0;
}

/* Fresh progress for every member: probe from the end of our log. */
void mf_raft_pr_reset_all(struct mf_raft *r)
{
    r->prs_len = 0;
    mf_raft_pr_sync(r);
    uint64_t li = mf_raft_log_last_index(r);
    for (size_t k = 0; k < r->prs_len; k++) {
        struct progress *pr = &r->prs[k];
        uint64_t id = pr->id;
        bool learner = pr->learner;
        memset(pr, 0, sizeof(*pr));
        pr->id = id;
        pr->learner = learner;
        pr->next = li + 1;
        pr->state = PR_PROBE;
        pr->recent_active = true;
        if (id == r->id)
            pr->match = li;
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Leader: advance commit by counting replicas of entries of this term. */
bool mf_raft_pr_maybe_commit(struct mf_raft *r)
{
    uint64_t m[MF_RAFT_NODES_MAX];
    size_t n = 0;
    for (uint32_t i = 0; i < r->conf.voters_len; i++) {
        uint64_t id = r->conf.voters[i];
        if (id == r->id) {
            /* The leader counts itself only for what is durable. */
            m[n++] = mf_raft_log_persisted_index(r);
        } else {
            struct progress *pr = mf_raft_pr_find(r, id);
            m[n++] = pr ? pr->match : 0;
        }
    }
    if (n == 0)
        return false;
    qsort(m, n, sizeof(m[0]), cmp_desc);
    uint64_t mci = m[mf_raft_conf_quorum(&r->conf) - 1];
    if (mci <= r->commit)
        return false;
    if (!bug(r, MF_RAFT_BUG_COMMIT_OLD_TERM) && mf_raft_log_term_or_zero(r, mci) != r->term)
        return false; /* Figure 8: never commit an old-term entry by counting */
    mf_raft_log_commit_to(r, mci);
    return true;
}

void mf_raft_report_snapshot(struct mf_raft *r, uint64_t to, bool ok)
{
    struct progress *pr = mf_raft_pr_find(r, to);
    if (!pr || r->role != MF_RAFT_LEADER || pr->state != PR_SNAPSHOT)
        return;
    if (ok && pr->match < pr->snap.index)
        pr->match = pr->snap.index;
    mf_raft_pr_become_probe(pr);
    pr->probe_sent = true; /* wait for a heartbeat response before probing */
}

void mf_raft_report_unreachable(struct mf_raft *r, uint64_t to)
{
    struct progress *pr = mf_raft_pr_find(r, to);
    if (!pr || r->role != MF_RAFT_LEADER)
        return;
    if (pr->state == PR_REPLICATE)
        mf_raft_pr_become_probe(pr);
}
