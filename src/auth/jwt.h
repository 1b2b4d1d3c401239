/* The jwt auth method's pure core: compile a mount's keys, verify a compact
 * JWS, and match its claims against a role (issue 11, must-have 6; CLI.md
 * "Authorization" has the JSON shapes; PITFALLS.md "Algorithm confusion",
 * "Psychic signatures", "Bound claims not all checked").
 *
 * Use:
 *     mf_jwt_mount_parse(config, &m)        at `auth enable` / apply of a new config
 *     mf_jwt_role_parse(role_json, &r)      at `auth role put`
 *     mf_jwt_verify(m, token, now_ms, &t)   at login: signature and time claims
 *     mf_jwt_role_match(r, &t, &id)         then: audience, subject, bound claims
 *     mf_jwt_token_clear(&t); mf_ident_clear(&id)
 * No clock (now_ms comes in), no network (keys come from the replicated mount
 * config; jku, x5u, jwk and x5c headers are ignored), no files. OpenSSL
 * verifies, jansson parses (JSON_REJECT_DUPLICATES everywhere).
 *
 * Mount config (unknown fields refused):
 *   {"jwks": {"keys": [JWK, ...]}, "jwt_validation_pubkeys": [PEM, ...],
 *    "bound_issuer": "https://...", "jwt_supported_algs": ["RS256", "ES256", "EdDSA"],
 *    "leeway_ms": 60000}
 * At least one key from jwks and/or jwt_validation_pubkeys. A JWK is
 * {"kty": "RSA", "n", "e"} | {"kty": "EC", "crv": "P-256", "x", "y"} |
 * {"kty": "OKP", "crv": "Ed25519", "x"}, with optional "kid" (unique in the
 * set), "alg" (must be the key type's one algorithm), "use" (must be "sig"),
 * "key_ops"/"x5c"/"x5t"/"x5t#S256" (ignored). A JWK with private parameters
 * ("d", "p", ...) is refused: it is a secret pasted in the wrong place. RSA
 * keys under MF_JWT_RSA_BITS_MIN bits are refused, EC points must be on
 * P-256. Each key pins one algorithm: RSA -> RS256, EC P-256 -> ES256,
 * Ed25519 -> EdDSA; every key's algorithm must be in jwt_supported_algs
 * (default: all three). Rotation: parse the new config into a new mount and
 * swap it in; the old one verifies nothing after it is freed.
 *
 * Verification (mf_jwt_verify), in this order:
 *   - size: at most MF_JWT_TOKEN_BYTES_MAX bytes, three base64url (unpadded)
 *     parts;
 *   - header: a JSON object; "alg" must be a string naming an algorithm that
 *     is supported by the mount; "none" and HS* are refused by name (never an
 *     HMAC with a public key); "crit" present at all is refused (we implement
 *     no extension); "kid", if present, selects the key (unknown: refused), and
 *     that key's pinned algorithm must equal the header's; without a kid every
 *     key whose pinned algorithm equals the header's is tried (none: refused);
 *   - signature: RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (signature exactly
 *     the modulus length); ES256's raw r||s (64 bytes) is converted to a DER
 *     ECDSA-Sig-Value after refusing r or s equal to 0 or not below the P-256
 *     order; EdDSA is Ed25519 (64 bytes);
 *   - claims (only once the signature verified): a JSON object; "exp"
 *     required, a NumericDate (seconds, fractions allowed); expired when
 *     now_ms >= exp + leeway; "nbf" and "iat", when present, must not be later
 *     than now + leeway; "iss" must equal bound_issuer when one is set; "aud"
 *     (checked by the role), when present, must be a string or a list of
 *     strings; "sub", when present, a string.
 *
 * Role JSON (unknown fields refused):
 *   {"bound_audiences": ["mayfly"], "bound_subject": "...",
 *    "bound_claims": {"CLAIM": "value-or-glob" | ["v1", "glob*", ...]},
 *    "user_claim": "sub", "claim_mappings": {"CLAIM": "metadata_key"},
 *    "token_policies": [...], "token_ttl_ms": N, "token_max_ttl_ms": N}
 * bound_audiences is required and non-empty (Vault's rule for jwt roles: a
 * token minted by the same issuer for another service must not log in here);
 * the token's aud (string or list) must contain one of them, compared
 * exactly. bound_subject, when set, must equal "sub" exactly. Every entry of
 * bound_claims must match: a claim that is absent is a refusal; a string
 * claim matches when any listed value matches it as a glob (ident.h, with
 * separators "/" and ":"); an integer or boolean claim is compared by its JSON
 * text ("42", "true"); a list claim matches when any of its strings matches;
 * any other claim (object, real, null) never matches. A claim name starting
 * with "/" is a JSON pointer (RFC 6901, "~1" for "/", "~0" for "~") into
 * nested claims, e.g. "/kubernetes.io/namespace". user_claim (default "sub")
 * must be a string or integer claim and becomes the identity's name.
 * claim_mappings copies each named claim that is present (string, integer or
 * boolean; a list or object is a refusal) into metadata under its key.
 *
 * Refusals: every failing call sets *reason (MF_JWT_R_*) and writes err as
 * "<reason name>: <detail>". Neither ever contains the token, a signature or
 * a claim value from the token; claim *names* from the role may appear.
 * Error codes: MF_EINVAL for a token that does not parse (malformed, too
 * large), MF_EPERM for every other refusal, -ENOMEM, MF_ECRYPTO (OpenSSL
 * failed for a reason other than a bad signature).
 *
 * Threads: a parsed mount or role is immutable; any number of threads may
 * verify and match against it at once.
 */
#ifndef MF_AUTH_JWT_H
#define MF_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/ident.h"

#define MF_JWT_TOKEN_BYTES_MAX 16384      /* a compact JWS longer than this is refused */
#define MF_JWT_KEYS_MAX 64                /* keys in one mount (kid-less tokens try each) */
#define MF_JWT_KID_BYTES_MAX 256
#define MF_JWT_LEEWAY_MS_DEFAULT 60000    /* clock skew allowed on exp, nbf, iat */
#define MF_JWT_LEEWAY_MS_MAX 600000
#define MF_JWT_RSA_BITS_MIN 2048
#define MF_JWT_BOUND_CLAIMS_MAX 32
#define MF_JWT_CLAIM_MAPPINGS_MAX 32

enum mf_jwt_alg {
    MF_JWT_RS256 = 1,
    MF_JWT_ES256 = 2,
    MF_JWT_EDDSA = 4,
};

/* Why a token was refused. mf_jwt_reason_name gives the word used in
 * messages and audit records. */
enum mf_jwt_reason {
    MF_JWT_R_OK = 0,
    MF_JWT_R_MALFORMED,     /* "malformed": not a compact JWS, bad base64url or JSON, duplicate keys */
    MF_JWT_R_TOO_LARGE,     /* "too large" */
    MF_JWT_R_ALGORITHM,     /* "algorithm": none, HS*, unsupported, or not the key's */
    MF_JWT_R_CRIT,          /* "critical header" */
    MF_JWT_R_UNKNOWN_KEY,   /* "unknown key": kid not in the set */
    MF_JWT_R_SIGNATURE,     /* "signature" */
    MF_JWT_R_MISSING_EXP,   /* "missing exp" */
    MF_JWT_R_EXPIRED,       /* "expired" */
    MF_JWT_R_NOT_YET_VALID, /* "not yet valid": nbf or iat in the future */
    MF_JWT_R_ISSUER,        /* "issuer" */
    MF_JWT_R_AUDIENCE,      /* "audience" */
    MF_JWT_R_SUBJECT,       /* "subject" */
    MF_JWT_R_CLAIM,         /* "claim": a bound, user or mapped claim missing or unmatched */
};

const char *mf_jwt_reason_name(enum mf_jwt_reason r);

struct mf_jwt_mount; /* opaque, immutable once parsed */
struct mf_jwt_role;  /* opaque, immutable once parsed */

/* A verified token. Zero it before use; mf_jwt_token_clear frees it. */
struct mf_jwt_token {
    json_t *claims;        /* the payload object, owned */
    const char *iss;       /* borrowed from claims; NULL if absent */
    const char *sub;       /* borrowed from claims; NULL if absent */
    int64_t exp_ms;
    size_t key_index;      /* which key of the mount verified it */
    enum mf_jwt_alg alg;
};

/* Compiles a mount config (JSON text, len bytes).
 * @param[out] out  a new mount on success, freed with mf_jwt_mount_free.
 * @return 0; MF_EINVAL (err names the field or key: a weak RSA key, a JWK
 * with private parts, an unsupported algorithm, duplicate JSON keys, ...);
 * -ENOMEM; MF_ECRYPTO. */
int mf_jwt_mount_parse(const char *config, size_t len, struct mf_jwt_mount **out, char *err,
                       size_t err_len);

void mf_jwt_mount_free(struct mf_jwt_mount *m);

/* How many keys the mount holds (for `auth list` and tests). */
size_t mf_jwt_mount_keys(const struct mf_jwt_mount *m);

/* Verifies a compact JWS against the mount at now_ms (see the top of this
 * file). token need not be NUL-terminated.
 * @param[out] out     filled on success (the caller clears it); untouched
 *                     otherwise.
 * @param[out] reason  MF_JWT_R_OK on success, the refusal's reason otherwise.
 * @return 0; MF_EINVAL (malformed, too large); MF_EPERM (every other
 * refusal); -ENOMEM; MF_ECRYPTO. */
int mf_jwt_verify(const struct mf_jwt_mount *m, const char *token, size_t token_len,
                  int64_t now_ms, struct mf_jwt_token *out, enum mf_jwt_reason *reason,
                  char *err, size_t err_len);

void mf_jwt_token_clear(struct mf_jwt_token *t);

/* Compiles a role (JSON text). @return 0; MF_EINVAL (err names the field);
 * -ENOMEM. */
int mf_jwt_role_parse(const char *json, size_t len, struct mf_jwt_role **out, char *err,
                      size_t err_len);

void mf_jwt_role_free(struct mf_jwt_role *r);

/* The token settings the role issues with (borrowed from r). */
const struct mf_ident_token *mf_jwt_role_token(const struct mf_jwt_role *r);

/* Checks a verified token against the role (see the top of this file).
 * @param[out] id  on success: name = user_claim's value, meta = claim_mappings
 *                 (the caller clears it; it must be zeroed on entry). On
 *                 failure it is left zeroed.
 * @return 0; MF_EPERM (reason AUDIENCE, SUBJECT or CLAIM); MF_ETOOLARGE
 * (a mapped value over MF_IDENT_VALUE_BYTES_MAX, reason CLAIM); -ENOMEM. */
int mf_jwt_role_match(const struct mf_jwt_role *r, const struct mf_jwt_token *t,
                      struct mf_ident *id, enum mf_jwt_reason *reason, char *err,
                      size_t err_len);

#endif
