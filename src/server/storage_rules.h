/* The storage quota's pure rules (README "Storage pressure", issue 15): the
 * effective limits from the config and the data directory's filesystem, and
 * the over/under decision with hysteresis, with a message naming the limit.
 * No I/O and no clock: storage.c measures and passes the numbers in.
 *
 * Limits (config.h; sizes in MiB there, bytes here; 0 derives):
 *   state      state_quota_mb, else 3/4 of state_map_size_mb
 *   log        log_quota_mb, else 3/4 of log_map_size_mb
 *   snapshots  snapshots_quota_mb, else 2 x the state limit
 *   free floor storage_free_floor_mb, else 1/20 of the filesystem, within
 *              4 MiB .. 2 GiB
 * Decision: over once any used >= its limit, free < the floor, or the node
 * says its storage is blocked (a failed commit); once over, it stays over
 * until every used < 90% of its limit, free >= 1.25 x the floor and the node
 * is no longer blocked (so the alarm does not flap at the edge). With
 * storage_quota_enabled 0 only a blocked node is over. */
#ifndef MF_SERVER_STORAGE_RULES_H
#define MF_SERVER_STORAGE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define MF_STORAGE_MIB (UINT64_C(1) << 20)
#define MF_STORAGE_CLEAR_PCT 90                   /* used below this % of each limit to clear */
#define MF_STORAGE_CLEAR_FLOOR_PCT 125            /* free at least this % of the floor to clear */

struct mf_storage_limits {
    bool enabled;              /* storage_quota_enabled */
    uint64_t state_bytes;
    uint64_t log_bytes;
    uint64_t snapshots_bytes;
    uint64_t free_floor_bytes;
};

/* One node's measurement. */
struct mf_storage_usage {
    uint64_t state_used_bytes;     /* used pages of the state database */
    uint64_t log_used_bytes;       /* used pages of the Raft log */
    uint64_t snapshots_bytes;      /* sizes of the files in DATA_DIR/snapshots */
    uint64_t fs_free_bytes;        /* statvfs: available to us (f_bavail) */
    uint64_t fs_size_bytes;
    bool blocked;                  /* the node could not commit (node.h storage) */
    const char *blocked_cause;     /* its words, when blocked (may be NULL) */
};

/* The effective limits for cfg on a filesystem of fs_size_bytes. */
void mf_storage_limits(const struct mf_config *cfg, uint64_t fs_size_bytes,
                       struct mf_storage_limits *out);

/* Over or under, given whether the node was over at the last decision (the
 * hysteresis). When over, `detail` (len > 0) names the limit that holds it,
 * e.g. "storage quota: state database 190.0 of 192.0 MiB used
 * (state_quota_mb)" or "free space on /data 3.0 MiB below the floor of 4.0
 * MiB (storage_free_floor_mb)"; else it is "". dir names the data
 * directory in the message. */
bool mf_storage_decide(const struct mf_storage_limits *l, const struct mf_storage_usage *u,
                       bool was_over, const char *dir, char *detail, size_t len);

/* Near a limit: a used figure above 3/4 of its limit, or free space below
 * twice the floor. There the node measures every MF_STORAGE_MEASURE_NEAR_MS
 * instead of every MF_STORAGE_MEASURE_MS (storage.h), so a burst of writes
 * runs past a limit by at most that long before the alarm applies. False
 * when the quota is off. */
bool mf_storage_near(const struct mf_storage_limits *l, const struct mf_storage_usage *u);

/* A follower's report to the leader (storage.h, peer tag
 * MF_STORAGE_PEER_TAG): untrusted bytes from a peer, so the codec is here,
 * pure and fuzzed (tests/fuzz/fuzz_storage_report.c). On the wire a compact
 * JSON object {"over": bool, "crossed": bool, "blocked": bool, "detail": str,
 * "since_ms": int} of at most MF_STORAGE_REPORT_MAX bytes. */
#define MF_STORAGE_REPORT_MAX 1024
#define MF_STORAGE_REPORT_DETAIL_MAX 512 /* = store/alarms.h MF_ALARM_DETAIL_MAX */
struct mf_storage_report {
    bool over;
    bool crossed; /* over at the limits themselves (no hysteresis) */
    bool blocked; /* the node could not commit (node.h storage): part of `over` */
    uint64_t since_ms;
    char detail[MF_STORAGE_REPORT_DETAIL_MAX + 1];
};
/* *out gets a malloc'ed NUL-terminated text (the caller frees it).
 * @return 0; MF_EINVAL (detail too long); -ENOMEM. */
int mf_storage_report_encode(const struct mf_storage_report *r, char **out);
/* @return 0; MF_EINVAL for anything but a well-formed report within the
 * bounds (too long, not JSON, duplicate keys, a wrong type, a negative
 * since_ms, a detail over the limit). A report without "crossed" (an older
 * node) takes `over` for it; one without "blocked", false. */
int mf_storage_report_decode(const uint8_t *data, size_t len, struct mf_storage_report *out);

#endif
