/* Replicated alarms (README "Storage pressure", issue 15): a node's storage
 * over its quota is raised as an alarm in the replicated state, etcd's way,
 * and while any storage alarm is set every node's apply refuses the commands
 * that grow the data.
 *
 * Stored in META as "alarm/<kind>/" + node id (8 bytes big-endian) ->
 * AlarmRecord (proto/command.proto), so alarms survive restarts and travel
 * in snapshots (which copy every record of every database).
 *
 * Which commands grow the data (mf_alarm_cmd_grows, a pure rule): lease
 * grants and activations (a credential issue), KV puts (but the server's
 * own bounded records sys/crl/ and sys/audit/anchors/, which replace
 * themselves: revocations keep being published) and metadata puts, token
 * creates (logins included), policy puts, and quota sets with a limit.
 * Everything else goes on: renewals, revocations, expiries, revoked and
 * irrevocable marks, tidy, deletes, destroys, token revoke/renew/expire,
 * policy delete, quota removal, keyring put, and AlarmSet itself: they free
 * space or change records in place, and a cluster that cannot revoke is
 * worse than one that cannot grant.
 *
 * Deterministic: the state decides (an alarm applied earlier in the log),
 * never a clock or a node's own measurement.
 */
#ifndef MF_STORE_ALARMS_H
#define MF_STORE_ALARMS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"
#include "store/state.h"

#define MF_ALARM_KIND_STORAGE "storage"
#define MF_ALARM_KIND_MAX 32       /* bytes of a kind */
#define MF_ALARM_DETAIL_MAX 512    /* bytes of a detail */
#define MF_ALARMS_MAX 256          /* alarms listed at most (one per node and kind) */

/* Does applying `c` grow the data (the rule above)? Pure. */
bool mf_alarm_cmd_grows(const Mayfly__Cmd__Command *c);

struct mf_apply;
/* AlarmSet: sets (replacing detail and since) or clears node's alarm of
 * kind. Clearing one that is not set succeeds (count 0). Rule errors
 * (MF_EINVAL): node 0, a kind not [a-z] 1..MF_ALARM_KIND_MAX, a detail over
 * MF_ALARM_DETAIL_MAX. Result.count: 1 if the stored state changed. */
int mf_alarm_apply_set(struct mf_apply *a, const Mayfly__Cmd__AlarmSet *m,
                       Mayfly__Cmd__Result *r);

/* Before a command applies: MF_EQUOTA (with a message naming the alarm's
 * node and detail in a->err) if `c` grows the data and a storage alarm is
 * set; 0 to go on; a storage error (fatal). */
int mf_alarm_apply_check(struct mf_apply *a, const Mayfly__Cmd__Command *c);

/* The refusal's words, the same on the leader (before proposing) and at
 * apply: "storage alarm on node N: DETAIL; writes that grow ...". */
void mf_alarm_refusal_text(char *buf, size_t len, uint64_t node, const char *detail);

/* The alarms set, ordered by kind then node id (at most MF_ALARMS_MAX).
 * *out is malloc'd (NULL when *n is 0): free with mf_alarm_list_free.
 * Errors: MF_ESTORAGE, MF_ECORRUPT (a record does not decode), -ENOMEM. */
int mf_alarm_list(MDB_txn *txn, struct mf_state *st, Mayfly__Cmd__AlarmRecord ***out, size_t *n);
void mf_alarm_list_free(Mayfly__Cmd__AlarmRecord **list, size_t n);

#endif
