/* The storage quota on a node (README "Storage pressure", issue 15): every
 * second the node measures its storage, decides over or under with the pure
 * rules of storage_rules.h, and the leader keeps the replicated alarms
 * (store/alarms.h) in line with the cluster's measurements.
 *
 * - Every node measures: statvfs of data_dir, the used pages of the state
 *   and of the Raft log, and the sizes of the files in data_dir/snapshots.
 * - A follower sends its decision to the leader (peer tag
 *   MF_STORAGE_PEER_TAG on the control link, a small JSON object) every
 *   second while over, when it changes, when the leader changes, and every
 *   MF_STORAGE_REPORT_IDLE_MS otherwise (so a new leader learns to clear).
 *   A storage-blocked follower, which no longer knows its leader (node.h),
 *   reports to the last leader it knew.
 * - Only the leader proposes AlarmSet: for itself from its own decision, for
 *   a follower from its last report; never a proposal that the applied state
 *   already says, and one at a time per node. It raises an alarm when a
 *   limit itself is crossed (the report's "crossed") and clears it when the
 *   decision, with its hysteresis, is under again ("over"): an alarm that
 *   disarm cleared inside the hysteresis band stays cleared.
 * - The proposer refuses commands that grow the data before they are
 *   appended (proposer.h mf_proposer_storage_refuse) while an alarm is
 *   applied or while this leader's own measurement is over its limits;
 *   apply refuses them anyway once an alarm is applied (the state decides).
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_STORAGE_H
#define MF_SERVER_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/srv.h"
#include "server/storage_rules.h"

#define MF_STORAGE_PEER_TAG 19            /* node.h: api.c has 16, 17; audit anchors 18 */
#define MF_STORAGE_MEASURE_MS 1000        /* measurement period */
#define MF_STORAGE_MEASURE_NEAR_MS 100    /* ... near a limit (storage_rules.h mf_storage_near) */
#define MF_STORAGE_REPORT_IDLE_MS 10000   /* a follower under its limits reports this often */
#define MF_STORAGE_REPORT_FRESH_MS 15000  /* older reports are not trusted (> REPORT_IDLE) */

/* Starts the measurement timer. @return 0 or -ENOMEM. */
int mf_storage_init(struct mf_server *s);
/* Stops the timer (after the node stopped: no proposal is in flight). */
void mf_storage_close(struct mf_server *s);

/* A peer message with tag MF_STORAGE_PEER_TAG from node `from`. */
void mf_storage_peer_message(struct mf_server *s, uint64_t from, const uint8_t *data, size_t len);

/* This node's figures, for /metrics and /health (reads the applied
 * alarms). */
struct mf_storage_figures {
    bool measured;                 /* at least one measurement */
    struct mf_storage_usage usage; /* blocked_cause is NULL here */
    struct mf_storage_limits limits;
    bool over;                     /* this node's own decision */
    bool alarm;                    /* a storage alarm is applied (any node) */
    char alarm_text[600];          /* "storage alarm on node N: DETAIL" for the first one */
    char blocked_cause[256];       /* this node blocked at commit time (node.h): its cause */
};
void mf_storage_figures(struct mf_server *s, struct mf_storage_figures *out);

/* Disarm (leader): which applied storage alarms have lost their cause, by
 * the latest measurements (this node's own, a follower's fresh report):
 * every figure under its limit itself, even if still inside the hysteresis
 * band that would hold the alarm otherwise.
 * clear[] gets the node ids to clear (*n_clear); a node whose cause is not
 * gone, or whose report is stale, is kept and gets its reason in
 * why[i] (parallel to keep[], *n_keep). Arrays hold MF_RAFT_NODES_MAX.
 * @return 0 or a storage error reading the applied alarms. */
#define MF_STORAGE_WHY_MAX 600 /* > MF_ALARM_DETAIL_MAX */
int mf_storage_disarm_plan(struct mf_server *s, uint64_t *clear, size_t *n_clear, uint64_t *keep,
                           char (*why)[MF_STORAGE_WHY_MAX], size_t *n_keep);

#endif
