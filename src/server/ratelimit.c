/* Per-identity token buckets (ratelimit.h). */
#include "server/ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "server/api.h"

/* Buckets count thousandths of a request: refilling `per_second` requests a
 * second is then exactly `per_second` units a millisecond, no division. */
#define UNIT 1000u

struct bucket {
    char key[MF_RATELIMIT_KEY_MAX + 1]; /* "" = free */
    uint64_t units;
    uint64_t last_ms;  /* when units was last brought up to date */
    uint64_t used;     /* LRU stamp: the table's clock at the last take */
};

struct mf_ratelimit {
    uint64_t per_second;
    uint64_t cap_units;
    uint64_t clock; /* counts takes: the LRU order */
    struct bucket b[MF_RATELIMIT_SETS][MF_RATELIMIT_WAYS];
};

int mf_ratelimit_new(uint32_t per_second, uint32_t burst, struct mf_ratelimit **out)
{
    *out = NULL;
    if (per_second == 0)
        return 0;
    struct mf_ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return -ENOMEM;
    rl->per_second = per_second;
    rl->cap_units = (uint64_t)(burst ? burst : per_second) * UNIT;
    *out = rl;
    return 0;
}

void mf_ratelimit_free(struct mf_ratelimit *rl)
{
    free(rl);
}

/* FNV-1a: keys are server-made accessors, not chosen by a client. */
static size_t set_of(const char *key)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return (size_t)(h % MF_RATELIMIT_SETS);
}

/* The key's bucket in its set, or a fresh one (full) in place of the least
 * recently used. */
static struct bucket *find(struct mf_ratelimit *rl, const char *key, uint64_t now_ms)
{
    struct bucket *set = rl->b[set_of(key)];
    struct bucket *victim = NULL; /* a free bucket first, else the LRU one */
    for (size_t i = 0; i < MF_RATELIMIT_WAYS; i++) {
        struct bucket *b = &set[i];
        if (b->key[0] && strcmp(b->key, key) == 0)
            return b;
        if (!victim || (victim->key[0] && (!b->key[0] || b->used < victim->used)))
            victim = b;
    }
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    victim->units = rl->cap_units;
    victim->last_ms = now_ms;
    return victim;
}

bool mf_ratelimit_take_at(struct mf_ratelimit *rl, const char *key, uint64_t now_ms,
                          uint64_t *retry_after_ms)
{
    *retry_after_ms = 0;
    if (!rl || !key || !key[0])
        return true;
    char k[MF_RATELIMIT_KEY_MAX + 1];
    snprintf(k, sizeof(k), "%.*s", MF_RATELIMIT_KEY_MAX, key);
    struct bucket *b = find(rl, k, now_ms);
    b->used = ++rl->clock;
    if (now_ms > b->last_ms) {
        uint64_t elapsed = now_ms - b->last_ms;
        /* elapsed * per_second could overflow only after ages: cap first. */
        uint64_t room = rl->cap_units - b->units;
        b->units = elapsed >= (room + rl->per_second - 1) / rl->per_second
                       ? rl->cap_units
                       : b->units + elapsed * rl->per_second;
        b->last_ms = now_ms;
    }
    if (b->units >= UNIT) {
        b->units -= UNIT;
        return true;
    }
    uint64_t missing = UNIT - b->units;
    *retry_after_ms = (missing + rl->per_second - 1) / rl->per_second;
    return false;
}

bool mf_ratelimit_take(struct mf_server *s, const struct req *r, uint64_t *retry_after_ms)
{
    *retry_after_ms = 0;
    if (!s->ratelimit || r->peer || !r->token || !r->token->accessor)
        return true;
    return mf_ratelimit_take_at(s->ratelimit, r->token->accessor, mf_now_mono_ms(),
                                retry_after_ms);
}
