/* The pki secrets engine: a CA of its own that signs short-lived X.509
 * certificates, one per lease, and a CRL of the revoked ones (see pki.h for
 * the config and role formats and the decisions: serial numbers derived from
 * SEQ, validity, CRL retention, no peer SAN).
 *
 * Everything the engine needs to revoke lease SEQ is computable from SEQ and
 * the CA key, so a new leader that never saw the certificate can still put its
 * serial in the CRL. The only state that grows is the revoked set, which is
 * bounded (MF_PKI_REVOKED_MAX) and shrinks as certificates expire.
 */
#include "engines/pki.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/x509util.h"

#define DNS_NAME_MAX 254   /* bytes with NUL (RFC 1035: 253 characters) */
#define IP_TEXT_MAX 46     /* INET6_ADDRSTRLEN */
#define CN_MAX 64          /* RFC 5280 ub-common-name */
#define SERIAL_KEY_LEN 32  /* HMAC-SHA256 key for serial numbers */
#define SERIAL_LABEL "mayfly pki serial key v1"

struct pki_role {
    char name[MF_PKI_ROLE_NAME_MAX];
    size_t dns_len; /* dns[0] is the common name */
    char dns[MF_PKI_NAMES_MAX][DNS_NAME_MAX];
    size_t ip_len;
    char ip[MF_PKI_IPS_MAX][IP_TEXT_MAX];
    int key_rsa;  /* 0: EC, 1: RSA */
    int key_bits; /* EC curve size or RSA modulus size */
    uint64_t default_ttl_ms;
    uint64_t max_ttl_ms;
    int server;
    int client;
};

struct revoked {
    uint64_t seq;
    uint64_t revoked_at_ms;
    uint64_t keep_until_ms; /* the certificate has expired by then */
};

/* Entries by SEQ: sorted up to sorted_len, appended after (maybe with
 * duplicates) until tab_normalize merges them. Bounded by max. */
struct seqtab {
    struct revoked *v;
    size_t len;
    size_t sorted_len;
    size_t cap;
    size_t max;
};

/* The engine behind the opaque struct mf_engine of engine.h. */
struct mf_pki {
    pthread_mutex_t mu; /* roles and the revoked set; the CA is read-only */
    X509 *ca_cert;
    EVP_PKEY *ca_key;
    const EVP_MD *md; /* signature digest matching the CA key's strength */
    uint64_t ca_not_after_ms;
    unsigned char serial_key[SERIAL_KEY_LEN];
    uint64_t max_ttl_ms;
    uint64_t crl_ttl_ms;
    struct pki_role **roles;
    size_t roles_len;
    struct seqtab revoked; /* keep_until: when the certificate has expired */
    struct seqtab issued;  /* keep_until: notAfter of what this process issued */
};

static int tab_append(struct seqtab *t, const struct revoked *r, uint64_t drop_ms);

static struct mf_pki *pki_of(struct mf_engine *e)
{
    MF_ASSERT(e);
    return (struct mf_pki *)(void *)e;
}

/* Writes "pki: what: <first OpenSSL reason>" into err and clears OpenSSL's
 * error queue. OpenSSL's reasons name formats and checks, never key bytes. */
static int ossl_fail(char *err, size_t err_len, int code, const char *what)
{
    unsigned long e = ERR_peek_error();
    char reason[160] = "";
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    return mf_err_set(err, err_len, code, "pki: %s%s%s", what, reason[0] ? ": " : "", reason);
}

void mf_pki_secret_free(char *s)
{
    mf_x509_pem_free(s);
}

/* --- serial numbers ------------------------------------------------------ */

/* K = HMAC-SHA256(private scalar, label): the same on every node that holds the
 * CA key, whatever PEM encoding carried it there. */
static int derive_serial_key(EVP_PKEY *key, unsigned char out[SERIAL_KEY_LEN])
{
    const char *param = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? OSSL_PKEY_PARAM_PRIV_KEY
                                                                  : OSSL_PKEY_PARAM_RSA_D;
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
        return -1;
    int n = BN_num_bytes(bn);
    unsigned char *buf = OPENSSL_secure_malloc(n > 0 ? (size_t)n : 1);
    int rc = -1;
    if (buf && BN_bn2bin(bn, buf) == n) {
        unsigned int out_len = 0;
        if (HMAC(EVP_sha256(), buf, n, (const unsigned char *)SERIAL_LABEL,
                 strlen(SERIAL_LABEL), out, &out_len) && out_len == SERIAL_KEY_LEN)
            rc = 0;
    }
    if (buf)
        OPENSSL_secure_clear_free(buf, (size_t)(n > 0 ? n : 1));
    BN_clear_free(bn);
    return rc;
}

void mf_pki_serial(struct mf_engine *e, uint64_t seq, unsigned char serial[MF_PKI_SERIAL_LEN])
{
    struct mf_pki *p = pki_of(e);
    unsigned char msg[6 + 8];
    memcpy(msg, "serial", 6);
    serial[0] = 0x01; /* positive, fixed length: no leading zero is ever stripped */
    for (int i = 0; i < 8; i++) {
        msg[6 + i] = (unsigned char)(seq >> (56 - 8 * i));
        serial[1 + i] = msg[6 + i];
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    MF_ASSERT(HMAC(EVP_sha256(), p->serial_key, SERIAL_KEY_LEN, msg, sizeof(msg), mac,
                   &mac_len) != NULL && mac_len >= 8);
    memcpy(serial + 9, mac, 8);
}

/* "01:00:...": lowercase hex pairs joined by colons. */
static void serial_hex(const unsigned char *s, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[3 * i] = hex[s[i] >> 4];
        out[3 * i + 1] = hex[s[i] & 15];
        out[3 * i + 2] = i + 1 < len ? ':' : '\0';
    }
}

/* --- JSON helpers -------------------------------------------------------- */

static int check_keys(json_t *obj, const char *const *allowed, const char *what, char *err,
                      size_t err_len)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok)
            return mf_err_set(err, err_len, MF_EINVAL, "pki: unknown %s field \"%.64s\"", what,
                              key);
    }
    return 0;
}

static int get_bool(json_t *obj, const char *key, int dflt, int *out, char *err, size_t err_len)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return mf_err_set(err, err_len, MF_EINVAL, "pki: %s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int get_u64(json_t *obj, const char *key, uint64_t dflt, uint64_t *out, char *err,
                   size_t err_len)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return mf_err_set(err, err_len, MF_EINVAL, "pki: %s must be an integer >= 0", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Overwrites a JSON string's bytes in place before the object is freed
 * (jansson frees without wiping). */
static void json_wipe(json_t *v)
{
    if (v && json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* --- the CA -------------------------------------------------------------- */

static int ca_generate(struct mf_pki *p, const char *cn, uint64_t ttl_ms, char *err,
                       size_t err_len)
{
    uint64_t now = mf_now_wall_ms();
    if (mf_x509_ca_new(NULL, cn, now - MF_PKI_BACKDATE_MS, now + ttl_ms, &p->ca_cert,
                       &p->ca_key) < 0)
        return ossl_fail(err, err_len, MF_ECRYPTO, "CA creation failed");
    return 0;
}

static int ca_load(struct mf_pki *p, const char *cert_text, const char *key_text, char *err,
                   size_t err_len)
{
    X509 *x = mf_x509_cert_from_pem(cert_text);
    if (!x)
        return ossl_fail(err, err_len, MF_EINVAL, "ca_cert_pem is not a PEM certificate");
    EVP_PKEY *key = mf_x509_key_from_pem(key_text);
    if (!key) {
        X509_free(x);
        /* No OpenSSL reason here: keep the text short and free of key data. */
        ERR_clear_error();
        return mf_err_set(err, err_len, MF_EINVAL,
                          "pki: ca_key_pem is not an unencrypted PEM private key");
    }
    int rc = MF_EINVAL;
    const char *why = NULL;
    int type = EVP_PKEY_get_base_id(key);
    uint64_t now = mf_now_wall_ms();
    if (type != EVP_PKEY_EC && type != EVP_PKEY_RSA)
        why = "ca_key_pem: the CA key must be EC or RSA";
    else if (X509_check_private_key(x, key) != 1)
        why = "ca_key_pem does not match ca_cert_pem";
    else if (!(X509_get_extension_flags(x) & EXFLAG_CA))
        why = "ca_cert_pem is not a CA certificate (basicConstraints CA:TRUE missing)";
    else if ((X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) !=
             (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
        why = "ca_cert_pem: keyUsage must allow keyCertSign and cRLSign";
    else if (mf_x509_time_ms(X509_get0_notAfter(x)) <= now)
        why = "ca_cert_pem has expired";
    if (why) {
        ERR_clear_error();
        X509_free(x);
        EVP_PKEY_free(key);
        return mf_err_set(err, err_len, rc, "pki: %s", why);
    }
    p->ca_cert = x;
    p->ca_key = key;
    return 0;
}

static void pki_close(struct mf_engine *e)
{
    if (!e)
        return;
    struct mf_pki *p = pki_of(e);
    X509_free(p->ca_cert);
    EVP_PKEY_free(p->ca_key);
    OPENSSL_cleanse(p->serial_key, sizeof(p->serial_key));
    for (size_t i = 0; i < p->roles_len; i++)
        free(p->roles[i]);
    free(p->roles);
    free(p->revoked.v);
    free(p->issued.v);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static int pki_open(const char *config_json, struct mf_engine **out, char *err, size_t err_len)
{
    static const char *const keys[] = {"generate",    "common_name", "ttl_ms",     "ca_cert_pem",
                                       "ca_key_pem",  "max_ttl_ms",  "crl_ttl_ms", NULL};
    MF_ASSERT(config_json && out);
    *out = NULL;
    json_error_t jerr;
    json_t *cfg = json_loads(config_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!cfg)
        return mf_err_set(err, err_len, MF_EINVAL, "pki: config is not JSON (line %d: %.80s)",
                          jerr.line, jerr.text);
    struct mf_pki *p = NULL;
    json_t *cert_v = json_object_get(cfg, "ca_cert_pem");
    json_t *key_v = json_object_get(cfg, "ca_key_pem");
    int rc, generate = 0;
    uint64_t ttl_ms = 0;
    if (!json_is_object(cfg)) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: config must be a JSON object");
        goto fail;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto fail;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->revoked.max = MF_PKI_REVOKED_MAX;
    p->issued.max = MF_PKI_ISSUED_MAX;
    if ((rc = check_keys(cfg, keys, "config", err, err_len)) < 0 ||
        (rc = get_bool(cfg, "generate", 0, &generate, err, err_len)) < 0 ||
        (rc = get_u64(cfg, "ttl_ms", MF_PKI_CA_TTL_MS_DEFAULT, &ttl_ms, err, err_len)) < 0 ||
        (rc = get_u64(cfg, "max_ttl_ms", MF_PKI_MAX_TTL_MS_DEFAULT, &p->max_ttl_ms, err,
                      err_len)) < 0 ||
        (rc = get_u64(cfg, "crl_ttl_ms", MF_PKI_CRL_TTL_MS_DEFAULT, &p->crl_ttl_ms, err,
                      err_len)) < 0)
        goto fail;
    if (p->max_ttl_ms == 0 || p->crl_ttl_ms == 0) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: max_ttl_ms and crl_ttl_ms must be > 0");
        goto fail;
    }
    if (generate) {
        json_t *cn = json_object_get(cfg, "common_name");
        if (cert_v || key_v) {
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "pki: config has both generate and ca_cert_pem/ca_key_pem");
            goto fail;
        }
        if (!json_is_string(cn) || json_string_length(cn) == 0 ||
            json_string_length(cn) > CN_MAX) {
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "pki: generate needs a common_name of 1 to %d bytes", CN_MAX);
            goto fail;
        }
        if (ttl_ms < 1000 || ttl_ms > UINT64_C(100) * 365 * 86400000) {
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "pki: ttl_ms (CA validity) must be between 1 s and 100 years");
            goto fail;
        }
        if ((rc = ca_generate(p, json_string_value(cn), ttl_ms, err, err_len)) < 0)
            goto fail;
    } else {
        if (json_object_get(cfg, "common_name") || json_object_get(cfg, "ttl_ms")) {
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "pki: common_name and ttl_ms only go with \"generate\": true");
            goto fail;
        }
        if (!json_is_string(cert_v) || !json_is_string(key_v)) {
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "pki: config needs \"generate\": true, or ca_cert_pem and "
                            "ca_key_pem as strings");
            goto fail;
        }
        if ((rc = ca_load(p, json_string_value(cert_v), json_string_value(key_v), err,
                          err_len)) < 0)
            goto fail;
    }
    int bits = EVP_PKEY_get_bits(p->ca_key);
    p->md = EVP_PKEY_get_base_id(p->ca_key) == EVP_PKEY_EC && bits > 256
                ? (bits > 384 ? EVP_sha512() : EVP_sha384())
                : EVP_sha256();
    p->ca_not_after_ms = mf_x509_time_ms(X509_get0_notAfter(p->ca_cert));
    if (derive_serial_key(p->ca_key, p->serial_key) < 0) {
        rc = ossl_fail(err, err_len, MF_ECRYPTO, "cannot derive the serial number key");
        goto fail;
    }
    json_wipe(key_v);
    json_decref(cfg);
    *out = (struct mf_engine *)(void *)p;
    return 0;

fail:
    json_wipe(key_v);
    json_decref(cfg);
    if (p)
        pki_close((struct mf_engine *)(void *)p);
    return rc;
}

/* --- roles --------------------------------------------------------------- */

/* Lowercases a DNS name into out and checks it is a hostname: labels of 1-63
 * letters, digits and inner hyphens, 253 characters at most, no wildcard. */
static int dns_name_norm(const char *in, char out[DNS_NAME_MAX])
{
    size_t len = strlen(in);
    if (len == 0 || len >= DNS_NAME_MAX)
        return -1;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = (char)tolower((unsigned char)in[i]);
        out[i] = c;
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || out[i - 1] == '-')
                return -1;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
            label++;
        } else {
            return -1;
        }
    }
    return 0;
}

static int domain_allows(const char *domain, const char *name, int subdomains)
{
    if (strcmp(domain, name) == 0)
        return 1;
    size_t dl = strlen(domain), nl = strlen(name);
    return subdomains && nl > dl + 1 && name[nl - dl - 1] == '.' &&
           strcmp(name + nl - dl, domain) == 0;
}

static int role_add_dns(struct pki_role *r, const char *text, char domains[][DNS_NAME_MAX],
                        size_t domains_len, int subdomains, const char *field, char *err,
                        size_t err_len)
{
    char name[DNS_NAME_MAX];
    if (dns_name_norm(text, name) < 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "pki: %s \"%.80s\" is not a DNS host name (wildcards, URIs and "
                          "other name types are refused)",
                          field, text);
    int ok = 0;
    for (size_t i = 0; i < domains_len && !ok; i++)
        ok = domain_allows(domains[i], name, subdomains);
    if (!ok)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "pki: %s \"%.80s\" is outside allowed_domains%s", field, name,
                          subdomains ? "" : " (allow_subdomains is false)");
    for (size_t i = 0; i < r->dns_len; i++)
        if (strcmp(r->dns[i], name) == 0)
            return 0; /* already there (e.g. the common name repeated) */
    if (r->dns_len == MF_PKI_NAMES_MAX)
        return mf_err_set(err, err_len, MF_EINVAL, "pki: more than %d names in a role",
                          MF_PKI_NAMES_MAX);
    memcpy(r->dns[r->dns_len++], name, strlen(name) + 1);
    return 0;
}

static int role_parse(const char *role_json, struct pki_role *r, char *err, size_t err_len)
{
    static const char *const keys[] = {
        "allowed_domains", "allow_subdomains", "allow_ip_sans", "common_name",
        "alt_names",       "ip_sans",          "key_type",      "key_bits",
        "default_ttl_ms",  "max_ttl_ms",       "server_flag",   "client_flag",
        NULL};
    json_error_t jerr;
    json_t *j = json_loads(role_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return mf_err_set(err, err_len, MF_EINVAL, "pki: role is not JSON (line %d: %.80s)",
                          jerr.line, jerr.text);
    int rc, subdomains = 0, allow_ip = 0;
    char(*dom)[DNS_NAME_MAX] = calloc(MF_PKI_DOMAINS_MAX, DNS_NAME_MAX);
    size_t dom_len = 0;
    if (!dom) {
        rc = -ENOMEM;
        goto out;
    }
    if (!json_is_object(j)) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: role must be a JSON object");
        goto out;
    }
    if ((rc = check_keys(j, keys, "role", err, err_len)) < 0 ||
        (rc = get_bool(j, "allow_subdomains", 0, &subdomains, err, err_len)) < 0 ||
        (rc = get_bool(j, "allow_ip_sans", 0, &allow_ip, err, err_len)) < 0 ||
        (rc = get_bool(j, "server_flag", 1, &r->server, err, err_len)) < 0 ||
        (rc = get_bool(j, "client_flag", 1, &r->client, err, err_len)) < 0 ||
        (rc = get_u64(j, "default_ttl_ms", 0, &r->default_ttl_ms, err, err_len)) < 0 ||
        (rc = get_u64(j, "max_ttl_ms", 0, &r->max_ttl_ms, err, err_len)) < 0)
        goto out;
    if (!r->server && !r->client) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "pki: server_flag and client_flag are both false (a certificate "
                        "without extendedKeyUsage would be good for anything)");
        goto out;
    }
    if (r->max_ttl_ms && r->default_ttl_ms > r->max_ttl_ms) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: default_ttl_ms exceeds max_ttl_ms");
        goto out;
    }

    json_t *ad = json_object_get(j, "allowed_domains");
    if (!json_is_array(ad) || json_array_size(ad) == 0 ||
        json_array_size(ad) > MF_PKI_DOMAINS_MAX) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "pki: allowed_domains must be an array of 1 to %d domain names",
                        MF_PKI_DOMAINS_MAX);
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ad, i, v)
    {
        if (!json_is_string(v) || dns_name_norm(json_string_value(v), dom[dom_len]) < 0) {
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "pki: allowed_domains[%zu] is not a DNS name (no wildcards)", i);
            goto out;
        }
        dom_len++;
    }

    json_t *cn = json_object_get(j, "common_name");
    if (!json_is_string(cn)) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: role needs a common_name");
        goto out;
    }
    if ((rc = role_add_dns(r, json_string_value(cn), dom, dom_len, subdomains, "common_name",
                           err, err_len)) < 0)
        goto out;
    if (strlen(r->dns[0]) > CN_MAX) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: common_name longer than %d bytes",
                        CN_MAX);
        goto out;
    }
    json_t *alt = json_object_get(j, "alt_names");
    if (alt && !json_is_array(alt)) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: alt_names must be an array of names");
        goto out;
    }
    json_array_foreach(alt, i, v)
    {
        if (!json_is_string(v)) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "pki: alt_names[%zu] is not a string", i);
            goto out;
        }
        if ((rc = role_add_dns(r, json_string_value(v), dom, dom_len, subdomains, "alt_names",
                               err, err_len)) < 0)
            goto out;
    }
    json_t *ips = json_object_get(j, "ip_sans");
    if (ips && (!json_is_array(ips) || json_array_size(ips) > MF_PKI_IPS_MAX)) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: ip_sans must be an array of at most %d",
                        MF_PKI_IPS_MAX);
        goto out;
    }
    if (json_array_size(ips) > 0 && !allow_ip) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: ip_sans given but allow_ip_sans is false");
        goto out;
    }
    json_array_foreach(ips, i, v)
    {
        ASN1_OCTET_STRING *o = json_is_string(v) && json_string_length(v) < IP_TEXT_MAX
                                   ? a2i_IPADDRESS(json_string_value(v))
                                   : NULL;
        ERR_clear_error();
        if (!o) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "pki: ip_sans[%zu] is not an IP address",
                            i);
            goto out;
        }
        ASN1_OCTET_STRING_free(o);
        snprintf(r->ip[r->ip_len++], IP_TEXT_MAX, "%s", json_string_value(v));
    }

    json_t *kt = json_object_get(j, "key_type");
    if (kt && (!json_is_string(kt) || (strcmp(json_string_value(kt), "ec") != 0 &&
                                       strcmp(json_string_value(kt), "rsa") != 0))) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: key_type must be \"ec\" or \"rsa\"");
        goto out;
    }
    r->key_rsa = kt && strcmp(json_string_value(kt), "rsa") == 0;
    uint64_t bits = 0; /* get_u64 sets it; gcc -O3 cannot see that (maybe-uninitialized) */
    if ((rc = get_u64(j, "key_bits", r->key_rsa ? 2048 : 256, &bits, err, err_len)) < 0)
        goto out;
    if (r->key_rsa ? (bits != 2048 && bits != 3072 && bits != 4096)
                   : (bits != 256 && bits != 384 && bits != 521)) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: key_bits must be %s",
                        r->key_rsa ? "2048, 3072 or 4096 for rsa" : "256, 384 or 521 for ec");
        goto out;
    }
    r->key_bits = (int)bits;
    rc = 0;
out:
    free(dom);
    json_decref(j);
    return rc;
}

static struct pki_role *role_find(struct mf_pki *p, const char *name)
{
    for (size_t i = 0; i < p->roles_len; i++)
        if (strcmp(p->roles[i]->name, name) == 0)
            return p->roles[i];
    return NULL;
}

static int pki_role_put(struct mf_engine *e, const char *role, const char *role_json, char *err,
                        size_t err_len)
{
    struct mf_pki *p = pki_of(e);
    MF_ASSERT(role && role_json);
    if (role[0] == '\0' || strlen(role) >= MF_PKI_ROLE_NAME_MAX)
        return mf_err_set(err, err_len, MF_EINVAL, "pki: role name must be 1 to %d bytes",
                          MF_PKI_ROLE_NAME_MAX - 1);
    struct pki_role *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = role_parse(role_json, r, err, err_len);
    if (rc < 0) {
        free(r);
        return rc;
    }
    snprintf(r->name, sizeof(r->name), "%s", role);
    pthread_mutex_lock(&p->mu);
    struct pki_role *old = role_find(p, role);
    if (old) {
        for (size_t i = 0; i < p->roles_len; i++)
            if (p->roles[i] == old)
                p->roles[i] = r;
        free(old);
    } else if (p->roles_len == MF_PKI_ROLES_MAX) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: more than %d roles", MF_PKI_ROLES_MAX);
    } else {
        struct pki_role **n = realloc(p->roles, (p->roles_len + 1) * sizeof(*n));
        if (!n) {
            rc = -ENOMEM;
        } else {
            p->roles = n;
            p->roles[p->roles_len++] = r;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (rc < 0)
        free(r);
    return rc;
}

static int pki_role_ttl(struct mf_engine *e, const char *role, uint64_t *default_ttl_ms,
                        uint64_t *max_ttl_ms)
{
    struct mf_pki *p = pki_of(e);
    pthread_mutex_lock(&p->mu);
    struct pki_role *r = role_find(p, role);
    int rc = MF_ENOTFOUND;
    if (r) {
        /* No certificate outlives the engine's max_ttl_ms: the CRL keeps a
         * revoked serial that long when it does not know the notAfter. */
        uint64_t max = r->max_ttl_ms && r->max_ttl_ms < p->max_ttl_ms ? r->max_ttl_ms
                                                                      : p->max_ttl_ms;
        *max_ttl_ms = max;
        *default_ttl_ms = r->default_ttl_ms < max ? r->default_ttl_ms : max;
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* --- issue --------------------------------------------------------------- */

static EVP_PKEY *leaf_key(const struct pki_role *r)
{
    if (r->key_rsa)
        return EVP_RSA_gen((unsigned int)r->key_bits);
    return EVP_EC_gen(r->key_bits == 256 ? "P-256" : r->key_bits == 384 ? "P-384" : "P-521");
}

/* SANs built as GENERAL_NAMEs (not a config string), DNS and IP only: the
 * engine has no way to put a URI SAN, so no `mayfly://node/` peer identity. */
static int add_sans(X509 *x, const struct pki_role *r)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return -1;
    int rc = -1;
    for (size_t i = 0; i < r->dns_len + r->ip_len; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        if (!g)
            goto out;
        if (i < r->dns_len) {
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            if (!s || ASN1_STRING_set(s, r->dns[i], -1) != 1) {
                ASN1_IA5STRING_free(s);
                GENERAL_NAME_free(g);
                goto out;
            }
            GENERAL_NAME_set0_value(g, GEN_DNS, s);
        } else {
            ASN1_OCTET_STRING *o = a2i_IPADDRESS(r->ip[i - r->dns_len]);
            if (!o) {
                GENERAL_NAME_free(g);
                goto out;
            }
            GENERAL_NAME_set0_value(g, GEN_IPADD, o);
        }
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            goto out;
        }
    }
    rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -1;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

static int cred_add(struct mf_engine_cred *c, const char *key, char *value)
{
    MF_ASSERT(c->fields_len < MF_ENGINE_FIELDS_MAX);
    char *k = strdup(key);
    if (!k || !value) {
        free(k);
        mf_pki_secret_free(value);
        return -ENOMEM;
    }
    c->fields[c->fields_len].key = k;
    c->fields[c->fields_len].value = value;
    c->fields_len++;
    return 0;
}

static int pki_issue(struct mf_engine *e, const char *role, uint64_t seq, uint64_t expire_at_ms,
                     struct mf_engine_cred *out, char *err, size_t err_len)
{
    struct mf_pki *p = pki_of(e);
    MF_ASSERT(role && out);
    memset(out, 0, sizeof(*out));
    struct pki_role *r = malloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    pthread_mutex_lock(&p->mu);
    struct pki_role *found = role_find(p, role);
    if (found)
        memcpy(r, found, sizeof(*r));
    pthread_mutex_unlock(&p->mu);
    if (!found) {
        free(r);
        return mf_err_set(err, err_len, MF_ENOTFOUND, "pki: no role \"%.64s\"", role);
    }

    uint64_t now = mf_now_wall_ms();
    uint64_t max = r->max_ttl_ms && r->max_ttl_ms < p->max_ttl_ms ? r->max_ttl_ms : p->max_ttl_ms;
    int rc = MF_EINVAL;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    if (expire_at_ms / 1000 <= now / 1000) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: expire_at is not in the future");
        goto out;
    }
    if (expire_at_ms - now > max) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "pki: lease TTL %llu ms exceeds max_ttl_ms %llu of role \"%.64s\"",
                        (unsigned long long)(expire_at_ms - now), (unsigned long long)max,
                        role);
        goto out;
    }
    if (expire_at_ms > p->ca_not_after_ms) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "pki: the lease outlives the CA certificate");
        goto out;
    }

    unsigned char serial[MF_PKI_SERIAL_LEN];
    mf_pki_serial(e, seq, serial);
    key = leaf_key(r);
    if (!key) {
        rc = ossl_fail(err, err_len, MF_ECRYPTO, "key generation failed");
        goto out;
    }
    /* The common name is dns[0], an ASCII host name (dns_name_norm). */
    x = mf_x509_new(key, serial, sizeof(serial), now - MF_PKI_BACKDATE_MS, expire_at_ms, NULL,
                    r->dns[0]);
    if (!x || X509_set_issuer_name(x, X509_get_subject_name(p->ca_cert)) != 1 ||
        mf_x509_leaf_exts(x, p->ca_cert,
                          r->key_rsa ? "digitalSignature,keyEncipherment" : "digitalSignature",
                          r->server, r->client) < 0 ||
        add_sans(x, r) < 0 ||
        mf_x509_add_ext(x, p->ca_cert, NID_authority_key_identifier, "keyid,issuer") < 0 ||
        X509_sign(x, p->ca_key, p->md) <= 0) {
        rc = ossl_fail(err, err_len, MF_ECRYPTO, "certificate creation failed");
        goto out;
    }
    char hex[3 * MF_PKI_SERIAL_LEN];
    serial_hex(serial, sizeof(serial), hex);
    char expiration[24];
    snprintf(expiration, sizeof(expiration), "%llu", (unsigned long long)(expire_at_ms / 1000));
    if ((rc = cred_add(out, "certificate", mf_x509_cert_pem(x))) < 0 ||
        (rc = cred_add(out, "private_key", mf_x509_key_pem(key))) < 0 ||
        (rc = cred_add(out, "private_key_type", strdup(r->key_rsa ? "rsa" : "ec"))) < 0 ||
        (rc = cred_add(out, "issuing_ca", mf_x509_cert_pem(p->ca_cert))) < 0 ||
        (rc = cred_add(out, "serial_number", strdup(hex))) < 0 ||
        (rc = cred_add(out, "expiration", strdup(expiration))) < 0) {
        mf_engine_cred_free(out);
        goto out;
    }
    /* Remember the notAfter so a revocation after it adds nothing to the CRL.
     * Best effort: without it, revoke keeps the serial for max_ttl_ms. */
    struct revoked rec = {.seq = seq, .keep_until_ms = expire_at_ms / 1000 * 1000};
    pthread_mutex_lock(&p->mu);
    (void)tab_append(&p->issued, &rec, now - MF_PKI_ISSUED_GRACE_MS);
    pthread_mutex_unlock(&p->mu);
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key); /* OpenSSL wipes private key material when freeing it */
    free(r);
    return rc;
}

static int pki_renew(struct mf_engine *e, const char *role, uint64_t seq, uint64_t expire_at_ms,
                     char *err, size_t err_len)
{
    (void)e, (void)role, (void)seq, (void)expire_at_ms;
    return mf_err_set(err, err_len, MF_EINVAL,
                      "pki: a certificate cannot be renewed (its notAfter is signed); issue a "
                      "new one");
}

/* --- the revoked set and the CRL ----------------------------------------- */

static int revoked_cmp(const void *a, const void *b)
{
    const struct revoked *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts the unsorted tail, merges it into the sorted head, folds duplicates
 * (earliest revoked_at, latest keep_until) and drops entries whose
 * keep_until_ms <= drop_ms (0: keep all). Called with the mutex held. */
static int tab_normalize(struct seqtab *t, uint64_t drop_ms)
{
    size_t n = t->len, head = t->sorted_len;
    if (n == head && drop_ms == 0)
        return 0; /* the usual case: appended in SEQ order */
    if (n == 0)
        return 0;
    struct revoked *tmp = malloc(n * sizeof(*tmp));
    if (!tmp)
        return -ENOMEM;
    qsort(t->v + head, n - head, sizeof(*tmp), revoked_cmp);
    size_t i = 0, j = head, k = 0;
    while (i < head || j < n) {
        struct revoked cur;
        if (j >= n || (i < head && t->v[i].seq <= t->v[j].seq))
            cur = t->v[i++];
        else
            cur = t->v[j++];
        if (k > 0 && tmp[k - 1].seq == cur.seq) {
            struct revoked *m = &tmp[k - 1];
            if (cur.revoked_at_ms < m->revoked_at_ms)
                m->revoked_at_ms = cur.revoked_at_ms;
            if (cur.keep_until_ms > m->keep_until_ms)
                m->keep_until_ms = cur.keep_until_ms;
        } else {
            tmp[k++] = cur;
        }
    }
    size_t w = 0;
    for (size_t r = 0; r < k; r++)
        if (drop_ms == 0 || tmp[r].keep_until_ms > drop_ms)
            tmp[w++] = tmp[r];
    if (w)
        memcpy(t->v, tmp, w * sizeof(*tmp));
    free(tmp);
    t->len = t->sorted_len = w;
    return 0;
}

/* Appends an entry; when the table is full, first drops what expired by
 * drop_ms. @return 0; MF_EUNAVAIL (still full); -ENOMEM. */
static int tab_append(struct seqtab *t, const struct revoked *r, uint64_t drop_ms)
{
    if (t->len == t->max) {
        int rc = tab_normalize(t, drop_ms);
        if (rc < 0)
            return rc;
        if (t->len == t->max)
            return MF_EUNAVAIL;
    }
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        if (cap > t->max)
            cap = t->max;
        struct revoked *n = realloc(t->v, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        t->v = n;
        t->cap = cap;
    }
    if (t->sorted_len == t->len && (t->len == 0 || t->v[t->len - 1].seq < r->seq))
        t->sorted_len++;
    t->v[t->len++] = *r;
    return 0;
}

/* The entry for seq, or NULL (also when there is no memory to sort). */
static const struct revoked *tab_find(struct seqtab *t, uint64_t seq)
{
    if (t->len == 0 || tab_normalize(t, 0) < 0)
        return NULL;
    struct revoked key = {.seq = seq};
    return bsearch(&key, t->v, t->len, sizeof(key), revoked_cmp);
}

static int revoked_add_locked(struct mf_pki *p, uint64_t seq, uint64_t revoked_at_ms,
                              uint64_t not_after_ms)
{
    struct revoked r = {
        .seq = seq,
        .revoked_at_ms = revoked_at_ms,
        .keep_until_ms =
            not_after_ms ? not_after_ms : revoked_at_ms + p->max_ttl_ms + MF_PKI_BACKDATE_MS,
    };
    return tab_append(&p->revoked, &r, mf_now_wall_ms());
}

int mf_pki_revoked_add(struct mf_engine *e, uint64_t seq, uint64_t revoked_at_ms,
                       uint64_t not_after_ms)
{
    struct mf_pki *p = pki_of(e);
    pthread_mutex_lock(&p->mu);
    int rc = revoked_add_locked(p, seq, revoked_at_ms, not_after_ms);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static int pki_revoke(struct mf_engine *e, const uint64_t *seqs, size_t n, int *results,
                      char *err, size_t err_len)
{
    struct mf_pki *p = pki_of(e);
    MF_ASSERT(n == 0 || (seqs && results));
    uint64_t now = mf_now_wall_ms();
    int first = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        /* A certificate this process issued has a known notAfter: if it has
         * passed (the usual revocation, at lease expiry), the certificate is
         * dead already and the CRL need not name it. */
        const struct revoked *is = tab_find(&p->issued, seqs[i]);
        if (is && is->keep_until_ms <= now)
            results[i] = 0;
        else
            results[i] = revoked_add_locked(p, seqs[i], now, is ? is->keep_until_ms : 0);
        if (results[i] < 0 && first == 0)
            first = results[i];
    }
    pthread_mutex_unlock(&p->mu);
    if (first == MF_EUNAVAIL)
        mf_err_set(err, err_len, first,
                   "pki: the revoked set holds %d unexpired entries; retry later",
                   MF_PKI_REVOKED_MAX);
    else if (first < 0)
        mf_err_set(err, err_len, first, "pki: out of memory adding to the revoked set");
    return first;
}

size_t mf_pki_revoked_count(struct mf_engine *e)
{
    struct mf_pki *p = pki_of(e);
    pthread_mutex_lock(&p->mu);
    /* Without memory to fold duplicates, the count may include some. */
    (void)tab_normalize(&p->revoked, 0);
    size_t n = p->revoked.len;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int mf_pki_crl_pem(struct mf_engine *e, uint64_t now_ms, uint64_t crl_number, char **pem)
{
    struct mf_pki *p = pki_of(e);
    MF_ASSERT(pem);
    *pem = NULL;
    /* Snapshot the set so revocations are not held up while the CRL is signed. */
    pthread_mutex_lock(&p->mu);
    int rc = tab_normalize(&p->revoked, now_ms);
    if (rc == 0 && now_ms > MF_PKI_ISSUED_GRACE_MS)
        rc = tab_normalize(&p->issued, now_ms - MF_PKI_ISSUED_GRACE_MS);
    size_t n = p->revoked.len;
    struct revoked *snap = rc == 0 ? malloc((n ? n : 1) * sizeof(*snap)) : NULL;
    if (snap && n)
        memcpy(snap, p->revoked.v, n * sizeof(*snap));
    pthread_mutex_unlock(&p->mu);
    if (!snap)
        return -ENOMEM;

    rc = MF_ECRYPTO;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    BIO *b = BIO_new(BIO_s_mem());
    if (!crl || !t || !num || !b || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(p->ca_cert)) != 1 ||
        mf_x509_time_set_ms(t, now_ms) < 0 || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
        mf_x509_time_set_ms(t, now_ms + p->crl_ttl_ms) < 0 || X509_CRL_set1_nextUpdate(crl, t) != 1)
        goto out;
    for (size_t i = 0; i < n; i++) {
        unsigned char serial[MF_PKI_SERIAL_LEN];
        mf_pki_serial(e, snap[i].seq, serial);
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        int ok = r && sn && mf_x509_serial_set(sn, serial, sizeof(serial)) == 0 &&
                 X509_REVOKED_set_serialNumber(r, sn) == 1 &&
                 mf_x509_time_set_ms(t, snap[i].revoked_at_ms) == 0 &&
                 X509_REVOKED_set_revocationDate(r, t) == 1 && X509_CRL_add0_revoked(crl, r) == 1;
        ASN1_INTEGER_free(sn);
        if (!ok) {
            X509_REVOKED_free(r);
            goto out;
        }
    }
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, p->ca_cert, NULL, NULL, crl, 0);
    X509_EXTENSION *aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier,
                                              "keyid,issuer");
    int ok = aki && X509_CRL_add_ext(crl, aki, -1) == 1;
    X509_EXTENSION_free(aki);
    if (!ok || ASN1_INTEGER_set_uint64(num, crl_number ? crl_number : now_ms) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 || X509_CRL_sort(crl) != 1 ||
        X509_CRL_sign(crl, p->ca_key, p->md) <= 0 || PEM_write_bio_X509_CRL(b, crl) != 1)
        goto out;
    *pem = mf_x509_bio_text(b);
    rc = *pem ? 0 : -ENOMEM;
out:
    if (rc == MF_ECRYPTO)
        ERR_clear_error();
    BIO_free(b);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    free(snap);
    return rc;
}

int mf_pki_revoked_export(struct mf_engine *e, char **json)
{
    struct mf_pki *p = pki_of(e);
    MF_ASSERT(json);
    *json = NULL;
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    pthread_mutex_lock(&p->mu);
    int rc = tab_normalize(&p->revoked, 0);
    for (size_t i = 0; rc == 0 && i < p->revoked.len; i++) {
        const struct revoked *r = &p->revoked.v[i];
        json_t *o = json_pack("{s:I,s:I,s:I}", "seq", (json_int_t)r->seq, "revoked_at_ms",
                              (json_int_t)r->revoked_at_ms, "keep_until_ms",
                              (json_int_t)r->keep_until_ms);
        if (!o || json_array_append_new(arr, o) != 0)
            rc = -ENOMEM;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == 0) {
        *json = json_dumps(arr, JSON_COMPACT);
        rc = *json ? 0 : -ENOMEM;
    }
    json_decref(arr);
    return rc;
}

int mf_pki_revoked_import(struct mf_engine *e, const char *json, char *err, size_t err_len)
{
    struct mf_pki *p = pki_of(e);
    json_error_t jerr;
    json_t *arr = json_loads(json, 0, &jerr);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return mf_err_set(err, err_len, MF_EINVAL, "pki: revoked set is not a JSON array");
    }
    int rc = 0;
    size_t i;
    json_t *o;
    pthread_mutex_lock(&p->mu);
    json_array_foreach(arr, i, o)
    {
        /* Written by mf_pki_revoked_export: seq may exceed INT64_MAX and come
         * back negative through json_int_t; the cast restores it. */
        json_t *seq = json_object_get(o, "seq"), *at = json_object_get(o, "revoked_at_ms"),
               *until = json_object_get(o, "keep_until_ms");
        if (!json_is_integer(seq) || !json_is_integer(at) || !json_is_integer(until) ||
            json_integer_value(at) < 0 || json_integer_value(until) <= 0) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "pki: revoked set entry %zu is malformed",
                            i);
            break;
        }
        rc = revoked_add_locked(p, (uint64_t)json_integer_value(seq),
                                (uint64_t)json_integer_value(at),
                                (uint64_t)json_integer_value(until));
        if (rc < 0) {
            mf_err_set(err, err_len, rc, "pki: cannot add revoked set entry %zu", i);
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    json_decref(arr);
    return rc;
}

/* --- export -------------------------------------------------------------- */

/* Appends s as a JSON string body (PEM needs only \n escaped; the rest is
 * handled for safety). out must have room for 6 * strlen(s). */
static size_t json_escape(char *out, const char *s)
{
    size_t k = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else if (c < 0x20) {
            k += (size_t)sprintf(out + k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    return k;
}

int mf_pki_export(struct mf_engine *e, char **config_json)
{
    struct mf_pki *p = pki_of(e);
    MF_ASSERT(config_json);
    *config_json = NULL;
    char *cert = mf_x509_cert_pem(p->ca_cert);
    char *key = mf_x509_key_pem(p->ca_key);
    int rc = -ENOMEM;
    if (cert && key) {
        /* Built by hand rather than with jansson, whose buffers are freed
         * without being wiped. */
        size_t cap = 6 * (strlen(cert) + strlen(key)) + 160;
        char *out = malloc(cap);
        if (out) {
            size_t k = (size_t)sprintf(out, "{\"ca_cert_pem\":\"");
            k += json_escape(out + k, cert);
            k += (size_t)sprintf(out + k, "\",\"ca_key_pem\":\"");
            k += json_escape(out + k, key);
            k += (size_t)snprintf(out + k, cap - k, "\",\"max_ttl_ms\":%llu,\"crl_ttl_ms\":%llu}",
                                  (unsigned long long)p->max_ttl_ms,
                                  (unsigned long long)p->crl_ttl_ms);
            MF_ASSERT(k < cap);
            *config_json = out;
            rc = 0;
        }
    }
    free(cert);
    mf_pki_secret_free(key);
    return rc;
}

int mf_pki_ca_pem(struct mf_engine *e, char **pem)
{
    MF_ASSERT(pem);
    *pem = mf_x509_cert_pem(pki_of(e)->ca_cert);
    return *pem ? 0 : -ENOMEM;
}

int mf_pki_ca_same(struct mf_engine *e, const char *cert_pem_text)
{
    struct mf_pki *p = pki_of(e);
    X509 *x = mf_x509_cert_from_pem(cert_pem_text);
    if (!x) {
        ERR_clear_error();
        return MF_EINVAL;
    }
    int same = EVP_PKEY_eq(X509_get0_pubkey(x), X509_get0_pubkey(p->ca_cert)) == 1;
    X509_free(x);
    ERR_clear_error();
    return same;
}

/* --- list ---------------------------------------------------------------- */

/* Certificates are not objects in a target system: nothing to reconcile. */
static int pki_list(struct mf_engine *e, void (*cb)(void *arg, uint64_t seq), void *arg,
                    char *err, size_t err_len)
{
    (void)e, (void)cb, (void)arg, (void)err, (void)err_len;
    return 0;
}

const struct mf_engine_ops mf_engine_pki_ops = {
    .type = "pki",
    .open = pki_open,
    .close = pki_close,
    .role_put = pki_role_put,
    .role_ttl = pki_role_ttl,
    .issue = pki_issue,
    .renew = pki_renew,
    .revoke = pki_revoke,
    .list = pki_list,
};
