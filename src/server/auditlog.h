/* The server's audit (../shared/CLI.md "mayfly audit"): the cluster's audit
 * key, this node's open audit devices, and one record per request and per
 * response (src/audit/ formats, chains and writes them).
 *
 * Replicated configuration, local files. The audit key (32 random bytes,
 * made by the leader at the first `audit enable`) is the reserved record
 * sys/audit/key; each device is the reserved record sys/audit/devices/NAME
 * ({"type": "file", "path": P}; "{node}" in P stands for the node id, so
 * nodes sharing one file system write separate files). Both are encrypted by the barrier and reach
 * every node through Raft; every node opens its own file at P when the record
 * applies (mf_auditlog_applied) and closes it when it is deleted. A sealed
 * node has no audit key: it closes its devices and audits nothing until it
 * is unsealed (it serves only status, unseal and forwarding then).
 *
 * Records. mf_auditlog_request records the request (after the decision,
 * before the handler runs) and mf_auditlog_response the answer (before it
 * leaves): time, node, record id (node-counter), the HMAC of the request id,
 * client address, identity (token accessor, policies), operation, policy
 * path, decision (allowed, policy, rule), result code, lease id. Secrets
 * (the caller's token, a KV put's values, a new token) appear only as HMACs
 * under the field key; unseal shares and init's shares are "redacted"
 * (audit_fields.h). The cluster's own revocations and token expiries are
 * system records (audit_system.h).
 *
 * One fdatasync wait per request. A request's record is formatted and
 * staged on every device; for anything but a read it is also written
 * (write(2), no sync) before the handler runs, so a device that cannot
 * write refuses the request before anything is applied. Nothing waits for
 * its sync: the answer's record joins a batch, and the answer leaves once a
 * group fdatasync covering both records succeeded (mf_auditlog_then). Each
 * loop turn's batch is written in the check phase and synced on libuv's
 * thread pool while the loop goes on (up to 4 batches in flight; they end in
 * order, and a failed one fails the younger ones); staged records with
 * nobody waiting ride with the next batch. An idle handle keeps the poll
 * from blocking while a batch waits to start.
 *
 * Fail closed, exactly:
 * - a device that cannot take or write a request's record (not open, full
 *   disk, I/O error): the request is refused with MF_EUNAVAIL naming the
 *   device before it runs (nothing is applied; `audit disable` excepted);
 * - the group sync (or write) of a batch fails: every answer waiting on it
 *   is withheld and replaced by UNAVAILABLE "... a write may have been
 *   applied" (a write whose request record was written may have been
 *   applied: its answer is refused all the same), and so is the answer of a
 *   request whose request record was in a batch that failed (it is never
 *   on disk), or whose answer record cannot be staged. The device cuts the
 *   lost lines off its file and re-reads and re-verifies its tail before the
 *   next record; until it writes again, requests are refused before they run.
 * - a denied request's answer and an `audit disable`'s leave even so.
 * The scheduler's revocations and token expiries never wait for audit and
 * are exempt: they are recorded as system records once a device writes
 * (audit_system.h).
 *
 * Anchors of the files, committed through Raft: audit_anchor.h.
 *
 * `audit hash` is limited to MF_AUDITLOG_HASH_RATE a second per node (a
 * bucket of as many): an oracle of HMACs under the audit key must not be
 * queried in bulk. Each call is audited like any request (the dispatcher).
 *
 * Threads: loop thread; the group fdatasync runs on libuv's thread pool
 * (on the loop only when the server stops, or without memory). */
#ifndef MF_SERVER_AUDITLOG_H
#define MF_SERVER_AUDITLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "audit/chain.h"
#include "audit/record.h"
#include "node/node.h"
#include "server/srv.h"

struct req;
struct mf_authz_decision;

#define MF_AUDITLOG_KEY_PATH "sys/audit/key"
#define MF_AUDITLOG_DEVICES_PREFIX "sys/audit/devices/"
#define MF_AUDITLOG_DEVICES_MAX 16
#define MF_AUDITLOG_NAME_MAX 64
#define MF_AUDITLOG_ANCHORS_PREFIX "sys/audit/anchors/"
#define MF_AUDITLOG_ANCHOR_EVERY_MS 2000
#define MF_AUDITLOG_PEER_TAG 18 /* node.h: 16..255 are the server's; api.c has 16, 17 */
#define MF_AUDITLOG_ANCHORS_MAX 256 /* anchors answered for one file */
#define MF_AUDITLOG_HASH_RATE 10

/* A Raft entry applied: if it touched sys/audit/, open and close devices to
 * match the records. */
void mf_auditlog_applied(struct mf_server *s, const struct mf_raft_entry *e);
/* Housekeeping: after an unseal, a seal or a snapshot, and to retry a device
 * that could not open, match the devices to the records (every second). */
void mf_auditlog_tick(struct mf_server *s);
/* SIGHUP: reopen every file (logrotate's `create` mode). */
void mf_auditlog_reopen(struct mf_server *s);
/* Closes every device, wipes the key and frees the state (server stop). */
void mf_auditlog_free(struct mf_server *s);

/* Is any device open or configured here (records are due)? */
bool mf_auditlog_active(struct mf_server *s);

/* What goes on once a batch is durable (`durable` false: a device failed,
 * err names it). Runs from the loop's check phase. */
typedef void (*mf_auditlog_then)(struct req *r, bool durable, const char *err);

/* Stages the record of request r (operation `op`, policy path `path` or
 * NULL, decision or NULL when no policy applies) on every device, and with
 * write_now (anything but a read) writes it to each file (write(2), no
 * sync) before returning, so a full disk refuses the request before it runs.
 * Its fdatasync is not awaited here: the answer waits for the group sync that
 * covers both records (mf_auditlog_response).
 * @return 0: nothing to record; 1: recorded (the answer must be withheld
 *   unless its batch is durable); either way go on now; MF_EUNAVAIL with `err`
 *   naming a device that cannot write (refuse the request: nothing ran). */
int mf_auditlog_request(struct req *r, const char *op, const char *path,
                        const struct mf_authz_decision *dec, bool write_now, char *err,
                        size_t err_len);

/* Stages the record of the answer to r (its error code, 0 for OK; resp may
 * be NULL). @return 1: `then` runs once the batch is durable; durable false
 * (a device failed the batch, this answer's record could not be staged, or
 * the request's own record was lost with an earlier failed batch) means
 * refuse the answer with err; 0: send it now (nothing to record, or out of
 * memory: logged). */
int mf_auditlog_response(struct req *r, int code, const void *resp, mf_auditlog_then then);

/* Where an open device's file stands, durably. */
struct mf_auditlog_position {
    char device[MF_AUDITLOG_NAME_MAX + 1];
    struct mf_audit_anchor at;
};
/* The positions of this node's open devices with at least one durable
 * record (at most cap). */
size_t mf_auditlog_positions(struct mf_server *s, struct mf_auditlog_position *out, size_t cap);

/* The field-key HMAC of value (`audit hash`), or the chain key in hex
 * (`audit verify`). @return 0; MF_ENOTFOUND (no audit key yet: no device was
 * ever enabled); MF_ESEALED; MF_ERATELIMIT (hash: over MF_AUDITLOG_HASH_RATE
 * a second on this node). */
int mf_auditlog_hash(struct mf_server *s, const char *value, size_t len,
                     char out[MF_AUDIT_HASH_STR_BYTES]);
int mf_auditlog_chain_key_hex(struct mf_server *s, char out[2 * MF_AUDIT_KEY_BYTES + 1],
                              char key_id[MF_AUDIT_KEY_ID_LEN + 1]);

#endif
