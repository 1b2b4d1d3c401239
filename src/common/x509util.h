/* X.509 building blocks shared by the two places that make certificates: the
 * development CA (net/devpki.c: node and client certificates for `mayflyd
 * --dev` and the tests) and the pki secrets engine (engines/pki.c: its own CA
 * and one short-lived certificate per lease). Each keeps its own policy (what
 * names, which extensions, which digest); this file holds the OpenSSL steps
 * they both take, written once.
 *
 * Errors: functions returning int give 0 or MF_ECRYPTO; functions returning a
 * pointer give NULL. Either way OpenSSL's error queue is left as it is, so the
 * caller can report the reason in its own words (and must clear the queue).
 * Times come in as wall-clock milliseconds since the epoch: nothing here reads
 * the clock. Randomness (serials) comes from mf_rand_bytes (common/env.h).
 *
 * Ownership: every X509, EVP_PKEY and string returned is the caller's (free
 * with X509_free, EVP_PKEY_free, mf_x509_pem_free). */
#ifndef MF_COMMON_X509UTIL_H
#define MF_COMMON_X509UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define MF_X509_RANDOM_SERIAL_LEN 16 /* bytes: a positive 127-bit serial */

/* Adds one v3 extension written in OpenSSL's config syntax (for example
 * "critical,CA:TRUE,pathlen:0", "keyid:always"); issuer is the certificate
 * the key identifiers are taken from (x itself when self-signed). */
int mf_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

/* A random positive serial number, as RFC 5280 recommends: 16 bytes from
 * mf_rand_bytes with the top bit cleared. */
int mf_x509_serial_random(unsigned char out[MF_X509_RANDOM_SERIAL_LEN]);

/* Sets dst to the unsigned big-endian integer raw[0..len). */
int mf_x509_serial_set(ASN1_INTEGER *dst, const unsigned char *raw, size_t len);

/* ASN1_TIME <-> ms (whole seconds: X.509 times carry no fraction).
 * mf_x509_time_ms returns 0 for a missing or unreadable time. */
int mf_x509_time_set_ms(ASN1_TIME *t, uint64_t ms);
uint64_t mf_x509_time_ms(const ASN1_TIME *t);

/* A certificate skeleton: X.509 v3, the serial, validity from not_before_ms
 * to not_after_ms, subject [O=org,] CN=cn (UTF-8; org may be NULL) and the
 * public key of key. Issuer, extensions and signature are the caller's.
 * @return a new certificate; NULL if OpenSSL failed. */
X509 *mf_x509_new(EVP_PKEY *key, const unsigned char *serial, size_t serial_len,
                  uint64_t not_before_ms, uint64_t not_after_ms, const char *org,
                  const char *cn);

/* A new self-signed CA: an ECDSA P-256 key, a random serial, subject
 * [O=org,] CN=cn as issuer too, basicConstraints critical CA:TRUE pathlen:0,
 * keyUsage critical keyCertSign and cRLSign, subject and authority key
 * identifiers, signed with SHA-256.
 * @param[out] cert, key set on success only. */
int mf_x509_ca_new(const char *org, const char *cn, uint64_t not_before_ms,
                   uint64_t not_after_ms, X509 **cert, EVP_PKEY **key);

/* The extensions every leaf gets from either CA: basicConstraints critical
 * CA:FALSE, keyUsage critical <key_usage> (for example "digitalSignature"),
 * extendedKeyUsage serverAuth and/or clientAuth (none if both are 0), and a
 * subject key identifier. SANs and the authority key identifier differ
 * between the two and stay with the caller. */
int mf_x509_leaf_exts(X509 *x, X509 *ca, const char *key_usage, int server, int client);

/* A malloc'd NUL-terminated copy of a memory BIO's contents (for example a
 * PEM written into it). */
char *mf_x509_bio_text(BIO *b);

/* PEM text of a certificate, malloc'd and NUL-terminated. */
char *mf_x509_cert_pem(X509 *x);

/* The private key as PKCS#8 PEM, encoded in OpenSSL's secure memory (wiped
 * there); the returned copy must be freed with mf_x509_pem_free. */
char *mf_x509_key_pem(EVP_PKEY *k);

/* Wipes and frees a string from mf_x509_key_pem (or any secret string).
 * NULL is a no-op. */
void mf_x509_pem_free(char *s);

/* Reads one PEM certificate or private key. Never prompts: an encrypted key
 * is refused (returns NULL) instead of asking on a terminal. */
X509 *mf_x509_cert_read(BIO *in);
EVP_PKEY *mf_x509_key_read(BIO *in);

/* The same from a NUL-terminated PEM string. */
X509 *mf_x509_cert_from_pem(const char *text);
EVP_PKEY *mf_x509_key_from_pem(const char *text);

#endif
