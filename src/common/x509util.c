/* X.509 building blocks for the dev CA and the pki engine (see x509util.h):
 * the OpenSSL calls both used to spell out, once. */
#include "common/x509util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"

#define CA_CURVE "P-256"

int mf_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    MF_ASSERT(x && issuer && value);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return MF_ECRYPTO;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : MF_ECRYPTO;
}

int mf_x509_serial_random(unsigned char out[MF_X509_RANDOM_SERIAL_LEN])
{
    if (mf_rand_bytes(out, MF_X509_RANDOM_SERIAL_LEN) < 0)
        return MF_ECRYPTO;
    out[0] &= 0x7f;
    return 0;
}

int mf_x509_serial_set(ASN1_INTEGER *dst, const unsigned char *raw, size_t len)
{
    MF_ASSERT(dst && raw && len > 0);
    BIGNUM *bn = BN_bin2bn(raw, (int)len, NULL);
    if (!bn)
        return MF_ECRYPTO;
    int ok = BN_to_ASN1_INTEGER(bn, dst) != NULL;
    BN_free(bn);
    return ok ? 0 : MF_ECRYPTO;
}

int mf_x509_time_set_ms(ASN1_TIME *t, uint64_t ms)
{
    return ASN1_TIME_set(t, (time_t)(ms / 1000)) ? 0 : MF_ECRYPTO;
}

uint64_t mf_x509_time_ms(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    time_t s = timegm(&tm);
    return s < 0 ? 0 : (uint64_t)s * 1000;
}

static int name_add(X509_NAME *name, const char *field, const char *value)
{
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value,
                                      -1, -1, 0) == 1
               ? 0
               : MF_ECRYPTO;
}

X509 *mf_x509_new(EVP_PKEY *key, const unsigned char *serial, size_t serial_len,
                  uint64_t not_before_ms, uint64_t not_after_ms, const char *org,
                  const char *cn)
{
    MF_ASSERT(key && serial && cn);
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 ||
        mf_x509_serial_set(X509_get_serialNumber(x), serial, serial_len) < 0 ||
        mf_x509_time_set_ms(X509_getm_notBefore(x), not_before_ms) < 0 ||
        mf_x509_time_set_ms(X509_getm_notAfter(x), not_after_ms) < 0 ||
        (org && name_add(name, "O", org) < 0) || name_add(name, "CN", cn) < 0 ||
        X509_set_pubkey(x, key) != 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int mf_x509_ca_new(const char *org, const char *cn, uint64_t not_before_ms,
                   uint64_t not_after_ms, X509 **cert, EVP_PKEY **key)
{
    MF_ASSERT(cn && cert && key);
    unsigned char serial[MF_X509_RANDOM_SERIAL_LEN];
    if (mf_x509_serial_random(serial) < 0)
        return MF_ECRYPTO;
    EVP_PKEY *k = EVP_EC_gen(CA_CURVE);
    X509 *x = k ? mf_x509_new(k, serial, sizeof(serial), not_before_ms, not_after_ms, org, cn)
                : NULL;
    if (!x || X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
        mf_x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        mf_x509_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        mf_x509_add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
        mf_x509_add_ext(x, x, NID_authority_key_identifier, "keyid:always") < 0 ||
        X509_sign(x, k, EVP_sha256()) <= 0) {
        X509_free(x);
        EVP_PKEY_free(k);
        return MF_ECRYPTO;
    }
    *cert = x;
    *key = k;
    return 0;
}

int mf_x509_leaf_exts(X509 *x, X509 *ca, const char *key_usage, int server, int client)
{
    MF_ASSERT(x && ca && key_usage);
    char ku[128], eku[32];
    int n = snprintf(ku, sizeof(ku), "critical,%s", key_usage);
    MF_ASSERT(n > 0 && (size_t)n < sizeof(ku));
    snprintf(eku, sizeof(eku), "%s%s%s", server ? "serverAuth" : "",
             server && client ? "," : "", client ? "clientAuth" : "");
    if (mf_x509_add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        mf_x509_add_ext(x, ca, NID_key_usage, ku) < 0 ||
        (eku[0] && mf_x509_add_ext(x, ca, NID_ext_key_usage, eku) < 0) ||
        mf_x509_add_ext(x, ca, NID_subject_key_identifier, "hash") < 0)
        return MF_ECRYPTO;
    return 0;
}

char *mf_x509_bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

char *mf_x509_cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1)
        s = mf_x509_bio_text(b);
    BIO_free(b);
    return s;
}

char *mf_x509_key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *s = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
        s = mf_x509_bio_text(b);
    BIO_free(b);
    return s;
}

void mf_x509_pem_free(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* Refuses encrypted PEM keys instead of letting OpenSSL prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

X509 *mf_x509_cert_read(BIO *in)
{
    return in ? PEM_read_bio_X509(in, NULL, no_passphrase, NULL) : NULL;
}

EVP_PKEY *mf_x509_key_read(BIO *in)
{
    return in ? PEM_read_bio_PrivateKey(in, NULL, no_passphrase, NULL) : NULL;
}

X509 *mf_x509_cert_from_pem(const char *text)
{
    BIO *b = BIO_new_mem_buf(text, -1);
    X509 *x = mf_x509_cert_read(b);
    BIO_free(b);
    return x;
}

EVP_PKEY *mf_x509_key_from_pem(const char *text)
{
    BIO *b = BIO_new_mem_buf(text, -1);
    EVP_PKEY *k = mf_x509_key_read(b);
    BIO_free(b);
    return k;
}
