/* What every operation handler shares: proposing a client's command and
 * answering from its applied result, the read info of a read's answer, and
 * the checks on what a client names (paths, lease ids).
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_HANDLER_H
#define MF_SERVER_HANDLER_H

#include <stdbool.h>
#include <stdint.h>

#include "server/api.h"

typedef Mayfly__Api__Request Req;
typedef Mayfly__Api__Response Resp;
typedef Mayfly__Cmd__Command Cmd;
typedef Mayfly__Cmd__Result Result;

/* Turns the fsm's Result into the answer (resp holds an empty answer) and
 * answers r itself, or chains another proposal. */
typedef void (*mf_handler_finish_cb)(struct req *r, const Result *res, Resp *resp);

/* What the fsm keys a client's request on (store/idempotency.h): an
 * idempotency key belongs to its caller, so the id is SHA-256 over the
 * caller's identity (its token's accessor; without a token, the hash of
 * the credential presented, r->cred_hash, for login and generate-root
 * (api.h: mf_api_set_credential); else the client's IP address, for
 * init), the client's request_key and a suffix (a chained second command
 * of one request); the caller is SHA-256 of the identity alone; the
 * fingerprint is SHA-256 of the operation and its message as decoded. A
 * retry from another token, credential or address is a new request, never a
 * replay of someone else's answer. Request ids and keys are never logged. */
struct mf_handler_idem {
    uint8_t rid[32];
    uint8_t caller[32];
    uint8_t fingerprint[32];
};
/* @return 0; MF_ENOTFOUND (r carries no request_key); MF_EINVAL (over
 * MF_IDEM_RID_MAX bytes); -ENOMEM. */
int mf_handler_idem(const struct req *r, uint8_t suffix, struct mf_handler_idem *out);

/* Proposes `cmd` for r: the command carries r's request id (mf_handler_idem,
 * with r->rid_suffix for a chained second command), so the fsm answers a
 * retried request from the same caller with the first result. When applied, `finish` answers
 * (NULL: an empty answer); a refusal or failure is answered here with its
 * code (UNKNOWN_OUTCOME when it may or may not have applied). */
void mf_handler_propose(struct req *r, Cmd *cmd, mf_handler_finish_cb finish);

/* Encrypts `plain` (malloc'd; wiped and freed here) as the value of m->path
 * (records.h: mf_records_seal_put) and proposes the KV put for r. */
void mf_handler_propose_put(struct req *r, Mayfly__Cmd__KvPut *m, char *plain,
                            mf_handler_finish_cb finish);

/* How fresh the answer to a read is (the caller's storage for it). */
Mayfly__Api__ReadInfo *mf_handler_read_info(struct req *r, Mayfly__Api__ReadInfo *ri);

/* A path a client names: not reserved, 1..MF_KV_PATH_MAX bytes. Answers r
 * and returns true when it is refused. */
bool mf_handler_refuse_path(struct req *r, const char *path);

/* Parses "MOUNT/NAME/SEQ". @return 0 or MF_EINVAL. */
int mf_handler_lease_seq(const char *id, uint64_t *seq);

enum mf_lease_owner {
    MF_LEASE_OWN,     /* granted to r's token */
    MF_LEASE_OTHER,   /* another token's, or a malformed id */
    MF_LEASE_UNKNOWN, /* not in this node's state (not applied yet, or none) */
};
enum mf_lease_owner mf_handler_lease_owner(struct req *r, const char *id);
/* For authorization: does r's token own lease `id`? A lease this follower
 * has not applied yet counts as owned for a write entering here: the leader
 * decides again with its state (reads are decided after their read index,
 * the leader with what it has: there unknown is not owned). */
bool mf_handler_owns_lease(struct req *r, const char *id);

void mf_handler_reply_empty(struct req *r);

#endif
