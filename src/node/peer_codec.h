/* Raft messages on the wire: struct mf_raft_msg <-> proto/raft.proto.
 *
 * Encoding copies nothing it does not have to: entry data is referenced, not
 * copied, while packing. Decoding yields a struct mf_raft_msg whose pointers
 * point into the unpacked protobuf, which the caller frees with
 * mf_peer_msg_free once mf_raft_step has returned.
 */
#ifndef MF_NODE_PEER_CODEC_H
#define MF_NODE_PEER_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "raft/core.h"
#include "raft.pb-c.h"

#define MF_PEER_ENTRIES_MAX 65536 /* entries accepted in one message */

/* Packs msg into a new buffer (*out, freed by the caller with free()).
 * Returns 0 or -ENOMEM. */
int mf_peer_msg_encode(const struct mf_raft_msg *msg, uint8_t **out, size_t *out_len);

/* A decoded message: `msg` is valid until mf_peer_msg_free. */
struct mf_peer_decoded {
    struct mf_raft_msg msg;
    Mayfly__Raft__Message *pb;
    struct mf_raft_entry *entries;
};

/* Unpacks and validates (type in range, sizes, conf within limits, entries
 * numbered consecutively after msg.index and conf change entries readable,
 * as the Raft core requires).
 * Returns 0, or MF_ECORRUPT for a malformed message (never crashes). */
int mf_peer_msg_decode(const uint8_t *data, size_t len, struct mf_peer_decoded *out);
void mf_peer_msg_free(struct mf_peer_decoded *d);

#endif
