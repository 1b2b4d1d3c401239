/* TLS contexts and peer identity for every mayfly link.
 *
 * Both sides of every link speak TLS 1.3 only. A server context presents the
 * node's certificate and, for peer links, requires a client certificate signed
 * by the cluster CA (mutual TLS). A client context verifies the server against
 * the CA; the caller names the expected host or IP per connection with
 * mf_tls_set_expected_name.
 *
 * Node identity: a node certificate carries its node id in a URI subject
 * alternative name `mayfly://node/<id>` (decimal, 1..2^64-1). mf_tls_peer_node_id
 * reads it from the peer's *verified* certificate, so the transport can check that
 * a message's `from` is the node the certificate says it is. A certificate with
 * no such SAN (a client certificate, a pki engine certificate) has no node id.
 *
 * Contexts are reference-counted by OpenSSL: each SSL made from one holds a
 * reference, so mf_tls_ctx_free may be called while connections are still open.
 */
#ifndef MF_NET_TLS_H
#define MF_NET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define MF_TLS_NODE_URI_PREFIX "mayfly://node/"

enum mf_tls_client_auth {
    MF_TLS_CLIENT_AUTH_NONE = 0,     /* do not ask for a client certificate */
    MF_TLS_CLIENT_AUTH_OPTIONAL = 1, /* ask; verify it if one is sent */
    MF_TLS_CLIENT_AUTH_REQUIRE = 2,  /* mutual TLS: no certificate, no handshake */
    /* Ask for a certificate and accept any (or none) at the TLS layer: the
     * client listener, whose certificates an auth method verifies against its
     * own CA (src/auth/certauth.h). SSL_get_verify_result still reports the
     * chain's check against ca_path, so mf_tls_peer_node_id never accepts
     * an unverified certificate. */
    MF_TLS_CLIENT_AUTH_ANY = 3,
};

/* Creates a server context from PEM files: `cert_path` (leaf, optionally
 * followed by intermediates) and `key_path`; `ca_path` verifies client
 * certificates (may be NULL only with MF_TLS_CLIENT_AUTH_NONE).
 * @param[out] out  a new SSL_CTX; the caller frees it with mf_tls_ctx_free.
 * @param err       a message naming the file and OpenSSL's reason (may be NULL).
 * @return 0; MF_ECONFIG if a file cannot be read or the key does not match the
 *         certificate; -ENOMEM. */
int mf_tls_server_ctx_new(const char *ca_path, const char *cert_path, const char *key_path,
                          enum mf_tls_client_auth auth, SSL_CTX **out, char *err,
                          size_t err_len);

/* Creates a client context that verifies servers against `ca_path` and, when
 * `cert_path` and `key_path` are both non-NULL, presents that certificate
 * (peers always do; CLI clients only for mTLS).
 * @return 0; MF_ECONFIG; -ENOMEM. */
int mf_tls_client_ctx_new(const char *ca_path, const char *cert_path, const char *key_path,
                          SSL_CTX **out, char *err, size_t err_len);

/* Drops the caller's reference. NULL is allowed. */
void mf_tls_ctx_free(SSL_CTX *ctx);

/* On a client SSL before the handshake: the server certificate must match
 * `name`, an IPv4/IPv6 literal (checked against IP SANs) or a DNS name (checked
 * against DNS SANs). Also sets SNI for DNS names.
 * @return 0; MF_EINVAL for an empty name; -ENOMEM. */
int mf_tls_set_expected_name(SSL *ssl, const char *name);

/* The node id in a certificate's `mayfly://node/<id>` URI SAN.
 * @return 0 and *out; MF_ENOTFOUND if the certificate has none; MF_EINVAL if
 *         it has a malformed one or two different ones. */
int mf_tls_cert_node_id(X509 *cert, uint64_t *out);

/* The node id of the peer of a completed handshake. Only a certificate that
 * verified (SSL_get_verify_result == X509_V_OK) counts.
 * @return 0; MF_EUNAUTH if the peer sent no certificate or it did not verify;
 *         MF_ENOTFOUND / MF_EINVAL as mf_tls_cert_node_id. */
int mf_tls_peer_node_id(SSL *ssl, uint64_t *out);

/* OpenSSL's error queue as one line ("reason; reason"), emptied. `buf` is
 * always NUL-terminated. Returns buf. */
const char *mf_tls_errors(char *buf, size_t len);

#endif
