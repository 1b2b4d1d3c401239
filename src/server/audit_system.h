/* System audit records: what the cluster does by itself (the scheduler's
 * lease revocations, token expiries), recorded on every node when the Raft
 * entry applies, with no client: identity {"auth_method": "system", "role":
 * "scheduler"}, decision allowed, result "OK".
 *
 *     "lease.revoked"  one record per lease a LeaseRevoked entry moved to
 *                      revoked, with its lease_id (expiry, token expiry, or a
 *                      client's revoke finishing)
 *     "token.expire"   one record per token a TokenExpire entry names, the
 *                      token's SHA-256 recorded only as an HMAC
 *                      (secrets.token_sha256)
 *     "audit.system_lost"  claims {"records_lost": N}: N system records were
 *                      dropped because the queue below was full
 *
 * They never wait for audit and are exempt from fail closed (a full audit
 * disk must never keep an expired credential alive): auditlog.c queues them
 * here, in memory, bounded (MF_AUDIT_SYSQ_MAX; beyond it they are counted and
 * recorded as one "audit.system_lost" record), and stages them into the next
 * batch; they leave the queue only once a batch holding them is durable on
 * every open device (at least once: a device that failed alone may get a
 * record twice). Lost at a restart (they live in memory).
 *
 * Loop thread; reads the state only for a LeaseRevoked entry. */
#ifndef MF_SERVER_AUDIT_SYSTEM_H
#define MF_SERVER_AUDIT_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/record.h"
#include "store/leases.h"
#include "store/tokens.h"

#define MF_AUDIT_SYSQ_MAX 4096

struct mf_audit_sys_event {
    uint64_t time_ms;
    const char *operation;           /* a static string (above) */
    char lease_id[MF_LEASE_ID_MAX];  /* "" for none */
    bool has_token;
    uint8_t token_hash[MF_TOKEN_HASH_LEN];
};

/* A FIFO of events with a count of those dropped. Zero-initialised is empty. */
struct mf_audit_sysq {
    struct mf_audit_sys_event *v; /* ring of MF_AUDIT_SYSQ_MAX, allocated on the first push */
    size_t head, n;
    uint64_t lost;
    size_t inflight;       /* the first events staged in a batch */
    uint64_t lost_staged;  /* ... and the loss summary staged with them */
};

/* Appends ev, or counts it lost (queue full, out of memory). */
void mf_audit_sysq_push(struct mf_audit_sysq *q, const struct mf_audit_sys_event *ev);
/* The i-th queued event (i < q->n). */
const struct mf_audit_sys_event *mf_audit_sysq_at(const struct mf_audit_sysq *q, size_t i);
/* Drops the first n events. */
void mf_audit_sysq_pop(struct mf_audit_sysq *q, size_t n);
void mf_audit_sysq_free(struct mf_audit_sysq *q);

/* The events of one applied entry (a packed Command; anything else has
 * none), pushed onto q. Leases are looked up after the apply (only
 * those now revoked are recorded). Cheap for other commands: the top-level
 * fields are scanned, only a LeaseRevoked or TokenExpire is unpacked. */
struct mf_server;
void mf_audit_sys_events(struct mf_server *s, const uint8_t *data, size_t len,
                         struct mf_audit_sysq *q);

/* Unless a batch holds some already, stages the queued events' records (at
 * most 256, then the loss summary) with stage(arg, record), numbering them
 * node-N from ++*next_rid, until stage fails. @return true when some were
 * staged: the caller waits for the batch and calls mf_audit_sys_done. */
bool mf_audit_sys_pump(struct mf_audit_sysq *q, uint64_t node_id, uint64_t *next_rid,
                       uint64_t now_ms, int (*stage)(void *arg, const struct mf_audit_record *),
                       void *arg);
/* The batch holding them ended: durable (they leave the queue) or not (they
 * are staged again by the next pump). @return true: pump again now. */
bool mf_audit_sys_done(struct mf_audit_sysq *q, bool durable);

#endif
