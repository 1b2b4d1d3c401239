/* What the audit records of a request and of its answer carry besides the
 * request's context (auditlog.h "Records"): the secrets they record only as
 * HMACs (or as "redacted") and the lease id they name.
 *
 * A request: the caller's token, a token it names (`token` of the operation),
 * a KV put's values (all of them, as one HMAC of the packed message), an
 * `audit hash` value, and an unseal share (redacted). An answer: a new token,
 * a root token, init's shares (redacted). Nothing else of a body is recorded.
 *
 * Loop thread, no I/O. Strings point into the messages (and into *packed). */
#ifndef MF_SERVER_AUDIT_FIELDS_H
#define MF_SERVER_AUDIT_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "audit/record.h"
#include "mayfly.pb-c.h"

/* What both records of a request share (auditlog.h "Records"). */
struct mf_audit_base {
    char node[24];
    char rid[48];
    char request_id[2 * 64 + 1];
    char policies[1024];
    struct mf_audit_claim claim;
};

struct mf_audit_fields {
    struct mf_audit_secret v[8];
    size_t n;
};

/* q may be NULL. *packed receives a buffer the caller frees (or NULL);
 * *lease_id the operation's lease_id or NULL. */
void mf_audit_fields_request(const Mayfly__Api__Request *q, struct mf_audit_fields *s,
                             uint8_t **packed, const char **lease_id);
/* resp may be NULL. */
void mf_audit_fields_response(const Mayfly__Api__Response *resp, struct mf_audit_fields *s,
                              const char **lease_id);

/* Fills rec's time, node, record id (numbering r from *next_rid on its
 * first record), client, operation, path, request id and identity (the
 * token's accessor, its policies as the claim "policies"). Strings point
 * into r and b. */
struct req;
void mf_audit_fields_base(struct req *r, uint64_t *next_rid, struct mf_audit_base *b,
                          struct mf_audit_record *rec);

#endif
