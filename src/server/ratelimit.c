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

/* FNV-1a: keys are server-made accessors and role names, not chosen by a
 * client. */
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

void mf_rate_bucket_init(struct mf_rate_bucket *b, uint32_t per_second, uint32_t burst,
                         uint64_t now_ms)
{
    b->per_second = per_second;
    b->cap_units = (uint64_t)(burst ? burst : per_second) * UNIT;
    b->units = b->cap_units;
    b->last_ms = now_ms;
}

bool mf_rate_bucket_ready(struct mf_rate_bucket *b, uint64_t now_ms, uint64_t *retry_after_ms)
{
    *retry_after_ms = 0;
    if (!b->per_second)
        return true;
    if (now_ms > b->last_ms) {
        uint64_t elapsed = now_ms - b->last_ms;
        /* elapsed * per_second could overflow only after ages: cap first. */
        uint64_t room = b->cap_units - b->units;
        b->units = elapsed >= (room + b->per_second - 1) / b->per_second
                       ? b->cap_units
                       : b->units + elapsed * b->per_second;
        b->last_ms = now_ms;
    }
    if (b->units >= UNIT)
        return true;
    uint64_t missing = UNIT - b->units;
    *retry_after_ms = (missing + b->per_second - 1) / b->per_second;
    return false;
}

void mf_rate_bucket_take(struct mf_rate_bucket *b)
{
    if (b->per_second && b->units >= UNIT)
        b->units -= UNIT;
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
    struct mf_rate_bucket rb = {rl->per_second, rl->cap_units, b->units, b->last_ms};
    bool ok = mf_rate_bucket_ready(&rb, now_ms, retry_after_ms);
    if (ok)
        mf_rate_bucket_take(&rb);
    b->units = rb.units;
    b->last_ms = rb.last_ms;
    return ok;
}

static const char *meta_get(char *const *keys, char *const *values, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] && values[i] && values[i][0] && strcmp(keys[i], key) == 0)
            return values[i];
    return NULL;
}

void mf_ratelimit_key(const char *accessor, char *const *meta_keys, char *const *meta_values,
                      size_t n, char *out, size_t len)
{
    const char *mount = meta_get(meta_keys, meta_values, n, "auth_mount");
    const char *role = meta_get(meta_keys, meta_values, n, "auth_role");
    if (mount && role)
        snprintf(out, len, "role:%s/%s", mount, role);
    else
        snprintf(out, len, "%s", accessor ? accessor : "");
}

bool mf_ratelimit_take(struct mf_server *s, const struct req *r, uint64_t *retry_after_ms)
{
    *retry_after_ms = 0;
    if (!s->ratelimit || r->peer || !r->token || !r->token->accessor)
        return true;
    const Mayfly__Cmd__TokenRecord *t = r->token;
    size_t n = t->n_meta_keys < t->n_meta_values ? t->n_meta_keys : t->n_meta_values;
    char key[MF_RATELIMIT_KEY_MAX + 1];
    mf_ratelimit_key(t->accessor, t->meta_keys, t->meta_values, n, key, sizeof(key));
    return mf_ratelimit_take_at(s->ratelimit, key, mf_now_mono_ms(), retry_after_ms);
}
