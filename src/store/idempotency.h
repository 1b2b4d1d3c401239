/* Idempotency: the state machine remembers the result of every command that
 * carried a request id, for MF_IDEM_TTL_MS of command time and at most
 * MF_IDEM_MAX entries (the oldest go first), and answers a duplicate with the
 * first result instead of applying it again. A kept result that holds a secret
 * made for it carries that secret only as the ciphertext the proposer put in
 * the command (Command.result_secret): the store never keeps plaintext.
 *
 * An entry belongs to its caller: the proposer derives the request id from
 * the caller's identity and the client's key (server/handler.h), names the
 * caller (Command.idem_caller, a hash) and fingerprints the request's body
 * (Command.request_fingerprint). A duplicate id with another fingerprint is
 * refused (MF_EINVAL) rather than answered; a caller holding more than
 * MF_IDEM_PER_CALLER_MAX entries loses its own oldest one, so one client
 * cannot evict everyone else's.
 *
 * The limits are compile-time constants on purpose: every replica must prune
 * the same entries at the same command, so they cannot be per-node settings.
 * (Writes are in apply.h; this header is the read side.)
 */
#ifndef MF_STORE_IDEMPOTENCY_H
#define MF_STORE_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "store/state.h"

#define MF_IDEM_TTL_MS (10 * 60 * 1000) /* a request id is remembered 10 minutes */
#define MF_IDEM_MAX 100000              /* entries kept at most */
#define MF_IDEM_PRUNE_PER_CMD 16        /* expired entries dropped per command */
#define MF_IDEM_RID_MAX 64              /* bytes in a request id */
#define MF_IDEM_PER_CALLER_MAX 4096     /* entries one caller may hold */
#define MF_IDEM_CALLER_LEN 32           /* Command.idem_caller: SHA-256 */

/* Read side: the result remembered for request id `rid` (not expired by
 * `now_ms`), for a proposer that must know whether a request already applied
 * (a retried init). *out is freed with mf_fsm_result_free. MF_ENOTFOUND if
 * none; MF_EINVAL if it was made by a request whose fingerprint differs from
 * `fp` (fp_len 0: not checked). */
int mf_idem_get(MDB_txn *txn, struct mf_state *st, const uint8_t *rid, size_t len,
                const uint8_t *fp, size_t fp_len, uint64_t now_ms, Mayfly__Cmd__Result **out);

/* Entries `caller` (MF_IDEM_CALLER_LEN bytes) holds now. */
int mf_idem_caller_count(MDB_txn *txn, struct mf_state *st, const uint8_t *caller,
                         uint64_t *count);

/* Number of request ids currently remembered. */
int mf_idem_count(MDB_txn *txn, struct mf_state *st, uint64_t *count);

#endif
