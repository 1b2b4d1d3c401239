/* Fuzz target: what a peer's Raft messages can do to a node, past the
 * decoder: up to MSGS_MAX messages (separated by SEP), each decoded
 * (mf_peer_msg_decode), addressed as node.c requires (to = this node, from
 * = a member: node.c drops others, the certificate names the sender) and
 * stepped into a follower core (node 2 of voters 1, 2, 3; in-memory
 * storage; a synchronous driver that saves every ready batch). node.c stops
 * the node when mf_raft_step returns anything but 0 or MF_EINVAL, so a
 * peer's message must never get another error, nor an assertion, nor a
 * ready batch that the storage refuses. Every few messages the core also
 * ticks (elections, and the leader role when it wins). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "node/peer_codec.h"
#include "raft/core.h"
#include "raft/memstorage.h"

#define MSGS_MAX 32
#define SEP "|RM|"

static int snap_read(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf, size_t cap,
                     size_t *len, bool *done)
{
    (void)ctx, (void)index;
    size_t n = offset >= 256 ? 0 : 256 - offset;
    n = n < cap ? n : cap;
    memset(buf, 0x5a, n);
    *len = n;
    *done = offset + n >= 256;
    return 0;
}

/* Run every ready batch as node.c's writer would (minus the I/O). */
static void drive(struct mf_raft *r, struct mf_raft_storage *st)
{
    while (mf_raft_has_ready(r)) {
        struct mf_raft_ready rd;
        MF_ASSERT(mf_raft_ready(r, &rd) == 0);
        if (rd.snapshot)
            MF_ASSERT(st->install_snapshot(st->ctx, rd.snapshot) == 0);
        MF_ASSERT(st->save(st->ctx, rd.hard_state_changed ? &rd.hard_state : NULL, rd.entries,
                           rd.entries_len) == 0);
        MF_ASSERT(mf_raft_advance(r, &rd) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        mf_log_set_level(MF_LOG_OFF);
        quiet = 1;
    }
    struct mf_raft_memstorage *ms;
    MF_ASSERT(mf_raft_memstorage_init(&ms) == 0);
    struct mf_raft_storage st;
    mf_raft_memstorage_iface(ms, &st);
    struct mf_raft_config cfg = {.id = 2, .voters = {1, 2, 3}, .voters_len = 3,
                                 .election_ticks = 10, .heartbeat_ticks = 2, .storage = &st,
                                 .max_msg_bytes = 1 << 20, .max_inflight = 8, .pre_vote = true,
                                 .check_quorum = true, .seed = 1, .snapshot_chunk_bytes = 64,
                                 .snapshot_read = snap_read};
    struct mf_raft *r;
    MF_ASSERT(mf_raft_init(&cfg, &r) == 0);

    size_t sl = strlen(SEP), start = 0, n = 0;
    for (size_t i = 0; n < MSGS_MAX; i++) {
        if (i + sl <= size && memcmp(data + i, SEP, sl) != 0)
            continue;
        size_t end = i + sl > size ? size : i;
        struct mf_peer_decoded d;
        if (mf_peer_msg_decode(data + start, end - start, &d) == 0) {
            d.msg.to = 2;
            d.msg.from = d.msg.from % 2 ? 1 : 3;
            int rc = mf_raft_step(r, &d.msg);
            MF_ASSERT(rc == 0 || rc == MF_EINVAL);
            mf_peer_msg_free(&d);
            drive(r, &st);
        }
        if (++n % 4 == 0) {
            for (int t = 0; t < 25; t++) {
                MF_ASSERT(mf_raft_tick(r) == 0);
                drive(r, &st);
            }
        }
        if (end == size)
            break;
        start = i + sl;
        i += sl - 1;
    }
    mf_raft_close(r);
    mf_raft_memstorage_close(ms);
    return 0;
}
