/* Leases: the lease table, the expiry index, the prefix index, the revoking
 * set and quotas, as kept in the state database (layouts in state.h).
 *
 * Writes happen only through replicated commands (fsm.c -> the handlers in
 * apply.h). This header is the read side, used by the server and the
 * revocation scheduler: every function takes a transaction the caller began
 * (mf_state_read_begin) and ends; nothing here allocates unless it says so.
 *
 * Lease ids are `MOUNT/NAME/SEQ` with SEQ printed by mf_seq_format
 * (common/seq.h: 13 characters of Crockford's base32, lower case, so text
 * order is number order).
 * States: issuing -> active -> revoking -> revoked, or irrevocable
 * (force-revoke moves it to revoked). Renew only while active, capped by
 * max_expire_at. "Live" leases are those not revoked; quotas count them.
 */
#ifndef MF_STORE_LEASES_H
#define MF_STORE_LEASES_H

#include <stddef.h>
#include <stdint.h>

#include "common/seq.h"
#include "store/state.h"

#define MF_LEASE_MOUNT_MAX 64      /* bytes in a mount name */
#define MF_LEASE_NAME_MAX 192      /* bytes in a lease name */
#define MF_LEASE_PREFIX_MAX (MF_LEASE_MOUNT_MAX + MF_LEASE_NAME_MAX + 2) /* "MOUNT/NAME/" */
#define MF_LEASE_ID_MAX (MF_LEASE_PREFIX_MAX + MF_SEQ_CHARS + 1) /* with SEQ and NUL */
#define MF_LEASE_TIDY_MAX 10000    /* revoked leases dropped by one tidy command */
#define MF_LEASE_EXPIRE_MAX 10000  /* seqs in one expire / revoked command */
#define MF_LEASE_REVOKE_PREFIX_MAX 10000 /* leases one revoke-prefix command moves */
#define MF_LEASE_QUOTAS_MAX 64     /* configured quotas (cluster-wide counts as one) */
#define MF_LEASE_OWNER_HASH_LEN 32 /* SHA-256 */
#define MF_LEASE_BLOB_MAX (64 * 1024) /* credential / last_error ciphertext */

/* Format "MOUNT/NAME/SEQ" into buf (NUL-terminated). Returns the length, or
 * MF_ETOOLARGE if it does not fit in len. */
int mf_lease_id_format(char *buf, size_t len, const char *mount, const char *name, uint64_t seq);
/* Split a lease id: *prefix_len is the length of "MOUNT/NAME/" at id. Returns
 * 0 or MF_EINVAL (then *prefix_len and *seq are untouched). */
int mf_lease_id_parse(const char *id, size_t *prefix_len, uint64_t *seq);
const char *mf_lease_state_name(int state); /* "active", ... */

/* Look a lease up. On success *out is a record the caller frees with
 * mf_lease_free. MF_ENOTFOUND if no such lease (or tidied). */
int mf_lease_get(MDB_txn *txn, struct mf_state *st, uint64_t seq,
                 Mayfly__Cmd__LeaseRecord **out);
void mf_lease_free(Mayfly__Cmd__LeaseRecord *rec);

/* The next lease due: the first key of the expiry index (issuing and active
 * leases only). O(log n). MF_ENOTFOUND if there is none. */
int mf_lease_next_due(MDB_txn *txn, struct mf_state *st, uint64_t *expire_at_ms, uint64_t *seq);

/* Position in the expiry index, for paging through due leases. */
struct mf_lease_due_cursor {
    uint64_t expire_at_ms;
    uint64_t seq;
};
/* Up to `max` leases with expire_at <= by_ms, in expiry order, after `after`
 * (NULL: from the start). Writes SEQs to seqs[], their count to *n and, if
 * `next` is given, the position to continue from. */
int mf_lease_due(MDB_txn *txn, struct mf_state *st, uint64_t by_ms,
                 const struct mf_lease_due_cursor *after, uint64_t *seqs, size_t max, size_t *n,
                 struct mf_lease_due_cursor *next);

/* Up to `max` leases of the revoking set that engine mount `engine` must
 * revoke ("" for leases no engine has to revoke: bare and KV-bound ones),
 * with SEQ > after_seq, in SEQ order (what a new leader resumes revoking). */
int mf_lease_revoking(MDB_txn *txn, struct mf_state *st, const char *engine, uint64_t after_seq,
                      uint64_t *seqs, size_t max, size_t *n);

/* The first engine mount after `after` (NULL: from the start, where "" the
 * engineless group comes first) that has leases in the revoking set, into
 * engine (len >= MF_LEASE_MOUNT_MAX + 1). MF_ENOTFOUND when there is none. */
int mf_lease_revoking_next_engine(MDB_txn *txn, struct mf_state *st, const char *after,
                                  char *engine, size_t len);

/* One listed lease: owned by the caller, freed by mf_lease_list_free. */
struct mf_lease_item {
    uint64_t seq;
    char id[MF_LEASE_ID_MAX];
    Mayfly__Cmd__LeaseRecord *rec;
};
/* List leases whose "MOUNT/NAME/" starts with `prefix` ("" or NULL: all), in
 * prefix-then-SEQ order, optionally only in `state` (0: any), at most `limit`,
 * after the lease id `after` (NULL: from the start). *items is an array of
 * *n items (free with mf_lease_list_free); *more says whether a next page
 * exists (then continue with after = the last item's id). A state filter
 * scans the prefix: it costs O(leases under the prefix). */
int mf_lease_list(MDB_txn *txn, struct mf_state *st, const char *prefix, int state,
                  const char *after, size_t limit, struct mf_lease_item **items, size_t *n,
                  int *more);
void mf_lease_list_free(struct mf_lease_item *items, size_t n);

/* The quota on `prefix` ("" = cluster-wide): MF_ENOTFOUND if none. */
int mf_lease_quota_get(MDB_txn *txn, struct mf_state *st, const char *prefix, uint64_t *max,
                       uint64_t *count);

#endif
