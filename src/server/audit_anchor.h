/* Anchors (src/audit/chain.h) of every node's audit files, committed
 * through Raft, so `audit verify` detects a truncated tail.
 *
 * Every node anchors each of its own open files: every
 * MF_AUDITLOG_ANCHOR_EVERY_MS (server.c's housekeeping), when a device's
 * durable anchor {file id, seq, chain} (auditlog.h mf_auditlog_positions) is
 * ahead of the reserved record sys/audit/anchors/NODE/DEVICE in this node's
 * state, the node sends it to the leader in a peer message (tag
 * MF_AUDITLOG_PEER_TAG, on the mutual-TLS peer link; the leader commits its
 * own directly), and the leader proposes the record (overwritten each time;
 * the KV's versions keep the older anchors). A follower cannot propose;
 * forwarding a client request would need a token and would be audited
 * (moving the anchor again); the peer link already authenticates the node,
 * so the leader takes NODE from the link, never from the message. No
 * acknowledgement: a node sends again until the replicated record catches
 * up. The leader drops a message for a device that is not configured or an
 * anchor not ahead of the record (one record per node and device).
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_AUDIT_ANCHOR_H
#define MF_SERVER_AUDIT_ANCHOR_H

#include <stddef.h>
#include <stdint.h>

#include "server/auditlog.h"

/* One anchor round (call every MF_AUDITLOG_ANCHOR_EVERY_MS). */
void mf_audit_anchor_round(struct mf_server *s);

/* A peer message with tag MF_AUDITLOG_PEER_TAG from node `from` (an
 * anchor of one of its devices): the leader proposes it, others drop it. */
void mf_audit_anchor_peer_message(struct mf_server *s, uint64_t from, const uint8_t *data,
                                  size_t len);

/* An anchor as committed: whose device it is and where its file stood. */
struct mf_audit_anchor_at {
    uint64_t node;
    char device[MF_AUDITLOG_NAME_MAX + 1];
    struct mf_audit_anchor at;
};

/* The committed anchors of file `file_id` (every kept version of every
 * anchor record; "" or NULL: the current anchor of every device), at most
 * MF_AUDITLOG_ANCHORS_MAX, into *out (the caller frees it).
 * @return 0; MF_ESEALED; storage errors; -ENOMEM. */
int mf_audit_anchor_list(struct mf_server *s, const char *file_id,
                         struct mf_audit_anchor_at **out, size_t *n);

#endif
