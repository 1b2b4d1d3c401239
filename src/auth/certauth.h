/* The cert auth method's pure core: a mount's CAs and CRLs compiled into an
 * X509_STORE, a client certificate verified against it at a given time, and
 * the certificate's URI SANs (SPIFFE IDs) or common name matched against a
 * role (issue 11, must-have 6; CLI.md "Authorization" has the JSON shapes).
 *
 * Use:
 *     mf_certauth_mount_parse(config, peer_ca_pem, &m)   at `auth enable` / apply
 *     mf_certauth_role_parse(role_json, &r)              at `auth role put`
 *     mf_certauth_verify(m, leaf, chain, now_ms, &c)     at login, with the
 *                                                        certificate the TLS layer accepted
 *     mf_certauth_role_match(r, &c, &id)                 then: which identity
 *     mf_certauth_cert_clear(&c); mf_ident_clear(&id)
 * No clock (now_ms comes in and is given to OpenSSL with
 * X509_VERIFY_PARAM_set_time), no network, no files. OpenSSL verifies.
 *
 * Mount config (unknown fields refused):
 *   {"ca_pem": "-----BEGIN CERTIFICATE-----...", "crl_pem": "-----BEGIN X509 CRL-----..."}
 * ca_pem holds 1..MF_CERTAUTH_CAS_MAX certificates, each with
 * basicConstraints CA:TRUE; each is a trust anchor on its own (an operator may
 * give an intermediate, e.g. a SPIRE server's, without its root). crl_pem,
 * optional, holds CRLs each signed by one of those CAs. The peer CA
 * (peer_ca_pem: the cluster's node CA, one or more certificates) must never
 * vouch for a client: the config is refused when a mount CA is a peer CA
 * (same public key), is issued by one (directly or through other given
 * certificates), or issued one. "Issued" is proven by the signature, not by
 * names, and only as far as the certificates given show: a chain through an
 * intermediate that neither PEM contains is not seen here (the server still
 * refuses every leaf with a node SAN, below).
 *
 * Verification (mf_certauth_verify), in this order:
 *   - the leaf must not carry a URI SAN starting "mayfly://node/" (compared
 *     case-insensitively): that is a node's identity, never a client's;
 *   - when the mount has CRLs, every one must be current at now_ms (thisUpdate
 *     <= now < nextUpdate): a stale CRL refuses every login of the mount
 *     until a new one is configured, rather than letting revoked certificates
 *     back in;
 *   - X509_verify_cert at now_ms with the mount's CAs as the only trust
 *     anchors (X509_V_FLAG_PARTIAL_CHAIN), the client's intermediates as
 *     untrusted (at most MF_CERTAUTH_CHAIN_MAX), purpose sslclient (an
 *     extendedKeyUsage, if present, must allow clientAuth),
 *     X509_V_FLAG_X509_STRICT, and with CRLs X509_V_FLAG_CRL_CHECK: the leaf
 *     is checked against its issuer's CRL, and a leaf whose issuer has no CRL
 *     in a mount that has CRLs is refused (no CRL);
 *   - the leaf's URI SANs (at most MF_CERTAUTH_SANS_MAX) and common name (at
 *     most one) are read out; a SAN or CN holding a NUL byte, or a duplicated
 *     SAN extension, is malformed.
 *
 * Role JSON (unknown fields refused):
 *   {"allowed_uri_sans": ["spiffe://prod/ns/payments/{*}"], "allowed_common_names": [],
 *    "token_policies": [...], "token_ttl_ms": N, "token_max_ttl_ms": N}
 * ({*} stands for a star, as in ident.h.)
 * At least one list must be non-empty. A certificate matches when one of its
 * URI SANs (in certificate order) matches one of allowed_uri_sans (globs of
 * ident.h with separators "/" and ":"); only if none does, and only when the
 * role lists allowed_common_names, its CN is tried against them (separators
 * "/", ":" and ".": a star covers one DNS label). The identity's name is the
 * matched SAN or CN; its metadata holds "uri_san" or "common_name" (the
 * matched value) and "serial" (the leaf's serial, lowercase hex).
 *
 * Refusals: every failing call sets *reason (MF_CERTAUTH_R_*) and writes err
 * as "<reason name>: <detail>"; details name what failed, never certificate
 * contents. Error codes: MF_EINVAL (a certificate that does not parse, bad
 * config or role), MF_EPERM (every other refusal), -ENOMEM, MF_ECRYPTO.
 *
 * Threads: a parsed mount or role is immutable; any number of threads may
 * verify and match against it at once (each verification has its own
 * X509_STORE_CTX).
 */
#ifndef MF_AUTH_CERTAUTH_H
#define MF_AUTH_CERTAUTH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "auth/ident.h"

#define MF_CERTAUTH_CAS_MAX 16
#define MF_CERTAUTH_CRLS_MAX 16
#define MF_CERTAUTH_PEERS_MAX 16           /* certificates in peer_ca_pem */
#define MF_CERTAUTH_CHAIN_MAX 8            /* intermediates a client may present */
#define MF_CERTAUTH_SANS_MAX 16            /* URI SANs read from one leaf */
#define MF_CERTAUTH_PEM_BYTES_MAX 262144   /* ca_pem, crl_pem, a leaf or chain PEM */
#define MF_CERTAUTH_NODE_SAN_PREFIX "mayfly://node/"

enum mf_certauth_reason {
    MF_CERTAUTH_R_OK = 0,
    MF_CERTAUTH_R_MALFORMED,     /* "malformed" */
    MF_CERTAUTH_R_NODE_CERT,     /* "node certificate": a mayfly://node/ SAN */
    MF_CERTAUTH_R_UNTRUSTED,     /* "untrusted": does not chain to a mount CA */
    MF_CERTAUTH_R_EXPIRED,       /* "expired" (the leaf or a certificate of its chain) */
    MF_CERTAUTH_R_NOT_YET_VALID, /* "not yet valid" */
    MF_CERTAUTH_R_REVOKED,       /* "revoked" */
    MF_CERTAUTH_R_CRL_STALE,     /* "stale crl": a mount CRL past nextUpdate (or before thisUpdate) */
    MF_CERTAUTH_R_CRL_MISSING,   /* "no crl": the mount has CRLs but none from the leaf's issuer */
    MF_CERTAUTH_R_NO_MATCH,      /* "no match": no SAN or CN allowed by the role */
};

const char *mf_certauth_reason_name(enum mf_certauth_reason r);

struct mf_certauth_mount; /* opaque, immutable once parsed */
struct mf_certauth_role;  /* opaque, immutable once parsed */

/* What a verified client certificate says. Zero it before use;
 * mf_certauth_cert_clear frees it. */
struct mf_certauth_cert {
    char *uri_sans[MF_CERTAUTH_SANS_MAX];
    size_t uri_sans_len;
    char *common_name;          /* NULL: the subject has none */
    char serial_hex[80];        /* lowercase hex, no leading zeros */
    int64_t not_after_ms;       /* the leaf's notAfter: a token should not outlive it */
};

/* Compiles a mount config (JSON text, len bytes). peer_ca_pem: the cluster's
 * peer CA certificate(s), or NULL when the cluster has none (no TLS).
 * @param[out] out  a new mount on success, freed with mf_certauth_mount_free.
 * @return 0; MF_EINVAL (err says which: not JSON, unknown field, a
 * certificate that is not a CA, a CRL no mount CA signed, a CA that is or is
 * related to the peer CA, a bad peer_ca_pem); -ENOMEM; MF_ECRYPTO. */
int mf_certauth_mount_parse(const char *config, size_t len, const char *peer_ca_pem,
                            struct mf_certauth_mount **out, char *err, size_t err_len);

void mf_certauth_mount_free(struct mf_certauth_mount *m);

/* Verifies a client leaf (and optional intermediates, borrowed; may be
 * NULL) at now_ms (see the top of this file).
 * @param[out] out     filled on success (the caller clears it).
 * @param[out] reason  MF_CERTAUTH_R_OK or the refusal's reason.
 * @return 0; MF_EINVAL (malformed); MF_EPERM (every other refusal); -ENOMEM;
 * MF_ECRYPTO. */
int mf_certauth_verify(const struct mf_certauth_mount *m, X509 *leaf, STACK_OF(X509) *chain,
                       int64_t now_ms, struct mf_certauth_cert *out,
                       enum mf_certauth_reason *reason, char *err, size_t err_len);

/* The same from PEM text: leaf_pem holds the leaf (first certificate),
 * chain_pem (may be NULL) the intermediates. A PEM that does not parse is
 * malformed (MF_EINVAL). */
int mf_certauth_verify_pem(const struct mf_certauth_mount *m, const char *leaf_pem,
                           const char *chain_pem, int64_t now_ms, struct mf_certauth_cert *out,
                           enum mf_certauth_reason *reason, char *err, size_t err_len);

void mf_certauth_cert_clear(struct mf_certauth_cert *c);

/* Compiles a role. @return 0; MF_EINVAL (err names the field); -ENOMEM. */
int mf_certauth_role_parse(const char *json, size_t len, struct mf_certauth_role **out,
                           char *err, size_t err_len);

void mf_certauth_role_free(struct mf_certauth_role *r);

/* The token settings the role issues with (borrowed from r). */
const struct mf_ident_token *mf_certauth_role_token(const struct mf_certauth_role *r);

/* Matches a verified certificate against the role.
 * @param[out] id  zeroed on entry; on success name and metadata as above;
 *                 left zeroed on failure.
 * @return 0; MF_EPERM (reason NO_MATCH); -ENOMEM. */
int mf_certauth_role_match(const struct mf_certauth_role *r, const struct mf_certauth_cert *c,
                           struct mf_ident *id, enum mf_certauth_reason *reason, char *err,
                           size_t err_len);

#endif
