/* Fuzz target: a peer's Raft message as the node decodes it (node.c:
 * mf_peer_msg_decode), snapshot chunks (type SNAP) included. A message that
 * decodes must survive the round trip: encoding the decoded struct and
 * decoding that again gives the same message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "node/peer_codec.h"

static void same_msg(const struct mf_raft_msg *a, const struct mf_raft_msg *b)
{
    MF_ASSERT(a->type == b->type && a->from == b->from && a->to == b->to &&
              a->term == b->term && a->log_term == b->log_term && a->index == b->index &&
              a->commit == b->commit && a->reject == b->reject &&
              a->reject_hint == b->reject_hint && a->ctx == b->ctx);
    MF_ASSERT(a->entries_len == b->entries_len);
    for (size_t i = 0; i < a->entries_len; i++) {
        const struct mf_raft_entry *x = &a->entries[i], *y = &b->entries[i];
        MF_ASSERT(x->term == y->term && x->index == y->index && x->type == y->type &&
                  x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0));
    }
    /* The snapshot meta travels on SNAP, or when its index is set. */
    if (a->type == MF_RAFT_MSG_SNAP || a->snapshot.index)
        MF_ASSERT(a->snapshot.index == b->snapshot.index &&
                  a->snapshot.term == b->snapshot.term &&
                  memcmp(&a->snapshot.conf, &b->snapshot.conf, sizeof(a->snapshot.conf)) == 0);
    MF_ASSERT(a->snapshot_offset == b->snapshot_offset &&
              a->snapshot_chunk_len == b->snapshot_chunk_len &&
              a->snapshot_done == b->snapshot_done &&
              (a->snapshot_chunk_len == 0 ||
               memcmp(a->snapshot_chunk, b->snapshot_chunk, a->snapshot_chunk_len) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mf_peer_decoded d;
    if (mf_peer_msg_decode(data, size, &d) != 0)
        return 0;
    uint8_t *buf;
    size_t len;
    if (mf_peer_msg_encode(&d.msg, &buf, &len) == 0) {
        struct mf_peer_decoded d2;
        MF_ASSERT(mf_peer_msg_decode(buf, len, &d2) == 0);
        same_msg(&d.msg, &d2.msg);
        mf_peer_msg_free(&d2);
        free(buf);
    }
    mf_peer_msg_free(&d);
    return 0;
}
