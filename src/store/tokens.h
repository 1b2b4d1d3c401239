/* Tokens in the state database, stored by the SHA-256 hash of the token
 * (never in clear), with an accessor index and a parent -> children index for
 * the revoke tree and an expiry index (layouts in state.h). Writes happen
 * only through replicated commands (TokenCreate, TokenRevoke, TokenRenew,
 * TokenExpire; see apply.h): revoking a token moves every issuing/active
 * lease it owns to revoking and revokes its child tokens the same way, in one
 * command. TokenExpire (the scheduler's) does that for each token of its
 * batch whose expiry has passed at the command's now, so a renew committed
 * after the scheduler read the index wins.
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
#define MF_TOKEN_EXPIRE_BATCH_MAX 1024 /* tokens per TokenExpire command */

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

/* The tokens due by now_ms (expire_at_ms <= now_ms), earliest first: up to
 * `cap` hashes into hashes[0..*n). Tokens without expiry are never due.
 * @return 0; MF_ECORRUPT (a malformed index key); storage errors. */
int mf_token_due(MDB_txn *txn, struct mf_state *st, uint64_t now_ms,
                 uint8_t (*hashes)[MF_TOKEN_HASH_LEN], size_t cap, size_t *n);

/* The pure renew rule: the new expiry of a token renewed at now_ms by
 * increment_ms (0: its own ttl_ms), never past issued_ms + max_ttl_ms
 * (max_ttl_ms 0: no cap) nor its parent's expiry (0: none). UINT64_MAX when
 * nothing bounds it (no increment, no TTL, no cap). The caller keeps a token
 * without expiry as it is and refuses an expired one. */
uint64_t mf_token_renew_expire_at(uint64_t now_ms, uint64_t increment_ms, uint64_t ttl_ms,
                                  uint64_t issued_ms, uint64_t max_ttl_ms,
                                  uint64_t parent_expire_at_ms);

/* Number of child tokens of `hash`. */
int mf_token_children_count(MDB_txn *txn, struct mf_state *st,
                            const uint8_t hash[MF_TOKEN_HASH_LEN], size_t *count);

#endif
