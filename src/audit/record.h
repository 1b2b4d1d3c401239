/* Audit records: the typed record of one request and its canonical JSON bytes.
 *
 * Pure: no clock, no I/O, no randomness. The server fills a struct
 * mf_audit_record for every request and response (allowed or denied, logins
 * and failed logins included); src/audit/chain.h turns it into one chained
 * JSON line and src/audit/file.h appends the lines to a file.
 *
 * Keys. The cluster has one audit key (MF_AUDIT_KEY_BYTES random bytes kept in
 * the barrier; a sealed node has none and writes no record). Two subkeys are
 * derived from it with HMAC-SHA256(audit key, label):
 *     field key = HMAC(audit key, "mayfly/audit/v1/field")  HMACs secret fields
 *     chain key = HMAC(audit key, "mayfly/audit/v1/chain")  keys the chain
 * so the chain key can be handed to a verifier without letting it compute (and
 * so test guesses against) the HMAC of any secret. The key id names the audit
 * key in every record without revealing it: the first 8 hex digits of
 * SHA-256(HMAC(audit key, "mayfly/audit/v1/id")).
 *
 * Canonical bytes: one JSON object, jansson JSON_COMPACT | JSON_SORT_KEYS
 * (no white space, keys sorted by byte value, ASCII-only output with \uXXXX
 * escapes), so the same record always gives the same bytes. Absent (NULL)
 * optional strings are left out. The members (before src/audit/chain.h adds
 * "chain", which it puts first):
 *
 *     "client_addr"  client address (from the forwarding envelope when forwarded)
 *     "decision"     {"allowed": bool, "policy": name, "rule": path pattern}
 *     "file"         id of the audit file (32 hex digits, from the chain)
 *     "identity"     {"accessor", "auth_method", "cert_san",
 *                     "claims": {name: value, ...}, "role"}
 *     "key_id"       the audit key id (8 hex digits)
 *     "lease_id"     lease id
 *     "node"         node id
 *     "operation"    operation name ("kv.put", "auth.jwt.login", ...)
 *     "path"         policy path the decision was made on
 *     "record_id"    the server-assigned record id
 *     "request_id"   "hmac-sha256:KEYID:HEX" of the client's request id
 *     "result"       result code name ("OK", "PERMISSION_DENIED", ...)
 *     "secrets"      {field name: "hmac-sha256:KEYID:HEX" | "redacted"}
 *     "seq"          sequence number in the file (1 for the first line)
 *     "start"        only in the first line of a file (see chain.h)
 *     "time_ms"      Unix time in milliseconds
 *
 * Secrets. The request id and every secret field (tokens, secret values,
 * passwords, private keys, JWTs) appear only as HMAC-SHA256 under the field
 * key, "hmac-sha256:" KEYID ":" 64 lowercase hex digits; an operator who holds
 * a value can find its records with `mayfly audit hash VALUE`
 * (mf_audit_hash). Unseal, generate-root and rekey shares are written as
 * "redacted": never HMAC'd, so no record can be linked to a share. Strings that
 * are not valid UTF-8 (a client's path, say) are recorded as
 * "invalid-utf8-hex:" followed by their bytes in hex, so every record is valid
 * JSON and nothing a client sends can prevent its request from being audited.
 */
#ifndef MF_AUDIT_RECORD_H
#define MF_AUDIT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MF_AUDIT_KEY_BYTES 32u      /* the cluster's audit key and each subkey */
#define MF_AUDIT_MAC_BYTES 32u      /* HMAC-SHA256 output */
#define MF_AUDIT_KEY_ID_LEN 8u      /* hex digits of the key id */
/* "hmac-sha256:" + key id + ":" + 64 hex digits + NUL */
#define MF_AUDIT_HASH_STR_BYTES (12u + MF_AUDIT_KEY_ID_LEN + 1u + 2u * MF_AUDIT_MAC_BYTES + 1u)
#define MF_AUDIT_REDACTED "redacted"

/* Limits: a record over them is refused with MF_ETOOLARGE (the server bounds
 * claims and secrets when it parses a request, far below these). */
#define MF_AUDIT_LINE_MAX 65536u      /* bytes of one JSON line, newline excluded */
#define MF_AUDIT_CLAIMS_MAX 64u       /* claims in one identity */
#define MF_AUDIT_SECRETS_MAX 32u      /* secret fields in one record */
#define MF_AUDIT_NAME_MAX 128u        /* bytes of a claim or secret field name */

/* The audit key and what is derived from it. Owned by the caller (usually
 * inside the server's unsealed state); wipe with mf_audit_keys_wipe. */
struct mf_audit_keys {
    uint8_t field_key[MF_AUDIT_KEY_BYTES];
    uint8_t chain_key[MF_AUDIT_KEY_BYTES];
    char key_id[MF_AUDIT_KEY_ID_LEN + 1];
};

struct mf_audit_claim {
    const char *name;  /* non-empty, at most MF_AUDIT_NAME_MAX bytes, unique */
    const char *value;
};

struct mf_audit_identity {
    const char *auth_method;  /* "token", "cert", "jwt", ... or NULL */
    const char *role;
    const char *accessor;     /* the token's accessor (not the token) */
    const struct mf_audit_claim *claims;  /* the claims the role names */
    size_t claims_n;
    const char *cert_san;     /* the client certificate's URI SAN */
};

struct mf_audit_decision {
    bool allowed;
    const char *policy;  /* the policy that decided, NULL for none (default deny) */
    const char *rule;    /* the rule's path pattern within it */
};

enum mf_audit_secret_kind {
    MF_AUDIT_SECRET_HMAC = 0,    /* token, secret value, password, key, JWT */
    MF_AUDIT_SECRET_REDACT = 1,  /* unseal / generate-root / rekey share */
};

/* A field whose value must never appear in clear. `value` may hold any bytes
 * (it is ignored, and may be NULL, for MF_AUDIT_SECRET_REDACT). */
struct mf_audit_secret {
    const char *name;  /* non-empty, at most MF_AUDIT_NAME_MAX bytes, unique */
    const void *value;
    size_t len;
    enum mf_audit_secret_kind kind;
};

/* One request and its outcome. Every pointer is borrowed for the call only;
 * NULL strings are left out of the record. */
struct mf_audit_record {
    uint64_t time_ms;        /* Unix time, milliseconds (below 2^63) */
    const char *node_id;
    const char *record_id;   /* server-assigned; the entry node's id travels
                              * with a forwarded write so both records match */
    const char *request_id;  /* the client's request id: recorded as an HMAC */
    const char *client_addr;
    struct mf_audit_identity identity;
    const char *operation;
    const char *path;
    struct mf_audit_decision decision;
    const char *result;      /* mf_err_name() of the outcome */
    const char *lease_id;
    const struct mf_audit_secret *secrets;
    size_t secrets_n;
};

/* HMAC-SHA256 under a MF_AUDIT_KEY_BYTES key over the concatenation of up to
 * three parts (a part of length 0 is skipped; its pointer may be NULL). The
 * one HMAC of the module: the algorithm is fetched once per process (OpenSSL
 * 3's one-shot HMAC() fetches it on every call). Thread-safe. Errors:
 * MF_ECRYPTO. */
int mf_audit_mac(const uint8_t *key, const void *a, size_t a_len, const void *b, size_t b_len,
                 const void *c, size_t c_len, uint8_t out[MF_AUDIT_MAC_BYTES]);

/* Derive the subkeys and the key id from the cluster's audit key
 * (MF_AUDIT_KEY_BYTES). The caller wipes its own copy of audit_key.
 * Errors: MF_ECRYPTO if OpenSSL fails (out is wiped then). */
int mf_audit_keys_derive(const uint8_t *audit_key, struct mf_audit_keys *out);

/* Wipe the keys (OPENSSL_cleanse). */
void mf_audit_keys_wipe(struct mf_audit_keys *k);

/* "hmac-sha256:KEYID:HEX" of `len` bytes under the field key, NUL-terminated
 * into out (MF_AUDIT_HASH_STR_BYTES). What `mayfly audit hash` answers and
 * what records hold for secret fields and request ids. Errors: MF_ECRYPTO. */
int mf_audit_hash(const struct mf_audit_keys *k, const void *value, size_t len,
                  char out[MF_AUDIT_HASH_STR_BYTES]);

/* Serialise `r` as canonical JSON (the format above) with the members "file"
 * = file_id and "seq" = seq added (chain.h's job: most callers want
 * mf_audit_chain_format). Writes at most `cap` bytes into buf, no NUL, and
 * sets *len. Errors: MF_EINVAL (a duplicate, empty or over-long claim or
 * secret name, a NULL name, time_ms or seq at or above 2^63), MF_ETOOLARGE
 * (more than the limits above, or the JSON does not fit in cap),
 * MF_ECRYPTO, -ENOMEM. On error buf's content is undefined. */
int mf_audit_record_format(const struct mf_audit_keys *k, const struct mf_audit_record *r,
                           const char *file_id, uint64_t seq, char *buf, size_t cap,
                           size_t *len);

#endif
