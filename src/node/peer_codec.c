/* Raft messages on the wire (see peer_codec.h). */
#include "node/peer_codec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static void conf_to_pb(const struct mf_raft_conf_state *c, Mayfly__Raft__ConfState *pb)
{
    pb->n_voters = c->voters_len;
    pb->voters = (uint64_t *)c->voters;
    pb->n_learners = c->learners_len;
    pb->learners = (uint64_t *)c->learners;
}

int mf_peer_msg_encode(const struct mf_raft_msg *m, uint8_t **out, size_t *out_len)
{
    Mayfly__Raft__Message pb = MAYFLY__RAFT__MESSAGE__INIT;
    Mayfly__Raft__SnapshotMeta snap = MAYFLY__RAFT__SNAPSHOT_META__INIT;
    Mayfly__Raft__ConfState conf = MAYFLY__RAFT__CONF_STATE__INIT;
    uint8_t ctx[8];
    pb.type = m->type;
    pb.from = m->from;
    pb.to = m->to;
    pb.term = m->term;
    pb.log_term = m->log_term;
    pb.index = m->index;
    pb.commit = m->commit;
    pb.reject = m->reject;
    pb.reject_hint = m->reject_hint;
    if (m->ctx) {
        for (int i = 0; i < 8; i++)
            ctx[i] = (uint8_t)(m->ctx >> (56 - 8 * i));
        pb.context.data = ctx;
        pb.context.len = 8;
    }
    Mayfly__Raft__Entry *ents = NULL;
    Mayfly__Raft__Entry **ptrs = NULL;
    if (m->entries_len) {
        ents = calloc(m->entries_len, sizeof(*ents));
        ptrs = calloc(m->entries_len, sizeof(*ptrs));
        if (!ents || !ptrs) {
            free(ents);
            free(ptrs);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->entries_len; i++) {
            mayfly__raft__entry__init(&ents[i]);
            ents[i].term = m->entries[i].term;
            ents[i].index = m->entries[i].index;
            ents[i].type = m->entries[i].type;
            ents[i].data.data = (uint8_t *)m->entries[i].data;
            ents[i].data.len = m->entries[i].len;
            ptrs[i] = &ents[i];
        }
        pb.n_entries = m->entries_len;
        pb.entries = ptrs;
    }
    if (m->type == MF_RAFT_MSG_SNAP || m->snapshot.index) {
        snap.index = m->snapshot.index;
        snap.term = m->snapshot.term;
        conf_to_pb(&m->snapshot.conf, &conf);
        snap.conf = &conf;
        pb.snapshot = &snap;
    }
    /* Chunk fields travel on SNAP and on SNAP_RESP (offset wanted, done). */
    pb.snapshot_offset = m->snapshot_offset;
    pb.snapshot_chunk.data = (uint8_t *)m->snapshot_chunk;
    pb.snapshot_chunk.len = m->snapshot_chunk_len;
    pb.snapshot_done = m->snapshot_done;
    size_t len = mayfly__raft__message__get_packed_size(&pb);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        free(ents);
        free(ptrs);
        return -ENOMEM;
    }
    mayfly__raft__message__pack(&pb, buf);
    free(ents);
    free(ptrs);
    *out = buf;
    *out_len = len;
    return 0;
}

static int conf_from_pb(const Mayfly__Raft__ConfState *pb, struct mf_raft_conf_state *c)
{
    memset(c, 0, sizeof(*c));
    if (!pb)
        return 0;
    if (pb->n_voters > MF_RAFT_NODES_MAX || pb->n_learners > MF_RAFT_NODES_MAX)
        return MF_ECORRUPT;
    c->voters_len = (uint32_t)pb->n_voters;
    c->learners_len = (uint32_t)pb->n_learners;
    if (pb->n_voters) /* empty repeated fields are NULL */
        memcpy(c->voters, pb->voters, pb->n_voters * sizeof(uint64_t));
    if (pb->n_learners)
        memcpy(c->learners, pb->learners, pb->n_learners * sizeof(uint64_t));
    return 0;
}

int mf_peer_msg_decode(const uint8_t *data, size_t len, struct mf_peer_decoded *out)
{
    memset(out, 0, sizeof(*out));
    Mayfly__Raft__Message *pb = mayfly__raft__message__unpack(NULL, len, data);
    if (!pb)
        return MF_ECORRUPT;
    out->pb = pb;
    struct mf_raft_msg *m = &out->msg;
    if (pb->type < MF_RAFT_MSG_APP || pb->type > MF_RAFT_MSG_READ_INDEX_RESP ||
        pb->n_entries > MF_PEER_ENTRIES_MAX || (pb->context.len != 0 && pb->context.len != 8) ||
        pb->snapshot_chunk.len > UINT32_MAX)
        goto corrupt;
    m->type = pb->type;
    m->from = pb->from;
    m->to = pb->to;
    m->term = pb->term;
    m->log_term = pb->log_term;
    m->index = pb->index;
    m->commit = pb->commit;
    m->reject = pb->reject;
    m->reject_hint = pb->reject_hint;
    for (size_t i = 0; i < pb->context.len; i++)
        m->ctx = m->ctx << 8 | pb->context.data[i];
    if (pb->n_entries) {
        out->entries = calloc(pb->n_entries, sizeof(*out->entries));
        if (!out->entries) {
            mf_peer_msg_free(out);
            return -ENOMEM;
        }
        for (size_t i = 0; i < pb->n_entries; i++) {
            const Mayfly__Raft__Entry *e = pb->entries[i];
            /* The core takes entries as consecutive after index (the
             * previous entry): an AppendEntries that skips or repeats one
             * would trip its assertions. */
            if (e->type > MF_RAFT_ENTRY_NOOP || e->data.len > UINT32_MAX ||
                pb->index > UINT64_MAX - 1 - i || e->index != pb->index + 1 + i)
                goto corrupt;
            /* A conf change the core cannot read would stop it for good
             * (it latches MF_ECORRUPT): refuse the message instead. */
            enum mf_raft_conf_change_type ct;
            uint64_t node;
            if (e->type == MF_RAFT_ENTRY_CONF &&
                mf_raft_conf_decode(e->data.data, (uint32_t)e->data.len, &ct, &node) != 0)
                goto corrupt;
            out->entries[i].term = e->term;
            out->entries[i].index = e->index;
            out->entries[i].type = e->type;
            out->entries[i].len = (uint32_t)e->data.len;
            out->entries[i].data = e->data.data;
        }
        m->entries = out->entries;
        m->entries_len = pb->n_entries;
    }
    if (pb->snapshot) {
        m->snapshot.index = pb->snapshot->index;
        m->snapshot.term = pb->snapshot->term;
        if (conf_from_pb(pb->snapshot->conf, &m->snapshot.conf))
            goto corrupt;
    }
    m->snapshot_offset = pb->snapshot_offset;
    m->snapshot_chunk = pb->snapshot_chunk.data;
    m->snapshot_chunk_len = (uint32_t)pb->snapshot_chunk.len;
    m->snapshot_done = pb->snapshot_done;
    return 0;
corrupt:
    mf_peer_msg_free(out);
    return MF_ECORRUPT;
}

void mf_peer_msg_free(struct mf_peer_decoded *d)
{
    free(d->entries);
    if (d->pb)
        mayfly__raft__message__free_unpacked(d->pb, NULL);
    memset(d, 0, sizeof(*d));
}

/* ---- clock probes ---- */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

size_t mf_peer_clock_encode(const struct mf_peer_clock *c, uint8_t *buf)
{
    buf[0] = c->kind;
    put_u64(buf + 1, c->seq);
    if (c->kind != MF_PEER_CLOCK_ANSWER)
        return 9;
    put_u64(buf + 9, c->wall_ms);
    buf[17] = c->flags;
    return 18;
}

int mf_peer_clock_decode(const uint8_t *data, size_t len, struct mf_peer_clock *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 9)
        return MF_ECORRUPT;
    out->kind = data[0];
    out->seq = get_u64(data + 1);
    if (out->seq == 0)
        return MF_ECORRUPT;
    if (out->kind == MF_PEER_CLOCK_PROBE && len == 9)
        return 0;
    if (out->kind == MF_PEER_CLOCK_ANSWER && len == 18) {
        out->wall_ms = get_u64(data + 9);
        out->flags = data[17];
        return out->wall_ms <= INT64_MAX && !(out->flags & ~MF_PEER_CLOCK_AGREES) ? 0
                                                                                 : MF_ECORRUPT;
    }
    return MF_ECORRUPT;
}
