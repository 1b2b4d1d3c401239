/* Test helpers for the auth methods: keys, JWKs and signed JWTs, and a small
 * X.509 factory (CAs, leaves with URI SANs, CRLs), all made in memory with
 * OpenSSL. Nothing comes from the network or from files. Header-only: every
 * function is static inline so each test binary takes what it uses. The
 * helpers assert on OpenSSL failures (a broken fixture is not a test result). */
#ifndef MF_TESTS_AUTH_TESTKIT_H
#define MF_TESTS_AUTH_TESTKIT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TK_CHECK(x)                                                                   \
    do {                                                                              \
        if (!(x)) {                                                                   \
            fprintf(stderr, "%s:%d: testkit: %s failed\n", __FILE__, __LINE__, #x);   \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* 2026-01-01T00:00:00Z: the tests' "now". */
#define TK_NOW_S 1767225600LL
#define TK_NOW_MS (TK_NOW_S * 1000)

/* --- keys --------------------------------------------------------------------- */

static inline EVP_PKEY *tk_rsa(unsigned bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    TK_CHECK(k);
    return k;
}

static inline EVP_PKEY *tk_ec(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    TK_CHECK(k);
    return k;
}

static inline EVP_PKEY *tk_ed25519(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    TK_CHECK(k);
    return k;
}

/* --- base64url ---------------------------------------------------------------- */

/* Unpadded base64url of b (malloc'd). */
static inline char *tk_b64url(const unsigned char *b, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3);
    char *out = malloc(cap + 4); /* EVP_EncodeBlock adds a NUL */
    TK_CHECK(out);
    int len = EVP_EncodeBlock((unsigned char *)out, b, (int)n);
    TK_CHECK(len >= 0 && (size_t)len <= cap);
    size_t l = (size_t)len;
    while (l > 0 && out[l - 1] == '=')
        l--;
    out[l] = '\0';
    for (size_t i = 0; i < l; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static inline char *tk_b64url_str(const char *s)
{
    return tk_b64url((const unsigned char *)s, strlen(s));
}

static inline char *tk_bn_b64url(const BIGNUM *bn, int pad)
{
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char *b = malloc((size_t)n + 1);
    TK_CHECK(b && BN_bn2binpad(bn, b, n) == n);
    char *s = tk_b64url(b, (size_t)n);
    free(b);
    return s;
}

/* --- JWKs and PEM ------------------------------------------------------------ */

/* Sets j[key] to s and frees s. */
static inline void tk_set_free(json_t *j, const char *key, char *s)
{
    json_object_set_new(j, key, json_string(s));
    free(s);
}

/* The public JWK of k (kid may be NULL), as a new JSON object. */
static inline json_t *tk_jwk(EVP_PKEY *k, const char *kid)
{
    json_t *j = json_object();
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
        BIGNUM *n = NULL, *e = NULL;
        TK_CHECK(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) == 1);
        TK_CHECK(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) == 1);
        json_object_set_new(j, "kty", json_string("RSA"));
        tk_set_free(j, "n", tk_bn_b64url(n, 0));
        tk_set_free(j, "e", tk_bn_b64url(e, 0));
        BN_free(n);
        BN_free(e);
    } else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        BIGNUM *x = NULL, *y = NULL;
        TK_CHECK(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1);
        TK_CHECK(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1);
        json_object_set_new(j, "kty", json_string("EC"));
        json_object_set_new(j, "crv", json_string("P-256"));
        tk_set_free(j, "x", tk_bn_b64url(x, 32));
        tk_set_free(j, "y", tk_bn_b64url(y, 32));
        BN_free(x);
        BN_free(y);
    } else {
        unsigned char raw[32];
        size_t rl = sizeof(raw);
        TK_CHECK(EVP_PKEY_get_raw_public_key(k, raw, &rl) == 1);
        json_object_set_new(j, "kty", json_string("OKP"));
        json_object_set_new(j, "crv", json_string("Ed25519"));
        tk_set_free(j, "x", tk_b64url(raw, rl));
    }
    if (kid)
        json_object_set_new(j, "kid", json_string(kid));
    return j;
}

/* The SubjectPublicKeyInfo PEM of k (malloc'd). */
static inline char *tk_pubkey_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    TK_CHECK(b && PEM_write_bio_PUBKEY(b, k) == 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

/* --- JWS --------------------------------------------------------------------- */

/* Joins base64url(header) "." base64url(payload) "." base64url(sig). */
static inline char *tk_jws_join(const char *header, const char *payload, const unsigned char *sig,
                                size_t sig_len)
{
    char *h = tk_b64url_str(header), *p = tk_b64url_str(payload), *s = tk_b64url(sig, sig_len);
    size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
    char *t = malloc(n);
    TK_CHECK(t);
    snprintf(t, n, "%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return t;
}

/* Signs header.payload (JSON texts) with k under alg ("RS256", "ES256" with
 * raw r||s, "EdDSA"). Returns the compact JWS (malloc'd). */
static inline char *tk_sign(EVP_PKEY *k, const char *alg, const char *header, const char *payload)
{
    char *h = tk_b64url_str(header), *p = tk_b64url_str(payload);
    size_t in_len = strlen(h) + strlen(p) + 1;
    char *input = malloc(in_len + 1);
    TK_CHECK(input);
    snprintf(input, in_len + 1, "%s.%s", h, p);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256();
    TK_CHECK(EVP_DigestSignInit(ctx, NULL, md, NULL, k) == 1);
    size_t sl = 0;
    TK_CHECK(EVP_DigestSign(ctx, NULL, &sl, (unsigned char *)input, in_len) == 1);
    unsigned char *sig = malloc(sl);
    TK_CHECK(EVP_DigestSign(ctx, sig, &sl, (unsigned char *)input, in_len) == 1);
    EVP_MD_CTX_free(ctx);
    unsigned char raw[64];
    unsigned char *use = sig;
    if (strcmp(alg, "ES256") == 0) {
        const unsigned char *q = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sl);
        TK_CHECK(es);
        TK_CHECK(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) == 32);
        TK_CHECK(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) == 32);
        ECDSA_SIG_free(es);
        use = raw;
        sl = 64;
    }
    size_t n = in_len + 4 * ((sl + 2) / 3) + 2;
    char *t = malloc(n);
    char *s = tk_b64url(use, sl);
    snprintf(t, n, "%s.%s", input, s);
    free(s);
    free(sig);
    free(input);
    free(h);
    free(p);
    return t;
}

/* An HS256 token whose HMAC key is `key` (e.g. a public key's PEM bytes, as
 * an algorithm-confusion attacker would use). */
static inline char *tk_sign_hs256(const unsigned char *key, size_t key_len, const char *header,
                                  const char *payload)
{
    char *h = tk_b64url_str(header), *p = tk_b64url_str(payload);
    size_t in_len = strlen(h) + strlen(p) + 1;
    char *input = malloc(in_len + 1);
    snprintf(input, in_len + 1, "%s.%s", h, p);
    unsigned char mac[32];
    unsigned int ml = sizeof(mac);
    TK_CHECK(HMAC(EVP_sha256(), key, (int)key_len, (unsigned char *)input, in_len, mac, &ml));
    char *s = tk_b64url(mac, ml);
    size_t n = in_len + strlen(s) + 2;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s", input, s);
    free(s);
    free(input);
    free(h);
    free(p);
    return t;
}

/* printf into a malloc'd string. */
static inline char *tk_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *tk_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    TK_CHECK(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    return s;
}

/* --- X.509 ------------------------------------------------------------------- */

static inline void tk_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    TK_CHECK(e && X509_add_ext(x, e, -1) == 1);
    X509_EXTENSION_free(e);
}

/* What a test certificate says. issuer NULL: self-signed with key. */
struct tk_cert {
    const char *cn;
    const char *uri_san;        /* NULL: none */
    const char *uri_san2;       /* a second URI SAN, NULL: none */
    int ca;                     /* basicConstraints CA:TRUE, keyCertSign */
    long serial;
    int64_t not_before_s, not_after_s; /* 0: TK_NOW_S - 1 day, TK_NOW_S + 30 days */
    EVP_PKEY *key;              /* the subject's key */
    X509 *issuer;               /* NULL: self-signed */
    EVP_PKEY *issuer_key;
};

static inline X509 *tk_x509(const struct tk_cert *c)
{
    X509 *x = X509_new();
    TK_CHECK(x && X509_set_version(x, 2) == 1);
    TK_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(x), c->serial ? c->serial : 1) == 1);
    X509_NAME *n = X509_NAME_new();
    TK_CHECK(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)c->cn, -1,
                                        -1, 0) == 1);
    TK_CHECK(X509_set_subject_name(x, n) == 1);
    TK_CHECK(X509_set_issuer_name(x, c->issuer ? X509_get_subject_name(c->issuer) : n) == 1);
    X509_NAME_free(n);
    int64_t nb = c->not_before_s ? c->not_before_s : TK_NOW_S - 86400;
    int64_t na = c->not_after_s ? c->not_after_s : TK_NOW_S + 30 * 86400;
    TK_CHECK(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
    TK_CHECK(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
    TK_CHECK(X509_set_pubkey(x, c->key) == 1);
    tk_ext(x, c->issuer, NID_subject_key_identifier, "hash");
    tk_ext(x, c->issuer, NID_authority_key_identifier, "keyid:always");
    if (c->ca) {
        tk_ext(x, c->issuer, NID_basic_constraints, "critical,CA:TRUE");
        tk_ext(x, c->issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        tk_ext(x, c->issuer, NID_basic_constraints, "critical,CA:FALSE");
        tk_ext(x, c->issuer, NID_key_usage, "critical,digitalSignature");
        tk_ext(x, c->issuer, NID_ext_key_usage, "clientAuth");
    }
    if (c->uri_san) {
        char san[512];
        if (c->uri_san2)
            snprintf(san, sizeof(san), "URI:%s,URI:%s", c->uri_san, c->uri_san2);
        else
            snprintf(san, sizeof(san), "URI:%s", c->uri_san);
        tk_ext(x, c->issuer, NID_subject_alt_name, san);
    }
    TK_CHECK(X509_sign(x, c->issuer_key ? c->issuer_key : c->key, EVP_sha256()) > 0);
    return x;
}

/* A CRL from issuer listing the serials, valid from this_s to next_s. */
static inline X509_CRL *tk_crl(X509 *issuer, EVP_PKEY *issuer_key, const long *serials, size_t n,
                               int64_t this_s, int64_t next_s)
{
    X509_CRL *crl = X509_CRL_new();
    TK_CHECK(crl && X509_CRL_set_version(crl, 1) == 1);
    TK_CHECK(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) == 1);
    ASN1_TIME *t = ASN1_TIME_new();
    TK_CHECK(ASN1_TIME_set(t, (time_t)this_s) && X509_CRL_set1_lastUpdate(crl, t) == 1);
    TK_CHECK(ASN1_TIME_set(t, (time_t)next_s) && X509_CRL_set1_nextUpdate(crl, t) == 1);
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        TK_CHECK(ASN1_INTEGER_set(s, serials[i]) == 1);
        TK_CHECK(X509_REVOKED_set_serialNumber(r, s) == 1);
        TK_CHECK(ASN1_TIME_set(t, (time_t)this_s) && X509_REVOKED_set_revocationDate(r, t) == 1);
        TK_CHECK(X509_CRL_add0_revoked(crl, r) == 1);
        ASN1_INTEGER_free(s);
    }
    ASN1_TIME_free(t);
    TK_CHECK(X509_CRL_sort(crl) == 1);
    TK_CHECK(X509_CRL_sign(crl, issuer_key, EVP_sha256()) > 0);
    return crl;
}

static inline char *tk_x509_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    TK_CHECK(b && PEM_write_bio_X509(b, x) == 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static inline char *tk_crl_pem(X509_CRL *c)
{
    BIO *b = BIO_new(BIO_s_mem());
    TK_CHECK(b && PEM_write_bio_X509_CRL(b, c) == 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

#endif
