/* Development CA: ECDSA P-256 keys and X.509 v3 certificates made with
 * OpenSSL's API (see devpki.h), through the building blocks it shares with
 * the pki engine (common/x509util.h). Used by `mayflyd --dev` and the tests. */
#include "net/devpki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/x509util.h"
#include "net/tls.h"

#define MOD "devpki"
#define CA_DAYS 3650
#define LEAF_DAYS_DEFAULT 365
#define DAY_MS UINT64_C(86400000)
#define BACKDATE_MS UINT64_C(3600000) /* notBefore an hour back: clocks differ */
#define ORG "mayfly"                  /* O= of every dev certificate's subject */

static int crypto_fail(const char *what)
{
    char buf[512];
    MF_ERROR(MOD, "%s: %s", what, mf_tls_errors(buf, sizeof(buf)));
    return MF_ECRYPTO;
}

/* A leaf skeleton: a new random serial, validity from an hour ago for days
 * days, subject O=mayfly, CN=cn. */
static X509 *leaf_new(EVP_PKEY *key, const char *cn, int days)
{
    unsigned char serial[MF_X509_RANDOM_SERIAL_LEN];
    if (mf_x509_serial_random(serial) < 0)
        return NULL;
    uint64_t now = mf_now_wall_ms();
    return mf_x509_new(key, serial, sizeof(serial), now - BACKDATE_MS,
                       now + (uint64_t)days * DAY_MS, ORG, cn);
}

int mf_devpki_ca_create(struct mf_devpki_ca *ca, const char *common_name)
{
    MF_ASSERT(ca && common_name);
    memset(ca, 0, sizeof(*ca));
    uint64_t now = mf_now_wall_ms();
    if (mf_x509_ca_new(ORG, common_name, now - BACKDATE_MS, now + CA_DAYS * DAY_MS, &ca->cert,
                       &ca->key) < 0)
        return crypto_fail("CA certificate creation failed");
    return 0;
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
    BIO *b = BIO_new_file(cert_path, "r");
    if (!b) {
        MF_ERROR(MOD, "cannot open %s: %s", cert_path, strerror(errno));
        ERR_clear_error();
        return MF_ECONFIG;
    }
    ca->cert = mf_x509_cert_read(b);
    BIO_free(b);
    b = BIO_new_file(key_path, "r");
    if (!b) {
        MF_ERROR(MOD, "cannot open %s: %s", key_path, strerror(errno));
        ERR_clear_error();
        mf_devpki_ca_close(ca);
        return MF_ECONFIG;
    }
    ca->key = mf_x509_key_read(b);
    BIO_free(b);
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

/* Writes PEM text to path with mode. @return 0; -errno. */
static int write_pem(const char *path, mode_t mode, const char *pem)
{
    FILE *f = open_mode(path, mode);
    int ok = f && fputs(pem, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok)
        return 0;
    int e = errno ? errno : EIO;
    MF_ERROR(MOD, "cannot write %s: %s", path, strerror(e));
    return -e;
}

static int write_cert(X509 *x, const char *path)
{
    char *pem = mf_x509_cert_pem(x);
    if (!pem)
        return crypto_fail("cannot encode certificate");
    int rc = write_pem(path, 0644, pem);
    free(pem);
    return rc;
}

static int write_key(EVP_PKEY *key, const char *path)
{
    char *pem = mf_x509_key_pem(key);
    if (!pem)
        return crypto_fail("cannot encode private key");
    int rc = write_pem(path, 0600, pem);
    mf_x509_pem_free(pem);
    return rc;
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
    int rc = MF_ECRYPTO;
    X509 *x = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        return crypto_fail("key generation failed");
    x = leaf_new(key, req->common_name, req->days > 0 ? req->days : LEAF_DAYS_DEFAULT);
    if (!x || X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
        mf_x509_leaf_exts(x, ca->cert, "digitalSignature", req->server, req->client) < 0 ||
        (sans[0] && mf_x509_add_ext(x, ca->cert, NID_subject_alt_name, sans) < 0) ||
        mf_x509_add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") < 0 ||
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
    return mf_devpki_issue_node_names(ca, node_id, NULL, cert_path, key_path);
}

int mf_devpki_issue_node_names(const struct mf_devpki_ca *ca, uint64_t node_id,
                               const struct mf_devpki_node_names *extra, const char *cert_path,
                               const char *key_path)
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
    for (int i = 0; extra && i < MF_DEVPKI_SANS_MAX - 1; i++) {
        req.dns[i + 1] = extra->dns[i];
        req.ips[i + 1] = extra->ips[i];
    }
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
    return mf_devpki_make_dir_hosts(dir, nodes, NULL);
}

int mf_devpki_make_dir_hosts(const char *dir, int nodes, const struct mf_devpki_hosts *hosts)
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
        rc = mf_devpki_issue_node_names(&ca, (uint64_t)i,
                                        mf_devpki_hosts_find(hosts, (uint64_t)i), c, k);
    }
    if (rc == 0) {
        snprintf(c, sizeof(c), "%s/client.pem", dir);
        snprintf(k, sizeof(k), "%s/client-key.pem", dir);
        rc = mf_devpki_issue_client(&ca, "mayfly client", c, k);
    }
    mf_devpki_ca_close(&ca);
    return rc;
}

/* --- --hosts SPEC ------------------------------------------------------- */

#define DNS_NAME_MAX 253

static int hosts_fail(char *err, size_t err_len, const char *fmt, const char *what)
{
    if (err && err_len)
        snprintf(err, err_len, fmt, what);
    return MF_EINVAL;
}

/* A DNS name a certificate may carry: labels of letters, digits and '-'
 * (not first or last), at most 63 each; "*" only as a whole first label. */
static int dns_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > DNS_NAME_MAX || s[0] == '.' || s[len - 1] == '.')
        return 0;
    if (s[0] == '*') {
        if (s[1] != '.')
            return 0;
        s += 2;
    }
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (ch == '.') {
            if (label == 0 || p[-1] == '-')
                return 0;
            label = 0;
            continue;
        }
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && label > 0))
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && s[strlen(s) - 1] != '-';
}

static int is_ip_literal(const char *s)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
    ERR_clear_error();
    if (!ip)
        return 0;
    ASN1_OCTET_STRING_free(ip);
    return 1;
}

/* One "ID=NAME,NAME" entry, cut in place. */
static int parse_node_names(char *entry, uint64_t max_node_id, struct mf_devpki_hosts *h,
                            char *err, size_t err_len)
{
    char *eq = strchr(entry, '=');
    if (!eq)
        return hosts_fail(err, err_len, "--hosts: '%s' is not ID=NAME[,NAME...]", entry);
    *eq = '\0';
    char *end;
    errno = 0;
    unsigned long long id = strtoull(entry, &end, 10);
    if (!*entry || *end || errno || id == 0 || id > max_node_id || entry[0] == '-')
        return hosts_fail(err, err_len, "--hosts: node id '%s' is not one of the nodes made",
                          entry);
    if (mf_devpki_hosts_find(h, id))
        return hosts_fail(err, err_len, "--hosts: node %s is named twice", entry);
    if (h->len == MF_DEVPKI_HOSTS_MAX)
        return hosts_fail(err, err_len, "--hosts: more than %s nodes", "16");
    struct mf_devpki_node_names *n = &h->nodes[h->len++];
    n->node_id = id;
    size_t dns = 0, ips = 0;
    char *save = NULL;
    int any = 0;
    for (char *name = strtok_r(eq + 1, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        any = 1;
        if (is_ip_literal(name)) {
            if (ips == MF_DEVPKI_SANS_MAX - 1)
                return hosts_fail(err, err_len, "--hosts: too many IP addresses for node %s",
                                  entry);
            n->ips[ips++] = name;
        } else if (dns_name_ok(name)) {
            if (dns == MF_DEVPKI_SANS_MAX - 1)
                return hosts_fail(err, err_len, "--hosts: too many DNS names for node %s",
                                  entry);
            n->dns[dns++] = name;
        } else {
            return hosts_fail(err, err_len,
                              "--hosts: '%s' is neither an IP address nor a DNS name", name);
        }
    }
    if (!any)
        return hosts_fail(err, err_len, "--hosts: node %s has no names", entry);
    return 0;
}

int mf_devpki_hosts_parse(const char *spec, uint64_t max_node_id, struct mf_devpki_hosts *out,
                          char *err, size_t err_len)
{
    MF_ASSERT(spec && out);
    memset(out, 0, sizeof(*out));
    if (strlen(spec) > MF_DEVPKI_HOSTS_SPEC_MAX)
        return hosts_fail(err, err_len, "--hosts: longer than %s characters", "4096");
    out->buf = strdup(spec);
    if (!out->buf)
        return -ENOMEM;
    char *save = NULL;
    int rc = 0;
    for (char *e = strtok_r(out->buf, ";", &save); e && rc == 0; e = strtok_r(NULL, ";", &save))
        rc = parse_node_names(e, max_node_id, out, err, err_len);
    if (rc == 0 && out->len == 0)
        rc = hosts_fail(err, err_len, "--hosts: %s", "no node named");
    if (rc)
        mf_devpki_hosts_free(out);
    return rc;
}

void mf_devpki_hosts_free(struct mf_devpki_hosts *h)
{
    if (!h)
        return;
    free(h->buf);
    memset(h, 0, sizeof(*h));
}

const struct mf_devpki_node_names *mf_devpki_hosts_find(const struct mf_devpki_hosts *h,
                                                        uint64_t node_id)
{
    for (size_t i = 0; h && i < h->len; i++)
        if (h->nodes[i].node_id == node_id)
            return &h->nodes[i];
    return NULL;
}
