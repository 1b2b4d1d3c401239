/* Request-rate limits per identity: a token bucket per key in a table of
 * fixed size. The key (mf_ratelimit_key) is the token's auth role when its
 * metadata names one ("role:MOUNT/ROLE" from the keys auth_mount and
 * auth_role, which login is to write and a role's claim mappings must not):
 * every token of one role shares one bucket, so logging in again buys no
 * fresh bucket; any other token is charged by its accessor.
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
#include <stddef.h>
#include <stdint.h>

#define MF_RATELIMIT_SETS 1024
#define MF_RATELIMIT_WAYS 8
#define MF_RATELIMIT_KEY_MAX 128 /* bytes of a key ("role:MOUNT/ROLE" too); longer keys are cut */

struct mf_ratelimit;
struct mf_server;
struct req;

/* One bucket of its own (quota rates, op_quota.h): `per_second` refill,
 * `burst` (0: per_second) capacity, counted in thousandths of a request. */
struct mf_rate_bucket {
    uint64_t per_second;
    uint64_t cap_units;
    uint64_t units;
    uint64_t last_ms;
};

/* A full bucket at now_ms. */
void mf_rate_bucket_init(struct mf_rate_bucket *b, uint32_t per_second, uint32_t burst,
                         uint64_t now_ms);
/* Refills b to now_ms. @return true if one request is available (nothing is
 * taken: mf_rate_bucket_take does); false with *retry_after_ms (>= 1). A
 * bucket of rate 0 is always ready. */
bool mf_rate_bucket_ready(struct mf_rate_bucket *b, uint64_t now_ms, uint64_t *retry_after_ms);
/* Takes the request mf_rate_bucket_ready said was there. */
void mf_rate_bucket_take(struct mf_rate_bucket *b);

/* The bucket key of a token into out (len >= MF_RATELIMIT_KEY_MAX + 1):
 * "role:MOUNT/ROLE" when its metadata (n pairs) holds both auth_mount and
 * auth_role, else its accessor (may be "": not limited). */
void mf_ratelimit_key(const char *accessor, char *const *meta_keys, char *const *meta_values,
                      size_t n, char *out, size_t len);

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
 * token's key (mf_ratelimit_key; s->ratelimit) unless r was forwarded by a peer (the entry node
 * charged it) or carries no token. @return true if allowed; false with
 * *retry_after_ms. */
bool mf_ratelimit_take(struct mf_server *s, const struct req *r, uint64_t *retry_after_ms);

#endif
