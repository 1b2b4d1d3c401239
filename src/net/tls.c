/* TLS 1.3 contexts from PEM files, expected-name checks, and the node id a
 * peer certificate carries (see tls.h for the SAN convention). */
#include "net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/assert.h"
#include "common/err.h"

const char *mf_tls_errors(char *buf, size_t len)
{
    size_t used = 0;
    unsigned long e;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        int n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", one);
        if (n < 0 || (size_t)n >= len - used) {
            used = len - 1;
            continue; /* keep draining the queue */
        }
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(buf, len, "no OpenSSL error recorded");
    return buf;
}

static int fail(char *err, size_t err_len, int code, const char *what, const char *path)
{
    char ossl[512];
    mf_tls_errors(ossl, sizeof(ossl));
    if (err && err_len)
        snprintf(err, err_len, "%s %s: %s", what, path ? path : "", ossl);
    return code;
}

/* Settings shared by both sides: TLS 1.3 only, no compression, no
 * renegotiation (TLS 1.3 has none), memory released on idle connections. */
static SSL_CTX *ctx_new(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* CLEANSE_PLAINTEXT: records hold tokens and values once decrypted in
     * place; wipe them after reading and before a buffer is released. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static int load_identity(SSL_CTX *ctx, const char *cert_path, const char *key_path, char *err,
                         size_t err_len)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
        return fail(err, err_len, MF_ECONFIG, "cannot load certificate", cert_path);
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1)
        return fail(err, err_len, MF_ECONFIG, "cannot load private key", key_path);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(err, err_len, MF_ECONFIG, "private key does not match certificate",
                    key_path);
    return 0;
}

static int load_ca(SSL_CTX *ctx, const char *ca_path, char *err, size_t err_len)
{
    if (SSL_CTX_load_verify_locations(ctx, ca_path, NULL) != 1)
        return fail(err, err_len, MF_ECONFIG, "cannot load CA", ca_path);
    return 0;
}

/* MF_TLS_CLIENT_AUTH_ANY: the handshake never fails on the client's
 * certificate; the auth method that uses it verifies it. */
static int accept_any(int preverify_ok, X509_STORE_CTX *x)
{
    (void)preverify_ok, (void)x;
    return 1;
}

int mf_tls_server_ctx_new(const char *ca_path, const char *cert_path, const char *key_path,
                          enum mf_tls_client_auth auth, SSL_CTX **out, char *err,
                          size_t err_len)
{
    int rc;
    MF_ASSERT(cert_path && key_path && out);
    MF_ASSERT(auth == MF_TLS_CLIENT_AUTH_NONE || ca_path);
    ERR_clear_error();
    SSL_CTX *ctx = ctx_new(TLS_server_method());
    if (!ctx)
        return fail(err, err_len, -ENOMEM, "cannot create server context", NULL);
    if ((rc = load_identity(ctx, cert_path, key_path, err, err_len)) < 0)
        goto fail_ctx;
    if (auth != MF_TLS_CLIENT_AUTH_NONE) {
        if ((rc = load_ca(ctx, ca_path, err, err_len)) < 0)
            goto fail_ctx;
        /* Tell clients which CA we accept, so a client with several
         * identities can choose. */
        STACK_OF(X509_NAME) *names =
            auth == MF_TLS_CLIENT_AUTH_ANY ? NULL : SSL_load_client_CA_file(ca_path);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (auth == MF_TLS_CLIENT_AUTH_REQUIRE)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, auth == MF_TLS_CLIENT_AUTH_ANY ? accept_any : NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    /* Session resumption buys little for long-lived links and complicates the
     * identity story (a resumed session has no fresh certificate check). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    *out = ctx;
    return 0;

fail_ctx:
    SSL_CTX_free(ctx);
    return rc;
}

int mf_tls_client_ctx_new(const char *ca_path, const char *cert_path, const char *key_path,
                          SSL_CTX **out, char *err, size_t err_len)
{
    int rc;
    MF_ASSERT(ca_path && out);
    ERR_clear_error();
    SSL_CTX *ctx = ctx_new(TLS_client_method());
    if (!ctx)
        return fail(err, err_len, -ENOMEM, "cannot create client context", NULL);
    if ((rc = load_ca(ctx, ca_path, err, err_len)) < 0)
        goto fail_ctx;
    if (cert_path && key_path) {
        if ((rc = load_identity(ctx, cert_path, key_path, err, err_len)) < 0)
            goto fail_ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    *out = ctx;
    return 0;

fail_ctx:
    SSL_CTX_free(ctx);
    return rc;
}

void mf_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

static int is_ip_literal(const char *name)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    if (!ip) {
        ERR_clear_error();
        return 0;
    }
    ASN1_OCTET_STRING_free(ip);
    return 1;
}

int mf_tls_set_expected_name(SSL *ssl, const char *name)
{
    MF_ASSERT(ssl);
    if (!name || !*name)
        return MF_EINVAL;
    if (is_ip_literal(name)) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1)
            return MF_EINVAL;
        return 0;
    }
    if (SSL_set1_host(ssl, name) != 1)
        return -ENOMEM;
    SSL_set_tlsext_host_name(ssl, name);
    return 0;
}

/* Parses the decimal id after the URI prefix: digits only, no sign, no
 * leading zero, no overflow, not 0. */
static int parse_node_id(const unsigned char *s, int len, uint64_t *out)
{
    if (len <= 0 || len > 20 || (s[0] == '0'))
        return MF_EINVAL;
    uint64_t v = 0;
    for (int i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return MF_EINVAL;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return MF_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int mf_tls_cert_node_id(X509 *cert, uint64_t *out)
{
    MF_ASSERT(cert && out);
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!sans)
        return MF_ENOTFOUND;
    int rc = MF_ENOTFOUND;
    uint64_t found = 0;
    const size_t plen = strlen(MF_TLS_NODE_URI_PREFIX);
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_URI)
            continue;
        const unsigned char *s = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
        if (len < (int)plen || memcmp(s, MF_TLS_NODE_URI_PREFIX, plen) != 0)
            continue;
        uint64_t id;
        if (parse_node_id(s + plen, len - (int)plen, &id) < 0) {
            rc = MF_EINVAL;
            break;
        }
        if (rc == 0 && id != found) {
            rc = MF_EINVAL; /* two identities in one certificate: refuse both */
            break;
        }
        found = id;
        rc = 0;
    }
    GENERAL_NAMES_free(sans);
    if (rc == 0)
        *out = found;
    return rc;
}

int mf_tls_peer_node_id(SSL *ssl, uint64_t *out)
{
    MF_ASSERT(ssl && out);
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
        return MF_EUNAUTH;
    return mf_tls_cert_node_id(cert, out);
}
