/* Tests of the pki engine (src/engines/pki.c): its own CA, roles limited to
 * allowed domains, certificates that verify against that CA only, and a
 * signed CRL that makes X509_verify_cert refuse revoked ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/env.h"
#include "common/err.h"
#include "engines/engine.h"
#include "engines/pki.h"

#define HOUR_MS 3600000ULL

static const struct mf_engine_ops *ops = &mf_engine_pki_ops;

static const char *ROLE_WEB =
    "{\"allowed_domains\":[\"example.com\"],\"allow_subdomains\":true,"
    "\"common_name\":\"api.example.com\",\"alt_names\":[\"www.example.com\",\"API.example.com\"],"
    "\"allow_ip_sans\":true,\"ip_sans\":[\"10.0.0.1\",\"::1\"],\"max_ttl_ms\":86400000}";

static struct mf_engine *open_generated(void)
{
    struct mf_engine *e = NULL;
    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->open("{\"generate\":true,\"common_name\":\"mayfly test pki\","
                       "\"ttl_ms\":172800000}",
                       &e, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(e);
    assert_int_equal(ops->role_put(e, "web", ROLE_WEB, err, sizeof(err)), 0);
    return e;
}

static const char *field(const struct mf_engine_cred *c, const char *key)
{
    for (size_t i = 0; i < c->fields_len; i++)
        if (strcmp(c->fields[i].key, key) == 0)
            return c->fields[i].value;
    return NULL;
}

static X509 *x509_of(const char *pem)
{
    assert_non_null(pem);
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *key_of(const char *pem)
{
    assert_non_null(pem);
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(k);
    return k;
}

static X509_CRL *crl_of(const char *pem)
{
    assert_non_null(pem);
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_CRL *c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(c);
    return c;
}

static char *x509_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static uint64_t time_s(const ASN1_TIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (uint64_t)timegm(&tm);
}

/* X509_verify_cert of `cert` against a store holding `ca` (and `crl` with
 * CRL checking when given): X509_V_OK or the verify error. */
static int verify(X509 *ca, X509 *cert, X509_CRL *crl)
{
    X509_STORE *store = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    if (crl) {
        assert_int_equal(X509_STORE_add_crl(store, crl), 1);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    int ok = X509_verify_cert(ctx);
    int rc = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* A CA made with plain OpenSSL, standing for the cluster's peer CA or an
 * operator's CA. ca_flag 0 makes a plain leaf-like self-signed certificate. */
static void make_foreign_ca(int rsa, int ca_flag, X509 **cert, EVP_PKEY **key)
{
    *key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    assert_non_null(*key);
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"mayfly peer CA", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, *key);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                              ca_flag ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
                              ca_flag ? "critical,keyCertSign,cRLSign" : "digitalSignature");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, *key, EVP_sha256()) > 0);
    *cert = x;
}

static X509 *engine_ca(struct mf_engine *e)
{
    char *pem = NULL;
    assert_int_equal(mf_pki_ca_pem(e, &pem), 0);
    X509 *x = x509_of(pem);
    free(pem);
    return x;
}

static void issue_ok(struct mf_engine *e, const char *role, uint64_t seq, uint64_t expire_at_ms,
                     struct mf_engine_cred *c)
{
    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->issue(e, role, seq, expire_at_ms, c, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "issue: %s\n", err);
    assert_int_equal(rc, 0);
}

static char *crl_now(struct mf_engine *e)
{
    char *pem = NULL;
    /* A second in the past, so a verifier reading the clock right after sees
     * thisUpdate <= now even across a second boundary. */
    assert_int_equal(mf_pki_crl_pem(e, mf_now_wall_ms() - 1000, 0, &pem), 0);
    return pem;
}

/* The engine is compiled in and found by its type name. */
static void test_engines_pki_registered(void **state)
{
    (void)state;
    assert_ptr_equal(mf_engine_find("pki"), &mf_engine_pki_ops);
    assert_string_equal(mf_engine_pki_ops.type, "pki");
}

/* generate:true creates an ECDSA P-256 CA that may sign certificates and CRLs;
 * its export reopens as the same CA with the same serial numbers. */
static void test_engines_pki_generate_ca(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    X509 *ca = engine_ca(e);
    assert_true(X509_get_extension_flags(ca) & EXFLAG_CA);
    assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
    assert_true(X509_get_key_usage(ca) & KU_CRL_SIGN);
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
    char group[64];
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_verify(ca, pub), 1);
    uint64_t not_after = time_s(X509_get0_notAfter(ca));
    uint64_t now_s = mf_now_wall_ms() / 1000;
    assert_true(not_after >= now_s + 172800 - 5 && not_after <= now_s + 172800 + 5);

    char *cfg = NULL;
    assert_int_equal(mf_pki_export(e, &cfg), 0);
    assert_non_null(strstr(cfg, "PRIVATE KEY"));
    struct mf_engine *e2 = NULL;
    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->open(cfg, &e2, err, sizeof(err)), 0);
    mf_pki_secret_free(cfg);
    char *pem = x509_pem(ca);
    assert_int_equal(mf_pki_ca_same(e2, pem), 1);
    free(pem);
    unsigned char s1[MF_PKI_SERIAL_LEN], s2[MF_PKI_SERIAL_LEN];
    mf_pki_serial(e, 77, s1);
    mf_pki_serial(e2, 77, s2);
    assert_memory_equal(s1, s2, sizeof(s1));
    mf_pki_serial(e2, 78, s2);
    assert_memory_not_equal(s1, s2, sizeof(s1));

    /* A different generated CA is not "the same" and derives other serials. */
    struct mf_engine *e3 = open_generated();
    X509 *ca3 = engine_ca(e3);
    pem = x509_pem(ca3);
    assert_int_equal(mf_pki_ca_same(e, pem), 0);
    free(pem);
    mf_pki_serial(e3, 77, s2);
    assert_memory_not_equal(s1, s2, sizeof(s1));
    assert_int_equal(mf_pki_ca_same(e, "not a certificate"), MF_EINVAL);
    X509_free(ca3);
    ops->close(e3);
    X509_free(ca);
    ops->close(e2);
    ops->close(e);
}

static int role_err(struct mf_engine *e, const char *json, const char *want)
{
    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->role_put(e, "bad", json, err, sizeof(err));
    if (want && !strstr(err, want))
        fprintf(stderr, "role error \"%s\" lacks \"%s\"\n", err, want);
    assert_true(!want || strstr(err, want));
    return rc;
}

/* role_put refuses names outside allowed_domains, subdomains unless allowed,
 * IP SANs unless allowed, wildcards, URI SANs (no peer identity can be
 * requested), bad key types and inconsistent TTLs; each with a clear error. */
static void test_engines_pki_role_validation(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"evil.org\"}",
                              "outside allowed_domains"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"a.example.com\"}",
                              "allow_subdomains is false"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\","
                              "\"alt_names\":[\"notexample.com\"],\"allow_subdomains\":true}",
                              "outside allowed_domains"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"*.example.com\",\"allow_subdomains\":true}",
                              "not a DNS host name"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\",\"ip_sans\":[\"10.0.0.1\"]}",
                              "allow_ip_sans is false"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],\"allow_ip_sans\":true,"
                              "\"common_name\":\"example.com\",\"ip_sans\":[\"10.0.0.300\"]}",
                              "not an IP address"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\","
                              "\"uri_sans\":[\"mayfly://node/1\"]}",
                              "unknown role field \"uri_sans\""),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\","
                              "\"alt_names\":[\"mayfly://node/1\"]}",
                              "not a DNS host name"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\",\"key_type\":\"dsa\"}",
                              "key_type"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\",\"key_type\":\"rsa\","
                              "\"key_bits\":1024}",
                              "key_bits"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\",\"default_ttl_ms\":10,"
                              "\"max_ttl_ms\":5}",
                              "default_ttl_ms"),
                     MF_EINVAL);
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"example.com\"],"
                              "\"common_name\":\"example.com\",\"server_flag\":false,"
                              "\"client_flag\":false}",
                              "both false"),
                     MF_EINVAL);
    assert_int_equal(role_err(e, "{\"allowed_domains\":[],\"common_name\":\"example.com\"}",
                              "allowed_domains"),
                     MF_EINVAL);
    assert_int_equal(role_err(e, "{\"allowed_domains\":[\"example.com\"]}", "common_name"),
                     MF_EINVAL);
    assert_int_equal(role_err(e, "not json", "not JSON"), MF_EINVAL);
    /* The role was never stored. */
    uint64_t d, m;
    assert_int_equal(ops->role_ttl(e, "bad", &d, &m), MF_ENOTFOUND);
    /* Subdomains when allowed, names case-folded; TTLs capped by the engine. */
    assert_int_equal(role_err(e,
                              "{\"allowed_domains\":[\"Example.COM\"],\"allow_subdomains\":true,"
                              "\"common_name\":\"Deep.Sub.example.com\",\"default_ttl_ms\":60000}",
                              NULL),
                     0);
    assert_int_equal(ops->role_ttl(e, "bad", &d, &m), 0);
    assert_int_equal(d, 60000);
    assert_int_equal(m, MF_PKI_MAX_TTL_MS_DEFAULT);
    assert_int_equal(ops->role_ttl(e, "web", &d, &m), 0);
    assert_int_equal(m, 86400000);
    ops->close(e);
}

static int has_san(GENERAL_NAMES *gens, int type, const char *dns, const unsigned char *ip,
                   int ip_len)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int t;
        void *v = GENERAL_NAME_get0_value(g, &t);
        if (t != type)
            continue;
        const ASN1_STRING *s = v;
        if (dns && ASN1_STRING_length(s) == (int)strlen(dns) &&
            memcmp(ASN1_STRING_get0_data(s), dns, strlen(dns)) == 0)
            return 1;
        if (ip && ASN1_STRING_length(s) == ip_len &&
            memcmp(ASN1_STRING_get0_data(s), ip, (size_t)ip_len) == 0)
            return 1;
    }
    return 0;
}

/* An issued certificate verifies against the engine's CA, names exactly the
 * role's DNS and IP SANs (no URI SAN, so no peer identity), has a fresh ECDSA
 * P-256 key matching the private key handed out, notAfter == expire_at to the
 * second, notBefore backdated 30 s, and a serial that encodes SEQ. */
static void test_engines_pki_issue_verifies(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    X509 *ca = engine_ca(e);
    uint64_t now = mf_now_wall_ms();
    uint64_t expire = now + HOUR_MS + 777; /* not on a second: rounded down */
    struct mf_engine_cred c;
    issue_ok(e, "web", 4, expire, &c);

    X509 *x = x509_of(field(&c, "certificate"));
    assert_int_equal(verify(ca, x, NULL), X509_V_OK);
    assert_int_equal(time_s(X509_get0_notAfter(x)), expire / 1000);
    uint64_t nb = time_s(X509_get0_notBefore(x));
    assert_true(nb + 30 >= now / 1000 - 1 && nb + 30 <= now / 1000 + 1);

    EVP_PKEY *k = key_of(field(&c, "private_key"));
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
    char group[64];
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL), 1);
    assert_string_equal(group, "prime256v1");
    assert_string_equal(field(&c, "private_key_type"), "ec");

    char cn[128];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "api.example.com");
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 4); /* CN, www, 10.0.0.1, ::1 (API. folded) */
    assert_true(has_san(gens, GEN_DNS, "api.example.com", NULL, 0));
    assert_true(has_san(gens, GEN_DNS, "www.example.com", NULL, 0));
    const unsigned char v4[4] = {10, 0, 0, 1};
    const unsigned char v6[16] = {[15] = 1};
    assert_true(has_san(gens, GEN_IPADD, NULL, v4, 4));
    assert_true(has_san(gens, GEN_IPADD, NULL, v6, 16));
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
        assert_int_not_equal(sk_GENERAL_NAME_value(gens, i)->type, GEN_URI);
    GENERAL_NAMES_free(gens);
    assert_null(strstr(field(&c, "certificate"), "mayfly://"));
    assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_int_equal(X509_check_host(x, "www.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.example.com", 0, 0, NULL), 0);

    /* Serial: 0x01 || SEQ || 8 MAC bytes, printed in the serial_number field. */
    unsigned char want[MF_PKI_SERIAL_LEN];
    mf_pki_serial(e, 4, want);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    unsigned char got[MF_PKI_SERIAL_LEN];
    assert_int_equal(BN_num_bytes(bn), MF_PKI_SERIAL_LEN);
    BN_bn2bin(bn, got);
    BN_free(bn);
    assert_memory_equal(got, want, sizeof(got));
    assert_int_equal(got[0], 1);
    for (int i = 1; i < 8; i++)
        assert_int_equal(got[i], 0);
    assert_int_equal(got[8], 4);
    assert_int_equal(strlen(field(&c, "serial_number")), 3 * MF_PKI_SERIAL_LEN - 1);
    assert_memory_equal(field(&c, "serial_number"), "01:00:00:00:00:00:00:00:04:", 27);
    char *ca_pem = x509_pem(ca);
    assert_string_equal(field(&c, "issuing_ca"), ca_pem);
    free(ca_pem);
    char exp_s[24];
    snprintf(exp_s, sizeof(exp_s), "%llu", (unsigned long long)(expire / 1000));
    assert_string_equal(field(&c, "expiration"), exp_s);

    EVP_PKEY_free(k);
    X509_free(x);
    mf_engine_cred_free(&c);
    X509_free(ca);
    ops->close(e);
}

/* Two issues give two different key pairs and two different serials. */
static void test_engines_pki_issue_unique(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    uint64_t expire = mf_now_wall_ms() + HOUR_MS;
    struct mf_engine_cred a, b;
    issue_ok(e, "web", 10, expire, &a);
    issue_ok(e, "web", 11, expire, &b);
    assert_string_not_equal(field(&a, "private_key"), field(&b, "private_key"));
    assert_string_not_equal(field(&a, "serial_number"), field(&b, "serial_number"));
    X509 *xa = x509_of(field(&a, "certificate")), *xb = x509_of(field(&b, "certificate"));
    assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(xa), X509_get0_pubkey(xb)), 1);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(xa),
                                          X509_get0_serialNumber(xb)),
                         0);
    X509_free(xa);
    X509_free(xb);
    mf_engine_cred_free(&a);
    mf_engine_cred_free(&b);
    ops->close(e);
}

static int crl_has(X509_CRL *crl, X509 *x)
{
    X509_REVOKED *r = NULL;
    return X509_CRL_get0_by_serial(crl, &r, (ASN1_INTEGER *)X509_get0_serialNumber(x)) == 1;
}

/* revoke puts the serial in a CRL signed by the CA (v2, CRL number, next
 * update); revoking twice, or revoking what was never issued, succeeds. */
static void test_engines_pki_revoke_crl(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    X509 *ca = engine_ca(e);
    struct mf_engine_cred c;
    issue_ok(e, "web", 20, mf_now_wall_ms() + HOUR_MS, &c);
    X509 *x = x509_of(field(&c, "certificate"));

    uint64_t seqs[] = {20, 999};
    int results[2] = {1, 1};
    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->revoke(e, seqs, 2, results, err, sizeof(err)), 0);
    assert_int_equal(results[0], 0);
    assert_int_equal(results[1], 0);
    results[0] = results[1] = 1;
    assert_int_equal(ops->revoke(e, seqs, 2, results, err, sizeof(err)), 0);
    assert_int_equal(results[0], 0);
    assert_int_equal(ops->revoke(e, seqs, 0, results, err, sizeof(err)), 0);
    assert_int_equal(mf_pki_revoked_count(e), 2);

    uint64_t now = mf_now_wall_ms() - 1000;
    char *pem = NULL;
    assert_int_equal(mf_pki_crl_pem(e, now, 0, &pem), 0);
    X509_CRL *crl = crl_of(pem);
    free(pem);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)), 0);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
    assert_true(crl_has(crl, x));
    assert_int_equal(time_s(X509_CRL_get0_lastUpdate(crl)), now / 1000);
    assert_int_equal(time_s(X509_CRL_get0_nextUpdate(crl)),
                     (now + MF_PKI_CRL_TTL_MS_DEFAULT) / 1000);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    uint64_t n = 0;
    assert_int_equal(ASN1_INTEGER_get_uint64(&n, num), 1);
    assert_int_equal(n, now);
    ASN1_INTEGER_free(num);
    X509_CRL_free(crl);

    /* An explicit CRL number is used as given. */
    assert_int_equal(mf_pki_crl_pem(e, now, 12345, &pem), 0);
    crl = crl_of(pem);
    free(pem);
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_int_equal(ASN1_INTEGER_get_uint64(&n, num), 1);
    assert_int_equal(n, 12345);
    ASN1_INTEGER_free(num);
    X509_CRL_free(crl);

    X509_free(x);
    mf_engine_cred_free(&c);
    X509_free(ca);
    ops->close(e);
}

/* With CRL checking, X509_verify_cert refuses the revoked certificate and
 * accepts one that was not revoked. */
static void test_engines_pki_crl_check(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    X509 *ca = engine_ca(e);
    uint64_t expire = mf_now_wall_ms() + HOUR_MS;
    struct mf_engine_cred a, b;
    issue_ok(e, "web", 30, expire, &a);
    issue_ok(e, "web", 31, expire, &b);
    X509 *xa = x509_of(field(&a, "certificate")), *xb = x509_of(field(&b, "certificate"));

    char *pem = crl_now(e);
    X509_CRL *empty = crl_of(pem);
    free(pem);
    assert_int_equal(verify(ca, xa, empty), X509_V_OK);

    uint64_t seq = 30;
    int result = 1;
    char err[MF_ENGINE_ERR_LEN];
    assert_int_equal(ops->revoke(e, &seq, 1, &result, err, sizeof(err)), 0);
    pem = crl_now(e);
    X509_CRL *crl = crl_of(pem);
    free(pem);
    assert_int_equal(verify(ca, xa, crl), X509_V_ERR_CERT_REVOKED);
    assert_int_equal(verify(ca, xb, crl), X509_V_OK);
    assert_int_equal(verify(ca, xa, NULL), X509_V_OK); /* no CRL check: still a valid chain */

    X509_CRL_free(empty);
    X509_CRL_free(crl);
    X509_free(xa);
    X509_free(xb);
    mf_engine_cred_free(&a);
    mf_engine_cred_free(&b);
    X509_free(ca);
    ops->close(e);
}

/* Another node, holding only the exported CA config and no memory of the
 * issue, revokes lease SEQ and its CRL refuses the certificate the first node
 * made: revocation works from SEQ alone. */
static void test_engines_pki_revoke_stateless(void **state)
{
    (void)state;
    struct mf_engine *a = open_generated();
    char *cfg = NULL;
    assert_int_equal(mf_pki_export(a, &cfg), 0);
    struct mf_engine *b = NULL;
    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->open(cfg, &b, err, sizeof(err)), 0);
    mf_pki_secret_free(cfg);
    struct mf_engine_cred c;
    issue_ok(a, "web", UINT64_C(0x8000000000000123), mf_now_wall_ms() + HOUR_MS, &c);
    X509 *x = x509_of(field(&c, "certificate"));
    X509 *ca = engine_ca(b);

    uint64_t seq = UINT64_C(0x8000000000000123);
    int result = 1;
    assert_int_equal(ops->revoke(b, &seq, 1, &result, err, sizeof(err)), 0);
    char *pem = crl_now(b);
    X509_CRL *crl = crl_of(pem);
    free(pem);
    assert_true(crl_has(crl, x));
    assert_int_equal(verify(ca, x, crl), X509_V_ERR_CERT_REVOKED);

    /* The revoked set replicates to a third node through its export. */
    char *json = NULL;
    assert_int_equal(mf_pki_revoked_export(b, &json), 0);
    assert_int_equal(mf_pki_revoked_import(a, json, err, sizeof(err)), 0);
    assert_int_equal(mf_pki_revoked_import(a, json, err, sizeof(err)), 0); /* idempotent */
    free(json);
    assert_int_equal(mf_pki_revoked_count(a), 1);
    X509_CRL_free(crl);
    pem = crl_now(a);
    crl = crl_of(pem);
    free(pem);
    assert_int_equal(verify(ca, x, crl), X509_V_ERR_CERT_REVOKED);
    assert_int_equal(mf_pki_revoked_import(a, "[{\"seq\":1}]", err, sizeof(err)), MF_EINVAL);
    assert_int_equal(mf_pki_revoked_import(a, "{}", err, sizeof(err)), MF_EINVAL);

    X509_CRL_free(crl);
    X509_free(ca);
    X509_free(x);
    mf_engine_cred_free(&c);
    ops->close(b);
    ops->close(a);
}

/* Entries leave the CRL once their certificate has expired: at notAfter when
 * known, otherwise max_ttl_ms (+ backdate) after the revocation. */
static void test_engines_pki_crl_prunes_expired(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    uint64_t t = 1800000000000ULL; /* 2027 */
    assert_int_equal(mf_pki_revoked_add(e, 1, t, t + 60000), 0);
    assert_int_equal(mf_pki_revoked_add(e, 2, t, 0), 0);
    assert_int_equal(mf_pki_revoked_add(e, 3, t, t + 2 * HOUR_MS), 0);
    assert_int_equal(mf_pki_revoked_add(e, 1, t + 5, t + 30000), 0); /* keeps the later expiry */
    assert_int_equal(mf_pki_revoked_count(e), 3);
    char *pem = NULL;
    assert_int_equal(mf_pki_crl_pem(e, t + 59000, 0, &pem), 0);
    X509_CRL *crl = crl_of(pem);
    free(pem);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
    X509_CRL_free(crl);
    assert_int_equal(mf_pki_crl_pem(e, t + HOUR_MS, 0, &pem), 0);
    crl = crl_of(pem);
    free(pem);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2); /* 1 expired */
    X509_CRL_free(crl);
    assert_int_equal(mf_pki_revoked_count(e), 2);
    /* Seq 2 (expiry unknown) stays for max_ttl_ms + backdate, seq 3 until its notAfter. */
    assert_int_equal(mf_pki_crl_pem(e, t + 3 * HOUR_MS, 0, &pem), 0);
    free(pem);
    assert_int_equal(mf_pki_revoked_count(e), 1);
    assert_int_equal(
        mf_pki_crl_pem(e, t + MF_PKI_MAX_TTL_MS_DEFAULT + MF_PKI_BACKDATE_MS, 0, &pem), 0);
    free(pem);
    assert_int_equal(mf_pki_revoked_count(e), 0);
    ops->close(e);
}

/* A CA loaded from PEMs (here RSA, made with plain OpenSSL) issues
 * certificates, EC or RSA, that verify against it. */
static void test_engines_pki_loaded_ca(void **state)
{
    (void)state;
    X509 *ca;
    EVP_PKEY *ca_key;
    make_foreign_ca(1, 1, &ca, &ca_key);
    char *cp = x509_pem(ca), *kp = key_pem(ca_key);
    json_t *j = json_pack("{s:s,s:s,s:I}", "ca_cert_pem", cp, "ca_key_pem", kp, "max_ttl_ms",
                          (json_int_t)(2 * HOUR_MS));
    char *cfg = json_dumps(j, 0);
    json_decref(j);
    struct mf_engine *e = NULL;
    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->open(cfg, &e, err, sizeof(err));
    if (rc)
        fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(mf_pki_ca_same(e, cp), 1);
    assert_int_equal(ops->role_put(e, "web", ROLE_WEB, err, sizeof(err)), 0);
    assert_int_equal(ops->role_put(e, "rsa",
                                   "{\"allowed_domains\":[\"example.com\"],"
                                   "\"common_name\":\"example.com\",\"key_type\":\"rsa\","
                                   "\"server_flag\":false}",
                                   err, sizeof(err)),
                     0);
    uint64_t d, m;
    assert_int_equal(ops->role_ttl(e, "web", &d, &m), 0);
    assert_int_equal(m, 2 * HOUR_MS); /* the engine cap beats the role's 24 h */
    struct mf_engine_cred a, b;
    issue_ok(e, "web", 1, mf_now_wall_ms() + HOUR_MS, &a);
    issue_ok(e, "rsa", 2, mf_now_wall_ms() + HOUR_MS, &b);
    X509 *xa = x509_of(field(&a, "certificate")), *xb = x509_of(field(&b, "certificate"));
    assert_int_equal(verify(ca, xa, NULL), X509_V_OK);
    assert_int_equal(verify(ca, xb, NULL), X509_V_OK);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(xb)), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(xb)), 2048);
    assert_string_equal(field(&b, "private_key_type"), "rsa");
    assert_false(X509_get_extended_key_usage(xb) & XKU_SSL_SERVER);
    assert_true(X509_get_extended_key_usage(xb) & XKU_SSL_CLIENT);
    EVP_PKEY *kb = key_of(field(&b, "private_key"));
    assert_int_equal(X509_check_private_key(xb, kb), 1);
    EVP_PKEY_free(kb);
    /* The CRL of a CA without a subject key id verifies too (AKI falls back
     * to issuer and serial). */
    uint64_t seq = 1;
    int result = 1;
    assert_int_equal(ops->revoke(e, &seq, 1, &result, err, sizeof(err)), 0);
    char *crl_pem = crl_now(e);
    X509_CRL *crl = crl_of(crl_pem);
    free(crl_pem);
    assert_int_equal(verify(ca, xa, crl), X509_V_ERR_CERT_REVOKED);
    assert_int_equal(verify(ca, xb, crl), X509_V_OK);
    X509_CRL_free(crl);
    /* Over the engine's max_ttl_ms: refused. */
    struct mf_engine_cred c;
    assert_int_equal(ops->issue(e, "rsa", 3, mf_now_wall_ms() + 3 * HOUR_MS, &c, err,
                                sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "max_ttl_ms"));

    X509_free(xa);
    X509_free(xb);
    mf_engine_cred_free(&a);
    mf_engine_cred_free(&b);
    ops->close(e);
    free(cfg);
    free(cp);
    free(kp);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
}

static void open_err(const char *cfg, const char *want)
{
    struct mf_engine *e = (struct mf_engine *)0x1;
    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->open(cfg, &e, err, sizeof(err));
    if (!strstr(err, want))
        fprintf(stderr, "open error \"%s\" lacks \"%s\"\n", err, want);
    assert_int_equal(rc, MF_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err, want));
    assert_null(strstr(err, "PRIVATE"));
}

/* Bad configs and bad PEMs fail with MF_EINVAL and a message naming the
 * problem, never quoting the key. */
static void test_engines_pki_bad_config(void **state)
{
    (void)state;
    open_err("nope", "not JSON");
    open_err("[]", "JSON object");
    open_err("{}", "generate");
    open_err("{\"generate\":true}", "common_name");
    open_err("{\"generate\":\"yes\",\"common_name\":\"x\"}", "generate must be");
    open_err("{\"generate\":true,\"common_name\":\"x\",\"colour\":1}", "unknown config field");
    open_err("{\"generate\":true,\"common_name\":\"x\",\"ca_cert_pem\":\"a\"}", "both");
    open_err("{\"generate\":true,\"common_name\":\"x\",\"max_ttl_ms\":0}", "max_ttl_ms");
    open_err("{\"ca_cert_pem\":\"garbage\",\"ca_key_pem\":\"garbage\"}",
             "ca_cert_pem is not a PEM certificate");

    X509 *ca, *other;
    EVP_PKEY *ca_key, *other_key;
    make_foreign_ca(0, 1, &ca, &ca_key);
    make_foreign_ca(0, 1, &other, &other_key);
    char *cp = x509_pem(ca), *kp = key_pem(ca_key), *okp = key_pem(other_key);
    char cfg[16384];
    json_t *j = json_pack("{s:s,s:s}", "ca_cert_pem", cp, "ca_key_pem", "-----BEGIN PRIVATE "
                          "KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    char *s = json_dumps(j, 0);
    open_err(s, "ca_key_pem is not an unencrypted PEM private key");
    free(s);
    json_decref(j);
    j = json_pack("{s:s,s:s}", "ca_cert_pem", cp, "ca_key_pem", okp);
    s = json_dumps(j, 0);
    open_err(s, "does not match");
    free(s);
    json_decref(j);
    snprintf(cfg, sizeof(cfg), "{\"ca_cert_pem\":1,\"ca_key_pem\":2}");
    open_err(cfg, "as strings");
    /* A certificate that is not a CA cannot be the engine's CA. */
    X509 *leaf;
    EVP_PKEY *leaf_key;
    make_foreign_ca(0, 0, &leaf, &leaf_key);
    char *lp = x509_pem(leaf), *lkp = key_pem(leaf_key);
    j = json_pack("{s:s,s:s}", "ca_cert_pem", lp, "ca_key_pem", lkp);
    s = json_dumps(j, 0);
    open_err(s, "not a CA certificate");
    free(s);
    json_decref(j);

    free(lp);
    free(lkp);
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
    free(cp);
    free(kp);
    free(okp);
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
}

static uint64_t fake_wall;
static uint64_t fake_wall_ms(void *ctx) { (void)ctx; return fake_wall; }
static uint64_t real_mono(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
static int real_rand(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : MF_ECRYPTO;
}

/* The scheduler revokes a certificate at or after its lease's expiry: the
 * engine that issued it knows the notAfter has passed and adds nothing to
 * the CRL; an early revocation is listed until that notAfter; a SEQ it never
 * issued is listed for max_ttl_ms. */
static void test_engines_pki_revoke_after_expiry(void **state)
{
    (void)state;
    const struct mf_env_ops fake = {fake_wall_ms, real_mono, real_rand, NULL};
    fake_wall = mf_now_wall_ms();
    mf_env_set(&fake);
    struct mf_engine *e = open_generated();
    uint64_t t = fake_wall;
    struct mf_engine_cred a, b;
    issue_ok(e, "web", 50, t + 60000, &a);
    issue_ok(e, "web", 51, t + 60000, &b);
    char err[MF_ENGINE_ERR_LEN];
    int result = 1;
    uint64_t seq = 51;
    fake_wall = t + 10000; /* early: listed until notAfter */
    assert_int_equal(ops->revoke(e, &seq, 1, &result, err, sizeof(err)), 0);
    assert_int_equal(mf_pki_revoked_count(e), 1);
    fake_wall = t + 61000; /* at expiry: nothing to list */
    seq = 50;
    assert_int_equal(ops->revoke(e, &seq, 1, &result, err, sizeof(err)), 0);
    assert_int_equal(result, 0);
    assert_int_equal(mf_pki_revoked_count(e), 1);
    seq = 52; /* never issued here: kept for max_ttl_ms */
    assert_int_equal(ops->revoke(e, &seq, 1, &result, err, sizeof(err)), 0);
    assert_int_equal(mf_pki_revoked_count(e), 2);
    char *pem = NULL;
    assert_int_equal(mf_pki_crl_pem(e, t + 61000, 0, &pem), 0); /* 51 expired at t + 60 s */
    free(pem);
    assert_int_equal(mf_pki_revoked_count(e), 1);
    char *json = NULL;
    assert_int_equal(mf_pki_revoked_export(e, &json), 0);
    assert_non_null(strstr(json, "\"seq\":52"));
    free(json);
    mf_engine_cred_free(&a);
    mf_engine_cred_free(&b);
    ops->close(e);
    mf_env_set(NULL);
}

/* A certificate of this engine is refused by a verify store holding another
 * CA (the cluster's peer CA), and the engine tells the two CAs apart. */
static void test_engines_pki_foreign_ca(void **state)
{
    (void)state;
    X509 *peer_ca;
    EVP_PKEY *peer_key;
    make_foreign_ca(0, 1, &peer_ca, &peer_key);
    struct mf_engine *e = open_generated();
    struct mf_engine_cred c;
    issue_ok(e, "web", 40, mf_now_wall_ms() + HOUR_MS, &c);
    X509 *x = x509_of(field(&c, "certificate"));
    assert_int_equal(verify(peer_ca, x, NULL), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    char *pem = x509_pem(peer_ca);
    assert_int_equal(mf_pki_ca_same(e, pem), 0);
    free(pem);
    X509_free(x);
    mf_engine_cred_free(&c);
    ops->close(e);
    X509_free(peer_ca);
    EVP_PKEY_free(peer_key);
}

/* renew is refused (a signed notAfter cannot move), list reports nothing,
 * and issue refuses unknown roles and expiries in the past or past the CA. */
static void test_engines_pki_renew_list_limits(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    char err[MF_ENGINE_ERR_LEN] = "";
    uint64_t now = mf_now_wall_ms();
    assert_int_equal(ops->renew(e, "web", 1, now + HOUR_MS, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "cannot be renewed"));
    int calls = 0;
    assert_int_equal(ops->list(e, NULL, &calls, err, sizeof(err)), 0);
    struct mf_engine_cred c;
    assert_int_equal(ops->issue(e, "nope", 1, now + HOUR_MS, &c, err, sizeof(err)),
                     MF_ENOTFOUND);
    assert_int_equal(c.fields_len, 0);
    assert_int_equal(ops->issue(e, "web", 1, now - 1000, &c, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "not in the future"));
    assert_int_equal(ops->issue(e, "web", 1, now + 2 * 86400000ULL, &c, err, sizeof(err)),
                     MF_EINVAL); /* role max 24 h */
    /* The CA lives 2 days; a role allowing 72 hours cannot outlive it. */
    assert_int_equal(ops->role_put(e, "long",
                                   "{\"allowed_domains\":[\"example.com\"],"
                                   "\"common_name\":\"example.com\"}",
                                   err, sizeof(err)),
                     0);
    assert_int_equal(ops->issue(e, "long", 1, now + 60 * HOUR_MS, &c, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "outlives the CA"));
    ops->close(e);
}

/* The figure: ECDSA P-256 certificates issued per second (one key pair, one
 * signature and the PEMs each). Printed, not asserted. */
static void test_engines_pki_issue_rate(void **state)
{
    (void)state;
    struct mf_engine *e = open_generated();
    uint64_t expire = mf_now_wall_ms() + HOUR_MS;
    const int n = 200;
    uint64_t t0 = mf_now_mono_ms();
    for (int i = 0; i < n; i++) {
        struct mf_engine_cred c;
        issue_ok(e, "web", 1000 + (uint64_t)i, expire, &c);
        mf_engine_cred_free(&c);
    }
    uint64_t dt = mf_now_mono_ms() - t0;
    printf("pki: %d ECDSA P-256 certificates in %llu ms (%.0f/s)\n", n, (unsigned long long)dt,
           dt ? n * 1000.0 / (double)dt : 0.0);
    ops->close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engines_pki_registered),
        cmocka_unit_test(test_engines_pki_generate_ca),
        cmocka_unit_test(test_engines_pki_role_validation),
        cmocka_unit_test(test_engines_pki_issue_verifies),
        cmocka_unit_test(test_engines_pki_issue_unique),
        cmocka_unit_test(test_engines_pki_revoke_crl),
        cmocka_unit_test(test_engines_pki_crl_check),
        cmocka_unit_test(test_engines_pki_revoke_stateless),
        cmocka_unit_test(test_engines_pki_crl_prunes_expired),
        cmocka_unit_test(test_engines_pki_loaded_ca),
        cmocka_unit_test(test_engines_pki_bad_config),
        cmocka_unit_test(test_engines_pki_revoke_after_expiry),
        cmocka_unit_test(test_engines_pki_foreign_ca),
        cmocka_unit_test(test_engines_pki_renew_list_limits),
        cmocka_unit_test(test_engines_pki_issue_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
