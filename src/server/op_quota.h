/* Lease quotas (../shared/CLI.md "quota set|list|delete"): named limits on
 * the live leases under a lease-id prefix.
 *
 * A quota's scope is a prefix of lease ids ("MOUNT/NAME/SEQ"): -mount M is
 * "M/", -mount M -role R is "M/R/", -prefix P is P as written (a lease-name
 * prefix such as "lease/capped/"), and none of them is "" (the whole
 * cluster: this replaces the old per-node `leases_max` key). The limit is
 * the store's prefix quota (QuotaSet, store/leases.h: counted at apply,
 * a grant past it fails QUOTA_EXCEEDED); the name and its definition are
 * kept as the reserved record sys/quotas/NAME so `quota list` can show them.
 * One name per prefix: a prefix already limited by another quota, or a new
 * scope for an existing name, is refused (delete the quota first).
 *
 * set: QuotaSet, then the record (a chained second command). delete:
 * QuotaSet with max 0 (the store's "no quota"), then the record's removal.
 * A failure between the two leaves the store's quota in force with or without
 * its record; repeating the same set or delete completes it.
 *
 * `-rate R` (per-identity grants a second under the prefix) is not
 * implemented: a non-zero rate is refused with INVALID_ARGUMENT. The node's
 * per-token request limit (ratelimit.h) applies to every request.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_QUOTA_H
#define MF_SERVER_OP_QUOTA_H

#include "server/handler.h"

#define MF_OP_QUOTA_PREFIX "sys/quotas/"
#define MF_OP_QUOTA_NAME_MAX 64

void mf_op_quota_set(struct req *r);    /* leader */
void mf_op_quota_delete(struct req *r); /* leader: NOT_FOUND for an unknown name */
void mf_op_quota_list(struct req *r);   /* read */

#endif
