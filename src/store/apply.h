/* Internal to the state machine: the context every command handler of the
 * apply path receives (fsm.c builds it; leases.c, kv.c, tokens.c, policies.c
 * and idempotency.c use it). Not a public interface.
 *
 * Handler contract: a handler first checks everything that may refuse the
 * command and returns a rule error (MF_EINVAL, MF_ENOTFOUND, MF_EQUOTA, ...)
 * with a message set by mf_apply_fail, before it writes anything; so a
 * refused command leaves the store unchanged without a nested transaction.
 * Once it writes, only storage failures (mf_apply_fatal) may stop it, and
 * those abort the whole batch transaction.
 * Deterministic: no clock, no randomness, no env.h; time is a->now_ms.
 */
#ifndef MF_STORE_APPLY_H
#define MF_STORE_APPLY_H

#include <errno.h>
#include <stdint.h>

#include "command.pb-c.h"
#include "common/err.h"
#include "store/state.h"

struct mf_apply {
    struct mf_state *st;
    MDB_txn *txn;
    uint64_t now_ms;   /* the command's now */
    uint64_t live;     /* META "live", cached for the batch */
    int live_loaded;
    int live_dirty;
    uint64_t by_state[MF_LEASE_STATES]; /* META "leases/<state>", cached for the batch */
    int states_loaded;
    int states_dirty;
    char err[256];     /* message of the last rule error */
};

/* Storage failures abort the batch; everything else is a command's result. */
#define mf_apply_fatal(rc) \
    ((rc) == MF_EMAPFULL || (rc) == MF_ENOSPACE || (rc) == MF_ESTORAGE || (rc) == MF_ECORRUPT || \
     (rc) == -ENOMEM || (rc) == -EIO)

/* Record a rule error's message and return `code`. */
int mf_apply_fail(struct mf_apply *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Live lease counter (cached in the context, flushed by the fsm). */
int mf_apply_live_add(struct mf_apply *a, int64_t delta);
/* Leases by state: one lease moves from state `from` to `to` (0: none, for
 * a grant or a tidy). Cached like live, flushed by the fsm. */
int mf_apply_lease_moved(struct mf_apply *a, int from, int to);

/* leases.c */
int mf_lease_apply_grant(struct mf_apply *a, const Mayfly__Cmd__LeaseGrant *m,
                         Mayfly__Cmd__Result *r);
int mf_lease_apply_activate(struct mf_apply *a, const Mayfly__Cmd__LeaseActivate *m,
                            Mayfly__Cmd__Result *r);
int mf_lease_apply_renew(struct mf_apply *a, const Mayfly__Cmd__LeaseRenew *m,
                         Mayfly__Cmd__Result *r);
int mf_lease_apply_revoke(struct mf_apply *a, const Mayfly__Cmd__LeaseRevoke *m,
                          Mayfly__Cmd__Result *r);
int mf_lease_apply_revoke_prefix(struct mf_apply *a, const Mayfly__Cmd__LeaseRevokePrefix *m,
                                 Mayfly__Cmd__Result *r);
int mf_lease_apply_expire(struct mf_apply *a, const Mayfly__Cmd__LeaseExpire *m,
                          Mayfly__Cmd__Result *r);
int mf_lease_apply_revoked(struct mf_apply *a, const Mayfly__Cmd__LeaseRevoked *m,
                           Mayfly__Cmd__Result *r);
int mf_lease_apply_irrevocable(struct mf_apply *a, const Mayfly__Cmd__LeaseIrrevocable *m,
                               Mayfly__Cmd__Result *r);
int mf_lease_apply_force_revoke(struct mf_apply *a, const Mayfly__Cmd__LeaseForceRevoke *m,
                                Mayfly__Cmd__Result *r);
int mf_lease_apply_tidy(struct mf_apply *a, const Mayfly__Cmd__LeaseTidy *m,
                        Mayfly__Cmd__Result *r);
int mf_lease_apply_quota_set(struct mf_apply *a, const Mayfly__Cmd__QuotaSet *m,
                             Mayfly__Cmd__Result *r);
/* Move every issuing/active lease owned by token `hash` to revoking and drop
 * the token's owner index; *moved counts them. */
int mf_lease_apply_revoke_owned(struct mf_apply *a, const uint8_t hash[32], uint64_t *moved);
/* 0 if lease `seq` exists and is issuing or active; else a rule error. */
int mf_lease_check_bindable(struct mf_apply *a, uint64_t seq);

/* kv.c */
int mf_kv_apply_put(struct mf_apply *a, const Mayfly__Cmd__KvPut *m, Mayfly__Cmd__Result *r);
int mf_kv_apply_versions(struct mf_apply *a, const Mayfly__Cmd__KvVersions *m,
                         Mayfly__Cmd__Result *r);
int mf_kv_apply_metadata_put(struct mf_apply *a, const Mayfly__Cmd__KvMetadataPut *m,
                             Mayfly__Cmd__Result *r);
int mf_kv_apply_delete_all(struct mf_apply *a, const Mayfly__Cmd__KvDeleteAll *m,
                           Mayfly__Cmd__Result *r);
/* Destroy every KV entry bound to lease `seq` (metadata and all versions). */
int mf_kv_apply_destroy_bound(struct mf_apply *a, uint64_t seq, uint64_t *destroyed);

/* tokens.c */
int mf_token_apply_create(struct mf_apply *a, const Mayfly__Cmd__TokenCreate *m,
                          Mayfly__Cmd__Result *r);
int mf_token_apply_revoke(struct mf_apply *a, const Mayfly__Cmd__TokenRevoke *m,
                          Mayfly__Cmd__Result *r);
int mf_token_apply_renew(struct mf_apply *a, const Mayfly__Cmd__TokenRenew *m,
                         Mayfly__Cmd__Result *r);
int mf_token_apply_expire(struct mf_apply *a, const Mayfly__Cmd__TokenExpire *m,
                          Mayfly__Cmd__Result *r);
/* 1 if a token with this hash exists, 0 if not, or a fatal error. */
int mf_token_apply_exists(struct mf_apply *a, const uint8_t *hash, size_t len);

/* policies.c */
int mf_policy_apply_put(struct mf_apply *a, const Mayfly__Cmd__PolicyPut *m,
                        Mayfly__Cmd__Result *r);
int mf_policy_apply_delete(struct mf_apply *a, const Mayfly__Cmd__PolicyDelete *m,
                           Mayfly__Cmd__Result *r);

/* idempotency.c */
/* Drop expired entries (by a->now_ms) and the oldest beyond the bound. */
int mf_idem_apply_prune(struct mf_apply *a);
/* A kept result for this request id, if still fresh: 0 and *out (free with
 * mayfly__cmd__result__free_unpacked(*out, NULL)); MF_ENOTFOUND if none;
 * MF_EINVAL if the entry was made by a request with another fingerprint
 * (both non-empty and different). */
int mf_idem_apply_lookup(struct mf_apply *a, const uint8_t *rid, size_t len,
                         ProtobufCBinaryData fingerprint, Mayfly__Cmd__Result **out);
/* Remembers r for this request id, counted for `caller` (32 bytes, or empty)
 * whose oldest entry goes when it holds more than MF_IDEM_PER_CALLER_MAX. */
int mf_idem_apply_store(struct mf_apply *a, const uint8_t *rid, size_t len,
                        ProtobufCBinaryData caller, ProtobufCBinaryData fingerprint,
                        const Mayfly__Cmd__Result *r);

#endif
