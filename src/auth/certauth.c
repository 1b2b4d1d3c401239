/* The cert auth method: the mount's CAs and CRLs in an X509_STORE, client
 * certificates verified at a given time, and roles matched on URI SANs
 * (SPIFFE IDs) or, when a role asks, the common name (certauth.h has the
 * rules). OpenSSL does every signature and chain check. */
#include "auth/certauth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/assert.h"
#include "common/err.h"

#define CHAIN_DEPTH_MAX 8 /* certificates between the leaf and its anchor */

struct mf_certauth_mount {
    X509_STORE *store;
    X509 *cas[MF_CERTAUTH_CAS_MAX];
    size_t cas_len;
    X509_CRL *crls[MF_CERTAUTH_CRLS_MAX];
    size_t crls_len;
};

struct mf_certauth_role {
    char **uri_globs;
    size_t uri_globs_len;
    char **cn_globs;
    size_t cn_globs_len;
    struct mf_ident_token token;
};

const char *mf_certauth_reason_name(enum mf_certauth_reason r)
{
    switch (r) {
    case MF_CERTAUTH_R_OK: return "ok";
    case MF_CERTAUTH_R_MALFORMED: return "malformed";
    case MF_CERTAUTH_R_NODE_CERT: return "node certificate";
    case MF_CERTAUTH_R_UNTRUSTED: return "untrusted";
    case MF_CERTAUTH_R_EXPIRED: return "expired";
    case MF_CERTAUTH_R_NOT_YET_VALID: return "not yet valid";
    case MF_CERTAUTH_R_REVOKED: return "revoked";
    case MF_CERTAUTH_R_CRL_STALE: return "stale crl";
    case MF_CERTAUTH_R_CRL_MISSING: return "no crl";
    case MF_CERTAUTH_R_NO_MATCH: return "no match";
    }
    return "unknown";
}

static int refuse(enum mf_certauth_reason *reason, enum mf_certauth_reason r, int code,
                  char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int refuse(enum mf_certauth_reason *reason, enum mf_certauth_reason r, int code,
                  char *err, size_t err_len, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    *reason = r;
    return mf_err_set(err, err_len, code, "%s: %s", mf_certauth_reason_name(r), detail);
}

/* --- PEM ------------------------------------------------------------------------ */

/* True when the last PEM read failed only because the input ended. */
static bool pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    return end;
}

/* Reads every certificate of pem into xs (at most max). @return the count,
 * or -1 (malformed or too many), -ENOMEM. */
/* One PEM reader for certificates and CRLs: every object of the kind in
 * `pem`, at most `max` (more, or trailing garbage, is -1, with nothing
 * kept); the number read on success. */
struct pem_kind {
    void *(*read)(BIO *b);
    void (*release)(void *obj);
};

static int read_pem_objects(const char *pem, const struct pem_kind *kind, void **out, size_t max)
{
    size_t len = strlen(pem);
    if (len > MF_CERTAUTH_PEM_BYTES_MAX)
        return -1;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return -ENOMEM;
    size_t n = 0;
    int rc = 0;
    for (;;) {
        void *obj = kind->read(b);
        if (!obj) {
            rc = pem_at_end() ? 0 : -1;
            break;
        }
        if (n == max) {
            kind->release(obj);
            rc = -1;
            break;
        }
        out[n++] = obj;
    }
    BIO_free(b);
    if (rc) {
        while (n)
            kind->release(out[--n]);
        return rc;
    }
    return (int)n;
}

static void *pem_cert(BIO *b) { return PEM_read_bio_X509(b, NULL, NULL, NULL); }
static void free_cert(void *x) { X509_free(x); }
static void *pem_crl(BIO *b) { return PEM_read_bio_X509_CRL(b, NULL, NULL, NULL); }
static void free_crl(void *c) { X509_CRL_free(c); }

#define PEM_OBJECTS_MAX 64
_Static_assert(MF_CERTAUTH_CAS_MAX <= PEM_OBJECTS_MAX && MF_CERTAUTH_CRLS_MAX <= PEM_OBJECTS_MAX &&
                   MF_CERTAUTH_PEERS_MAX <= PEM_OBJECTS_MAX &&
                   MF_CERTAUTH_CHAIN_MAX + 1 <= PEM_OBJECTS_MAX,
               "a PEM list fits the reader's array");

static int read_certs(const char *pem, X509 **xs, size_t max)
{
    static const struct pem_kind kind = {pem_cert, free_cert};
    void *objs[PEM_OBJECTS_MAX];
    int n = read_pem_objects(pem, &kind, objs, max < PEM_OBJECTS_MAX ? max : PEM_OBJECTS_MAX);
    for (int i = 0; i < n; i++)
        xs[i] = objs[i];
    return n;
}

static int read_crls(const char *pem, X509_CRL **cs, size_t max)
{
    static const struct pem_kind kind = {pem_crl, free_crl};
    void *objs[PEM_OBJECTS_MAX];
    int n = read_pem_objects(pem, &kind, objs, max < PEM_OBJECTS_MAX ? max : PEM_OBJECTS_MAX);
    for (int i = 0; i < n; i++)
        cs[i] = objs[i];
    return n;
}

/* --- mount config ----------------------------------------------------------------- */

void mf_certauth_mount_free(struct mf_certauth_mount *m)
{
    if (!m)
        return;
    X509_STORE_free(m->store);
    for (size_t i = 0; i < m->cas_len; i++)
        X509_free(m->cas[i]);
    for (size_t i = 0; i < m->crls_len; i++)
        X509_CRL_free(m->crls[i]);
    free(m);
}

/* parent's key verifies child's signature: parent issued child, whatever the
 * names say. */
static bool issued_by(X509 *child, X509 *parent)
{
    EVP_PKEY *pk = X509_get0_pubkey(parent);
    bool ok = pk && X509_verify(child, pk) == 1;
    ERR_clear_error();
    return ok;
}

static bool same_key(X509 *a, X509 *b)
{
    EVP_PKEY *ka = X509_get0_pubkey(a), *kb = X509_get0_pubkey(b);
    bool same = ka && kb && EVP_PKEY_eq(ka, kb) == 1;
    ERR_clear_error();
    return same;
}

/* Refuses a mount CA that is a peer CA, descends from one or is an ancestor
 * of one, through any certificates given (a transitive closure of "issued";
 * n <= MF_CERTAUTH_CAS_MAX + MF_CERTAUTH_PEERS_MAX). */
static int peer_check(struct mf_certauth_mount *m, const char *peer_ca_pem, char *err,
                      size_t err_len)
{
    X509 *peers[MF_CERTAUTH_PEERS_MAX];
    int np = read_certs(peer_ca_pem, peers, MF_CERTAUTH_PEERS_MAX);
    if (np == -ENOMEM)
        return np;
    if (np <= 0)
        return mf_err_set(err, err_len, MF_EINVAL, "the peer CA PEM does not parse");
    enum { N = MF_CERTAUTH_CAS_MAX + MF_CERTAUTH_PEERS_MAX };
    X509 *all[N];
    size_t n = 0;
    for (size_t i = 0; i < m->cas_len; i++)
        all[n++] = m->cas[i];
    for (int i = 0; i < np; i++)
        all[n++] = peers[i];
    /* up[i][j]: j is i's issuer or an ancestor of it. */
    bool up[N][N];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            up[i][j] = i != j && issued_by(all[i], all[j]);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                up[i][j] = up[i][j] || (up[i][k] && up[k][j]);
    int rc = 0;
    for (size_t i = 0; i < m->cas_len && rc == 0; i++) {
        for (size_t p = m->cas_len; p < n && rc == 0; p++) {
            if (same_key(all[i], all[p]))
                rc = mf_err_set(err, err_len, MF_EINVAL,
                                "ca_pem certificate %zu is the cluster's peer CA: node "
                                "certificates must never log in as clients",
                                i);
            else if (up[i][p])
                rc = mf_err_set(err, err_len, MF_EINVAL,
                                "ca_pem certificate %zu chains to the cluster's peer CA", i);
            else if (up[p][i])
                rc = mf_err_set(err, err_len, MF_EINVAL,
                                "ca_pem certificate %zu issued the cluster's peer CA", i);
        }
    }
    for (int i = 0; i < np; i++)
        X509_free(peers[i]);
    return rc;
}

static int crls_check(struct mf_certauth_mount *m, char *err, size_t err_len)
{
    for (size_t i = 0; i < m->crls_len; i++) {
        bool signed_by_ca = false;
        for (size_t c = 0; c < m->cas_len && !signed_by_ca; c++) {
            EVP_PKEY *pk = X509_get0_pubkey(m->cas[c]);
            signed_by_ca = pk &&
                           X509_NAME_cmp(X509_CRL_get_issuer(m->crls[i]),
                                         X509_get_subject_name(m->cas[c])) == 0 &&
                           X509_CRL_verify(m->crls[i], pk) == 1;
        }
        ERR_clear_error();
        if (!signed_by_ca)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "crl_pem CRL %zu is not signed by a CA of this mount", i);
    }
    return 0;
}

static const char *const mount_fields[] = {"ca_pem", "crl_pem", NULL};

static int mount_fill(struct mf_certauth_mount *m, json_t *cfg, const char *peer_ca_pem,
                      char *err, size_t err_len)
{
    int rc = mf_ident_json_only(cfg, mount_fields, "cert mount config", err, err_len);
    if (rc)
        return rc;
    const char *ca = json_string_value(json_object_get(cfg, "ca_pem"));
    if (!ca)
        return mf_err_set(err, err_len, MF_EINVAL, "ca_pem is required (PEM certificates)");
    int n = read_certs(ca, m->cas, MF_CERTAUTH_CAS_MAX);
    if (n == -ENOMEM)
        return n;
    if (n <= 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "ca_pem must hold 1 to %d PEM certificates", MF_CERTAUTH_CAS_MAX);
    m->cas_len = (size_t)n;
    for (size_t i = 0; i < m->cas_len; i++)
        if (X509_check_ca(m->cas[i]) != 1)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "ca_pem certificate %zu is not a CA (basicConstraints CA:TRUE)",
                              i);
    json_t *crl = json_object_get(cfg, "crl_pem");
    if (crl) {
        if (!json_is_string(crl))
            return mf_err_set(err, err_len, MF_EINVAL, "crl_pem must be a PEM string");
        n = read_crls(json_string_value(crl), m->crls, MF_CERTAUTH_CRLS_MAX);
        if (n == -ENOMEM)
            return n;
        if (n <= 0)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "crl_pem must hold 1 to %d PEM CRLs", MF_CERTAUTH_CRLS_MAX);
        m->crls_len = (size_t)n;
        if ((rc = crls_check(m, err, err_len)))
            return rc;
    }
    if (peer_ca_pem && (rc = peer_check(m, peer_ca_pem, err, err_len)))
        return rc;
    if (!(m->store = X509_STORE_new()))
        return -ENOMEM;
    for (size_t i = 0; i < m->cas_len; i++)
        if (X509_STORE_add_cert(m->store, m->cas[i]) != 1)
            return MF_ECRYPTO;
    for (size_t i = 0; i < m->crls_len; i++)
        if (X509_STORE_add_crl(m->store, m->crls[i]) != 1)
            return MF_ECRYPTO;
    return 0;
}

int mf_certauth_mount_parse(const char *config, size_t len, const char *peer_ca_pem,
                            struct mf_certauth_mount **out, char *err, size_t err_len)
{
    MF_ASSERT(config && out);
    *out = NULL;
    json_t *cfg = mf_ident_json_object(config, len, "cert mount config", err, err_len);
    if (!cfg)
        return MF_EINVAL;
    struct mf_certauth_mount *m = calloc(1, sizeof(*m));
    int rc = m ? mount_fill(m, cfg, peer_ca_pem, err, err_len) : -ENOMEM;
    json_decref(cfg);
    ERR_clear_error();
    if (rc) {
        mf_certauth_mount_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* --- verification ------------------------------------------------------------------ */

void mf_certauth_cert_clear(struct mf_certauth_cert *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->uri_sans_len; i++)
        free(c->uri_sans[i]);
    free(c->common_name);
    memset(c, 0, sizeof(*c));
}

/* Copies an IA5String value, refusing one that holds a NUL or is longer
 * than an identity value may be. */
static char *asn1_text(const ASN1_STRING *s)
{
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s);
    if (!d || n < 0 || n > MF_IDENT_VALUE_BYTES_MAX || memchr(d, '\0', (size_t)n))
        return NULL;
    return strndup((const char *)d, (size_t)n);
}

/* Reads the leaf's URI SANs into out. @return 0; MF_EINVAL (malformed: a
 * duplicated SAN extension, a NUL inside, too many); -ENOMEM. */
static int uri_sans(X509 *leaf, struct mf_certauth_cert *out)
{
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    if (!gens) {
        ERR_clear_error();
        return crit == -1 ? 0 : MF_EINVAL; /* -1: none; -2: duplicated; else bad DER */
    }
    int rc = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        if (out->uri_sans_len == MF_CERTAUTH_SANS_MAX) {
            rc = MF_EINVAL;
            break;
        }
        char *s = asn1_text(g->d.uniformResourceIdentifier);
        if (!s)
            rc = MF_EINVAL;
        else
            out->uri_sans[out->uri_sans_len++] = s;
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

/* The subject's one common name (or none), as UTF-8. */
static int common_name(X509 *leaf, struct mf_certauth_cert *out)
{
    X509_NAME *n = X509_get_subject_name(leaf);
    int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
    if (i < 0)
        return 0;
    if (X509_NAME_get_index_by_NID(n, NID_commonName, i) >= 0)
        return MF_EINVAL; /* two CNs: which one a role meant is a guess */
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
    if (len < 0) {
        ERR_clear_error();
        return MF_EINVAL;
    }
    int rc = 0;
    if (len > MF_IDENT_VALUE_BYTES_MAX || memchr(utf8, '\0', (size_t)len))
        rc = MF_EINVAL;
    else if (!(out->common_name = strndup((const char *)utf8, (size_t)len)))
        rc = -ENOMEM;
    OPENSSL_free(utf8);
    return rc;
}

static int leaf_facts(X509 *leaf, struct mf_certauth_cert *out)
{
    int rc = uri_sans(leaf, out);
    if (rc == 0)
        rc = common_name(leaf, out);
    if (rc)
        return rc;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (!hex)
        return -ENOMEM;
    size_t j = 0;
    for (const char *p = hex; *p && j + 1 < sizeof(out->serial_hex); p++)
        out->serial_hex[j++] = (char)((*p >= 'A' && *p <= 'F') ? *p - 'A' + 'a' : *p);
    out->serial_hex[j] = '\0';
    OPENSSL_free(hex);
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1)
        return MF_EINVAL;
    out->not_after_ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

static bool has_node_san(const struct mf_certauth_cert *c)
{
    size_t pl = strlen(MF_CERTAUTH_NODE_SAN_PREFIX);
    for (size_t i = 0; i < c->uri_sans_len; i++)
        if (strncasecmp(c->uri_sans[i], MF_CERTAUTH_NODE_SAN_PREFIX, pl) == 0)
            return true;
    return false;
}

/* Every CRL of the mount must be current at now: thisUpdate <= now < nextUpdate
 * (OpenSSL's own reading of nextUpdate). */
static int crls_current(const struct mf_certauth_mount *m, int64_t now_ms,
                        enum mf_certauth_reason *reason, char *err, size_t err_len)
{
    if (m->crls_len == 0)
        return 0;
    ASN1_TIME *now = ASN1_TIME_set(NULL, (time_t)(now_ms / 1000));
    if (!now)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < m->crls_len && rc == 0; i++) {
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(m->crls[i]);
        const ASN1_TIME *last = X509_CRL_get0_lastUpdate(m->crls[i]);
        if (next && ASN1_TIME_compare(next, now) <= 0)
            rc = refuse(reason, MF_CERTAUTH_R_CRL_STALE, MF_EPERM, err, err_len,
                        "the mount's CRL %zu is past its nextUpdate: logins are refused "
                        "until a current CRL is configured",
                        i);
        else if (last && ASN1_TIME_compare(last, now) > 0)
            rc = refuse(reason, MF_CERTAUTH_R_CRL_STALE, MF_EPERM, err, err_len,
                        "the mount's CRL %zu is not valid yet (thisUpdate is ahead)", i);
    }
    ASN1_TIME_free(now);
    return rc;
}

static int chain_verify(const struct mf_certauth_mount *m, X509 *leaf, STACK_OF(X509) *chain,
                        int64_t now_ms, enum mf_certauth_reason *reason, char *err,
                        size_t err_len)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, m->store, leaf, chain) != 1) {
        X509_STORE_CTX_free(ctx);
        ERR_clear_error();
        return MF_ECRYPTO;
    }
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(vp, (time_t)(now_ms / 1000));
    X509_VERIFY_PARAM_set_depth(vp, CHAIN_DEPTH_MAX);
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT;
    if (m->crls_len)
        flags |= X509_V_FLAG_CRL_CHECK;
    X509_VERIFY_PARAM_set_flags(vp, flags);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    int ok = X509_verify_cert(ctx);
    int code = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    if (ok == 1)
        return 0;
    const char *why = X509_verify_cert_error_string(code);
    switch (code) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return refuse(reason, MF_CERTAUTH_R_EXPIRED, MF_EPERM, err, err_len, "%s", why);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return refuse(reason, MF_CERTAUTH_R_NOT_YET_VALID, MF_EPERM, err, err_len, "%s", why);
    case X509_V_ERR_CERT_REVOKED:
        return refuse(reason, MF_CERTAUTH_R_REVOKED, MF_EPERM, err, err_len,
                      "the certificate is on the mount's CRL");
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
        return refuse(reason, MF_CERTAUTH_R_CRL_STALE, MF_EPERM, err, err_len, "%s", why);
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        return refuse(reason, MF_CERTAUTH_R_CRL_MISSING, MF_EPERM, err, err_len,
                      "the mount has CRLs but none from the certificate's issuer");
    default:
        return refuse(reason, MF_CERTAUTH_R_UNTRUSTED, MF_EPERM, err, err_len,
                      "the certificate does not verify against the mount's CAs (%s)", why);
    }
}

int mf_certauth_verify(const struct mf_certauth_mount *m, X509 *leaf, STACK_OF(X509) *chain,
                       int64_t now_ms, struct mf_certauth_cert *out,
                       enum mf_certauth_reason *reason, char *err, size_t err_len)
{
    MF_ASSERT(m && leaf && out && reason);
    *reason = MF_CERTAUTH_R_OK;
    if (chain && sk_X509_num(chain) > MF_CERTAUTH_CHAIN_MAX)
        return refuse(reason, MF_CERTAUTH_R_MALFORMED, MF_EINVAL, err, err_len,
                      "more than %d intermediate certificates", MF_CERTAUTH_CHAIN_MAX);
    struct mf_certauth_cert c = {0};
    int rc = leaf_facts(leaf, &c);
    if (rc == MF_EINVAL)
        rc = refuse(reason, MF_CERTAUTH_R_MALFORMED, MF_EINVAL, err, err_len,
                    "the certificate's SANs, common name or dates cannot be read "
                    "unambiguously");
    else if (rc == 0 && has_node_san(&c))
        rc = refuse(reason, MF_CERTAUTH_R_NODE_CERT, MF_EPERM, err, err_len,
                    "a certificate with a " MF_CERTAUTH_NODE_SAN_PREFIX
                    " SAN identifies a node, never a client");
    if (rc == 0)
        rc = crls_current(m, now_ms, reason, err, err_len);
    if (rc == 0)
        rc = chain_verify(m, leaf, chain, now_ms, reason, err, err_len);
    if (rc) {
        mf_certauth_cert_clear(&c);
        return rc;
    }
    *out = c;
    return 0;
}

int mf_certauth_verify_pem(const struct mf_certauth_mount *m, const char *leaf_pem,
                           const char *chain_pem, int64_t now_ms, struct mf_certauth_cert *out,
                           enum mf_certauth_reason *reason, char *err, size_t err_len)
{
    MF_ASSERT(leaf_pem && reason);
    X509 *leaf[1] = {NULL};
    X509 *inter[MF_CERTAUTH_CHAIN_MAX] = {NULL};
    int nl = read_certs(leaf_pem, leaf, 1);
    int ni = 0;
    if (nl == -ENOMEM)
        return nl;
    if (nl == 1 && chain_pem)
        ni = read_certs(chain_pem, inter, MF_CERTAUTH_CHAIN_MAX);
    if (nl != 1 || ni < 0) {
        if (nl == 1)
            X509_free(leaf[0]);
        return ni == -ENOMEM ? ni
                             : refuse(reason, MF_CERTAUTH_R_MALFORMED, MF_EINVAL, err, err_len,
                                      "the certificate PEM does not parse (one leaf, at most "
                                      "%d intermediates)",
                                      MF_CERTAUTH_CHAIN_MAX);
    }
    STACK_OF(X509) *chain = ni > 0 ? sk_X509_new_null() : NULL;
    int rc = 0;
    for (int i = 0; i < ni; i++) {
        if (chain && sk_X509_push(chain, inter[i]) > 0)
            continue;
        rc = -ENOMEM;
        for (int k = i; k < ni; k++)
            X509_free(inter[k]);
        break;
    }
    if (rc == 0)
        rc = mf_certauth_verify(m, leaf[0], chain, now_ms, out, reason, err, err_len);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf[0]);
    return rc;
}

/* --- roles ----------------------------------------------------------------------- */

void mf_certauth_role_free(struct mf_certauth_role *r)
{
    if (!r)
        return;
    mf_ident_strv_free(r->uri_globs, r->uri_globs_len);
    mf_ident_strv_free(r->cn_globs, r->cn_globs_len);
    mf_ident_token_clear(&r->token);
    free(r);
}

const struct mf_ident_token *mf_certauth_role_token(const struct mf_certauth_role *r)
{
    return &r->token;
}

static const char *const role_fields[] = {"allowed_uri_sans", "allowed_common_names",
                                          "token_policies",   "token_ttl_ms",
                                          "token_max_ttl_ms", NULL};

static int role_fill(struct mf_certauth_role *r, json_t *j, char *err, size_t err_len)
{
    int rc = mf_ident_json_only(j, role_fields, "cert role", err, err_len);
    if (rc == 0)
        rc = mf_ident_json_strv(j, "allowed_uri_sans", MF_IDENT_GLOBS_MAX, MF_IDENT_GLOB_BYTES_MAX,
                                &r->uri_globs, &r->uri_globs_len, err, err_len);
    if (rc == 0)
        rc = mf_ident_json_strv(j, "allowed_common_names", MF_IDENT_GLOBS_MAX,
                                MF_IDENT_GLOB_BYTES_MAX, &r->cn_globs, &r->cn_globs_len, err,
                                err_len);
    if (rc == 0 && r->uri_globs_len == 0 && r->cn_globs_len == 0)
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "a cert role needs allowed_uri_sans or allowed_common_names");
    if (rc == 0)
        rc = mf_ident_token_parse(j, &r->token, err, err_len);
    return rc;
}

int mf_certauth_role_parse(const char *json, size_t len, struct mf_certauth_role **out,
                           char *err, size_t err_len)
{
    MF_ASSERT(json && out);
    *out = NULL;
    json_t *j = mf_ident_json_object(json, len, "cert role", err, err_len);
    if (!j)
        return MF_EINVAL;
    struct mf_certauth_role *r = calloc(1, sizeof(*r));
    int rc = r ? role_fill(r, j, err, err_len) : -ENOMEM;
    json_decref(j);
    if (rc) {
        mf_certauth_role_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static bool any_glob(char **globs, size_t n, const char *value, const char *seps)
{
    for (size_t i = 0; i < n; i++)
        if (mf_ident_glob_match(globs[i], value, seps))
            return true;
    return false;
}

static int identity_fill(struct mf_ident *id, const char *name, const char *kind,
                         const char *serial)
{
    if (!(id->name = strdup(name)))
        return -ENOMEM;
    int rc = mf_ident_meta_add(id, kind, name);
    if (rc == 0)
        rc = mf_ident_meta_add(id, "serial", serial);
    return rc;
}

int mf_certauth_role_match(const struct mf_certauth_role *r, const struct mf_certauth_cert *c,
                           struct mf_ident *id, enum mf_certauth_reason *reason, char *err,
                           size_t err_len)
{
    MF_ASSERT(r && c && id && reason);
    *reason = MF_CERTAUTH_R_OK;
    int rc = 1;
    for (size_t i = 0; i < c->uri_sans_len && rc == 1; i++)
        if (any_glob(r->uri_globs, r->uri_globs_len, c->uri_sans[i], MF_IDENT_SEPS_URI))
            rc = identity_fill(id, c->uri_sans[i], "uri_san", c->serial_hex);
    if (rc == 1 && r->cn_globs_len && c->common_name &&
        any_glob(r->cn_globs, r->cn_globs_len, c->common_name, MF_IDENT_SEPS_DNS))
        rc = identity_fill(id, c->common_name, "common_name", c->serial_hex);
    if (rc == 1)
        rc = refuse(reason, MF_CERTAUTH_R_NO_MATCH, MF_EPERM, err, err_len,
                    "no URI SAN%s of the certificate is allowed by the role",
                    r->cn_globs_len ? " or common name" : "");
    if (rc)
        mf_ident_clear(id);
    return rc;
}
