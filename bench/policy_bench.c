/* Policy decision time (issue 11: target p99 under 10 us with 1,000 policies
 * of 10 rules each, for a token holding a few policies).
 *
 * Builds a set of POLICIES policies named team-N-P, each with RULES rules of
 * the shapes operators write (exact paths, `+` segments, `*` prefixes, some
 * with cidrs, time or claims conditions), then times DECISIONS decisions of
 * tokens holding three random policies plus `default` against paths that hit
 * their patterns (and some that miss). A fixed seed makes runs comparable.
 *
 *     policy_bench [decisions]
 * prints one line:
 *     policy decide policies=1000 rules=10 n=... p50_us=... p99_us=... max_us=...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/policy.h"
#include "common/err.h"

#define POLICIES 1000
#define RULES 10
#define TEAMS 50
#define DECISIONS_DEFAULT 200000
#define TOKEN_POLICIES 3 /* plus default */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13; /* xorshift64 */
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Rule k of policy i (team t): ten shapes, one of each per policy. */
static int rule_json(char *buf, size_t cap, int t, int i, int k)
{
    int app = i % 20;
    switch (k) {
    case 0: return snprintf(buf, cap, "\"kv/data/team-%d/app-%d/*\": {\"capabilities\": [\"read\", \"list\"]}", t, app);
    case 1: return snprintf(buf, cap, "\"kv/data/team-%d/+/config\": {\"capabilities\": [\"read\", \"update\"], \"conditions\": {\"cidrs\": [\"10.%d.0.0/16\", \"fd00:%x::/32\"]}}", t, t, t);
    case 2: return snprintf(buf, cap, "\"kv/data/team-%d/app-%d/admin/*\": {\"capabilities\": [\"deny\"]}", t, app);
    case 3: return snprintf(buf, cap, "\"kv/data/team-%d/app-%d/db-password\": {\"capabilities\": [\"read\"], \"conditions\": {\"claims\": {\"namespace\": \"team-%d\", \"sub\": \"repo:acme/app-%d*\"}}}", t, app, t, app);
    case 4: return snprintf(buf, cap, "\"db/creds/team-%d-*\": {\"capabilities\": [\"read\"], \"max_ttl_ms\": %d}", t, 600000 + i);
    case 5: return snprintf(buf, cap, "\"kv/metadata/team-%d/*\": {\"capabilities\": [\"list\", \"read\"]}", t);
    case 6: return snprintf(buf, cap, "\"kv/data/+/app-%d/shared/*\": {\"capabilities\": [\"read\"], \"conditions\": {\"time\": {\"after\": \"06:00\", \"before\": \"22:00\", \"days\": [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]}}}", app);
    case 7: return snprintf(buf, cap, "\"sys/leases/lookup/team-%d/*\": {\"capabilities\": [\"read\", \"list\"]}", t);
    case 8: return snprintf(buf, cap, "\"pki/issue/team-%d-%d\": {\"capabilities\": [\"update\"], \"max_ttl\": \"24h\"}", t, i);
    default: return snprintf(buf, cap, "\"kv/data/team-%d/+/+/policy-%d\": {\"capabilities\": [\"create\", \"update\"]}", t, i);
    }
}

/* A request path a token of team t would send. */
static void request_path(char *buf, size_t cap, int t, int app, unsigned *capbit)
{
    switch (rnd(8)) {
    case 0: snprintf(buf, cap, "kv/data/team-%d/app-%d/config", t, app); *capbit = MF_CAP_READ; break;
    case 1: snprintf(buf, cap, "kv/data/team-%d/app-%d/db-password", t, app); *capbit = MF_CAP_READ; break;
    case 2: snprintf(buf, cap, "kv/data/team-%d/app-%d/admin/root-key", t, app); *capbit = MF_CAP_READ; break;
    case 3: snprintf(buf, cap, "db/creds/team-%d-readonly", t); *capbit = MF_CAP_READ; break;
    case 4: snprintf(buf, cap, "kv/data/team-%d/app-%d/shared/ca.pem", (t + 1) % TEAMS, app); *capbit = MF_CAP_READ; break;
    case 5: snprintf(buf, cap, "kv/metadata/team-%d/app-%d/", t, app); *capbit = MF_CAP_LIST; break;
    case 6: snprintf(buf, cap, "kv/data/team-%d/app-%d/x/policy-7", t, app); *capbit = MF_CAP_UPDATE; break;
    default: snprintf(buf, cap, "kv/data/other-team/app-%d/config", app); *capbit = MF_CAP_READ; break;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t decisions = argc > 1 ? strtoul(argv[1], NULL, 10) : DECISIONS_DEFAULT;
    if (decisions == 0)
        decisions = DECISIONS_DEFAULT;
    struct mf_policy_set *set;
    if (mf_policy_set_new(&set) != 0)
        return 1;
    static char doc[MF_POLICY_DOC_MAX_BYTES];
    static char names[POLICIES][32];
    for (int i = 0; i < POLICIES; i++) {
        int t = i % TEAMS;
        size_t at = (size_t)snprintf(doc, sizeof(doc), "{\"path\": {");
        for (int k = 0; k < RULES; k++) {
            at += (size_t)snprintf(doc + at, sizeof(doc) - at, "%s", k ? ", " : "");
            at += (size_t)rule_json(doc + at, sizeof(doc) - at, t, i, k);
        }
        at += (size_t)snprintf(doc + at, sizeof(doc) - at, "}}");
        snprintf(names[i], sizeof(names[i]), "team-%d-p%d", t, i);
        char err[256];
        struct mf_policy_set *next;
        if (mf_policy_set_put_json(set, names[i], doc, at, &next, err, sizeof(err)) != 0) {
            fprintf(stderr, "policy %s: %s\n", names[i], err);
            return 1;
        }
        mf_policy_set_release(set);
        set = next;
    }

    uint64_t *lat = malloc(decisions * sizeof(*lat));
    if (!lat)
        return 1;
    const uint64_t monday_noon_ms = 1704110400000ull; /* 2024-01-01 12:00 UTC */
    struct mf_authz_claim claims[] = {{"namespace", NULL}, {"sub", NULL}};
    char ns[32], sub[64], path[256];
    size_t allowed = 0;
    for (size_t d = 0; d < decisions; d++) {
        int first = (int)rnd(POLICIES), t = first % TEAMS, app = first % 20;
        const char *pols[TOKEN_POLICIES + 1];
        pols[0] = names[first];
        for (int k = 1; k < TOKEN_POLICIES; k++)
            pols[k] = names[(int)rnd(POLICIES / TEAMS) * TEAMS + t]; /* same team */
        pols[TOKEN_POLICIES] = "default";
        snprintf(ns, sizeof(ns), "team-%d", t);
        snprintf(sub, sizeof(sub), "repo:acme/app-%d/ref/main", app);
        claims[0].value = ns;
        claims[1].value = sub;
        struct mf_authz_ctx ctx = {.now_ms = monday_noon_ms + rnd(3600000),
                                   .claims = claims, .claims_n = 2};
        ctx.client.family = MF_AUTHZ_ADDR_V4;
        ctx.client.bytes[0] = 10;
        ctx.client.bytes[1] = (uint8_t)(rnd(4) ? t : t + 1);
        ctx.client.bytes[3] = 7;
        struct mf_authz_request req = {.path = path};
        request_path(path, sizeof(path), t, app, &req.cap);
        struct mf_authz_decision out;
        uint64_t t0 = now_ns();
        int rc = mf_policy_decide(set, pols, TOKEN_POLICIES + 1, &req, &ctx, &out);
        lat[d] = now_ns() - t0;
        allowed += rc == 0;
    }
    qsort(lat, decisions, sizeof(*lat), cmp_u64);
    printf("policy decide policies=%d rules=%d n=%zu p50_us=%.3f p99_us=%.3f max_us=%.3f\n",
           POLICIES, RULES, decisions, lat[decisions / 2] / 1000.0,
           lat[decisions * 99 / 100] / 1000.0, lat[decisions - 1] / 1000.0);
    fprintf(stderr, "allowed %zu of %zu\n", allowed, decisions);
    free(lat);
    mf_policy_set_release(set);
    return 0;
}
