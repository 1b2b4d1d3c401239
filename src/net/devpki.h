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

/* Extra names for node certificates, from `mayflyd --gen-certs --hosts SPEC`:
 * SPEC is "ID=NAME[,NAME...][;ID=NAME...]", a NAME an IPv4/IPv6 literal (an
 * IP SAN) or a DNS name (a DNS SAN), for example
 * "1=db1.example.com,10.0.0.1;2=db2.example.com,10.0.0.2". Every node keeps
 * localhost and 127.0.0.1 too (the CLI and health checks on the host itself),
 * so at most MF_DEVPKI_SANS_MAX - 1 extra names of each kind per node. */
#define MF_DEVPKI_HOSTS_MAX 16   /* nodes named in one SPEC (mayflyd's --nodes bound) */
#define MF_DEVPKI_HOSTS_SPEC_MAX 4096

struct mf_devpki_node_names {
    uint64_t node_id;
    const char *dns[MF_DEVPKI_SANS_MAX - 1]; /* point into mf_devpki_hosts.buf */
    const char *ips[MF_DEVPKI_SANS_MAX - 1];
};

/* Caller memory; _parse fills it, _free releases buf. */
struct mf_devpki_hosts {
    size_t len;
    struct mf_devpki_node_names nodes[MF_DEVPKI_HOSTS_MAX];
    char *buf; /* a copy of SPEC, cut in place */
};

/* Parses SPEC (above). Node ids must be 1..max_node_id and appear once; a
 * name is an IP literal (a2i_IPADDRESS) or a DNS name (letters, digits, '-',
 * '.', '*' as a whole first label; 253 characters at most).
 * @param err  "why" for the user (may be NULL).
 * @return 0; MF_EINVAL with a message; -ENOMEM. On error *out needs no _free. */
int mf_devpki_hosts_parse(const char *spec, uint64_t max_node_id, struct mf_devpki_hosts *out,
                          char *err, size_t err_len);

void mf_devpki_hosts_free(struct mf_devpki_hosts *h);

/* The extra names for node_id in h, or NULL (h may be NULL). */
const struct mf_devpki_node_names *mf_devpki_hosts_find(const struct mf_devpki_hosts *h,
                                                        uint64_t node_id);

/* As mf_devpki_issue_node, plus the names in `extra` (may be NULL). */
int mf_devpki_issue_node_names(const struct mf_devpki_ca *ca, uint64_t node_id,
                               const struct mf_devpki_node_names *extra, const char *cert_path,
                               const char *key_path);

/* As mf_devpki_make_dir, each node certificate with its names in `hosts`
 * (may be NULL: then it is mf_devpki_make_dir). */
int mf_devpki_make_dir_hosts(const char *dir, int nodes, const struct mf_devpki_hosts *hosts);

#endif
