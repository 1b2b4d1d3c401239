/* What the auth methods (jwt.h, certauth.h) share: the identity a login
 * produces, the token settings every role carries, and the one glob rule both
 * use to match claims, URI SANs and common names.
 *
 * Everything here is pure (no clock, no I/O) and immutable once parsed, so a
 * compiled role may be read by many threads at once.
 *
 * Glob rule (PITFALLS.md "Bound claims not all checked": a glob never matches
 * across a tenant/account boundary you did not write into the glob):
 *   - `*` is the only special character; everything else matches itself,
 *     case-sensitively. There is no escape: a literal `*` in a value is matched
 *     by `*` like any other character.
 *   - A `*` matches any run of characters (the empty run included) that holds
 *     no separator. The separators are given by the caller: "/:" for claims and
 *     URI SANs (spiffe://TRUST/ns/NS/sa/SA, repo:ORG/REPO:ref:REF), "/:." for
 *     common names (DNS labels). So "spiffe://prod/ns/{*}/sa/api" (writing
 *     {*} for the star, since a slash and a star would end this comment)
 *     matches one namespace, never "spiffe://prod/ns/a/b/sa/api"; and
 *     "repo:acme/{*}:ref:x" never matches "repo:acme/a:b:ref:x".
 *   - One exception, so that "everything beneath this prefix" can be written:
 *     a `*` that ends the glob and either starts it or follows a separator
 *     matches the whole rest of the value, separators included. CLI.md's
 *     "spiffe://prod/ns/payments/{*}" matches "spiffe://prod/ns/payments/sa/api",
 *     and a lone `*` matches any value. The tenant boundary is then written out
 *     in full before the star. "spiffe://prod/ns/pay*" matches
 *     "spiffe://prod/ns/payments" but not "spiffe://prod/ns/payments/sa/api".
 *   - The separators in the glob must meet the same separators, in the same
 *     places, in the value.
 */
#ifndef MF_AUTH_IDENT_H
#define MF_AUTH_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MF_IDENT_META_MAX 32        /* metadata pairs one login may carry */
#define MF_IDENT_VALUE_BYTES_MAX 1024 /* one metadata value or name */
#define MF_IDENT_POLICIES_MAX 64    /* token_policies per role */
#define MF_IDENT_NAME_BYTES_MAX 128 /* a policy name, claim name or metadata key */
#define MF_IDENT_GLOBS_MAX 64       /* entries of one glob list in a role */
#define MF_IDENT_GLOB_BYTES_MAX 512 /* one glob */

/* Separator sets for mf_ident_glob_match. */
#define MF_IDENT_SEPS_URI "/:"
#define MF_IDENT_SEPS_DNS "/:."

/* One metadata pair; both strings owned by the identity. */
struct mf_ident_kv {
    char *key;
    char *value;
};

/* The identity a successful login produces. Zero it before first use; every
 * string is owned by it and freed by mf_ident_clear. */
struct mf_ident {
    char *name;                 /* jwt: the user_claim's value; cert: the matched SAN or CN */
    struct mf_ident_kv meta[MF_IDENT_META_MAX];
    size_t meta_len;
};

/* Frees what the identity owns and zeroes it. NULL-safe. */
void mf_ident_clear(struct mf_ident *id);

/* Adds a copy of key/value (a key already present is replaced).
 * @return 0; MF_ETOOLARGE (MF_IDENT_META_MAX pairs already, or a value over
 * MF_IDENT_VALUE_BYTES_MAX); -ENOMEM. */
int mf_ident_meta_add(struct mf_ident *id, const char *key, const char *value);

/* The value for key, or NULL. Borrowed from id. */
const char *mf_ident_meta_get(const struct mf_ident *id, const char *key);

/* The token a role issues. Owned by the role that holds it. */
struct mf_ident_token {
    char **policies;            /* token_policies, each a non-empty name */
    size_t policies_len;
    int64_t ttl_ms;             /* token_ttl_ms; 0: the server's default */
    int64_t max_ttl_ms;         /* token_max_ttl_ms; 0: the server's maximum */
};

/* Matches value against glob under the rule at the top of this file, with
 * `seps` the separator characters (MF_IDENT_SEPS_*). No allocation; time is
 * O(len(glob) * len(value)) at worst. */
bool mf_ident_glob_match(const char *glob, const char *value, const char *seps);

/* --- helpers for the role and config parsers of the auth methods ------------ */

/* Refuses any key of obj not in the NULL-terminated list `allowed` (reject
 * what we do not understand). @return 0; MF_EINVAL with err naming the key. */
int mf_ident_json_only(json_t *obj, const char *const *allowed, const char *what, char *err,
                       size_t err_len);

/* Parses an optional list of non-empty strings (at most `max`, each at most
 * `bytes_max` bytes, no control characters) at obj[field] into a NULL-free
 * array the caller frees with mf_ident_strv_free. Absent or null: *out NULL,
 * *len 0. @return 0; MF_EINVAL (err names the field); -ENOMEM. */
int mf_ident_json_strv(json_t *obj, const char *field, size_t max, size_t bytes_max, char ***out,
                       size_t *len, char *err, size_t err_len);

void mf_ident_strv_free(char **v, size_t len);

/* Parses token_policies, token_ttl_ms and token_max_ttl_ms from a role object
 * (ttl values: integers >= 0; max_ttl, when both are set, >= ttl).
 * @return 0; MF_EINVAL (err names the field); -ENOMEM. */
int mf_ident_token_parse(json_t *role, struct mf_ident_token *out, char *err, size_t err_len);

void mf_ident_token_clear(struct mf_ident_token *t);

/* Parses JSON text strictly (JSON_REJECT_DUPLICATES, one value, an object).
 * @return the object (caller decrefs), or NULL with err set (never echoing
 * the input). */
json_t *mf_ident_json_object(const char *text, size_t len, const char *what, char *err,
                             size_t err_len);

#endif
