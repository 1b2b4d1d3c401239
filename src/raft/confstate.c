/* Cluster configuration (etcd's confchange/tracker config): voter and learner
 * sets, the 9-byte configuration entry, and the history of configurations
 * appended since the snapshot (a configuration takes effect when appended and
 * is forgotten if its entry is truncated). */
#include "raft/core_int.h"

static bool ids_has(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void ids_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            memmove(&ids[i], &ids[i + 1], (*n - i - 1) * sizeof(*ids));
            (*n)--;
            return;
        }
    }
}

bool mf_raft_conf_is_voter(const struct mf_raft_conf_state *c, uint64_t id)
{
    return ids_has(c->voters, c->voters_len, id);
}

bool mf_raft_conf_is_learner(const struct mf_raft_conf_state *c, uint64_t id)
{
    return ids_has(c->learners, c->learners_len, id);
}

size_t mf_raft_conf_quorum(const struct mf_raft_conf_state *c)
{
    return c->voters_len / 2 + 1;
}

void mf_raft_conf_apply(struct mf_raft_conf_state *c, enum mf_raft_conf_change_type t, uint64_t node)
{
    switch (t) {
    case MF_RAFT_CONF_ADD_VOTER:
        ids_remove(c->learners, &c->learners_len, node);
        if (!mf_raft_conf_is_voter(c, node) && c->voters_len < MF_RAFT_NODES_MAX)
            c->voters[c->voters_len++] = node;
        break;
    case MF_RAFT_CONF_ADD_LEARNER:
        if (!mf_raft_conf_is_voter(c, node) && !mf_raft_conf_is_learner(c, node) &&
            c->voters_len + c->learners_len < MF_RAFT_NODES_MAX)
            c->learners[c->learners_len++] = node;
        break;
    case MF_RAFT_CONF_REMOVE:
        ids_remove(c->voters, &c->voters_len, node);
        ids_remove(c->learners, &c->learners_len, node);
        break;
    }
}

int mf_raft_conf_decode(const uint8_t *data, uint32_t len, enum mf_raft_conf_change_type *type,
                        uint64_t *node)
{
    return mf_raft_conf_decode_tail(data, len, type, node, NULL, NULL);
}

int mf_raft_conf_decode_tail(const uint8_t *data, uint32_t len,
                             enum mf_raft_conf_change_type *type, uint64_t *node,
                             const uint8_t **tail, uint32_t *tail_len)
{
    if (!data || len < MF_RAFT_CONF_ENTRY_LEN ||
        len > MF_RAFT_CONF_ENTRY_LEN + MF_RAFT_CONF_TAIL_MAX || data[0] < MF_RAFT_CONF_ADD_VOTER ||
        data[0] > MF_RAFT_CONF_REMOVE)
        return MF_ECORRUPT;
    if (tail)
        *tail = len > MF_RAFT_CONF_ENTRY_LEN ? data + MF_RAFT_CONF_ENTRY_LEN : NULL;
    if (tail_len)
        *tail_len = len - MF_RAFT_CONF_ENTRY_LEN;
    uint64_t n = 0;
    for (int i = 1; i < 9; i++)
        n = (n << 8) | data[i];
    *type = (enum mf_raft_conf_change_type)data[0];
    *node = n;
    return 0;
}

void mf_raft_conf_encode(uint8_t out[MF_RAFT_CONF_ENTRY_LEN], enum mf_raft_conf_change_type t,
                         uint64_t node)
{
    out[0] = (uint8_t)t;
    for (int i = 8; i >= 1; i--) {
        out[i] = (uint8_t)node;
        node >>= 8;
    }
}

void mf_raft_conf_reset_to(struct mf_raft *r)
{
    r->conf = r->hist.len ? r->hist.v[r->hist.len - 1].conf : r->base_conf;
}

void mf_raft_conf_note_entry(struct mf_raft *r, uint64_t index, const uint8_t *data, uint32_t len)
{
    enum mf_raft_conf_change_type t;
    uint64_t node;
    if (mf_raft_conf_decode(data, len, &t, &node) != 0) {
        latch(r, MF_ECORRUPT);
        return;
    }
    struct conf_hist h;
    h.index = index;
    h.conf = r->conf;
    mf_raft_conf_apply(&h.conf, t, node);
    VEC_PUSH(r, r->hist, h);
    r->conf = h.conf;
}

/* Configuration in force at index (latest conf entry at or before it). */
void mf_raft_conf_at(struct mf_raft *r, uint64_t index, struct mf_raft_conf_state *out)
{
    *out = r->base_conf;
    for (size_t k = 0; k < r->hist.len && r->hist.v[k].index <= index; k++)
        *out = r->hist.v[k].conf;
}

/* A snapshot at index: its configuration in *out, and the history up to
 * index folded into the base. */
void mf_raft_conf_fold_to(struct mf_raft *r, uint64_t index, struct mf_raft_conf_state *out)
{
    mf_raft_conf_at(r, index, out);
    r->base_conf = *out;
    r->base_index = index;
    size_t k = 0;
    while (k < r->hist.len && r->hist.v[k].index <= index)
        k++;
    if (k) {
        memmove(r->hist.v, r->hist.v + k, (r->hist.len - k) * sizeof(*r->hist.v));
        r->hist.len -= k;
    }
}

int mf_raft_conf_load_history(struct mf_raft *r, uint64_t lo, uint64_t hi)
{
    struct mf_raft_entry buf[256];
    while (lo <= hi) {
        size_t n = 0;
        int rc = r->st->entries(r->st->ctx, lo, hi + 1, UINT64_MAX, buf, 256, &n);
        if (rc < 0)
            return rc;
        if (n == 0)
            return MF_ECORRUPT;
        for (size_t k = 0; k < n; k++) {
            if (buf[k].index != lo + k)
                return MF_ECORRUPT;
            if (buf[k].type == MF_RAFT_ENTRY_CONF) {
                mf_raft_conf_note_entry(r, buf[k].index, buf[k].data, buf[k].len);
                if (r->fatal)
                    return r->fatal;
            }
        }
        lo += n;
    }
    return 0;
}
