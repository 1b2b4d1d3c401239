/* Leadership (../shared/CLI.md "operator transfer-leader", "operator
 * step-down"; sudo on sys/raft/transfer-leader and sys/raft/step-down).
 *
 * Both run on the leader (a follower forwards them): the target is `-to N`
 * or, for transfer-leader without it and for step-down, the most caught-up
 * voter whose clock lets it campaign (leader_rules.h). The node's transfer
 * (TimeoutNow once the target has the whole log) is asked again every
 * election timeout while the wait lasts, since the core gives a transfer up
 * after one. The answer waits for the role change: transfer-leader answers
 * {leader_id} once this node follows a known new leader, step-down answers
 * {} once it no longer leads; after MF_OP_RAFT_WAIT_MS (at least 4 election
 * timeouts) UNAVAILABLE "leadership did not move within N ms".
 * Refused at once: a target that is not a member (NOT_FOUND), a learner or
 * no other voter (INVALID_ARGUMENT); -to the leader itself answers at once.
 *
 * Threads: loop thread. A wait holds a timer counted in s->handles_open,
 * so the server outlives it; one that outlives the node answers UNAVAILABLE. */
#ifndef MF_SERVER_OP_RAFT_H
#define MF_SERVER_OP_RAFT_H

#include "server/handler.h"

/* `operator members list` (read on sys/raft/members; on the leader, a
 * follower forwards it): every member of the current configuration, voters
 * and learners, by id, with its configured addresses and zone and the
 * leader's view of it: reachable (a message from it within 2 election
 * timeouts), last_contact_ms (ms since that message; -1 never since this
 * leader started; 0 for the leader itself), match_index (the highest index
 * it acknowledged to this leader; the leader: its last index) and
 * lag_entries (the leader's last index minus match_index: what it still has
 * to receive, uncommitted entries included). Answered at once. */
void mf_op_members_list(struct req *r); /* leader */

#define MF_OP_RAFT_WAIT_MS 3000 /* floor of the wait for the role change */
#define MF_OP_RAFT_POLL_MS 10   /* how often the wait looks at the role */

void mf_op_transfer_leader(struct req *r); /* leader */
void mf_op_step_down(struct req *r);       /* leader */

#endif
