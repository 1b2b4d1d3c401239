/* Tokens: authenticating a request, and the token operations.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_TOKENS_H
#define MF_SERVER_OP_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include "server/handler.h"

/* What a new token gets. parent_hash NULL: an orphan. The caller has
 * applied the rules already (policies a subset of the parent's, TTL capped);
 * the store caps a child at its parent's expiry and the TTL at max_ttl_ms. */
struct mf_token_spec {
    char **policies;
    size_t n_policies;
    uint64_t ttl_ms;             /* 0: never expires (the root token) */
    uint64_t max_ttl_ms;         /* renewals stop at issue + this; 0: no cap */
    bool no_default_policy;      /* the token does not carry `default` */
    const uint8_t *parent_hash;  /* 32 bytes, borrowed */
};

/* A new token and its TokenCreate command (cmd points into this struct;
 * the token's secret travels encrypted in cmd.result_secret). Wipe with
 * mf_tokens_new_wipe once proposed. */
struct mf_token_new {
    char token[68];              /* "mf." + 64 hex digits */
    char accessor[25];
    uint8_t hash[32];
    uint8_t *secret_ct;
    Mayfly__Cmd__TokenCreate create;
    Mayfly__Cmd__Command cmd;
};

/* Looks up r's token (by SHA-256) and refuses an unknown or expired one.
 * Sets r->token_hash and r->has_token. @return 0; MF_EUNAUTH; MF_EUNAVAIL
 * when the token expires and this node's clock cannot be trusted to judge
 * it (proposer.h mf_proposer_clock_check); storage errors. */
int mf_tokens_authenticate(struct req *r);

/* Makes a token for `spec`; its kept secret is encrypted under `write_id`.
 * @return 0; MF_ECRYPTO (no randomness); the barrier's errors (sealed). */
int mf_tokens_new(struct mf_server *s, const struct mf_token_spec *spec, uint64_t write_id,
                  struct mf_token_new *tn);
void mf_tokens_new_wipe(struct mf_token_new *tn);
/* Makes and proposes a token for r; `finish` answers (it may open the kept
 * secret with mf_tokens_secret_open and mf_tokens_write_id(r)). */
void mf_tokens_propose_create(struct req *r, const struct mf_token_spec *spec,
                              mf_handler_finish_cb finish);
/* The write id of r's token secret: from r's request id (so a retry opens
 * the first answer's secret), else the entry's index (r->write_id). */
uint64_t mf_tokens_write_id(const struct req *r);
/* Decrypts the "token accessor" secret kept with a TokenCreate's result
 * (malloc'd strings; wipe the token). @return 0; MF_ECORRUPT; barrier errors. */
int mf_tokens_secret_open(struct mf_server *s, const Result *res, uint64_t write_id,
                          char **token, char **accessor);

/* token create: a child's policies are a subset of the caller's (unless it
 * holds `root` or the caller has sudo on auth/token/create-orphan, which
 * -orphan needs: else PERMISSION_DENIED naming path and capability); no
 * policies asked: the caller's; TTL capped by max_token_ttl_ms and, for a
 * child, the caller's remaining TTL. */
void mf_op_token_create(struct req *r);
void mf_op_token_revoke(struct req *r);
/* token lookup: another token's parent accessor only for a caller with
 * update on auth/token/lookup-accessor. */
void mf_op_token_lookup(struct req *r);
/* token renew (TokenRenewRequest; empty token: the caller's own): proposes
 * TokenRenew and answers TokenRenewResponse. Who may renew another token is
 * the dispatch row's business. */
void mf_op_token_renew(struct req *r);

#endif
