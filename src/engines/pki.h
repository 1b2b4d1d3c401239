/* The pki secrets engine: short-lived X.509 certificates signed by the
 * engine's own CA (issue 6, DESIGN.md "Two certificate authorities").
 *
 * The engine is used through mf_engine_pki_ops (engine.h, type "pki"). This
 * header adds what the server needs beyond that contract: exporting the CA so
 * it can be stored encrypted in the barrier, building the signed CRL the
 * cluster serves, and restoring the revoked set on a new leader.
 *
 * Config JSON (open), exactly one of:
 *   {"generate": true, "common_name": "mayfly pki", "ttl_ms": 315360000000}
 *       creates an ECDSA P-256 CA (ttl_ms: CA validity, default 10 years);
 *   {"ca_cert_pem": "...", "ca_key_pem": "..."}
 *       loads one (EC or RSA key; the certificate must be a CA with
 *       keyCertSign, currently valid, and match the key);
 * plus, optionally, "max_ttl_ms" (engine-wide cap on a certificate's lifetime,
 * default 72 hours: short-lived certificates, and a bound on CRL retention;
 * see "CRL" below) and "crl_ttl_ms" (nextUpdate - thisUpdate
 * of built CRLs, default 1 hour). Unknown fields are refused. open() wipes the
 * parsed copy of ca_key_pem; config_json itself is the caller's to wipe (and
 * jansson's parser scratch buffer is freed unwiped: a known limit).
 *
 * This CA must never be the cluster's peer CA. Certificates it issues carry
 * only DNS and IP SANs taken from a role (never a URI SAN, so never the
 * `mayfly://node/<id>` SAN a peer certificate needs), and the server can check
 * with mf_pki_ca_same that an operator did not load the peer CA.
 *
 * Role JSON (role_put):
 *   {"allowed_domains": ["example.com"], "allow_subdomains": false,
 *    "common_name": "api.example.com", "alt_names": ["www.example.com"],
 *    "allow_ip_sans": false, "ip_sans": ["10.0.0.1"],
 *    "key_type": "ec" | "rsa", "key_bits": 256 | 384 | 521 (ec, default 256)
 *                                          2048 | 3072 | 4096 (rsa, default 2048),
 *    "default_ttl_ms": 0, "max_ttl_ms": 0, "server_flag": true, "client_flag": true}
 * A role is a fixed set of names (issue takes no name argument): the common
 * name and every alt name must be a DNS name equal to an allowed domain or,
 * with allow_subdomains, below one; IP SANs need allow_ip_sans. Wildcards and
 * unknown fields (e.g. "uri_sans") are refused. The common name is also put in
 * the SANs. The server stores the role JSON and replays role_put after open.
 *
 * Serial numbers: 17 bytes, 0x01 || SEQ (8 bytes, big-endian) || the first 8
 * bytes of HMAC-SHA256(K, "serial" || SEQ), where K is derived from the CA's
 * private key. Deterministic, so any node holding the CA can revoke lease SEQ
 * without knowing anything the issuing node remembered; unpredictable to
 * whoever lacks the CA key; positive; unique per SEQ. An issue retried for the
 * same SEQ gives a new certificate with the same serial, and revoking SEQ
 * revokes both, which is what a lease wants.
 *
 * Validity: notBefore = now - MF_PKI_BACKDATE_MS (clock skew between nodes and
 * clients), notAfter = expire_at_ms rounded down to the second, so a
 * certificate never outlives its lease. renew fails with MF_EINVAL: a signed
 * certificate cannot be extended; the client asks for a new one.
 *
 * CRL: revoke(seqs) adds each SEQ to an in-memory revoked set with the time of
 * revocation. An entry is kept until the certificate it names has expired,
 * then dropped from the set and the CRL. The expiry is known when this process
 * issued the certificate (it remembers each notAfter, bounded by
 * MF_PKI_ISSUED_MAX, for MF_PKI_ISSUED_GRACE_MS past it) or when the server
 * gives it (mf_pki_revoked_add with the lease's expire_at); otherwise the entry
 * stays until revoked_at + max_ttl_ms + MF_PKI_BACKDATE_MS, since no
 * certificate of this engine lives longer than max_ttl_ms. A revocation at or
 * after a known notAfter (the scheduler revoking at lease expiry) adds nothing:
 * the certificate is dead already. The set lives in one process: the server
 * replicates it (mf_pki_revoked_export/import, or mf_pki_revoked_add from its
 * lease store) so a new leader serves the same CRL.
 *
 * list() reports nothing: certificates are not objects in a target system.
 * One issued by a paused, deposed leader is never handed out and expires by
 * itself.
 *
 * Threads: every function here may be called from any thread, concurrently
 * with the engine's ops (one internal mutex; key generation runs outside it).
 *
 * Errors: MF_EINVAL (bad config, role or argument; err says which field),
 * MF_ENOTFOUND (unknown role), MF_EUNAVAIL (revoked set full, retry after
 * older entries expire), MF_ECRYPTO (OpenSSL failed), -ENOMEM. Error texts
 * never contain key material.
 */
#ifndef MF_ENGINES_PKI_H
#define MF_ENGINES_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "engines/engine.h"

#define MF_PKI_BACKDATE_MS 30000                 /* notBefore = now - 30 s */
#define MF_PKI_CA_TTL_MS_DEFAULT (UINT64_C(3650) * 86400000) /* generated CA: 10 years */
#define MF_PKI_MAX_TTL_MS_DEFAULT (UINT64_C(72) * 3600000)   /* certificate lifetime cap */
#define MF_PKI_CRL_TTL_MS_DEFAULT 3600000        /* CRL nextUpdate: 1 hour */
#define MF_PKI_ROLES_MAX 1024
#define MF_PKI_ROLE_NAME_MAX 128                 /* bytes with NUL */
#define MF_PKI_NAMES_MAX 32                      /* DNS names per role (CN + alt_names) */
#define MF_PKI_IPS_MAX 16                        /* IP SANs per role */
#define MF_PKI_DOMAINS_MAX 64                    /* allowed_domains per role */
#define MF_PKI_REVOKED_MAX 1000000               /* entries in the revoked set */
#define MF_PKI_ISSUED_MAX 1000000                /* notAfters remembered by this process */
#define MF_PKI_ISSUED_GRACE_MS 3600000           /* ... kept this long past notAfter */
#define MF_PKI_SERIAL_LEN 17                     /* bytes of a certificate serial */

extern const struct mf_engine_ops mf_engine_pki_ops;

/* The serial number of the certificate issued for lease `seq` (see above).
 * @param[out] serial MF_PKI_SERIAL_LEN bytes. */
void mf_pki_serial(struct mf_engine *e, uint64_t seq, unsigned char serial[MF_PKI_SERIAL_LEN]);

/* The CA state as a config JSON that open() accepts: ca_cert_pem, ca_key_pem
 * (the private key, in clear), max_ttl_ms, crl_ttl_ms. The server encrypts it
 * with the barrier before storing it anywhere.
 * @param[out] config_json malloc'd; free with mf_pki_secret_free (wipes).
 * @return 0; -ENOMEM. */
int mf_pki_export(struct mf_engine *e, char **config_json);

/* The CA certificate, PEM (public). @param[out] pem malloc'd, caller frees.
 * @return 0; -ENOMEM. */
int mf_pki_ca_pem(struct mf_engine *e, char **pem);

/* 1 if cert_pem is this engine's CA certificate or a certificate with the same
 * public key (so the server can refuse to load the peer CA here), 0 if not,
 * MF_EINVAL if cert_pem is not a PEM certificate. */
int mf_pki_ca_same(struct mf_engine *e, const char *cert_pem);

/* Builds and signs a CRL (v2, thisUpdate = now_ms, nextUpdate = now_ms +
 * crl_ttl_ms, CRL number, authority key id) holding every revoked serial whose
 * certificate may not have expired at now_ms; entries past that are dropped
 * from the set. crl_number 0 means now_ms, which increases with the builder's
 * clock; a server with a replicated counter passes it instead.
 * @param[out] pem malloc'd, caller frees.
 * @return 0; MF_ECRYPTO; -ENOMEM. */
int mf_pki_crl_pem(struct mf_engine *e, uint64_t now_ms, uint64_t crl_number, char **pem);

/* Adds lease `seq` to the revoked set (idempotent: a second add keeps the
 * earliest revoked_at and the latest expiry). not_after_ms: the certificate's
 * expiry if known (the lease's expire_at), 0 if not.
 * @return 0; MF_EUNAVAIL (set full); -ENOMEM. */
int mf_pki_revoked_add(struct mf_engine *e, uint64_t seq, uint64_t revoked_at_ms,
                       uint64_t not_after_ms);

/* The revoked set as JSON [{"seq":N,"revoked_at_ms":N,"keep_until_ms":N},...]
 * (no secret). @param[out] json malloc'd, caller frees. @return 0; -ENOMEM. */
int mf_pki_revoked_export(struct mf_engine *e, char **json);

/* Merges a JSON made by mf_pki_revoked_export into the revoked set.
 * @return 0; MF_EINVAL (malformed, err says why); MF_EUNAVAIL; -ENOMEM. */
int mf_pki_revoked_import(struct mf_engine *e, const char *json, char *err, size_t err_len);

/* Number of entries in the revoked set. */
size_t mf_pki_revoked_count(struct mf_engine *e);

/* Wipes and frees a string holding key material (mf_pki_export's). NULL ok. */
void mf_pki_secret_free(char *s);

#endif
