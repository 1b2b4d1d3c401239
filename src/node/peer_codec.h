/* Raft messages on the wire: struct mf_raft_msg <-> proto/raft.proto.
 *
 * Encoding copies nothing it does not have to: entry data is referenced, not
 * copied, while packing. Decoding yields a struct mf_raft_msg whose pointers
 * point into the unpacked protobuf, which the caller frees with
 * mf_peer_msg_free once mf_raft_step has returned.
 */
#ifndef MF_NODE_PEER_CODEC_H
#define MF_NODE_PEER_CODEC_H

#include <stdbool.h>
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

/* Clock probes (MF_NODE_TAG_CLOCK), fixed layout, big-endian:
 *   probe:  1 byte kind = 1, 8 bytes seq                               (9 bytes)
 *   answer: 1 byte kind = 2, 8 bytes seq, 8 bytes wall_ms, 1 byte flags (18 bytes)
 * The answer echoes the probe's seq and carries the answerer's wall clock
 * (Unix ms) read when the probe arrived, and whether the answerer's clock
 * agrees with a quorum of voters as it sees them (flags bit 0): a leader
 * hands off only to a node that may campaign. */
#define MF_PEER_CLOCK_PROBE 1
#define MF_PEER_CLOCK_ANSWER 2
#define MF_PEER_CLOCK_AGREES 0x01
#define MF_PEER_CLOCK_MAX_BYTES 18
struct mf_peer_clock {
    uint8_t kind;     /* MF_PEER_CLOCK_PROBE or MF_PEER_CLOCK_ANSWER */
    uint64_t seq;     /* != 0 */
    uint64_t wall_ms; /* answers only */
    uint8_t flags;    /* answers only: MF_PEER_CLOCK_AGREES */
};
/* Writes into buf (>= MF_PEER_CLOCK_MAX_BYTES); returns the length. */
size_t mf_peer_clock_encode(const struct mf_peer_clock *c, uint8_t *buf);
/* Returns 0, or MF_ECORRUPT (wrong length or kind, seq 0, a wall time past
 * INT64_MAX, unknown flags). */
int mf_peer_clock_decode(const uint8_t *data, size_t len, struct mf_peer_clock *out);

#endif
