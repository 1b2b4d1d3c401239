/* Policy operations (../shared/CLI.md "Authorization"): write, read, list,
 * delete and check.
 *
 * Writes are parsed here first (src/auth/policy.h, strict), so a document the
 * cluster would not compile is refused with the parser's message and nothing
 * is proposed; the store keeps the JSON text as written and the authorization
 * layer (authz.h) rebuilds its set when the write applies. Reads answer from
 * that set: `policy read` renders the compiled policy canonically (keys
 * sorted, max_ttl as max_ttl_ms), `policy list` includes `root` and `default`.
 * `policy check` decides one request with named policies or a token's (plus
 * `default` either way) and an explicit context, with the same rules as every
 * request.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_POLICY_H
#define MF_SERVER_OP_POLICY_H

#include "server/handler.h"

/* Limits of one `policy check` request. */
#define MF_OP_POLICY_CHECK_POLICIES_MAX 256 /* named policies */
#define MF_OP_POLICY_CHECK_CLAIMS_MAX 64    /* claims in claims_json */
#define MF_OP_POLICY_CHECK_CLAIMS_MAX_BYTES (64 * 1024) /* claims_json text */

void mf_op_policy_write(struct req *r);  /* leader */
void mf_op_policy_delete(struct req *r); /* leader */
void mf_op_policy_read(struct req *r);   /* read: NOT_FOUND for an unknown name */
void mf_op_policy_list(struct req *r);   /* read */
void mf_op_policy_check(struct req *r);  /* read */

#endif
