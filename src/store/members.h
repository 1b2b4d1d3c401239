/* The replicated member registry (issue 13): every member's peer address,
 * client address, zone and role, changed together with the configuration.
 *
 * A configuration entry (raft/core.h) carries after its 9 bytes a tail,
 * MemberChange (proto/command.proto): the member it adds, promotes or
 * removes, and the proposing leader's record of the other members. When the
 * entry is applied (in the same transaction as the commands around it) the
 * registry records it:
 *   ADD_LEARNER, ADD_VOTER: the member's record is put (its addresses from
 *     the tail; without a tail, or with a tail for another id, the record
 *     keeps what it had), voter = the entry's type (a voter's promote and
 *     force are cleared);
 *   REMOVE: the member's record is deleted;
 *   known members: put only where no record exists (the bootstrap members
 *     from the config files enter the registry this way).
 * A malformed tail is ignored (the entry still changes the configuration:
 * the core already applied it); every node ignores it alike.
 *
 * Stored in META as "member/" + node id (8 bytes big-endian) -> MemberInfo,
 * so restarts and snapshots (which copy every record) carry it. The config
 * file's peers are only the bootstrap registry: node/node.h starts from them
 * and overlays these records.
 */
#ifndef MF_STORE_MEMBERS_H
#define MF_STORE_MEMBERS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"
#include "store/state.h"

#define MF_MEMBER_ADDR_MAX 255 /* bytes of an address */
#define MF_MEMBER_ZONE_MAX 64  /* bytes of a zone */
#define MF_MEMBERS_MAX 64      /* records listed at most */

/* Is info well formed (id > 0, addr 1..MF_MEMBER_ADDR_MAX bytes, api_addr
 * and zone within their limits)? Pure. */
bool mf_members_info_ok(const Mayfly__Cmd__MemberInfo *info);

/* Encode a conf entry's tail: MemberChange{member, known[0..n_known)}.
 * *out is malloc'd. @return 0; MF_ETOOLARGE (over `max` bytes); -ENOMEM. */
int mf_members_tail_encode(const Mayfly__Cmd__MemberInfo *member,
                           Mayfly__Cmd__MemberInfo *const *known, size_t n_known, size_t max,
                           uint8_t **out, size_t *len);

/* Records the conf entry data[0..len) (9 bytes + tail) in txn, as above.
 * @return 0; MF_ESTORAGE and other storage errors (fatal); an entry that
 *         is not a conf entry: MF_ECORRUPT. */
int mf_members_apply_conf(MDB_txn *txn, struct mf_state *st, const uint8_t *data, size_t len);

/* Every record, by id (at most MF_MEMBERS_MAX). *out is malloc'd (NULL
 * when *n is 0): free with mf_members_list_free.
 * Errors: MF_ESTORAGE, MF_ECORRUPT (a record does not decode), -ENOMEM. */
int mf_members_list(MDB_txn *txn, struct mf_state *st, Mayfly__Cmd__MemberInfo ***out,
                    size_t *n);
void mf_members_list_free(Mayfly__Cmd__MemberInfo **list, size_t n);

#endif
