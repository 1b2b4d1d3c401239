/* Runtime membership (CLI.md "operator members add / promote / remove";
 * sudo on sys/raft/members, audited like every operation).
 *
 * All three run on the leader (a follower forwards them) and answer
 * {index, leader_id} once their configuration entry is applied on the
 * leader. One change at a time: while another is pending (or the leader
 * has not committed in its term yet) the change is retried every
 * MF_OP_MEMBERS_RETRY_MS until MF_OP_MEMBERS_WAIT_MS, then UNAVAILABLE.
 *
 *  add -id N -addr PEER -api-addr API [-zone Z] [-force]: N joins as a
 *    learner; the entry's tail (store/members.h) carries its addresses and
 *    zone, and this leader's record of the other members. The leader then
 *    promotes it to voter by itself once caught up (member_rules.h
 *    readiness), if the zone guard allows it (or -force was given at add);
 *    else it stays a learner, logged, until `members promote N -force`.
 *    Refused: a member already (INVALID_ARGUMENT), malformed addresses or
 *    zone (INVALID_ARGUMENT), and while this leader's log was never
 *    compacted (UNAVAILABLE: a new member starts from a snapshot, which
 *    holds the configuration; the log is first compacted once twice
 *    snapshot_entries entries have applied).
 *  promote N [-force]: a learner becomes a voter (zone guard).
 *  remove N [-force]: a voter or learner leaves (zone guard for a voter);
 *    the leader itself too: it first hands leadership to the most caught-up
 *    voter whose clock agrees (TimeoutNow, leader_rules.h) and forwards the
 *    request to it, which removes this node like any other; when no hand-off
 *    happens within max(4 election timeouts, 3 s) (or the request was
 *    itself forwarded here) it proposes its own removal and steps down once
 *    that commits (the others then elect within an election timeout).
 *    The last voter cannot be removed.
 * The zone guard (member_rules.h): from 3 voters on, a change that lowers
 * the number of whole zones the cluster can lose is refused with
 * INVALID_ARGUMENT and the reason, unless -force.
 *
 * Every node, every housekeeping tick (mf_members_tick): when a member of
 * the configuration has no address in the node's table (after a snapshot
 * install, or a restart), the registry is loaded from the state database
 * into it (at most every MF_MEMBERS_RELOAD_MS).
 *
 * Threads: loop thread. A change waiting holds a timer counted in
 * s->handles_open, so the server outlives it. */
#ifndef MF_SERVER_OP_MEMBERS_H
#define MF_SERVER_OP_MEMBERS_H

#include "server/handler.h"

#define MF_OP_MEMBERS_WAIT_MS 10000 /* a change still busy after this: UNAVAILABLE */
#define MF_OP_MEMBERS_RETRY_MS 50   /* -EBUSY: ask again after this */
#define MF_MEMBERS_RELOAD_MS 1000   /* registry reloads at most this often */

void mf_op_members_add(struct req *r);     /* leader */
void mf_op_members_promote(struct req *r); /* leader */
void mf_op_members_remove(struct req *r);  /* leader */

struct mf_server;
/* After the node started: its table gets the registry's records.
 * @return 0; -ENOMEM (a registry that cannot be read is logged, not fatal). */
int mf_members_start(struct mf_server *s);
/* Housekeeping: registry reloads; on the leader, promotion of caught-up learners. */
void mf_members_tick(struct mf_server *s);
void mf_members_free(struct mf_server *s);

#endif
