/* The cluster feature version on a node (store/features.h; issue 13 item 5,
 * rolling upgrades).
 *
 * - Every second each follower and learner sends the feature level its
 *   build supports to the leader (peer tag MF_CLUSTER_VERSION_PEER_TAG on
 *   the control link, a small JSON object {"level": N}); at once too when
 *   the leader changes.
 * - The leader keeps the last report per member (its own is its build's
 *   level) and, once every member of the configuration (voters and
 *   learners) reported a level L above the applied cluster version,
 *   proposes ClusterVersion(L) (one at a time; never lower).
 * - The proposer asks mf_cluster_version_gate before it appends a command
 *   of an op above level 1 (proposer.h mf_proposer_feature_gate): refused
 *   with UNAVAILABLE while the applied version is below the op's level,
 *   naming the members not yet upgraded.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_CLUSTER_VERSION_H
#define MF_SERVER_CLUSTER_VERSION_H

#include <stddef.h>
#include <stdint.h>

#include "server/srv.h"
#include "store/features.h"

#define MF_CLUSTER_VERSION_PEER_TAG 22 /* storage 19; others' 20, 21 */
#define MF_CLUSTER_VERSION_TICK_MS 1000

/* Starts the report timer and installs the proposer's gate.
 * @return 0 or -ENOMEM. */
int mf_cluster_version_init(struct mf_server *s);
void mf_cluster_version_close(struct mf_server *s);

/* A peer message with tag MF_CLUSTER_VERSION_PEER_TAG from node `from`. */
void mf_cluster_version_peer_message(struct mf_server *s, uint64_t from, const uint8_t *data,
                                     size_t len);
/* The leader changed: report to the new one at once. */
void mf_cluster_version_role_changed(struct mf_server *s);

/* The applied cluster version (1 when unknown or absent). */
uint32_t mf_cluster_version_applied(struct mf_server *s);
/* The level member `id` last reported to this node as leader (this node:
 * its build's level); 0 when not known (a follower knows none). */
uint32_t mf_cluster_version_member_level(struct mf_server *s, uint64_t id);

#endif
