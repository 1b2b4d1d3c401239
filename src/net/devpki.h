/* A tiny certificate authority for development and tests.
 *
 * `mayflyd --dev` and the integration tests need a CA and certificates without
 * an operator; this module makes them with OpenSSL alone (no openssl CLI):
 * ECDSA P-256 keys, SHA-256 signatures, X.509 v3 with the extensions a verifier
 * expects (basicConstraints, keyUsage, extendedKeyUsage, SANs, key ids).
 * Private keys are written with mode 0600 (an existing file is truncated and
 * its mode forced to 0600 before the key is written).
 *
 * Not for production: the CA key lives in a plain PEM file.
 */
#ifndef MF_NET_DEVPKI_H
#define MF_NET_DEVPKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define MF_DEVPKI_SANS_MAX 8

/* A CA in memory. _init (create or load) fills it, _close frees it. */
struct mf_devpki_ca {
    EVP_PKEY *key;
    X509 *cert;
};

/* What a leaf certificate says about its holder. Unused entries are NULL. */
struct mf_devpki_req {
    const char *common_name;                 /* required */
    uint64_t node_id;                        /* 0: no mayfly://node/<id> SAN */
    const char *dns[MF_DEVPKI_SANS_MAX];     /* DNS SANs */
    const char *ips[MF_DEVPKI_SANS_MAX];     /* IP SANs, v4 or v6 literals */
    int server;                              /* extendedKeyUsage serverAuth */
    int client;                              /* extendedKeyUsage clientAuth */
    int days;                                /* validity; 0 means 365 */
};

/* Creates a new self-signed CA (10 years) in memory.
 * @return 0; MF_ECRYPTO (OpenSSL failed; the reason is logged). */
int mf_devpki_ca_create(struct mf_devpki_ca *ca, const char *common_name);

/* Loads a CA written by mf_devpki_ca_write. @return 0; MF_ECONFIG. */
int mf_devpki_ca_load(struct mf_devpki_ca *ca, const char *cert_path, const char *key_path);

/* Writes the CA certificate (0644) and key (0600) as PEM.
 * @return 0; -errno from open/write; MF_ECRYPTO. */
int mf_devpki_ca_write(const struct mf_devpki_ca *ca, const char *cert_path,
                       const char *key_path);

void mf_devpki_ca_close(struct mf_devpki_ca *ca);

/* Makes a new key and a certificate for `req` signed by `ca`, and writes them.
 * @return 0; MF_EINVAL (bad IP literal, no common name); -errno; MF_ECRYPTO. */
int mf_devpki_issue(const struct mf_devpki_ca *ca, const struct mf_devpki_req *req,
                    const char *cert_path, const char *key_path);

/* A node certificate: SANs IP 127.0.0.1, DNS localhost and mayfly://node/<id>;
 * usable as server (peer listener, client listener) and as client (dialing
 * peers). */
int mf_devpki_issue_node(const struct mf_devpki_ca *ca, uint64_t node_id,
                         const char *cert_path, const char *key_path);

/* A client certificate (clientAuth only, no node id). */
int mf_devpki_issue_client(const struct mf_devpki_ca *ca, const char *common_name,
                           const char *cert_path, const char *key_path);

/* Everything a dev cluster of `nodes` nodes needs, in directory `dir` (which
 * must exist): ca.pem, ca-key.pem, node-<i>.pem and node-<i>-key.pem for
 * i = 1..nodes, client.pem and client-key.pem.
 * @return 0 or the first error. */
int mf_devpki_make_dir(const char *dir, int nodes);

#endif
