/* In-memory log storage (see memstorage.h): a vector of entries after the
 * snapshot point, each owning a copy of its bytes. */
#include "raft/memstorage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct mf_raft_memstorage {
    struct mf_raft_hard_state hs;
    struct mf_raft_snapshot_meta snap;
    struct mf_raft_entry *ents; /* ents[k].index == snap.index + 1 + k */
    size_t len;
    size_t cap;
};

static void drop_from(struct mf_raft_memstorage *m, size_t k)
{
    for (size_t i = k; i < m->len; i++)
        free((void *)m->ents[i].data);
    if (k < m->len)
        m->len = k;
}

static int ms_hard_state(void *ctx, struct mf_raft_hard_state *out)
{
    struct mf_raft_memstorage *m = ctx;
    *out = m->hs;
    return 0;
}

static int ms_snapshot_meta(void *ctx, struct mf_raft_snapshot_meta *out)
{
    struct mf_raft_memstorage *m = ctx;
    *out = m->snap;
    return 0;
}

static int ms_first_index(void *ctx, uint64_t *out)
{
    struct mf_raft_memstorage *m = ctx;
    *out = m->snap.index + 1;
    return 0;
}

static int ms_last_index(void *ctx, uint64_t *out)
{
    struct mf_raft_memstorage *m = ctx;
    *out = m->snap.index + m->len;
    return 0;
}

static int ms_term(void *ctx, uint64_t index, uint64_t *out)
{
    struct mf_raft_memstorage *m = ctx;
    if (index < m->snap.index)
        return MF_ECOMPACTED;
    if (index == m->snap.index) {
        *out = m->snap.term;
        return 0;
    }
    if (index > m->snap.index + m->len)
        return MF_EUNAVAILABLE_ENTRY;
    *out = m->ents[index - m->snap.index - 1].term;
    return 0;
}

static int ms_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct mf_raft_entry *out, size_t out_cap, size_t *out_len)
{
    struct mf_raft_memstorage *m = ctx;
    *out_len = 0;
    if (lo <= m->snap.index)
        return MF_ECOMPACTED;
    if (hi > m->snap.index + m->len + 1)
        return MF_EUNAVAILABLE_ENTRY;
    uint64_t bytes = 0;
    size_t n = 0;
    for (uint64_t i = lo; i < hi && n < out_cap; i++) {
        const struct mf_raft_entry *e = &m->ents[i - m->snap.index - 1];
        if (n > 0 && bytes + e->len > max_bytes)
            break;
        out[n++] = *e;
        bytes += e->len;
    }
    *out_len = n;
    return 0;
}

static int ms_save(void *ctx, const struct mf_raft_hard_state *hs,
                   const struct mf_raft_entry *ents, size_t n)
{
    struct mf_raft_memstorage *m = ctx;
    if (n) {
        uint64_t first = ents[0].index;
        if (first <= m->snap.index || first > m->snap.index + m->len + 1)
            return MF_EINVAL;
        drop_from(m, (size_t)(first - m->snap.index - 1));
        if (m->len + n > m->cap) {
            size_t ncap = m->cap ? m->cap : 64;
            while (ncap < m->len + n)
                ncap *= 2;
            struct mf_raft_entry *ne = realloc(m->ents, ncap * sizeof(*ne));
            if (!ne)
                return -ENOMEM;
            m->ents = ne;
            m->cap = ncap;
        }
        for (size_t k = 0; k < n; k++) {
            struct mf_raft_entry e = ents[k];
            if (e.index != first + k)
                return MF_EINVAL;
            if (e.len) {
                uint8_t *d = malloc(e.len);
                if (!d)
                    return -ENOMEM;
                memcpy(d, ents[k].data, e.len);
                e.data = d;
            } else {
                e.data = NULL;
            }
            m->ents[m->len++] = e;
        }
    }
    if (hs)
        m->hs = *hs;
    return 0;
}

static int ms_compact(void *ctx, const struct mf_raft_snapshot_meta *meta)
{
    struct mf_raft_memstorage *m = ctx;
    if (meta->index <= m->snap.index)
        return 0;
    if (meta->index > m->snap.index + m->len)
        return MF_EUNAVAILABLE_ENTRY;
    size_t drop = (size_t)(meta->index - m->snap.index);
    for (size_t i = 0; i < drop; i++)
        free((void *)m->ents[i].data);
    memmove(m->ents, m->ents + drop, (m->len - drop) * sizeof(*m->ents));
    m->len -= drop;
    m->snap = *meta;
    return 0;
}

static int ms_install_snapshot(void *ctx, const struct mf_raft_snapshot_meta *meta)
{
    struct mf_raft_memstorage *m = ctx;
    uint64_t t;
    if (meta->index > m->snap.index && ms_term(m, meta->index, &t) == 0 && t == meta->term) {
        return ms_compact(m, meta);
    }
    drop_from(m, 0);
    m->snap = *meta;
    if (m->hs.commit < meta->index)
        m->hs.commit = meta->index;
    return 0;
}

int mf_raft_memstorage_init(struct mf_raft_memstorage **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void mf_raft_memstorage_close(struct mf_raft_memstorage *m)
{
    if (!m)
        return;
    drop_from(m, 0);
    free(m->ents);
    free(m);
}

void mf_raft_memstorage_iface(struct mf_raft_memstorage *m, struct mf_raft_storage *out)
{
    memset(out, 0, sizeof(*out));
    out->ctx = m;
    out->hard_state = ms_hard_state;
    out->snapshot_meta = ms_snapshot_meta;
    out->first_index = ms_first_index;
    out->last_index = ms_last_index;
    out->term = ms_term;
    out->entries = ms_entries;
    out->save = ms_save;
    out->compact = ms_compact;
    out->install_snapshot = ms_install_snapshot;
}
