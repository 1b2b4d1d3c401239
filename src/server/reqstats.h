/* Client requests by operation and result code, with a latency histogram
 * per operation, for /metrics (issue 13 item 6). Counted where a request
 * finishes on the node that ran it (api.c mf_api_reply; a follower that
 * relays a forwarded request's answer does not count it again).
 *
 * Fixed arrays indexed by the Request oneof's field number and the public
 * error code: no allocation and no lock on the request path (the loop
 * thread writes; metrics.c copies the struct on the loop thread too).
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_REQSTATS_H
#define MF_SERVER_REQSTATS_H

#include <stddef.h>
#include <stdint.h>

#define MF_REQSTATS_OPS 128    /* > the highest Request op field number */
#define MF_REQSTATS_CODES 16   /* 0 (OK) and MF_ENOTFOUND..MF_EINTERNAL */
#define MF_REQSTATS_BUCKETS 12 /* finite latency buckets (seconds, below) */

extern const double mf_reqstats_bounds_s[MF_REQSTATS_BUCKETS];

struct mf_reqstats {
    uint64_t count[MF_REQSTATS_OPS][MF_REQSTATS_CODES];
    uint64_t bucket[MF_REQSTATS_OPS][MF_REQSTATS_BUCKETS]; /* not cumulative */
    uint64_t sum_us[MF_REQSTATS_OPS];
    uint64_t total[MF_REQSTATS_OPS];
};

/* One request of op field `op` finished with `code` (0 or an MF_E* code;
 * internal codes count as their public name's index) after `elapsed_us`. */
void mf_reqstats_done(struct mf_reqstats *st, int op, int code, uint64_t elapsed_us);

/* Code index -> its CLI contract name ("OK", "NOT_FOUND", ...). */
const char *mf_reqstats_code_name(int idx);

#endif
