/* Auth methods (../shared/CLI.md "Authorization"; issue 11, must-have 6):
 * mounting jwt and cert methods, their roles, and logging in with them.
 *
 * A mount's config and roles are reserved records (records.h), replicated
 * and encrypted like every value, so every node verifies alike and a new
 * config (a rotated JWKS, a new CA or CRL) takes effect at the next login
 * with no restart:
 *   sys/auth/<mount>              {"type": "jwt"|"cert", "config": JSON text}
 *   sys/auth/<mount>/role/<role>  the role's JSON object
 * `auth enable` and `auth role put` parse what they store with the method's
 * own parser (src/auth/jwt.h, certauth.h) before proposing, so nothing the
 * login path would refuse to compile is ever stored. A cert mount whose CA is,
 * was issued by, or issued the peer CA (the node's tls_ca_file) is refused.
 *
 * Login (leader; no token, no policy): the leader reads the mount and role
 * records, verifies the credential at its wall clock, matches the role, and
 * creates an orphan token whose policies are the role's token_policies, whose
 * TTL is token_ttl_ms capped by token_max_ttl_ms and max_token_ttl_ms (for
 * cert, also by the certificate's notAfter), and whose metadata are the
 * identity's (jwt: the role's claim_mappings; cert: the matched SAN or CN and
 * the serial): policy conditions test them as claims (authz.c).
 *   - jwt: the JWT travels in the request (forwarded to the leader over the
 *     peer link like any write); it is never logged, stored or echoed.
 *   - cert: the client certificate is the one the TLS layer accepted on the
 *     client's connection (the client listener asks for one and leaves its
 *     verification here). A cert login entering a follower carries that
 *     certificate and its intermediates to the leader in the peer-only
 *     forward envelope (api.h, proto/forward.proto; a client cannot set it),
 *     and the leader verifies them against the mount's CA and CRL and matches
 *     the role in its own state, exactly as for a client connected to it.
 * The token-creating command's idempotency entry belongs to the credential
 * (the JWT; the certificate's DER), not the client address: a retry with the
 * same request id and credential gets the same token, another credential
 * with that id never does (handler.h).
 * A refused login is PERMISSION_DENIED (INVALID_ARGUMENT for a credential
 * that does not parse) with the method's reason name ("expired", "audience",
 * "signature", "unknown key", "untrusted", ...). An unknown mount or role is
 * PERMISSION_DENIED too.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_AUTH_H
#define MF_SERVER_OP_AUTH_H

#include "server/handler.h"

#define MF_OP_AUTH_PREFIX "sys/auth/"
#define MF_OP_AUTH_CONFIG_BYTES_MAX (512 * 1024) /* one mount config or role, JSON text */

void mf_op_auth_enable(struct req *r);   /* leader */
void mf_op_auth_role_put(struct req *r); /* leader */
void mf_op_auth_list(struct req *r);     /* read */
void mf_op_login(struct req *r);         /* leader */

#endif
