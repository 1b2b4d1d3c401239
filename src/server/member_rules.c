/* The zone guard and promotion readiness (member_rules.h). */
#include "server/member_rules.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct zone_count {
    char name[72];
    unsigned voters;
};

/* Voters per zone; a voter without a zone is "node<ID>", its own zone. */
static size_t count_zones(const struct mf_member_voter *v, size_t n, struct zone_count *z)
{
    size_t nz = 0;
    for (size_t i = 0; i < n && i < MF_MEMBER_VOTERS_MAX; i++) {
        char name[72];
        if (v[i].zone && v[i].zone[0])
            snprintf(name, sizeof(name), "%s", v[i].zone);
        else
            snprintf(name, sizeof(name), "node%" PRIu64, v[i].id);
        size_t k = 0;
        while (k < nz && strcmp(z[k].name, name) != 0)
            k++;
        if (k == nz) {
            memcpy(z[nz].name, name, sizeof(name));
            z[nz++].voters = 0;
        }
        z[k].voters++;
    }
    return nz;
}

static int by_voters_desc(const void *a, const void *b)
{
    const struct zone_count *x = a, *y = b;
    return (x->voters < y->voters) - (x->voters > y->voters);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct zone_count *)a)->name, ((const struct zone_count *)b)->name);
}

unsigned mf_member_zone_tolerance(const struct mf_member_voter *v, size_t n)
{
    struct zone_count z[MF_MEMBER_VOTERS_MAX];
    if (n > MF_MEMBER_VOTERS_MAX)
        n = MF_MEMBER_VOTERS_MAX;
    size_t nz = count_zones(v, n, z);
    qsort(z, nz, sizeof(z[0]), by_voters_desc);
    size_t quorum = n / 2 + 1, left = n;
    unsigned k = 0;
    /* The worst k zones are the k largest: lose them one by one. */
    for (size_t i = 0; i < nz; i++) {
        left -= z[i].voters;
        if (left < quorum)
            break;
        k++;
    }
    return n ? k : 0;
}

void mf_member_zone_text(const struct mf_member_voter *v, size_t n, char *buf, size_t len)
{
    struct zone_count z[MF_MEMBER_VOTERS_MAX];
    if (n > MF_MEMBER_VOTERS_MAX)
        n = MF_MEMBER_VOTERS_MAX;
    size_t nz = count_zones(v, n, z);
    qsort(z, nz, sizeof(z[0]), by_name);
    size_t off = 0;
    if (len)
        buf[0] = 0;
    for (size_t i = 0; i < nz && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s=%u", i ? " " : "", z[i].name, z[i].voters);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (nz == 0 && len)
        snprintf(buf, len, "none");
}

int mf_member_zone_guard(const struct mf_member_voter *before, size_t nb,
                         const struct mf_member_voter *after, size_t na, const char *what,
                         bool force, char *why, size_t why_len)
{
    if (why_len)
        why[0] = 0;
    if (nb < MF_MEMBER_GUARD_VOTERS)
        return 0;
    unsigned tb = mf_member_zone_tolerance(before, nb), ta = mf_member_zone_tolerance(after, na);
    if (ta >= tb || force)
        return 0;
    char zb[200], za[200];
    mf_member_zone_text(before, nb, zb, sizeof(zb));
    mf_member_zone_text(after, na, za, sizeof(za));
    snprintf(why, why_len,
             "%s lowers the zones this cluster can lose from %u to %u (voters per zone: %s -> "
             "%s); use -force",
             what, tb, ta, zb, za);
    return MF_EINVAL;
}

bool mf_member_catchup_ready(struct mf_member_catchup *c, uint64_t last_index, uint64_t match,
                             uint64_t now_ms)
{
    if (match == 0 || match + MF_MEMBER_CATCHUP_ENTRIES < last_index) {
        c->since_ms = 0;
        return false;
    }
    if (c->since_ms == 0) {
        c->since_ms = now_ms ? now_ms : 1;
        return false;
    }
    return now_ms >= c->since_ms && now_ms - c->since_ms >= MF_MEMBER_CATCHUP_HOLD_MS;
}

bool mf_member_addr_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;
    if (n < 3 || n > MF_MEMBER_RULES_ADDR_MAX)
        return false;
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || !colon[1])
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    for (const char *p = a; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

bool mf_member_zone_ok(const char *z)
{
    size_t n = z ? strlen(z) : 0;
    if (n > MF_MEMBER_RULES_ZONE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = z[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}
