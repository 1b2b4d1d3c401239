/* The log (etcd's raftLog and unstable): the storage's durable prefix, the
 * unstable tail this core owns (entries appended but not yet reported durable,
 * each with its own copy of the bytes), a snapshot received but not yet
 * installed, and the commit index. */
#include "raft/core_int.h"

uint64_t mf_raft_log_last_index(struct mf_raft *r)
{
    if (r->u_len)
        return r->u_offset + r->u_len - 1;
    if (r->u_snap_pending)
        return r->u_snap.index;
    uint64_t li = 0;
    int rc = r->st->last_index(r->st->ctx, &li);
    if (rc < 0)
        latch(r, rc);
    return li;
}

uint64_t mf_raft_log_first_index(struct mf_raft *r)
{
    if (r->u_snap_pending)
        return r->u_snap.index + 1;
    uint64_t fi = 1;
    int rc = r->st->first_index(r->st->ctx, &fi);
    if (rc < 0)
        latch(r, rc);
    return fi;
}

/* Term of entry i: 0 with *t set, MF_ECOMPACTED, MF_EUNAVAILABLE_ENTRY, or a
 * fatal storage error (latched). */
int mf_raft_log_term(struct mf_raft *r, uint64_t i, uint64_t *t)
{
    if (r->u_len && i >= r->u_offset) {
        if (i < r->u_offset + r->u_len) {
            *t = r->u[i - r->u_offset].term;
            return 0;
        }
        return MF_EUNAVAILABLE_ENTRY;
    }
    if (r->u_snap_pending) {
        if (i == r->u_snap.index) {
            *t = r->u_snap.term;
            return 0;
        }
        return i < r->u_snap.index ? MF_ECOMPACTED : MF_EUNAVAILABLE_ENTRY;
    }
    int rc = r->st->term(r->st->ctx, i, t);
    if (rc < 0 && rc != MF_ECOMPACTED && rc != MF_EUNAVAILABLE_ENTRY)
        latch(r, rc);
    return rc;
}

/* Term of i, or 0 when it is not available (compacted or beyond the log). */
uint64_t mf_raft_log_term_or_zero(struct mf_raft *r, uint64_t i)
{
    uint64_t t = 0;
    return mf_raft_log_term(r, i, &t) == 0 ? t : 0;
}

uint64_t mf_raft_log_last_term(struct mf_raft *r)
{
    return mf_raft_log_term_or_zero(r, mf_raft_log_last_index(r));
}

bool mf_raft_log_match_term(struct mf_raft *r, uint64_t i, uint64_t t)
{
    uint64_t lt;
    return mf_raft_log_term(r, i, &lt) == 0 && lt == t;
}

/* The last index known durable and consistent with the in-memory log. */
uint64_t mf_raft_log_persisted_index(struct mf_raft *r)
{
    if (r->u_snap_pending)
        return 0;
    if (r->u_len)
        return r->u_offset - 1;
    return mf_raft_log_last_index(r);
}

/* Copy entries [lo, hi) (at most max_bytes, at least one) into the filling
 * arena. Returns the count in *n, or MF_ECOMPACTED / a fatal error. */
/* Entries up to (i, t) are durable: drop them from the unstable log, unless
 * they were replaced since the batch was cut (then the term differs). */
void mf_raft_log_stable_to(struct mf_raft *r, uint64_t i, uint64_t t)
{
    if (r->u_len && i >= r->u_offset && i < r->u_offset + r->u_len &&
        r->u[i - r->u_offset].term == t) {
        size_t drop = (size_t)(i - r->u_offset + 1);
        for (size_t k = 0; k < drop; k++) {
            r->u_bytes -= r->u[k].len;
            free(r->u[k].data);
        }
        memmove(r->u, r->u + drop, (r->u_len - drop) * sizeof(*r->u));
        r->u_len -= drop;
        r->u_offset = i + 1;
    }
}

/* The whole unstable log, copied into the filling arena for a ready batch. */
int mf_raft_log_copy_unstable(struct mf_raft *r, struct mf_raft_entry **out)
{
    struct mf_raft_entry *ents = mf_raft_arena_alloc(r, r->u_len * sizeof(*ents));
    *out = ents;
    if (!ents)
        return r->fatal;
    for (size_t k = 0; k < r->u_len; k++) {
        struct mf_raft_entry *e = &ents[k];
        const struct uentry *ue = &r->u[k];
        e->term = ue->term;
        e->index = ue->index;
        e->type = ue->type;
        e->len = ue->len;
        e->data = NULL;
        if (ue->len) {
            uint8_t *d = mf_raft_arena_alloc(r, ue->len);
            if (!d)
                return r->fatal;
            memcpy(d, ue->data, ue->len);
            e->data = d;
        }
    }
    return 0;
}

int mf_raft_log_fetch(struct mf_raft *r, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct mf_raft_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (lo >= hi)
        return 0;
    if (lo < mf_raft_log_first_index(r))
        return MF_ECOMPACTED;
    size_t cap = hi - lo > FETCH_ENTRIES_MAX ? FETCH_ENTRIES_MAX : (size_t)(hi - lo);
    struct mf_raft_entry *ents = mf_raft_arena_alloc(r, cap * sizeof(*ents));
    if (!ents)
        return r->fatal;
    size_t got = 0;
    uint64_t bytes = 0;
    uint64_t ustart = r->u_len ? r->u_offset : hi;
    if (lo < ustart) {
        uint64_t shi = hi < ustart ? hi : ustart;
        size_t sn = 0;
        int rc = r->st->entries(r->st->ctx, lo, shi, max_bytes, ents, cap, &sn);
        if (rc < 0) {
            if (rc != MF_ECOMPACTED)
                latch(r, rc);
            return rc;
        }
        for (size_t k = 0; k < sn; k++) {
            bytes += ents[k].len;
            if (ents[k].len) {
                uint8_t *d = mf_raft_arena_alloc(r, ents[k].len);
                if (!d)
                    return r->fatal;
                memcpy(d, ents[k].data, ents[k].len);
                ents[k].data = d;
            } else {
                ents[k].data = NULL;
            }
        }
        got = sn;
        if (lo + sn < shi || shi == hi) {
            *out = ents;
            *n = got;
            return 0;
        }
    }
    for (uint64_t i = lo + got; i < hi && got < cap; i++) {
        const struct uentry *ue = &r->u[i - r->u_offset];
        if (got > 0 && bytes + ue->len > max_bytes)
            break;
        ents[got].term = ue->term;
        ents[got].index = ue->index;
        ents[got].type = ue->type;
        ents[got].len = ue->len;
        ents[got].data = NULL;
        if (ue->len) {
            uint8_t *d = mf_raft_arena_alloc(r, ue->len);
            if (!d)
                return r->fatal;
            memcpy(d, ue->data, ue->len);
            ents[got].data = d;
        }
        bytes += ue->len;
        got++;
    }
    *out = ents;
    *n = got;
    return 0;
}

void mf_raft_log_free_unstable(struct mf_raft *r, size_t from)
{
    for (size_t k = from; k < r->u_len; k++) {
        r->u_bytes -= r->u[k].len;
        free(r->u[k].data);
    }
    r->u_len = from;
}

/* Drop every entry at or after index k from the in-memory view (the next
                                                                 * save replaces them in the storage) and forget configurations they made. */
void mf_raft_log_truncate_from(struct mf_raft *r, uint64_t k)
{
    if (r->u_len && k >= r->u_offset) {
        mf_raft_log_free_unstable(r, (size_t)(k - r->u_offset));
    } else {
        mf_raft_log_free_unstable(r, 0);
        r->u_offset = k;
    }
    while (r->hist.len && r->hist.v[r->hist.len - 1].index >= k)
        r->hist.len--;
    mf_raft_conf_reset_to(r);
}

/* Append one entry to the unstable log (data copied). */
int mf_raft_log_append(struct mf_raft *r, uint64_t term, uint64_t index, uint32_t type,
                       const uint8_t *data, uint32_t len)
{
    if (r->u_len == 0)
        r->u_offset = index;
    MF_ASSERT(index == r->u_offset + r->u_len);
    if (vec_grow((void **)&r->u, &r->u_cap, r->u_len, sizeof(*r->u)) != 0) {
        latch(r, -ENOMEM);
        return -ENOMEM;
    }
    struct uentry *ue = &r->u[r->u_len];
    ue->term = term;
    ue->index = index;
    ue->type = type;
    ue->len = len;
    ue->data = NULL;
    if (len) {
        ue->data = malloc(len);
        if (!ue->data) {
            latch(r, -ENOMEM);
            return -ENOMEM;
        }
        memcpy(ue->data, data, len);
    }
    r->u_len++;
    r->u_bytes += len;
    if (type == MF_RAFT_ENTRY_CONF)
        mf_raft_conf_note_entry(r, index, data, len);
    return 0;
}

void mf_raft_log_commit_to(struct mf_raft *r, uint64_t c)
{
    if (c > r->commit) {
        LOG_INVARIANT(r, c <= mf_raft_log_last_index(r));
        r->commit = c;
    }
}

void mf_raft_log_restore(struct mf_raft *r, const struct mf_raft_snapshot_meta *meta)
{
    mf_raft_log_free_unstable(r, 0);
    r->u_offset = meta->index + 1;
    r->u_snap_pending = true;
    r->u_snap = *meta;
    r->commit = meta->index;
    r->base_conf = meta->conf;
    r->base_index = meta->index;
    r->hist.len = 0;
    r->conf = meta->conf;
}

/* Largest index <= index whose term is <= term (0 if none). */
uint64_t mf_raft_log_find_conflict_by_term(struct mf_raft *r, uint64_t index, uint64_t term)
{
    uint64_t li = mf_raft_log_last_index(r);
    if (index > li)
        index = li;
    for (;;) {
        uint64_t t;
        if (mf_raft_log_term(r, index, &t) != 0)
            return index;
        if (t <= term || index == 0)
            return index;
        index--;
    }
}

bool mf_raft_log_committed_in_term(struct mf_raft *r)
{
    return mf_raft_log_term_or_zero(r, r->commit) == r->term;
}

uint64_t mf_raft_log_apply_limit(struct mf_raft *r)
{
    if (r->u_snap_pending)
        return r->applied;
    uint64_t p = mf_raft_log_persisted_index(r);
    return r->commit < p ? r->commit : p;
}

int mf_raft_term(struct mf_raft *r, uint64_t index, uint64_t *term)
{
    return mf_raft_log_term(r, index, term);
}
