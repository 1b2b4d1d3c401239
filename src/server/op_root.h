/* operator generate-root: a new root token from the unseal shares, so a lost
 * or revoked root token is never fatal (Vault's shape; CLI.md).
 *
 * One attempt at a time, in the leader's memory only: `init` answers a nonce,
 * a one-time pad (OTP, shown once, to the initiator) and the threshold; each
 * `update` gives one share with the nonce, checked on a barrier of the
 * attempt's own (the shares must open the stored keyring: for a key-file seal
 * the key file's contents is the one share); the last one creates a root
 * token (policy root, no parent, no expiry) and answers it XOR the OTP,
 * base64, which only the holder of the OTP can decode (`-decode`, local in
 * the CLI). An attempt ends after MF_ROOT_ATTEMPT_MS, on `cancel`, when it
 * completes, or when this node stops leading (a call after a leader change
 * answers that no attempt is in progress). Shares are never logged.
 *
 * The attempt is the server's (s->root_attempt): it records the Raft term
 * it started in, and a call in another term finds none.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_ROOT_H
#define MF_SERVER_OP_ROOT_H

#include "server/handler.h"

#define MF_ROOT_ATTEMPT_MS (10 * 60 * 1000) /* an attempt lives 10 minutes */
#define MF_ROOT_OTP_BYTES 67                /* the length of a token: "mf." + 64 hex */

void mf_op_generate_root(struct req *r);

/* At server stop: ends an attempt in progress (its keys wiped). */
void mf_op_root_free(struct mf_server *s);

#endif
