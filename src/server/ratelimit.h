/* Request-rate limits per identity: a token bucket per key (a token's
 * accessor) in a table of fixed size.
 *
 * A bucket holds up to `burst` requests and refills at `per_second`; a
 * request takes one or is refused with the time until one is back. The table
 * has MF_RATELIMIT_SETS sets of MF_RATELIMIT_WAYS buckets: a key lives in the
 * set its hash names and, when that set is full, takes the place of the
 * least recently used bucket there. Memory never grows, however many tokens
 * an attacker holds; an evicted key comes back with a full bucket (so the
 * table bounds memory, not a key that is busy: a busy key is never the least
 * recently used one of its set).
 *
 * Limits are per node: a client spreading its requests over N nodes gets up
 * to N times the rate. A forwarded request is charged on the node it entered
 * only (dispatch.c).
 *
 * Threads: loop thread (no locks). */
#ifndef MF_SERVER_RATELIMIT_H
#define MF_SERVER_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define MF_RATELIMIT_SETS 1024
#define MF_RATELIMIT_WAYS 8
#define MF_RATELIMIT_KEY_MAX 64 /* bytes of a key; longer keys are cut */

struct mf_ratelimit;
struct mf_server;
struct req;

/* A table for `per_second` requests a second with bursts of `burst`
 * (burst 0: per_second). per_second 0 makes no table (*out = NULL: no
 * limit). @return 0; -ENOMEM. */
int mf_ratelimit_new(uint32_t per_second, uint32_t burst, struct mf_ratelimit **out);
void mf_ratelimit_free(struct mf_ratelimit *rl);

/* Takes one request for `key` at monotonic time now_ms. @return true if
 * allowed; false with *retry_after_ms (>= 1) until one is available. A NULL
 * table allows everything. */
bool mf_ratelimit_take_at(struct mf_ratelimit *rl, const char *key, uint64_t now_ms,
                          uint64_t *retry_after_ms);

/* The server's check for request r, right after authentication: charges r's
 * token (s->ratelimit) unless r was forwarded by a peer (the entry node
 * charged it) or carries no token. @return true if allowed; false with
 * *retry_after_ms. */
bool mf_ratelimit_take(struct mf_server *s, const struct req *r, uint64_t *retry_after_ms);

#endif
