/* Tokens in the state database, stored by the SHA-256 hash of the token
 * (never in clear), with an accessor index and a parent -> children index for
 * the revoke tree (layouts in state.h). Writes happen only through replicated
 * commands (TokenCreate, TokenRevoke; see apply.h): revoking a token moves
 * every issuing/active lease it owns to revoking and revokes its child tokens
 * the same way, in one command.
 *
 * Read functions take a transaction the caller began and ends.
 */
#ifndef MF_STORE_TOKENS_H
#define MF_STORE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "store/state.h"

#define MF_TOKEN_HASH_LEN 32         /* SHA-256 */
#define MF_TOKEN_ACCESSOR_MAX 128    /* bytes */
#define MF_TOKEN_POLICIES_MAX 64
#define MF_TOKEN_POLICY_NAME_MAX 128

/* The token with this hash. *out is the caller's (mf_token_free).
 * MF_ENOTFOUND if none. The caller judges expiry (expire_at_ms, 0 = never)
 * with its clock and the skew bound. */
int mf_token_get(MDB_txn *txn, struct mf_state *st, const uint8_t hash[MF_TOKEN_HASH_LEN],
                 Mayfly__Cmd__TokenRecord **out);
void mf_token_free(Mayfly__Cmd__TokenRecord *t);

/* The hash of the token with this accessor. MF_ENOTFOUND if none. */
int mf_token_by_accessor(MDB_txn *txn, struct mf_state *st, const char *accessor,
                         uint8_t hash[MF_TOKEN_HASH_LEN]);

/* The token that expires first (tokens with a TTL only): the scheduler
 * proposes a TokenRevoke for it once expire_at <= now. MF_ENOTFOUND if none. */
int mf_token_next_due(MDB_txn *txn, struct mf_state *st, uint64_t *expire_at_ms,
                      uint8_t hash[MF_TOKEN_HASH_LEN]);

/* Number of child tokens of `hash`. */
int mf_token_children_count(MDB_txn *txn, struct mf_state *st,
                            const uint8_t hash[MF_TOKEN_HASH_LEN], size_t *count);

#endif
