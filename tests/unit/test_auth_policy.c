/* Tests of the policy engine (src/auth/policy.h): a table of (policies,
 * request, context) -> decision cases in the manner of OPA's and Vault's ACL
 * tests, the parser's refusals, rendering, and the copy-on-write sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/policy.h"
#include "common/err.h"

/* --- the policies the table uses --- */

static const struct {
    const char *name;
    const char *json;
} table_policies[] = {
    /* CLI.md's worked examples. */
    {"a", "{\"path\": {\"kv/data/app/*\": {\"capabilities\": [\"read\", \"list\"]},"
          "\"kv/data/app/admin/*\": {\"capabilities\": [\"deny\"]}}}"},
    {"b", "{\"path\": {\"kv/data/app/+/config\": {\"capabilities\": [\"read\", \"update\"],"
          "\"conditions\": {\"cidrs\": [\"10.1.0.0/16\"]}}}}"},
    /* A deny on B's pattern, to merge with it. */
    {"c", "{\"path\": {\"kv/data/app/+/config\": {\"capabilities\": [\"deny\"]}}}"},
    {"plus", "{\"path\": {\"kv/data/+/config\": {\"capabilities\": [\"read\"]},"
             "\"kv/data/team-a*\": {\"capabilities\": [\"read\"]}}}"},
    /* Priority: more `+` loses; shorter loses; lower sort loses; exact wins. */
    {"prio", "{\"path\": {\"kv/data/p/+/+\": {\"capabilities\": [\"deny\"]},"
             "\"kv/data/p/+/z\": {\"capabilities\": [\"read\"]},"
             "\"kv/data/s/+/x*\": {\"capabilities\": [\"deny\"]},"
             "\"kv/data/s/+/xy*\": {\"capabilities\": [\"read\"]},"
             "\"kv/data/l/+/+/cd\": {\"capabilities\": [\"deny\"]},"
             "\"kv/data/l/+/ab/+\": {\"capabilities\": [\"read\"]},"
             "\"kv/data/e/x\": {\"capabilities\": [\"read\"]},"
             "\"kv/data/e/*\": {\"capabilities\": [\"deny\"]}}}"},
    {"createonly", "{\"path\": {\"kv/data/c/*\": {\"capabilities\": [\"create\"]}}}"},
    {"sudo", "{\"path\": {\"sys/leases/revoke-prefix/*\": {\"capabilities\": [\"sudo\"]},"
             "\"sys/engines/*\": {\"capabilities\": [\"update\", \"read\"]}}}"},
    {"cidr4", "{\"path\": {\"kv/data/net4/*\": {\"capabilities\": [\"read\"],"
              "\"conditions\": {\"cidrs\": [\"10.0.0.0/8\", \"192.168.1.0/24\"]}}}}"},
    {"cidr6", "{\"path\": {\"kv/data/net6/*\": {\"capabilities\": [\"read\"],"
              "\"conditions\": {\"cidrs\": [\"fd00::/8\", \"2001:db8::1\"]}}}}"},
    {"office", "{\"path\": {\"kv/data/office/*\": {\"capabilities\": [\"read\"],"
               "\"conditions\": {\"time\": {\"after\": \"08:00\", \"before\": \"18:00\","
               "\"days\": [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]}}}}}"},
    {"night", "{\"path\": {\"kv/data/night/*\": {\"capabilities\": [\"read\"],"
              "\"conditions\": {\"time\": {\"after\": \"22:00\", \"before\": \"06:00\"}}}}}"},
    {"fridaynight", "{\"path\": {\"kv/data/fri/*\": {\"capabilities\": [\"read\"],"
                    "\"conditions\": {\"time\": {\"after\": \"22:00\", \"before\": \"06:00\","
                    "\"days\": [\"fri\"]}}}}}"},
    {"claims", "{\"path\": {\"kv/data/payments/*\": {\"capabilities\": [\"read\"],"
               "\"conditions\": {\"claims\": {\"namespace\": \"payments\","
               "\"sub\": \"repo:acme/*\"}}}}}"},
    {"fall", "{\"path\": {\"kv/data/team/*\": {\"capabilities\": [\"read\"]},"
             "\"kv/data/team/secure/*\": {\"capabilities\": [\"read\"],"
             "\"conditions\": {\"cidrs\": [\"10.0.0.0/8\"]}}}}"},
    {"ttl", "{\"path\": {\"db/creds/+\": {\"capabilities\": [\"read\"], \"max_ttl_ms\": 600000},"
            "\"db/creds/admin\": {\"capabilities\": [\"read\"], \"max_ttl\": \"1h\"}}}"},
    {"ttl2", "{\"path\": {\"db/creds/+\": {\"capabilities\": [\"read\"], \"max_ttl_ms\": 1200000}}}"},
    {"ttlnone", "{\"path\": {\"db/creds/+\": {\"capabilities\": [\"read\"]}}}"},
    {"merge1", "{\"path\": {\"kv/data/m/*\": {\"capabilities\": [\"read\"]}}}"},
    {"merge2", "{\"path\": {\"kv/data/m/*\": {\"capabilities\": [\"update\"]}}}"},
    {"cm1", "{\"path\": {\"kv/data/cm/*\": {\"capabilities\": [\"read\"],"
            "\"conditions\": {\"cidrs\": [\"10.0.0.0/8\"]}}}}"},
    {"cm2", "{\"path\": {\"kv/data/cm/*\": {\"capabilities\": [\"read\"],"
            "\"conditions\": {\"cidrs\": [\"192.168.0.0/16\"]}}}}"},
};

static struct mf_policy_set *table_set(void)
{
    struct mf_policy_set *set;
    assert_int_equal(mf_policy_set_new(&set), 0);
    for (size_t i = 0; i < sizeof(table_policies) / sizeof(table_policies[0]); i++) {
        char err[256];
        struct mf_policy_set *next;
        int rc = mf_policy_set_put_json(set, table_policies[i].name, table_policies[i].json,
                                        strlen(table_policies[i].json), &next, err, sizeof(err));
        if (rc != 0)
            fail_msg("policy %s: %s", table_policies[i].name, err);
        mf_policy_set_release(set);
        set = next;
    }
    return set;
}

/* --- the table --- */

#define MON 1704067200000ull /* 2024-01-01 00:00 UTC, a Monday */
#define AT(day, hh, mm) (MON + (day) * 86400000ull + (hh) * 3600000ull + (mm) * 60000ull)
#define NOON AT(2, 12, 0)    /* Wednesday noon, inside every window but the night */

struct claim_kv {
    const char *key, *value;
};

struct tcase {
    const char *what;
    const char *pols[5]; /* NULL-terminated */
    unsigned cap;
    const char *path;
    const char *addr; /* NULL: unknown */
    uint64_t now_ms;
    struct claim_kv claims[3]; /* key NULL-terminated */
    /* expected */
    bool allowed;
    enum mf_authz_reason reason;
    const char *policy, *pattern; /* NULL: none */
    uint64_t max_ttl_ms;
    unsigned caps; /* 0: not checked */
};

#define P(...) {__VA_ARGS__, NULL}
#define R MF_CAP_READ
#define U MF_CAP_UPDATE
#define OK MF_AUTHZ_ALLOWED

static const struct tcase cases[] = {
    /* CLI.md worked examples. */
    {"worked 1: B's + pattern beats A's * and its cidr holds", P("a", "b"), R,
     "kv/data/app/web/config", "10.1.2.3", NOON, {{0}}, true, OK, "b", "kv/data/app/+/config",
     0, R | U},
    {"worked 2: same pattern decides, cidr fails, A's read does not apply", P("a", "b"), R,
     "kv/data/app/web/config", "192.168.1.5", NOON, {{0}}, false, MF_AUTHZ_CIDR, "b",
     "kv/data/app/+/config", 0, 0},
    {"worked 3: admin/* beats + (the + comes earlier) and denies", P("a", "b"), R,
     "kv/data/app/admin/config", "10.1.2.3", NOON, {{0}}, false, MF_AUTHZ_DENY_RULE, "a",
     "kv/data/app/admin/*", 0, MF_CAP_DENY},
    {"worked: order of the token's policies does not matter", P("b", "a"), R,
     "kv/data/app/admin/config", "10.1.2.3", NOON, {{0}}, false, MF_AUTHZ_DENY_RULE, "a",
     "kv/data/app/admin/*", 0, 0},
    {"A alone: * allows read below app/", P("a"), R, "kv/data/app/web/config", NULL, NOON,
     {{0}}, true, OK, "a", "kv/data/app/*", 0, R | MF_CAP_LIST},
    {"A alone: list held", P("a"), MF_CAP_LIST, "kv/data/app/", NULL, NOON, {{0}}, true, OK,
     "a", "kv/data/app/*", 0, 0},
    {"A alone: update not held", P("a"), U, "kv/data/app/web/config", NULL, NOON, {{0}}, false,
     MF_AUTHZ_NO_CAPABILITY, "a", "kv/data/app/*", 0, 0},
    {"A: app/* does not match app itself", P("a"), R, "kv/data/app", NULL, NOON, {{0}}, false,
     MF_AUTHZ_NO_RULE, NULL, NULL, 0, 0},
    {"deny merged into B's pattern wins over B's allow", P("a", "b", "c"), R,
     "kv/data/app/web/config", "10.1.2.3", NOON, {{0}}, false, MF_AUTHZ_DENY_RULE, "c",
     "kv/data/app/+/config", 0, R | U | MF_CAP_DENY},
    /* Globs. */
    {"+ matches one segment", P("plus"), R, "kv/data/web/config", NULL, NOON, {{0}}, true, OK,
     "plus", "kv/data/+/config", 0, 0},
    {"+ never matches two segments", P("plus"), R, "kv/data/web/x/config", NULL, NOON, {{0}},
     false, MF_AUTHZ_NO_RULE, NULL, NULL, 0, 0},
    {"* matches across / (team-a* matches team-ab/x)", P("plus"), R, "kv/data/team-ab/x", NULL,
     NOON, {{0}}, true, OK, "plus", "kv/data/team-a*", 0, 0},
    {"* prefix is literal (team-b is not team-a*)", P("plus"), R, "kv/data/team-b", NULL, NOON,
     {{0}}, false, MF_AUTHZ_NO_RULE, NULL, NULL, 0, 0},
    /* Priority. */
    {"priority: more + segments loses", P("prio"), R, "kv/data/p/q/z", NULL, NOON, {{0}}, true,
     OK, "prio", "kv/data/p/+/z", 0, 0},
    {"priority: the other + pattern still decides where it alone matches", P("prio"), R,
     "kv/data/p/q/y", NULL, NOON, {{0}}, false, MF_AUTHZ_DENY_RULE, "prio", "kv/data/p/+/+", 0,
     0},
    {"priority: shorter loses", P("prio"), R, "kv/data/s/q/xyz", NULL, NOON, {{0}}, true, OK,
     "prio", "kv/data/s/+/xy*", 0, 0},
    {"priority: sorting lower loses", P("prio"), R, "kv/data/l/q/ab/cd", NULL, NOON, {{0}}, true,
     OK, "prio", "kv/data/l/+/ab/+", 0, 0},
    {"priority: an exact pattern beats a glob", P("prio"), R, "kv/data/e/x", NULL, NOON, {{0}},
     true, OK, "prio", "kv/data/e/x", 0, 0},
    {"priority: the glob decides its other paths", P("prio"), R, "kv/data/e/y", NULL, NOON,
     {{0}}, false, MF_AUTHZ_DENY_RULE, "prio", "kv/data/e/*", 0, 0},
    /* create versus update. */
    {"create only: a new path may be created", P("createonly"), MF_CAP_CREATE, "kv/data/c/new",
     NULL, NOON, {{0}}, true, OK, "createonly", "kv/data/c/*", 0, 0},
    {"create only: an existing path may not be updated", P("createonly"), U, "kv/data/c/old",
     NULL, NOON, {{0}}, false, MF_AUTHZ_NO_CAPABILITY, "createonly", "kv/data/c/*", 0, 0},
    /* sudo. */
    {"sudo grants a sudo operation", P("sudo"), MF_CAP_SUDO, "sys/leases/revoke-prefix/db/",
     NULL, NOON, {{0}}, true, OK, "sudo", "sys/leases/revoke-prefix/*", 0, MF_CAP_SUDO},
    {"update does not grant a sudo operation", P("sudo"), MF_CAP_SUDO, "sys/engines/pg", NULL,
     NOON, {{0}}, false, MF_AUTHZ_NO_CAPABILITY, "sudo", "sys/engines/*", 0, 0},
    {"sudo does not grant update", P("sudo"), U, "sys/leases/revoke-prefix/db/", NULL, NOON,
     {{0}}, false, MF_AUTHZ_NO_CAPABILITY, "sudo", "sys/leases/revoke-prefix/*", 0, 0},
    /* cidrs. */
    {"cidr v4 inside /8", P("cidr4"), R, "kv/data/net4/x", "10.9.8.7", NOON, {{0}}, true, OK,
     "cidr4", "kv/data/net4/*", 0, 0},
    {"cidr v4 inside the second prefix /24", P("cidr4"), R, "kv/data/net4/x", "192.168.1.200",
     NOON, {{0}}, true, OK, "cidr4", "kv/data/net4/*", 0, 0},
    {"cidr v4 just outside /24", P("cidr4"), R, "kv/data/net4/x", "192.168.2.1", NOON, {{0}},
     false, MF_AUTHZ_CIDR, "cidr4", "kv/data/net4/*", 0, 0},
    {"cidr v4-mapped v6 client judged as v4", P("cidr4"), R, "kv/data/net4/x",
     "::ffff:10.1.1.1", NOON, {{0}}, true, OK, "cidr4", "kv/data/net4/*", 0, 0},
    {"cidr v6 client never inside a v4 prefix", P("cidr4"), R, "kv/data/net4/x", "fd00::1",
     NOON, {{0}}, false, MF_AUTHZ_CIDR, "cidr4", "kv/data/net4/*", 0, 0},
    {"cidr unknown client address fails", P("cidr4"), R, "kv/data/net4/x", NULL, NOON, {{0}},
     false, MF_AUTHZ_CIDR, "cidr4", "kv/data/net4/*", 0, 0},
    {"cidr v6 inside fd00::/8", P("cidr6"), R, "kv/data/net6/x", "fd12:3456::1", NOON, {{0}},
     true, OK, "cidr6", "kv/data/net6/*", 0, 0},
    {"cidr v6 bare address is a /128", P("cidr6"), R, "kv/data/net6/x", "2001:db8::1", NOON,
     {{0}}, true, OK, "cidr6", "kv/data/net6/*", 0, 0},
    {"cidr v6 next address outside the /128", P("cidr6"), R, "kv/data/net6/x", "2001:db8::2",
     NOON, {{0}}, false, MF_AUTHZ_CIDR, "cidr6", "kv/data/net6/*", 0, 0},
    /* time. */
    {"time: Monday 10:00 inside office hours", P("office"), R, "kv/data/office/x", NULL,
     AT(0, 10, 0), {{0}}, true, OK, "office", "kv/data/office/*", 0, 0},
    {"time: after is inclusive (08:00)", P("office"), R, "kv/data/office/x", NULL, AT(0, 8, 0),
     {{0}}, true, OK, "office", "kv/data/office/*", 0, 0},
    {"time: 07:59 is before the window", P("office"), R, "kv/data/office/x", NULL, AT(0, 7, 59),
     {{0}}, false, MF_AUTHZ_TIME, "office", "kv/data/office/*", 0, 0},
    {"time: before is exclusive (18:00)", P("office"), R, "kv/data/office/x", NULL,
     AT(4, 18, 0), {{0}}, false, MF_AUTHZ_TIME, "office", "kv/data/office/*", 0, 0},
    {"time: Saturday is not a listed day", P("office"), R, "kv/data/office/x", NULL,
     AT(5, 10, 0), {{0}}, false, MF_AUTHZ_TIME, "office", "kv/data/office/*", 0, 0},
    {"time across midnight: 23:00 inside", P("night"), R, "kv/data/night/x", NULL, AT(1, 23, 0),
     {{0}}, true, OK, "night", "kv/data/night/*", 0, 0},
    {"time across midnight: 05:59 inside", P("night"), R, "kv/data/night/x", NULL, AT(2, 5, 59),
     {{0}}, true, OK, "night", "kv/data/night/*", 0, 0},
    {"time across midnight: 06:00 outside", P("night"), R, "kv/data/night/x", NULL, AT(2, 6, 0),
     {{0}}, false, MF_AUTHZ_TIME, "night", "kv/data/night/*", 0, 0},
    {"time across midnight: noon outside", P("night"), R, "kv/data/night/x", NULL, NOON, {{0}},
     false, MF_AUTHZ_TIME, "night", "kv/data/night/*", 0, 0},
    {"time across midnight with days: Friday 23:00 inside", P("fridaynight"), R,
     "kv/data/fri/x", NULL, AT(4, 23, 0), {{0}}, true, OK, "fridaynight", "kv/data/fri/*", 0, 0},
    {"time across midnight with days: Friday 03:00 inside", P("fridaynight"), R,
     "kv/data/fri/x", NULL, AT(4, 3, 0), {{0}}, true, OK, "fridaynight", "kv/data/fri/*", 0, 0},
    {"time across midnight with days: Saturday 03:00 is Saturday's", P("fridaynight"), R,
     "kv/data/fri/x", NULL, AT(5, 3, 0), {{0}}, false, MF_AUTHZ_TIME, "fridaynight",
     "kv/data/fri/*", 0, 0},
    /* claims. */
    {"claims: exact and glob both match", P("claims"), R, "kv/data/payments/x", NULL, NOON,
     {{"namespace", "payments"}, {"sub", "repo:acme/web"}}, true, OK, "claims",
     "kv/data/payments/*", 0, 0},
    {"claims: * in a claim glob spans /", P("claims"), R, "kv/data/payments/x", NULL, NOON,
     {{"sub", "repo:acme/web/ref/main"}, {"namespace", "payments"}}, true, OK, "claims",
     "kv/data/payments/*", 0, 0},
    {"claims: glob mismatch fails", P("claims"), R, "kv/data/payments/x", NULL, NOON,
     {{"namespace", "payments"}, {"sub", "repo:acme2/web"}}, false, MF_AUTHZ_CLAIMS, "claims",
     "kv/data/payments/*", 0, 0},
    {"claims: exact value is not a prefix match", P("claims"), R, "kv/data/payments/x", NULL,
     NOON, {{"namespace", "payments-eu"}, {"sub", "repo:acme/web"}}, false, MF_AUTHZ_CLAIMS,
     "claims", "kv/data/payments/*", 0, 0},
    {"claims: a missing claim fails", P("claims"), R, "kv/data/payments/x", NULL, NOON,
     {{"sub", "repo:acme/web"}}, false, MF_AUTHZ_CLAIMS, "claims", "kv/data/payments/*", 0, 0},
    /* A failed condition never falls through. */
    {"fall-through: secure/* condition fails, team/* read does not apply", P("fall"), R,
     "kv/data/team/secure/x", "192.168.1.1", NOON, {{0}}, false, MF_AUTHZ_CIDR, "fall",
     "kv/data/team/secure/*", 0, 0},
    {"fall-through: secure/* condition holds", P("fall"), R, "kv/data/team/secure/x",
     "10.1.1.1", NOON, {{0}}, true, OK, "fall", "kv/data/team/secure/*", 0, 0},
    {"fall-through: team/* decides elsewhere", P("fall"), R, "kv/data/team/other", "192.168.1.1",
     NOON, {{0}}, true, OK, "fall", "kv/data/team/*", 0, 0},
    /* max_ttl. */
    {"max_ttl on the deciding + rule", P("ttl"), R, "db/creds/web", NULL, NOON, {{0}}, true, OK,
     "ttl", "db/creds/+", 600000, 0},
    {"max_ttl (duration string) on the exact rule", P("ttl"), R, "db/creds/admin", NULL, NOON,
     {{0}}, true, OK, "ttl", "db/creds/admin", 3600000, 0},
    {"max_ttl merged: the larger cap wins", P("ttl", "ttl2"), R, "db/creds/web", NULL, NOON,
     {{0}}, true, OK, "ttl2", "db/creds/+", 1200000, 0},
    {"max_ttl merged: no cap wins over any cap", P("ttl", "ttlnone"), R, "db/creds/web", NULL,
     NOON, {{0}}, true, OK, "ttlnone", "db/creds/+", 0, 0},
    /* Merging capabilities and conditions of one pattern. */
    {"merge: capabilities of one pattern are united (update from merge2)",
     P("merge1", "merge2"), U, "kv/data/m/x", NULL, NOON, {{0}}, true, OK, "merge2",
     "kv/data/m/*", 0, R | U},
    {"merge: a capability none holds names the first policy in token order",
     P("merge1", "merge2"), MF_CAP_DELETE, "kv/data/m/x", NULL, NOON, {{0}}, false,
     MF_AUTHZ_NO_CAPABILITY, "merge1", "kv/data/m/*", 0, R | U},
    {"merge conditions: first policy's cidr holds", P("cm1", "cm2"), R, "kv/data/cm/x",
     "10.2.3.4", NOON, {{0}}, true, OK, "cm1", "kv/data/cm/*", 0, 0},
    {"merge conditions: second policy's cidr holds", P("cm1", "cm2"), R, "kv/data/cm/x",
     "192.168.7.7", NOON, {{0}}, true, OK, "cm2", "kv/data/cm/*", 0, 0},
    {"merge conditions: neither holds, the first failing rule is named", P("cm1", "cm2"), R,
     "kv/data/cm/x", "172.16.0.1", NOON, {{0}}, false, MF_AUTHZ_CIDR, "cm1", "kv/data/cm/*", 0,
     0},
    /* Built-ins and the edges of a token. */
    {"root allows everything, a deny elsewhere notwithstanding", P("a", "root"), MF_CAP_SUDO,
     "kv/data/app/admin/x", NULL, NOON, {{0}}, true, MF_AUTHZ_ROOT, "root", "*", 0, 0},
    {"default: a token may look itself up", P("default"), R, "auth/token/lookup-self", NULL,
     NOON, {{0}}, true, OK, "default", "auth/token/lookup-self", 0, 0},
    {"default: a token may revoke its own lease", P("default"), U,
     "sys/leases/self/revoke/mf_0000000000004", NULL, NOON, {{0}}, true, OK, "default",
     "sys/leases/self/revoke/*", 0, 0},
    {"default: nothing else", P("default"), R, "kv/data/app/x", NULL, NOON, {{0}}, false,
     MF_AUTHZ_NO_RULE, NULL, NULL, 0, 0},
    {"default: no revoke of another token", P("default"), U, "auth/token/revoke", NULL, NOON,
     {{0}}, false, MF_AUTHZ_NO_RULE, NULL, NULL, 0, 0},
    {"a policy absent from the set is ignored", P("deleted-policy", "a"), R, "kv/data/app/x",
     NULL, NOON, {{0}}, true, OK, "a", "kv/data/app/*", 0, 0},
    {"a token without policies is denied", {NULL}, R, "kv/data/app/x", NULL, NOON, {{0}}, false,
     MF_AUTHZ_NO_RULE, NULL, NULL, 0, 0},
};

static void check_case(const struct mf_policy_set *set, const struct tcase *c)
{
    size_t n = 0;
    while (c->pols[n])
        n++;
    struct mf_authz_claim claims[3];
    size_t claims_n = 0;
    while (claims_n < 3 && c->claims[claims_n].key) {
        claims[claims_n].key = c->claims[claims_n].key;
        claims[claims_n].value = c->claims[claims_n].value;
        claims_n++;
    }
    struct mf_authz_ctx ctx = {.now_ms = c->now_ms, .claims = claims, .claims_n = claims_n};
    if (c->addr && mf_authz_addr_parse(c->addr, &ctx.client) != 0)
        fail_msg("%s: bad address %s", c->what, c->addr);
    struct mf_authz_request req = {.cap = c->cap, .path = c->path};
    struct mf_authz_decision d;
    int rc = mf_policy_decide(set, c->pols, n, &req, &ctx, &d);
    if (rc != (c->allowed ? 0 : MF_EPERM) || d.allowed != c->allowed || d.reason != c->reason)
        fail_msg("%s: rc %d allowed %d reason \"%s\" (policy %s, pattern %s)", c->what, rc,
                 d.allowed, mf_authz_reason_text(d.reason), d.policy ? d.policy : "-",
                 d.pattern ? d.pattern : "-");
    if ((c->policy == NULL) != (d.policy == NULL) ||
        (c->policy && strcmp(c->policy, d.policy) != 0))
        fail_msg("%s: policy %s, expected %s", c->what, d.policy ? d.policy : "-",
                 c->policy ? c->policy : "-");
    if ((c->pattern == NULL) != (d.pattern == NULL) ||
        (c->pattern && strcmp(c->pattern, d.pattern) != 0))
        fail_msg("%s: pattern %s, expected %s", c->what, d.pattern ? d.pattern : "-",
                 c->pattern ? c->pattern : "-");
    if (d.max_ttl_ms != c->max_ttl_ms)
        fail_msg("%s: max_ttl_ms %llu, expected %llu", c->what,
                 (unsigned long long)d.max_ttl_ms, (unsigned long long)c->max_ttl_ms);
    if (c->caps && d.caps != c->caps)
        fail_msg("%s: caps %#x, expected %#x", c->what, d.caps, c->caps);
}

/* Every row of the decision table decides as CLI.md "How a policy decides"
 * says: allowed or not, why, and which policy and pattern decided. */
static void test_auth_policy_decision_table(void **state)
{
    (void)state;
    size_t n = sizeof(cases) / sizeof(cases[0]);
    assert_true(n >= 40);
    struct mf_policy_set *set = table_set();
    for (size_t i = 0; i < n; i++)
        check_case(set, &cases[i]);
    mf_policy_set_release(set);
}

/* --- parser refusals --- */

static void refuse(const char *json, int want, const char *msg_part)
{
    char err[256] = "";
    struct mf_policy *p = (struct mf_policy *)1;
    int rc = mf_policy_parse("t", json, strlen(json), &p, err, sizeof(err));
    if (rc != want)
        fail_msg("%.80s: rc %d (%s), expected %d", json, rc, err, want);
    assert_null(p);
    if (!strstr(err, msg_part))
        fail_msg("%.80s: message \"%s\" lacks \"%s\"", json, err, msg_part);
}

#define RULE(body) "{\"path\": {\"kv/data/x/*\": " body "}}"
#define CAPS "\"capabilities\": [\"read\"]"

/* Everything the parser does not understand is refused with a message naming
 * the problem: duplicate keys, unknown fields and capabilities, misplaced
 * globs, bad CIDRs, times and claims, and documents over their limits. */
static void test_auth_policy_parse_refusals(void **state)
{
    (void)state;
    refuse("{\"path\": {\"kv/x\": {" CAPS "}, \"kv/x\": {" CAPS "}}}", MF_EINVAL, "duplicate");
    refuse(RULE("{" CAPS ", \"capabilities\": [\"list\"]}"), MF_EINVAL, "duplicate");
    refuse(RULE("{\"capabilities\": [\"write\"]}"), MF_EINVAL, "unknown capability \"write\"");
    refuse(RULE("{\"capabilities\": []}"), MF_EINVAL, "non-empty");
    refuse(RULE("{\"capabilities\": [1]}"), MF_EINVAL, "unknown capability");
    refuse("{\"path\": {\"kv/*/x\": {" CAPS "}}}", MF_EINVAL, "only at the end");
    refuse("{\"path\": {\"kv/**\": {" CAPS "}}}", MF_EINVAL, "only at the end");
    refuse("{\"path\": {\"kv/a+/x\": {" CAPS "}}}", MF_EINVAL, "whole segment");
    refuse("{\"path\": {\"kv/+*\": {" CAPS "}}}", MF_EINVAL, "whole segment");
    refuse("{\"path\": {\"\": {" CAPS "}}}", MF_EINVAL, "empty");
    refuse("{\"path\": {\"/kv/x\": {" CAPS "}}}", MF_EINVAL, "without '/'");
    refuse(RULE("{" CAPS ", \"allowed_parameters\": {}}"), MF_EINVAL,
           "unsupported field \"allowed_parameters\"");
    refuse("{\"path\": {}, \"name\": \"x\"}", MF_EINVAL, "unsupported policy field");
    refuse("{\"paths\": {}}", MF_EINVAL, "unsupported policy field");
    refuse("{}", MF_EINVAL, "needs \"path\"");
    refuse("[]", MF_EINVAL, "JSON object");
    refuse("{\"path\": {}} x", MF_EINVAL, "policy t");
    refuse(RULE("{" CAPS ", \"conditions\": {\"cidrs\": [\"10.0.0.0/33\"]}}"), MF_EINVAL,
           "not an IPv4 or IPv6 CIDR");
    refuse(RULE("{" CAPS ", \"conditions\": {\"cidrs\": [\"10.0.0/8\"]}}"), MF_EINVAL,
           "not an IPv4 or IPv6 CIDR");
    refuse(RULE("{" CAPS ", \"conditions\": {\"cidrs\": [\"fd00::/129\"]}}"), MF_EINVAL,
           "not an IPv4 or IPv6 CIDR");
    refuse(RULE("{" CAPS ", \"conditions\": {\"cidrs\": [\"10.1.2.3/16\"]}}"), MF_EINVAL,
           "host bits");
    refuse(RULE("{" CAPS ", \"conditions\": {\"cidrs\": []}}"), MF_EINVAL, "non-empty");
    refuse(RULE("{" CAPS ", \"conditions\": {\"geo\": \"eu\"}}"), MF_EINVAL,
           "unknown condition \"geo\"");
    refuse(RULE("{\"capabilities\": [\"deny\"], \"conditions\": {\"cidrs\": [\"10.0.0.0/8\"]}}"),
           MF_EINVAL, "takes no conditions");
    refuse(RULE("{" CAPS ", \"conditions\": {\"time\": {\"after\": \"8:00\"}}}"), MF_EINVAL,
           "HH:MM");
    refuse(RULE("{" CAPS ", \"conditions\": {\"time\": {\"after\": \"24:00\"}}}"), MF_EINVAL,
           "HH:MM");
    refuse(RULE("{" CAPS ", \"conditions\": {\"time\": {\"before\": \"12:60\"}}}"), MF_EINVAL,
           "HH:MM");
    refuse(RULE("{" CAPS ", \"conditions\": {\"time\": {\"after\": \"09:00\", \"before\": "
                "\"09:00\"}}}"),
           MF_EINVAL, "equals");
    refuse(RULE("{" CAPS ", \"conditions\": {\"time\": {\"days\": [\"monday\"]}}}"), MF_EINVAL,
           "days");
    refuse(RULE("{" CAPS ", \"conditions\": {\"time\": {\"tz\": \"CET\"}}}"), MF_EINVAL,
           "unknown time field");
    refuse(RULE("{" CAPS ", \"conditions\": {\"claims\": {\"sub\": 1}}}"), MF_EINVAL,
           "string glob");
    refuse(RULE("{" CAPS ", \"max_ttl_ms\": 1000, \"max_ttl\": \"1s\"}"), MF_EINVAL, "not both");
    refuse(RULE("{" CAPS ", \"max_ttl_ms\": -1}"), MF_EINVAL, "max_ttl_ms");
    refuse(RULE("{" CAPS ", \"max_ttl\": \"soon\"}"), MF_EINVAL, "duration");

    /* Names. */
    char err[256];
    struct mf_policy *p;
    const char *ok = "{\"path\": {}}";
    assert_int_equal(mf_policy_parse("Admin", ok, strlen(ok), &p, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(mf_policy_parse("", ok, strlen(ok), &p, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(mf_policy_parse("a b", ok, strlen(ok), &p, err, sizeof(err)), MF_EINVAL);
}

/* Oversized input is refused with MF_ETOOLARGE before or while parsing: the
 * document, the number of rules, a pattern, the cidrs of a rule. */
static void test_auth_policy_parse_limits(void **state)
{
    (void)state;
    size_t cap = 2 * MF_POLICY_DOC_MAX_BYTES;
    char *doc = malloc(cap);
    assert_non_null(doc);

    /* A document just over the byte limit (valid JSON, padded with spaces). */
    memset(doc, ' ', MF_POLICY_DOC_MAX_BYTES + 1);
    memcpy(doc, "{\"path\": {}}", 12);
    doc[MF_POLICY_DOC_MAX_BYTES + 1] = '\0';
    refuse(doc, MF_ETOOLARGE, "over");

    /* MF_POLICY_RULES_MAX + 1 short patterns fit in the byte limit. */
    size_t at = (size_t)snprintf(doc, cap, "{\"path\": {");
    for (int i = 0; i <= MF_POLICY_RULES_MAX; i++)
        at += (size_t)snprintf(doc + at, cap - at, "%s\"k/%d\": {\"capabilities\": [\"read\"]}",
                               i ? "," : "", i);
    snprintf(doc + at, cap - at, "}}");
    assert_true(strlen(doc) <= MF_POLICY_DOC_MAX_BYTES);
    refuse(doc, MF_ETOOLARGE, "at most");

    /* A pattern one byte over its limit; one at the limit is fine. */
    char pat[MF_POLICY_PATTERN_MAX_BYTES + 2];
    memset(pat, 'a', sizeof(pat) - 1);
    pat[sizeof(pat) - 1] = '\0';
    snprintf(doc, cap, "{\"path\": {\"%s\": {\"capabilities\": [\"read\"]}}}", pat);
    refuse(doc, MF_ETOOLARGE, "longer than");
    pat[MF_POLICY_PATTERN_MAX_BYTES] = '\0';
    snprintf(doc, cap, "{\"path\": {\"%s\": {\"capabilities\": [\"read\"]}}}", pat);
    struct mf_policy *p;
    char err[256];
    assert_int_equal(mf_policy_parse("t", doc, strlen(doc), &p, err, sizeof(err)), 0);
    mf_policy_release(p);

    /* Too many cidrs in one rule. */
    at = (size_t)snprintf(doc, cap, "{\"path\": {\"k/*\": {" CAPS ", \"conditions\": {\"cidrs\": [");
    for (int i = 0; i <= MF_POLICY_CIDRS_MAX; i++)
        at += (size_t)snprintf(doc + at, cap - at, "%s\"10.0.%d.0/24\"", i ? "," : "", i);
    snprintf(doc + at, cap - at, "]}}}}");
    refuse(doc, MF_ETOOLARGE, "cidrs");
    free(doc);
}

/* A rendered policy parses back to the same policy (render -> parse -> render
 * is a fixed point), and max_ttl is rendered as max_ttl_ms. */
static void test_auth_policy_render_round_trip(void **state)
{
    (void)state;
    const char *json =
        "{\"path\": {\"kv/data/+/config\": {\"capabilities\": [\"update\", \"read\", \"sudo\"],"
        "\"max_ttl\": \"1h\", \"conditions\": {"
        "\"cidrs\": [\"10.0.0.0/8\", \"fd00::/8\", \"::ffff:192.168.0.0/112\"],"
        "\"time\": {\"after\": \"22:00\", \"before\": \"06:00\", \"days\": [\"sun\", \"mon\"]},"
        "\"claims\": {\"sub\": \"repo:acme/*\", \"namespace\": \"payments\"}}},"
        "\"kv/data/x\": {\"capabilities\": [\"deny\"]},"
        "\"kv/data/t/*\": {\"capabilities\": [\"list\"], \"conditions\": {\"time\": "
        "{\"before\": \"24:00\", \"after\": \"12:00\"}}}}}";
    char err[256];
    struct mf_policy *p, *q;
    assert_int_equal(mf_policy_parse("rt", json, strlen(json), &p, err, sizeof(err)), 0);
    assert_int_equal(mf_policy_rule_count(p), 3);
    assert_string_equal(mf_policy_name(p), "rt");
    char *one, *two;
    assert_int_equal(mf_policy_render(p, &one), 0);
    assert_non_null(strstr(one, "\"max_ttl_ms\":3600000"));
    assert_non_null(strstr(one, "\"cidrs\":[\"10.0.0.0/8\",\"fd00::/8\",\"192.168.0.0/16\"]"));
    assert_non_null(strstr(one, "\"days\":[\"mon\",\"sun\"]"));
    assert_non_null(strstr(one, "\"before\":\"24:00\""));
    assert_non_null(strstr(one, "\"capabilities\":[\"read\",\"update\",\"sudo\"]"));
    assert_int_equal(mf_policy_parse("rt", one, strlen(one), &q, err, sizeof(err)), 0);
    assert_int_equal(mf_policy_render(q, &two), 0);
    assert_string_equal(one, two);
    free(one);
    free(two);
    mf_policy_release(p);
    mf_policy_release(q);
}

/* --- sets --- */

static int decide1(const struct mf_policy_set *set, const char *pol, unsigned cap,
                   const char *path, struct mf_authz_decision *d)
{
    const char *pols[] = {pol};
    struct mf_authz_request req = {.cap = cap, .path = path};
    struct mf_authz_ctx ctx = {.now_ms = NOON};
    return mf_policy_decide(set, pols, 1, &req, &ctx, d);
}

/* A put or delete builds a new set and leaves the old one as it was: a
 * decision on the old set (and the pointers it returned) is unaffected. */
static void test_auth_policy_set_copy_on_write(void **state)
{
    (void)state;
    char err[256];
    const char *v1 = "{\"path\": {\"kv/data/x/*\": {\"capabilities\": [\"read\"]}}}";
    const char *v2 = "{\"path\": {\"kv/data/x/*\": {\"capabilities\": [\"deny\"]}}}";
    struct mf_policy_set *s0, *s1, *s2, *s3;
    assert_int_equal(mf_policy_set_new(&s0), 0);
    assert_int_equal(mf_policy_set_put_json(s0, "p", v1, strlen(v1), &s1, err, sizeof(err)), 0);
    /* A reader holds s1 while a writer replaces p and then deletes it. */
    struct mf_policy_set *reader = mf_policy_set_ref(s1);
    assert_int_equal(mf_policy_set_put_json(s1, "p", v2, strlen(v2), &s2, err, sizeof(err)), 0);
    assert_int_equal(mf_policy_set_delete(s2, "p", &s3, err, sizeof(err)), 0);
    mf_policy_set_release(s1);
    mf_policy_set_release(s2);

    struct mf_authz_decision d;
    assert_int_equal(decide1(reader, "p", MF_CAP_READ, "kv/data/x/y", &d), 0);
    assert_string_equal(d.policy, "p");
    assert_string_equal(d.pattern, "kv/data/x/*");
    assert_int_equal(decide1(s3, "p", MF_CAP_READ, "kv/data/x/y", &d), MF_EPERM);
    assert_int_equal(d.reason, MF_AUTHZ_NO_RULE);
    assert_int_equal(decide1(s0, "p", MF_CAP_READ, "kv/data/x/y", &d), MF_EPERM);

    /* The replacement denies in the set that holds it. */
    assert_int_equal(mf_policy_set_put_json(reader, "p", v2, strlen(v2), &s2, err, sizeof(err)),
                     0);
    assert_int_equal(decide1(s2, "p", MF_CAP_READ, "kv/data/x/y", &d), MF_EPERM);
    assert_int_equal(d.reason, MF_AUTHZ_DENY_RULE);
    assert_int_equal(decide1(reader, "p", MF_CAP_READ, "kv/data/x/y", &d), 0);
    mf_policy_set_release(s2);
    mf_policy_set_release(reader);
    mf_policy_set_release(s3);
    mf_policy_set_release(s0);
}

/* root can be neither written nor deleted, default can be replaced but not
 * deleted, deleting a missing policy is NOT_FOUND, and names list sorted. */
static void test_auth_policy_set_builtins_and_list(void **state)
{
    (void)state;
    char err[256];
    const char *any = "{\"path\": {\"kv/*\": {\"capabilities\": [\"read\"]}}}";
    struct mf_policy_set *s0, *s1, *s2, *x = NULL;
    assert_int_equal(mf_policy_set_new(&s0), 0);
    assert_int_equal(mf_policy_set_count(s0), 2);
    assert_string_equal(mf_policy_set_name_at(s0, 0), "default");
    assert_string_equal(mf_policy_set_name_at(s0, 1), "root");
    assert_int_equal(mf_policy_set_put_json(s0, "root", any, strlen(any), &x, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "root"));
    assert_null(x);
    assert_int_equal(mf_policy_set_delete(s0, "root", &x, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(mf_policy_set_delete(s0, "default", &x, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(mf_policy_set_delete(s0, "nope", &x, err, sizeof(err)), MF_ENOTFOUND);
    assert_null(x);

    assert_int_equal(mf_policy_set_put_json(s0, "zeta", any, strlen(any), &s1, err, sizeof(err)),
                     0);
    assert_int_equal(mf_policy_set_put_json(s1, "alpha", any, strlen(any), &s2, err, sizeof(err)),
                     0);
    mf_policy_set_release(s1);
    const char *want[] = {"alpha", "default", "root", "zeta"};
    assert_int_equal(mf_policy_set_count(s2), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(mf_policy_set_name_at(s2, i), want[i]);
    assert_non_null(mf_policy_set_find(s2, "alpha"));
    assert_null(mf_policy_set_find(s2, "beta"));

    /* Replacing default changes what every token with default may do. */
    struct mf_authz_decision d;
    assert_int_equal(decide1(s2, "default", MF_CAP_READ, "kv/x", &d), MF_EPERM);
    assert_int_equal(mf_policy_set_put_json(s2, "default", any, strlen(any), &s1, err,
                                            sizeof(err)),
                     0);
    assert_int_equal(mf_policy_set_count(s1), 4);
    assert_int_equal(decide1(s1, "default", MF_CAP_READ, "kv/x", &d), 0);
    char *text;
    assert_int_equal(mf_policy_render(mf_policy_set_find(s1, "default"), &text), 0);
    assert_string_equal(text, "{\"path\":{\"kv/*\":{\"capabilities\":[\"read\"]}}}");
    free(text);
    mf_policy_set_release(s1);
    mf_policy_set_release(s2);
    mf_policy_set_release(s0);
}

/* A token with more policies than the decision keeps on its stack merges the
 * same pattern across all of them. */
static void test_auth_policy_many_token_policies(void **state)
{
    (void)state;
    struct mf_policy_set *set = table_set();
    const char *pols[24];
    char names[22][16];
    for (size_t i = 0; i < 22; i++) {
        snprintf(names[i], sizeof(names[i]), "absent-%zu", i);
        pols[i] = names[i];
    }
    pols[22] = "merge1";
    pols[23] = "merge2";
    struct mf_authz_request req = {.cap = MF_CAP_UPDATE, .path = "kv/data/m/x"};
    struct mf_authz_ctx ctx = {.now_ms = NOON};
    struct mf_authz_decision d;
    assert_int_equal(mf_policy_decide(set, pols, 24, &req, &ctx, &d), 0);
    assert_string_equal(d.policy, "merge2");
    assert_int_equal(d.caps, MF_CAP_READ | MF_CAP_UPDATE);
    req.cap = MF_CAP_DELETE;
    assert_int_equal(mf_policy_decide(set, pols, 24, &req, &ctx, &d), MF_EPERM);
    assert_string_equal(d.policy, "merge1");
    mf_policy_set_release(set);
}

/* Hundreds of policies are each found by name after puts and deletes (the
 * hash index probes past collisions and never finds a deleted name). */
static void test_auth_policy_set_many(void **state)
{
    (void)state;
    const char *json = "{\"path\": {\"kv/*\": {\"capabilities\": [\"read\"]}}}";
    char err[256], name[32];
    struct mf_policy_set *set, *next;
    assert_int_equal(mf_policy_set_new(&set), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        assert_int_equal(
            mf_policy_set_put_json(set, name, json, strlen(json), &next, err, sizeof(err)), 0);
        mf_policy_set_release(set);
        set = next;
    }
    for (int i = 0; i < 300; i += 2) {
        snprintf(name, sizeof(name), "p%d", i);
        assert_int_equal(mf_policy_set_delete(set, name, &next, err, sizeof(err)), 0);
        mf_policy_set_release(set);
        set = next;
    }
    assert_int_equal(mf_policy_set_count(set), 152);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        const struct mf_policy *p = mf_policy_set_find(set, name);
        if (i % 2) {
            assert_non_null(p);
            assert_string_equal(mf_policy_name(p), name);
        } else {
            assert_null(p);
        }
    }
    for (size_t i = 1; i < mf_policy_set_count(set); i++)
        assert_true(strcmp(mf_policy_set_name_at(set, i - 1), mf_policy_set_name_at(set, i)) < 0);
    mf_policy_set_release(set);
}

/* Capability names and addresses parse as the CLI passes them. */
static void test_auth_policy_names_and_addresses(void **state)
{
    (void)state;
    unsigned cap;
    assert_int_equal(mf_cap_parse("sudo", &cap), 0);
    assert_int_equal(cap, MF_CAP_SUDO);
    assert_string_equal(mf_cap_name(MF_CAP_LIST), "list");
    assert_null(mf_cap_name(MF_CAP_READ | MF_CAP_LIST));
    assert_int_equal(mf_cap_parse("write", &cap), MF_EINVAL);
    struct mf_authz_addr a;
    assert_int_equal(mf_authz_addr_parse("::ffff:1.2.3.4", &a), 0);
    assert_int_equal(a.family, MF_AUTHZ_ADDR_V4);
    assert_memory_equal(a.bytes, "\x01\x02\x03\x04", 4);
    assert_int_equal(mf_authz_addr_parse("1.2.3.4/8", &a), MF_EINVAL);

    /* A caller that fills in a v4-mapped v6 address by hand is judged as v4. */
    const char *json = "{\"path\": {\"k/*\": {\"capabilities\": [\"read\"],"
                       "\"conditions\": {\"cidrs\": [\"1.2.3.0/24\"]}}}}";
    char err[256];
    struct mf_policy_set *s0, *s1;
    assert_int_equal(mf_policy_set_new(&s0), 0);
    assert_int_equal(mf_policy_set_put_json(s0, "v4", json, strlen(json), &s1, err, sizeof(err)),
                     0);
    struct mf_authz_ctx ctx = {.client = {.family = MF_AUTHZ_ADDR_V6,
                                          .bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1,
                                                    2, 3, 9}}};
    const char *pols[] = {"v4"};
    struct mf_authz_request req = {.cap = MF_CAP_READ, .path = "k/x"};
    struct mf_authz_decision d;
    assert_int_equal(mf_policy_decide(s1, pols, 1, &req, &ctx, &d), 0);
    ctx.client.bytes[14] = 4; /* 1.2.4.9 */
    assert_int_equal(mf_policy_decide(s1, pols, 1, &req, &ctx, &d), MF_EPERM);
    assert_int_equal(d.reason, MF_AUTHZ_CIDR);
    mf_policy_set_release(s1);
    mf_policy_set_release(s0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_policy_decision_table),
        cmocka_unit_test(test_auth_policy_parse_refusals),
        cmocka_unit_test(test_auth_policy_parse_limits),
        cmocka_unit_test(test_auth_policy_render_round_trip),
        cmocka_unit_test(test_auth_policy_set_copy_on_write),
        cmocka_unit_test(test_auth_policy_set_builtins_and_list),
        cmocka_unit_test(test_auth_policy_many_token_policies),
        cmocka_unit_test(test_auth_policy_set_many),
        cmocka_unit_test(test_auth_policy_names_and_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
