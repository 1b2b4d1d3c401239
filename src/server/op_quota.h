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
 * `-rate R`: at most R lease grants a second under the prefix (lease grant
 * and creds issue), all callers together, with bursts of R: one token
 * bucket per quota, kept in memory on the node that grants (the leader), so
 * a new leader starts with full buckets. A grant is charged to every quota
 * whose prefix its "MOUNT/NAME/" starts with, and refused with RATE_LIMITED
 * and a retry-after hint if any of them is empty. A quota needs -max-leases,
 * -rate, or both; the rate is kept in the record (as "rate"). The node's
 * per-identity request limit (ratelimit.h) applies to every request too.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_QUOTA_H
#define MF_SERVER_OP_QUOTA_H

#include <stdbool.h>

#include "server/handler.h"

struct mf_raft_entry;

#define MF_OP_QUOTA_PREFIX "sys/quotas/"
#define MF_OP_QUOTA_NAME_MAX 64

void mf_op_quota_set(struct req *r);    /* leader */
void mf_op_quota_delete(struct req *r); /* leader: NOT_FOUND for an unknown name */
void mf_op_quota_list(struct req *r);   /* read */

/* Every applied Raft entry (server.c): one that names sys/quotas/, or that
 * follows a gap (a snapshot was installed), makes the rates be read again
 * from the records at the next grant. */
void mf_quota_applied(struct mf_server *s, const struct mf_raft_entry *e);

/* A lease grant's check on the leader, for a lease "MOUNT/NAME/SEQ": takes
 * one from each quota rate over it. @return true to go on; false once r is
 * answered (RATE_LIMITED with a retry-after hint; UNAVAILABLE if the quota
 * records cannot be read). */
bool mf_quota_rate_take(struct req *r, const char *mount, const char *name);

/* At server stop: frees the server's rate table (s->quota_rates). */
void mf_quota_rates_free(struct mf_server *s);

#endif
