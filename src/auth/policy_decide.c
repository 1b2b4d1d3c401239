/* Policy decisions: which pattern of a token's policies decides a request, and
 * whether it allows it (CLI.md "How a policy decides"; the rules are restated
 * in policy.h).
 *
 * This is the hot path of every request, so it reads only the immutable
 * compiled set: no allocation, no lock, no clock, no I/O. Two passes over the
 * token's policies: the first finds the highest-priority matching pattern (each
 * policy's rules are sorted by priority, so its first match is its best); the
 * second merges every rule with exactly that pattern (bsearch in each policy)
 * and judges capabilities and conditions on the merged set only, so a failed
 * condition can never fall through to a broader pattern.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/policy.h"
#include "auth/policy_internal.h"
#include "common/assert.h"
#include "common/err.h"

#define MS_PER_MINUTE 60000u
#define MS_PER_DAY 86400000u
#define EPOCH_WEEKDAY 4u /* 1970-01-01 was a Thursday (0 = Sunday) */
/* Policies resolved in pass 1 and kept for pass 2 on the stack; a token with
 * more (rare) has the rest resolved again. */
#define RESOLVED_KEEP 16

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* --- addresses --- */

static void unmap(struct mf_authz_addr *a)
{
    if (a->family == MF_AUTHZ_ADDR_V6 && memcmp(a->bytes, v4_mapped_prefix, 12) == 0) {
        memmove(a->bytes, a->bytes + 12, 4);
        memset(a->bytes + 4, 0, 12);
        a->family = MF_AUTHZ_ADDR_V4;
    }
}

int mf_authz_addr_parse(const char *text, struct mf_authz_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = MF_AUTHZ_ADDR_V4;
    } else if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->family = MF_AUTHZ_ADDR_V6;
        unmap(out);
    } else {
        return MF_EINVAL;
    }
    return 0;
}

int mf_authz_addr_from_sockaddr(const struct sockaddr *sa, struct mf_authz_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out->bytes, &in->sin_addr, 4);
        out->family = MF_AUTHZ_ADDR_V4;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->bytes, &in6->sin6_addr, 16);
        out->family = MF_AUTHZ_ADDR_V6;
        unmap(out);
    } else {
        return MF_EINVAL;
    }
    return 0;
}

/* --- matching --- */

/* Does pattern r match path? `+` is a whole segment and `*` the last byte
 * (the parser guarantees both), so one left-to-right walk decides. */
static bool pattern_match(const struct mf_policy_rule *r, const char *path, size_t path_len)
{
    if (path_len < r->prefix_len || memcmp(path, r->pattern, r->prefix_len) != 0)
        return false;
    if (r->first_glob == SIZE_MAX)
        return path_len == r->len;
    const char *p = r->pattern + r->prefix_len, *pe = r->pattern + r->len;
    const char *q = path + r->prefix_len, *qe = path + path_len;
    while (p < pe) {
        if (*p == '*')
            return true;
        if (*p == '+') {
            while (q < qe && *q != '/')
                q++;
            p++;
            continue;
        }
        if (q == qe || *q != *p)
            return false;
        p++;
        q++;
    }
    return q == qe;
}

/* A claim glob: `*` matches any run of bytes, everything else itself. The
 * classic single-backtrack walk: on a mismatch, let the last `*` eat one more
 * byte. Linear in practice, O(len(glob) * len(s)) at worst; both are bounded. */
static bool glob_match(const char *g, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*g == '*') {
            star = g++;
            resume = s;
        } else if (*g == *s) {
            g++;
            s++;
        } else if (star) {
            g = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*g == '*')
        g++;
    return *g == '\0';
}

static bool cidr_contains(const struct mf_policy_cidr *c, const struct mf_authz_addr *a)
{
    if (c->family != a->family)
        return false;
    unsigned full = c->bits / 8u, rest = c->bits % 8u;
    if (memcmp(c->addr, a->bytes, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8u - rest));
    return (a->bytes[full] & mask) == c->addr[full];
}

static bool time_holds(const struct mf_policy_cond *c, uint64_t now_ms)
{
    unsigned minute = (unsigned)((now_ms / MS_PER_MINUTE) % MF_MINUTES_PER_DAY);
    unsigned day = (unsigned)((now_ms / MS_PER_DAY + EPOCH_WEEKDAY) % 7u);
    if (!(c->days & (1u << day)))
        return false;
    if (c->after_min < c->before_min)
        return minute >= c->after_min && minute < c->before_min;
    return minute >= c->after_min || minute < c->before_min; /* across midnight */
}

static const char *claim_value(const struct mf_authz_ctx *ctx, const char *key)
{
    for (size_t i = 0; i < ctx->claims_n; i++)
        if (ctx->claims[i].key && strcmp(ctx->claims[i].key, key) == 0)
            return ctx->claims[i].value;
    return NULL;
}

/* MF_AUTHZ_ALLOWED or the first condition (cidrs, time, claims) that fails. */
static enum mf_authz_reason conditions_check(const struct mf_policy_cond *c,
                                             const struct mf_authz_addr *client,
                                             const struct mf_authz_ctx *ctx)
{
    if (!c)
        return MF_AUTHZ_ALLOWED;
    if (c->cidrs_n) {
        bool in = false;
        for (size_t i = 0; i < c->cidrs_n && !in; i++)
            in = cidr_contains(&c->cidrs[i], client);
        if (!in)
            return MF_AUTHZ_CIDR;
    }
    if (c->has_time && !time_holds(c, ctx->now_ms))
        return MF_AUTHZ_TIME;
    for (size_t i = 0; i < c->claims_n; i++) {
        const char *v = claim_value(ctx, c->claims[i].key);
        if (!v || !glob_match(c->claims[i].glob, v))
            return MF_AUTHZ_CLAIMS;
    }
    return MF_AUTHZ_ALLOWED;
}

/* --- decisions --- */

const char *mf_authz_reason_text(enum mf_authz_reason r)
{
    switch (r) {
    case MF_AUTHZ_ALLOWED: return "allowed";
    case MF_AUTHZ_ROOT: return "allowed by the root policy";
    case MF_AUTHZ_NO_RULE: return "no rule matches the path";
    case MF_AUTHZ_DENY_RULE: return "the deciding rule denies";
    case MF_AUTHZ_NO_CAPABILITY: return "the deciding rule lacks the capability";
    case MF_AUTHZ_CIDR: return "the client address is outside the rule's cidrs";
    case MF_AUTHZ_TIME: return "outside the rule's time window";
    case MF_AUTHZ_CLAIMS: return "a claim the rule requires is missing or does not match";
    }
    return "unknown";
}

static const struct mf_policy_rule *first_match(const struct mf_policy *p, const char *path,
                                                size_t path_len)
{
    for (size_t i = 0; i < p->rules_n; i++)
        if (pattern_match(&p->rules[i], path, path_len))
            return &p->rules[i];
    return NULL;
}

static const struct mf_policy_rule *find_pattern(const struct mf_policy *p,
                                                 const struct mf_policy_rule *key)
{
    return bsearch(key, p->rules, p->rules_n, sizeof(*p->rules), mf_policy_rule_sort_cmp);
}

/* Is a's max_ttl more permissive than b's (none beats any value)? */
static bool ttl_wider(uint64_t a, uint64_t b)
{
    if (b == 0)
        return false;
    return a == 0 || a > b;
}

static bool is_root(const char *name)
{
    return strcmp(name, "root") == 0;
}

int mf_policy_decide(const struct mf_policy_set *set, const char *const *token_policies,
                     size_t n, const struct mf_authz_request *req,
                     const struct mf_authz_ctx *ctx, struct mf_authz_decision *out)
{
    MF_ASSERT(set && req && req->path && ctx && out && (token_policies || n == 0));
    unsigned need = req->cap;
    MF_ASSERT(need != 0 && (need & (need - 1)) == 0 && (need & (MF_CAP_ALL & ~MF_CAP_DENY)));
    *out = (struct mf_authz_decision){.allowed = false, .reason = MF_AUTHZ_NO_RULE};

    for (size_t i = 0; i < n; i++) {
        if (!is_root(token_policies[i]))
            continue;
        const struct mf_policy *root = mf_policy_set_find(set, "root");
        MF_ASSERT(root && root->rules_n == 1);
        *out = (struct mf_authz_decision){
            .allowed = true,
            .reason = MF_AUTHZ_ROOT,
            .policy = root->name,
            .pattern = root->rules[0].pattern,
            .caps = root->rules[0].caps,
        };
        return 0;
    }

    /* Pass 1: the highest-priority matching pattern over all the policies; on a
     * tie (the same pattern) the first policy in token order is kept. */
    size_t path_len = strlen(req->path);
    const struct mf_policy_rule *best = NULL;
    const struct mf_policy *best_pol = NULL;
    const struct mf_policy *resolved[RESOLVED_KEEP];
    for (size_t i = 0; i < n; i++) {
        const struct mf_policy *p = mf_policy_set_find(set, token_policies[i]);
        if (i < RESOLVED_KEEP)
            resolved[i] = p;
        if (!p)
            continue;
        const struct mf_policy_rule *r = first_match(p, req->path, path_len);
        if (r && (!best || mf_policy_rule_priority_cmp(r, best) > 0)) {
            best = r;
            best_pol = p;
        }
    }
    if (!best)
        return MF_EPERM;

    /* Pass 2: merge every rule with that pattern. */
    struct mf_authz_addr client = ctx->client;
    unmap(&client);
    unsigned caps = 0;
    const struct mf_policy *deny_pol = NULL, *allow_pol = NULL, *fail_pol = NULL;
    const struct mf_policy_rule *allow = NULL;
    enum mf_authz_reason fail = MF_AUTHZ_NO_CAPABILITY;
    for (size_t i = 0; i < n; i++) {
        const struct mf_policy *p =
            i < RESOLVED_KEEP ? resolved[i] : mf_policy_set_find(set, token_policies[i]);
        const struct mf_policy_rule *r = p ? find_pattern(p, best) : NULL;
        if (!r)
            continue;
        caps |= r->caps;
        if (r->caps & MF_CAP_DENY) {
            if (!deny_pol)
                deny_pol = p;
            continue;
        }
        if (!(r->caps & need) || deny_pol)
            continue;
        enum mf_authz_reason why = conditions_check(r->cond, &client, ctx);
        if (why == MF_AUTHZ_ALLOWED) {
            if (!allow || ttl_wider(r->max_ttl_ms, allow->max_ttl_ms)) {
                allow = r;
                allow_pol = p;
            }
        } else if (!fail_pol) {
            fail_pol = p;
            fail = why;
        }
    }
    out->pattern = best->pattern;
    out->caps = caps;
    if (deny_pol) {
        out->reason = MF_AUTHZ_DENY_RULE;
        out->policy = deny_pol->name;
    } else if (allow) {
        out->allowed = true;
        out->reason = MF_AUTHZ_ALLOWED;
        out->policy = allow_pol->name;
        out->max_ttl_ms = allow->max_ttl_ms;
        return 0;
    } else if (fail_pol) {
        out->reason = fail;
        out->policy = fail_pol->name;
    } else {
        out->reason = MF_AUTHZ_NO_CAPABILITY;
        out->policy = best_pol->name;
    }
    return MF_EPERM;
}
