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

#define MF_OP_RAFT_WAIT_MS 3000 /* floor of the wait for the role change */
#define MF_OP_RAFT_POLL_MS 10   /* how often the wait looks at the role */

void mf_op_transfer_leader(struct req *r); /* leader */
void mf_op_step_down(struct req *r);       /* leader */

#endif
