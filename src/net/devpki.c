/* Development CA: ECDSA P-256 keys and X.509 v3 certificates made with
 * OpenSSL's API (see devpki.h). Used by `mayflyd --dev` and the tests. */
#include "net/devpki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "net/tls.h"

#define MOD "devpki"
#define CA_DAYS 3650

static int crypto_fail(const char *what)
{
    char buf[512];
    MF_ERROR(MOD, "%s: %s", what, mf_tls_errors(buf, sizeof(buf)));
    return MF_ECRYPTO;
}

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

/* A random positive 127-bit serial number, as RFC 5280 recommends. */
static int set_serial(X509 *x)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    raw[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (!bn)
        return -1;
    int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate skeleton: version 3, serial, validity, subject, key. */
static X509 *cert_new(EVP_PKEY *key, const char *cn, int days)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 || set_serial(x) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"mayfly", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_pubkey(x, key) != 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int mf_devpki_ca_create(struct mf_devpki_ca *ca, const char *common_name)
{
    MF_ASSERT(ca && common_name);
    memset(ca, 0, sizeof(*ca));
    ca->key = new_key();
    if (!ca->key)
        return crypto_fail("CA key generation failed");
    ca->cert = cert_new(ca->key, common_name, CA_DAYS);
    if (!ca->cert)
        goto fail;
    if (X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert)) != 1 ||
        add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") < 0 ||
        X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0)
        goto fail;
    return 0;

fail:
    mf_devpki_ca_close(ca);
    return crypto_fail("CA certificate creation failed");
}

void mf_devpki_ca_close(struct mf_devpki_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    ca->cert = NULL;
    ca->key = NULL;
}

int mf_devpki_ca_load(struct mf_devpki_ca *ca, const char *cert_path, const char *key_path)
{
    MF_ASSERT(ca && cert_path && key_path);
    memset(ca, 0, sizeof(*ca));
    FILE *f = fopen(cert_path, "r");
    if (!f) {
        MF_ERROR(MOD, "cannot open %s: %s", cert_path, strerror(errno));
        return MF_ECONFIG;
    }
    ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(key_path, "r");
    if (!f) {
        MF_ERROR(MOD, "cannot open %s: %s", key_path, strerror(errno));
        mf_devpki_ca_close(ca);
        return MF_ECONFIG;
    }
    ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!ca->cert || !ca->key || X509_check_private_key(ca->cert, ca->key) != 1) {
        mf_devpki_ca_close(ca);
        crypto_fail("cannot load CA");
        return MF_ECONFIG;
    }
    return 0;
}

/* Opens `path` for writing with `mode`, forcing the mode even if the file
 * existed, so a key never sits in a world-readable file. */
static FILE *open_mode(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return NULL;
    if (fchmod(fd, mode) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

static int write_cert(X509 *x, const char *path)
{
    FILE *f = open_mode(path, 0644);
    if (!f) {
        int e = errno;
        MF_ERROR(MOD, "cannot write %s: %s", path, strerror(e));
        return -e;
    }
    int ok = PEM_write_X509(f, x) == 1;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : crypto_fail("cannot write certificate");
}

static int write_key(EVP_PKEY *key, const char *path)
{
    FILE *f = open_mode(path, 0600);
    if (!f) {
        int e = errno;
        MF_ERROR(MOD, "cannot write %s: %s", path, strerror(e));
        return -e;
    }
    int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : crypto_fail("cannot write private key");
}

int mf_devpki_ca_write(const struct mf_devpki_ca *ca, const char *cert_path,
                       const char *key_path)
{
    MF_ASSERT(ca && ca->cert && ca->key);
    int rc = write_cert(ca->cert, cert_path);
    if (rc == 0)
        rc = write_key(ca->key, key_path);
    return rc;
}

/* Appends ",<kind>:<value>" to a SAN list held in buf. */
static int san_append(char *buf, size_t len, const char *kind, const char *value)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, len - used, "%s%s:%s", used ? "," : "", kind, value);
    return (n < 0 || (size_t)n >= len - used) ? -1 : 0;
}

int mf_devpki_issue(const struct mf_devpki_ca *ca, const struct mf_devpki_req *req,
                    const char *cert_path, const char *key_path)
{
    MF_ASSERT(ca && ca->cert && ca->key && req && cert_path && key_path);
    if (!req->common_name || !*req->common_name)
        return MF_EINVAL;
    char sans[1024] = "";
    for (int i = 0; i < MF_DEVPKI_SANS_MAX && req->dns[i]; i++)
        if (san_append(sans, sizeof(sans), "DNS", req->dns[i]) < 0)
            return MF_EINVAL;
    for (int i = 0; i < MF_DEVPKI_SANS_MAX && req->ips[i]; i++) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(req->ips[i]);
        if (!ip) {
            ERR_clear_error();
            return MF_EINVAL;
        }
        ASN1_OCTET_STRING_free(ip);
        if (san_append(sans, sizeof(sans), "IP", req->ips[i]) < 0)
            return MF_EINVAL;
    }
    if (req->node_id) {
        char uri[64];
        snprintf(uri, sizeof(uri), MF_TLS_NODE_URI_PREFIX "%llu",
                 (unsigned long long)req->node_id);
        if (san_append(sans, sizeof(sans), "URI", uri) < 0)
            return MF_EINVAL;
    }
    char eku[64] = "";
    if (req->server)
        strcat(eku, "serverAuth");
    if (req->client)
        strcat(eku, eku[0] ? ",clientAuth" : "clientAuth");

    int rc = MF_ECRYPTO;
    X509 *x = NULL;
    EVP_PKEY *key = new_key();
    if (!key)
        return crypto_fail("key generation failed");
    x = cert_new(key, req->common_name, req->days > 0 ? req->days : 365);
    if (!x || X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
        add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") < 0 ||
        (eku[0] && add_ext(x, ca->cert, NID_ext_key_usage, eku) < 0) ||
        (sans[0] && add_ext(x, ca->cert, NID_subject_alt_name, sans) < 0) ||
        add_ext(x, ca->cert, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") < 0 ||
        X509_sign(x, ca->key, EVP_sha256()) <= 0) {
        rc = crypto_fail("certificate creation failed");
        goto out;
    }
    rc = write_cert(x, cert_path);
    if (rc == 0)
        rc = write_key(key, key_path);
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int mf_devpki_issue_node(const struct mf_devpki_ca *ca, uint64_t node_id,
                         const char *cert_path, const char *key_path)
{
    MF_ASSERT(node_id > 0);
    char cn[32];
    snprintf(cn, sizeof(cn), "node-%llu", (unsigned long long)node_id);
    struct mf_devpki_req req = {
        .common_name = cn,
        .node_id = node_id,
        .dns = {"localhost"},
        .ips = {"127.0.0.1"},
        .server = 1,
        .client = 1,
    };
    return mf_devpki_issue(ca, &req, cert_path, key_path);
}

int mf_devpki_issue_client(const struct mf_devpki_ca *ca, const char *common_name,
                           const char *cert_path, const char *key_path)
{
    struct mf_devpki_req req = {.common_name = common_name, .client = 1};
    return mf_devpki_issue(ca, &req, cert_path, key_path);
}

int mf_devpki_make_dir(const char *dir, int nodes)
{
    MF_ASSERT(dir && nodes >= 0);
    char c[4096], k[4096];
    struct mf_devpki_ca ca;
    int rc = mf_devpki_ca_create(&ca, "mayfly dev CA");
    if (rc < 0)
        return rc;
    snprintf(c, sizeof(c), "%s/ca.pem", dir);
    snprintf(k, sizeof(k), "%s/ca-key.pem", dir);
    rc = mf_devpki_ca_write(&ca, c, k);
    for (int i = 1; rc == 0 && i <= nodes; i++) {
        snprintf(c, sizeof(c), "%s/node-%d.pem", dir, i);
        snprintf(k, sizeof(k), "%s/node-%d-key.pem", dir, i);
        rc = mf_devpki_issue_node(&ca, (uint64_t)i, c, k);
    }
    if (rc == 0) {
        snprintf(c, sizeof(c), "%s/client.pem", dir);
        snprintf(k, sizeof(k), "%s/client-key.pem", dir);
        rc = mf_devpki_issue_client(&ca, "mayfly client", c, k);
    }
    mf_devpki_ca_close(&ca);
    return rc;
}
