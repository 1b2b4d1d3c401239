/* Policies: parse, compile and decide (CLI.md "Authorization", "Policy paths",
 * "How a policy decides").
 *
 * A policy is a JSON document in Vault's ACL format plus mayfly's conditions
 * and max_ttl:
 *
 *     {"path": {"kv/data/app/+/config": {
 *         "capabilities": ["read", "update"],
 *         "conditions": {"cidrs": ["10.1.0.0/16", "fd00::/8"],
 *                        "time": {"after": "08:00", "before": "18:00",
 *                                 "days": ["mon", "tue", "wed", "thu", "fri"]},
 *                        "claims": {"namespace": "payments", "sub": "repo:acme*"}},
 *         "max_ttl_ms": 3600000}}}
 *
 * Parsing is strict: duplicate keys, unknown fields (Vault's
 * allowed_parameters, min_wrapping_ttl, ... included), unknown capabilities,
 * a `*` anywhere but at the end of a pattern, a `+` that is not a whole
 * segment, empty patterns, host bits in a CIDR and conditions on a `deny` rule
 * (deny is unconditional) are refused with a message naming the pattern.
 * `max_ttl` may be given as `max_ttl_ms` (integer) or as `max_ttl` (a duration
 * string: "90s", "1h30m", bare seconds "3600"), not both; it is always
 * rendered as `max_ttl_ms`.
 *
 * A parsed policy is compiled once into an immutable, reference-counted
 * struct mf_policy. All policies of the cluster live in an immutable,
 * reference-counted struct mf_policy_set. Writes build a new set
 * (copy-on-write: mf_policy_set_put / mf_policy_set_delete) that shares the
 * unchanged policies, so the server swaps one pointer after each applied policy
 * write and a decision running on another thread keeps using the set it took a
 * reference to. Taking that reference races with the swap, so the server must
 * load the current pointer and mf_policy_set_ref() it under the same short
 * guard (a mutex held only for those two steps, or the thread that swaps);
 * never while compiling.
 *
 * Every set holds two built-in policies:
 *   - `root` allows everything, sudo included; it cannot be written or deleted.
 *     A token holding `root` is allowed every request, whatever else it holds.
 *   - `default` (MF_POLICY_DEFAULT_JSON): a token may look up, renew and revoke
 *     itself and the leases it owns. It may be replaced with
 *     mf_policy_set_put, never deleted.
 *
 * Decisions (mf_policy_decide) are pure: no clock (the context carries
 * now_ms), no I/O, no allocation, no lock. The rules:
 *   1. The token's policies are merged by pattern: capabilities of rules with
 *      the same pattern are united; a `deny` in any of them denies.
 *   2. Of the patterns that match the request path, the one with the highest
 *      priority decides; no other pattern is consulted. Of two patterns P1 and
 *      P2, P1 loses if its first `+` or `*` comes earlier (a pattern without
 *      globs has none, and wins), if it ends in `*` and P2 does not, if it has
 *      more `+` segments, if it is shorter, if it sorts lower (strcmp).
 *   3. `*` (only last) matches any rest of the path, `/` included; `+` (only a
 *      whole segment) matches exactly one segment, which may be empty
 *      (`kv/+/x` matches `kv//x`, as in Vault; the server is expected to pass
 *      normalised paths).
 *   4. The deciding pattern allows the request iff it holds the requested
 *      capability and all its conditions hold. When several policies carry a
 *      rule for that pattern with different conditions, the request is allowed
 *      if ANY of those rules that holds the capability has all of its own
 *      conditions hold (rules are alternatives, as policies are). A failed
 *      condition never falls through to a broader pattern.
 *   5. max_ttl_ms reports the cap of the allowing rule; if several same-pattern
 *      rules allow, the most permissive wins (none over any value, else the
 *      largest), matching the union of capabilities.
 *
 * Conditions (all present ones must hold):
 *   - cidrs: the client address is inside one of the prefixes. IPv4-mapped IPv6
 *     addresses (::ffff:a.b.c.d) are judged as IPv4. An unknown address
 *     (MF_AUTHZ_ADDR_NONE) fails.
 *   - time: in UTC from ctx->now_ms. `after` is inclusive, `before` exclusive
 *     (both "HH:MM"; `before` may be "24:00"; a missing `after` is 00:00 and a
 *     missing `before` is 24:00). after > before is a window across midnight
 *     (after <= t or t < before); after == before is refused as ambiguous.
 *     `days` are matched against the UTC day of the request's instant, so a
 *     window 22:00-06:00 on ["fri"] covers Friday 22:00-24:00 and Friday
 *     00:00-06:00, not Saturday morning: list "sat" for that.
 *   - claims: every named claim is present in ctx->claims and its value
 *     matches the glob (`*` anywhere matches any characters, `/` included;
 *     everything else is literal and case-sensitive). A missing claim fails.
 */
#ifndef MF_AUTH_POLICY_H
#define MF_AUTH_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Limits on what a policy write may make the cluster hold. The name limit must
 * agree with MF_POLICY_NAME_MAX in store/policies.h. */
#define MF_POLICY_DOC_MAX_BYTES (64 * 1024)   /* one policy document */
#define MF_POLICY_RULES_MAX 1000              /* patterns in one policy */
#define MF_POLICY_PATTERN_MAX_BYTES 512       /* one path pattern */
#define MF_POLICY_NAME_MAX_BYTES 128          /* a policy name, [a-z0-9._-] */
#define MF_POLICY_CIDRS_MAX 64                /* prefixes in one rule */
#define MF_POLICY_CLAIMS_MAX 32               /* claims in one rule */
#define MF_POLICY_CLAIM_MAX_BYTES 512         /* a claim name or glob */
#define MF_POLICY_SET_MAX 10000               /* policies in one set */

/* The built-in `default` policy (see the file comment). A documented constant
 * the lead may change; every new set compiles it. */
#define MF_POLICY_DEFAULT_JSON                                                 \
    "{\"path\": {"                                                             \
    "\"auth/token/lookup-self\": {\"capabilities\": [\"read\"]},"              \
    "\"auth/token/renew-self\": {\"capabilities\": [\"update\"]},"             \
    "\"auth/token/revoke-self\": {\"capabilities\": [\"update\"]},"            \
    "\"sys/leases/self/lookup/*\": {\"capabilities\": [\"read\"]},"            \
    "\"sys/leases/self/renew/*\": {\"capabilities\": [\"update\"]},"           \
    "\"sys/leases/self/revoke/*\": {\"capabilities\": [\"update\"]}}}"

/* Capabilities, one bit each. A request names exactly one of the first six;
 * MF_CAP_SUDO is what an operation the CLI.md table marks "sudo" asks for
 * (`sudo` alone grants it). MF_CAP_DENY only appears in rules. */
enum mf_cap {
    MF_CAP_CREATE = 1u << 0,
    MF_CAP_READ = 1u << 1,
    MF_CAP_UPDATE = 1u << 2,
    MF_CAP_DELETE = 1u << 3,
    MF_CAP_LIST = 1u << 4,
    MF_CAP_SUDO = 1u << 5,
    MF_CAP_DENY = 1u << 6,
};
#define MF_CAP_ALL 0x7fu

/* "create", ... for one bit; NULL for anything else. Static. */
const char *mf_cap_name(unsigned cap);
/* The bit named `name`; MF_EINVAL if none. */
int mf_cap_parse(const char *name, unsigned *out);

/* --- compiled policies --- */

struct mf_policy; /* opaque, immutable, reference counted */

/* Parse and compile policy `name` from `json` (json_len bytes, need not be
 * NUL-terminated). On success *out holds one reference owned by the caller.
 * Errors (a message in err, always NUL-terminated when err_len > 0):
 *   MF_EINVAL    bad name, malformed JSON, duplicate key, unknown field or
 *                capability, bad pattern, CIDR, time or claim
 *   MF_ETOOLARGE document, rule count, pattern, CIDR or claim list over its limit
 *   -ENOMEM */
int mf_policy_parse(const char *name, const char *json, size_t json_len,
                    struct mf_policy **out, char *err, size_t err_len);

struct mf_policy *mf_policy_ref(const struct mf_policy *p);
void mf_policy_release(struct mf_policy *p); /* NULL is fine */

const char *mf_policy_name(const struct mf_policy *p);
size_t mf_policy_rule_count(const struct mf_policy *p);

/* Render back to canonical JSON (the shape above, keys sorted, max_ttl as
 * max_ttl_ms) for `policy read`. *json_out is malloc'ed, NUL-terminated and
 * freed by the caller with free(). Errors: -ENOMEM. The rendering parses back
 * to an equivalent policy. */
int mf_policy_render(const struct mf_policy *p, char **json_out);

/* --- policy sets --- */

struct mf_policy_set; /* opaque, immutable, reference counted */

/* A set holding only `root` and `default`. *out holds one reference owned by
 * the caller. Errors: -ENOMEM. */
int mf_policy_set_new(struct mf_policy_set **out);

struct mf_policy_set *mf_policy_set_ref(const struct mf_policy_set *set);
void mf_policy_set_release(struct mf_policy_set *set); /* NULL is fine */

/* A new set: `old` with policy `p` added or replacing the one of its name.
 * `old` is unchanged; the new set takes its own reference to p (the caller
 * keeps and releases its own). *out is owned by the caller.
 * Errors: MF_EINVAL p is `root`; MF_ETOOLARGE the set would exceed
 * MF_POLICY_SET_MAX; -ENOMEM. */
int mf_policy_set_put(const struct mf_policy_set *old, struct mf_policy *p,
                      struct mf_policy_set **out, char *err, size_t err_len);

/* mf_policy_parse + mf_policy_set_put, for the apply path. Errors: theirs. */
int mf_policy_set_put_json(const struct mf_policy_set *old, const char *name,
                           const char *json, size_t json_len,
                           struct mf_policy_set **out, char *err, size_t err_len);

/* A new set: `old` without policy `name`. Errors: MF_EINVAL `root` or
 * `default`; MF_ENOTFOUND no such policy; -ENOMEM. */
int mf_policy_set_delete(const struct mf_policy_set *old, const char *name,
                         struct mf_policy_set **out, char *err, size_t err_len);

/* Policy `name`, or NULL. Borrowed: valid while the set is referenced. */
const struct mf_policy *mf_policy_set_find(const struct mf_policy_set *set, const char *name);

/* Names in strcmp order (built-ins included), for `policy list`: index
 * 0 .. mf_policy_set_count()-1. Borrowed like mf_policy_set_find. */
size_t mf_policy_set_count(const struct mf_policy_set *set);
const char *mf_policy_set_name_at(const struct mf_policy_set *set, size_t i);

/* --- decisions --- */

enum mf_authz_addr_family {
    MF_AUTHZ_ADDR_NONE = 0, /* unknown: every cidrs condition fails */
    MF_AUTHZ_ADDR_V4 = 4,
    MF_AUTHZ_ADDR_V6 = 6,
};

/* A client address in network byte order (v4 uses bytes[0..3]). */
struct mf_authz_addr {
    uint8_t family; /* enum mf_authz_addr_family */
    uint8_t bytes[16];
};

/* From text ("10.1.2.3", "fd00::1"; for `policy check -remote-addr`) or from
 * a socket address (AF_INET / AF_INET6). IPv4-mapped IPv6 becomes IPv4.
 * Errors: MF_EINVAL. */
int mf_authz_addr_parse(const char *text, struct mf_authz_addr *out);
int mf_authz_addr_from_sockaddr(const struct sockaddr *sa, struct mf_authz_addr *out);

/* One item of the caller's identity metadata. Keys are expected unique; with
 * duplicates the first one counts. */
struct mf_authz_claim {
    const char *key;
    const char *value;
};

struct mf_authz_request {
    unsigned cap;     /* exactly one of MF_CAP_CREATE .. MF_CAP_SUDO; for kv put
                         the caller knows whether the path exists */
    const char *path; /* "kv/data/app/web/config", NUL-terminated */
};

struct mf_authz_ctx {
    struct mf_authz_addr client; /* as seen by the node the client reached */
    uint64_t now_ms;             /* wall clock, ms since the Unix epoch, UTC */
    const struct mf_authz_claim *claims;
    size_t claims_n;
};

enum mf_authz_reason {
    MF_AUTHZ_ALLOWED = 0,
    MF_AUTHZ_ROOT,           /* allowed: the token holds `root` */
    MF_AUTHZ_NO_RULE,        /* denied: no pattern of the token's policies matches */
    MF_AUTHZ_DENY_RULE,      /* denied: the deciding pattern holds `deny` */
    MF_AUTHZ_NO_CAPABILITY,  /* denied: the deciding pattern lacks the capability */
    MF_AUTHZ_CIDR,           /* denied: a cidrs condition failed */
    MF_AUTHZ_TIME,           /* denied: a time condition failed */
    MF_AUTHZ_CLAIMS,         /* denied: a claims condition failed */
};

/* "allowed", "no matching rule", ... Static. */
const char *mf_authz_reason_text(enum mf_authz_reason r);

struct mf_authz_decision {
    bool allowed;
    enum mf_authz_reason reason;
    /* The policy and pattern that decided (for a condition failure: the first
     * rule holding the capability, in token order, whose condition failed).
     * NULL when no rule matched. Borrowed: valid while the set is referenced. */
    const char *policy;
    const char *pattern;
    unsigned caps;       /* capabilities of the deciding pattern, merged */
    uint64_t max_ttl_ms; /* cap of the allowing rule; 0 = none */
};

/* Decide `req` for a token holding policies token_policies[0..n-1] (as stored
 * on the token: `default` is included by the caller when the token has it;
 * names absent from the set are ignored, as when a policy was deleted).
 * Fills *out in every case. Returns 0 if allowed, MF_EPERM if denied.
 * A request with not exactly one capability bit, or a NULL path, is a
 * programmer error (assertion). */
int mf_policy_decide(const struct mf_policy_set *set, const char *const *token_policies,
                     size_t n, const struct mf_authz_request *req,
                     const struct mf_authz_ctx *ctx, struct mf_authz_decision *out);

#endif
