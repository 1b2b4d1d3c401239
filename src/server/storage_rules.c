/* The storage quota's pure rules (storage_rules.h). */
#include "server/storage_rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/fsstat.h"

void mf_storage_limits(const struct mf_config *cfg, uint64_t fs_size_bytes,
                       struct mf_storage_limits *out)
{
    out->enabled = cfg->storage_quota_enabled != 0;
    uint64_t state_mb = cfg->state_quota_mb ? cfg->state_quota_mb : cfg->state_map_size_mb / 4 * 3;
    uint64_t log_mb = cfg->log_quota_mb ? cfg->log_quota_mb : cfg->log_map_size_mb / 4 * 3;
    out->state_bytes = state_mb * MF_STORAGE_MIB;
    out->log_bytes = log_mb * MF_STORAGE_MIB;
    out->snapshots_bytes = cfg->snapshots_quota_mb ? cfg->snapshots_quota_mb * MF_STORAGE_MIB
                                                   : 2 * out->state_bytes;
    /* The node's snapshot check uses the same floor (common/fsstat.h). */
    out->free_floor_bytes = mf_fsstat_floor_bytes(cfg->storage_free_floor_mb, fs_size_bytes);
}

static double mib(uint64_t b) { return (double)b / (double)MF_STORAGE_MIB; }

/* Is `used` over `limit` at the threshold that applies: the limit itself
 * to raise, 90% of it to stay raised? */
static bool over(uint64_t used, uint64_t limit, bool was_over)
{
    if (limit == 0)
        return false;
    if (!was_over)
        return used >= limit;
    /* used >= 90% of limit, without overflow for any limit */
    return used >= limit / 100 * MF_STORAGE_CLEAR_PCT + limit % 100 * MF_STORAGE_CLEAR_PCT / 100;
}

bool mf_storage_decide(const struct mf_storage_limits *l, const struct mf_storage_usage *u,
                       bool was_over, const char *dir, char *detail, size_t len)
{
    if (len)
        detail[0] = 0;
    if (u->blocked) {
        if (len)
            snprintf(detail, len, "storage blocked: %s",
                     u->blocked_cause && *u->blocked_cause ? u->blocked_cause
                                                           : "a commit failed");
        return true;
    }
    if (!l->enabled)
        return false;
    static const char *const names[3] = {"state database", "Raft log", "snapshots"};
    static const char *const keys[3] = {"state_quota_mb", "log_quota_mb", "snapshots_quota_mb"};
    const uint64_t used[3] = {u->state_used_bytes, u->log_used_bytes, u->snapshots_bytes};
    const uint64_t limit[3] = {l->state_bytes, l->log_bytes, l->snapshots_bytes};
    for (int i = 0; i < 3; i++)
        if (over(used[i], limit[i], was_over)) {
            if (len)
                snprintf(detail, len, "storage quota: %s %.1f of %.1f MiB used (%s)%s", names[i],
                         mib(used[i]), mib(limit[i]), keys[i],
                         used[i] < limit[i] ? "; clears below 90%" : "");
            return true;
        }
    uint64_t floor = l->free_floor_bytes;
    if (was_over)
        floor = floor / 100 * MF_STORAGE_CLEAR_FLOOR_PCT + floor % 100 * MF_STORAGE_CLEAR_FLOOR_PCT / 100;
    if (u->fs_free_bytes < floor) {
        if (len)
            snprintf(detail, len,
                     "free space on %s %.1f MiB %s the floor of %.1f MiB "
                     "(storage_free_floor_mb)%s",
                     dir ? dir : "the data directory", mib(u->fs_free_bytes),
                     u->fs_free_bytes >= l->free_floor_bytes ? "above" : "below",
                     mib(l->free_floor_bytes),
                     u->fs_free_bytes >= l->free_floor_bytes ? "; clears at 125%" : "");
        return true;
    }
    return false;
}

static bool above_three_quarters(uint64_t used, uint64_t limit)
{
    return limit && used >= limit / 4 * 3 + limit % 4 * 3 / 4;
}

bool mf_storage_near(const struct mf_storage_limits *l, const struct mf_storage_usage *u)
{
    if (!l->enabled)
        return false;
    return above_three_quarters(u->state_used_bytes, l->state_bytes) ||
           above_three_quarters(u->log_used_bytes, l->log_bytes) ||
           above_three_quarters(u->snapshots_bytes, l->snapshots_bytes) ||
           u->fs_free_bytes / 2 < l->free_floor_bytes;
}

int mf_storage_report_encode(const struct mf_storage_report *r, char **out)
{
    if (strlen(r->detail) > MF_STORAGE_REPORT_DETAIL_MAX)
        return MF_EINVAL;
    json_t *o = json_pack("{s:b, s:b, s:b, s:s, s:I}", "over", r->over, "crossed", r->crossed,
                          "blocked", r->blocked, "detail", r->detail, "since_ms",
                          (json_int_t)r->since_ms);
    *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return *out ? 0 : -ENOMEM;
}

int mf_storage_report_decode(const uint8_t *data, size_t len, struct mf_storage_report *out)
{
    if (len > MF_STORAGE_REPORT_MAX)
        return MF_EINVAL;
    json_error_t jerr;
    json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *over = json_object_get(o, "over");
    json_t *crossed = json_object_get(o, "crossed");
    json_t *blocked = json_object_get(o, "blocked");
    const char *detail = json_string_value(json_object_get(o, "detail"));
    json_t *since = json_object_get(o, "since_ms");
    int rc = 0;
    if (!json_is_boolean(over) || !detail || strlen(detail) > MF_STORAGE_REPORT_DETAIL_MAX ||
        !json_is_integer(since) || json_integer_value(since) < 0 ||
        (crossed && !json_is_boolean(crossed)) || (blocked && !json_is_boolean(blocked))) {
        rc = MF_EINVAL;
    } else {
        out->over = json_is_true(over);
        out->crossed = crossed ? json_is_true(crossed) : out->over;
        out->blocked = blocked && json_is_true(blocked);
        out->since_ms = (uint64_t)json_integer_value(since);
        snprintf(out->detail, sizeof(out->detail), "%s", detail);
    }
    json_decref(o);
    return rc;
}
