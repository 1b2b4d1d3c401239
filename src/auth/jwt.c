/* The jwt auth method: a mount's keys compiled into EVP_PKEYs, compact JWS
 * verification with the algorithm pinned by the key, and role matching
 * (jwt.h has the rules). The token is untrusted input: it is parsed once
 * here, bounded in size, and nothing of it reaches an error message. */
#include "auth/jwt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "common/assert.h"
#include "common/err.h"

#define JWK_FIELD_CHARS_MAX 2048    /* base64url of one JWK number: a 12288-bit modulus */
#define PEM_BYTES_MAX 16384         /* one jwt_validation_pubkeys entry */
#define NUMERIC_DATE_S_MAX 253402300799.0 /* 9999-12-31T23:59:59Z: keeps ms in int64 */
#define ES256_HALF_BYTES 32         /* r and s of a P-256 signature */
#define ED25519_SIG_BYTES 64
#define AUD_ENTRIES_MAX 64          /* entries of a token's aud list */

struct jwt_key {
    EVP_PKEY *pkey;
    char *kid;                      /* NULL: the key has no kid */
    enum mf_jwt_alg alg;            /* pinned by kty/crv, never by a token */
};

struct mf_jwt_mount {
    struct jwt_key keys[MF_JWT_KEYS_MAX];
    size_t keys_len;
    char *bound_issuer;             /* NULL: any issuer */
    unsigned algs;                  /* mask of enum mf_jwt_alg */
    int64_t leeway_ms;
};

struct bound_claim {
    char *name;
    char **values;                  /* globs; any one may match */
    size_t values_len;
};

struct claim_mapping {
    char *claim;
    char *key;
};

struct mf_jwt_role {
    char **auds;
    size_t auds_len;
    char *bound_subject;
    struct bound_claim claims[MF_JWT_BOUND_CLAIMS_MAX];
    size_t claims_len;
    char *user_claim;
    struct claim_mapping maps[MF_JWT_CLAIM_MAPPINGS_MAX];
    size_t maps_len;
    struct mf_ident_token token;
};

static const struct {
    enum mf_jwt_alg alg;
    const char *name;
} alg_names[] = {
    {MF_JWT_RS256, "RS256"},
    {MF_JWT_ES256, "ES256"},
    {MF_JWT_EDDSA, "EdDSA"},
};

static const char *alg_name(enum mf_jwt_alg a)
{
    for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
        if (alg_names[i].alg == a)
            return alg_names[i].name;
    return "?";
}

static enum mf_jwt_alg alg_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
        if (strcmp(alg_names[i].name, s) == 0)
            return alg_names[i].alg;
    return 0;
}

const char *mf_jwt_reason_name(enum mf_jwt_reason r)
{
    switch (r) {
    case MF_JWT_R_OK: return "ok";
    case MF_JWT_R_MALFORMED: return "malformed";
    case MF_JWT_R_TOO_LARGE: return "too large";
    case MF_JWT_R_ALGORITHM: return "algorithm";
    case MF_JWT_R_CRIT: return "critical header";
    case MF_JWT_R_UNKNOWN_KEY: return "unknown key";
    case MF_JWT_R_SIGNATURE: return "signature";
    case MF_JWT_R_MISSING_EXP: return "missing exp";
    case MF_JWT_R_EXPIRED: return "expired";
    case MF_JWT_R_NOT_YET_VALID: return "not yet valid";
    case MF_JWT_R_ISSUER: return "issuer";
    case MF_JWT_R_AUDIENCE: return "audience";
    case MF_JWT_R_SUBJECT: return "subject";
    case MF_JWT_R_CLAIM: return "claim";
    }
    return "unknown";
}

/* Sets *reason and err ("<reason>: <detail>") and returns code. The detail
 * is written by this file only: never token bytes. */
static int refuse(enum mf_jwt_reason *reason, enum mf_jwt_reason r, int code, char *err,
                  size_t err_len, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int refuse(enum mf_jwt_reason *reason, enum mf_jwt_reason r, int code, char *err,
                  size_t err_len, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    *reason = r;
    return mf_err_set(err, err_len, code, "%s: %s", mf_jwt_reason_name(r), detail);
}

/* --- base64url --------------------------------------------------------------- */

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url (RFC 7515 section 2) with OpenSSL's decoder:
 * the alphabet is mapped to standard base64 and padded. Refuses padding,
 * other characters and non-canonical trailing bits (so one signature has one
 * spelling). Returns a malloc'd buffer (n == 0: a valid empty one) or NULL:
 * *bad set when the input is invalid, clear when memory ran out. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len, bool *bad)
{
    *bad = true;
    if (n % 4 == 1)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (b64url_value(s[i]) < 0)
            return NULL;
    if (n % 4 == 2 && (b64url_value(s[n - 1]) & 0x0f) != 0)
        return NULL;
    if (n % 4 == 3 && (b64url_value(s[n - 1]) & 0x03) != 0)
        return NULL;
    *bad = false;
    size_t padded = (n + 3) / 4 * 4;
    char *t = malloc(padded + 1);
    unsigned char *out = malloc(padded / 4 * 3 + 1);
    if (!t || !out) {
        free(t);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    memset(t + n, '=', padded - n);
    int r = n ? EVP_DecodeBlock(out, (const unsigned char *)t, (int)padded) : 0;
    free(t);
    if (r < 0 || (size_t)r < padded - n) {
        free(out);
        *bad = true;
        ERR_clear_error();
        return NULL;
    }
    /* EVP_DecodeBlock counts each '=' as a zero byte. */
    *out_len = (size_t)r - (padded - n);
    return out;
}

/* --- mount config ------------------------------------------------------------ */

static void key_free(struct jwt_key *k)
{
    EVP_PKEY_free(k->pkey);
    free(k->kid);
    memset(k, 0, sizeof(*k));
}

void mf_jwt_mount_free(struct mf_jwt_mount *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->keys_len; i++)
        key_free(&m->keys[i]);
    free(m->bound_issuer);
    free(m);
}

size_t mf_jwt_mount_keys(const struct mf_jwt_mount *m)
{
    return m->keys_len;
}

/* Decodes a base64url JWK member; NULL with err set when absent or invalid. */
static unsigned char *jwk_bytes(json_t *jwk, const char *field, size_t idx, size_t *len,
                                int *rc, char *err, size_t err_len)
{
    const char *s = json_string_value(json_object_get(jwk, field));
    if (!s || strlen(s) > JWK_FIELD_CHARS_MAX) {
        *rc = mf_err_set(err, err_len, MF_EINVAL,
                         "jwks.keys[%zu].%s must be a base64url string", idx, field);
        return NULL;
    }
    bool bad;
    unsigned char *b = b64url_decode(s, strlen(s), len, &bad);
    if (!b)
        *rc = bad ? mf_err_set(err, err_len, MF_EINVAL, "jwks.keys[%zu].%s is not base64url",
                               idx, field)
                  : -ENOMEM;
    else if (*len == 0) {
        free(b);
        b = NULL;
        *rc = mf_err_set(err, err_len, MF_EINVAL, "jwks.keys[%zu].%s is empty", idx, field);
    }
    return b;
}

/* Builds a public key from OSSL_PARAMs; then asks OpenSSL to check it (point
 * on the curve, RSA modulus and exponent sane). */
static int pkey_fromdata(const char *type, OSSL_PARAM *params, EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    int ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
        EVP_PKEY_CTX *c2 = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        ok = c2 && EVP_PKEY_public_check(c2) == 1;
        EVP_PKEY_CTX_free(c2);
    }
    ERR_clear_error();
    if (!ok) {
        EVP_PKEY_free(pk);
        return MF_EINVAL;
    }
    *out = pk;
    return 0;
}

static int jwk_rsa(json_t *jwk, size_t idx, EVP_PKEY **out, char *err, size_t err_len)
{
    int rc = 0;
    size_t nl = 0, el = 0;
    unsigned char *n = jwk_bytes(jwk, "n", idx, &nl, &rc, err, err_len);
    unsigned char *e = n ? jwk_bytes(jwk, "e", idx, &el, &rc, err, err_len) : NULL;
    if (!n || !e)
        goto done;
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        params = OSSL_PARAM_BLD_to_param(bld);
    if (!params)
        rc = MF_ECRYPTO;
    else if (pkey_fromdata("RSA", params, out) != 0)
        rc = mf_err_set(err, err_len, MF_EINVAL, "jwks.keys[%zu] is not a valid RSA key", idx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    ERR_clear_error();
done:
    free(n);
    free(e);
    return rc;
}

static int jwk_ec(json_t *jwk, size_t idx, EVP_PKEY **out, char *err, size_t err_len)
{
    int rc = 0;
    size_t xl = 0, yl = 0;
    unsigned char *x = jwk_bytes(jwk, "x", idx, &xl, &rc, err, err_len);
    unsigned char *y = x ? jwk_bytes(jwk, "y", idx, &yl, &rc, err, err_len) : NULL;
    if (!x || !y)
        goto done;
    if (xl != ES256_HALF_BYTES || yl != ES256_HALF_BYTES) {
        rc = mf_err_set(err, err_len, MF_EINVAL, "jwks.keys[%zu]: x and y must be 32 bytes", idx);
        goto done;
    }
    /* An uncompressed SEC1 point: 0x04 || x || y. */
    unsigned char pub[1 + 2 * ES256_HALF_BYTES];
    pub[0] = 0x04;
    memcpy(pub + 1, x, ES256_HALF_BYTES);
    memcpy(pub + 1 + ES256_HALF_BYTES, y, ES256_HALF_BYTES);
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)),
        OSSL_PARAM_END,
    };
    if (pkey_fromdata("EC", params, out) != 0)
        rc = mf_err_set(err, err_len, MF_EINVAL, "jwks.keys[%zu] is not a point on P-256", idx);
done:
    free(x);
    free(y);
    return rc;
}

static int jwk_okp(json_t *jwk, size_t idx, EVP_PKEY **out, char *err, size_t err_len)
{
    int rc = 0;
    size_t xl = 0;
    unsigned char *x = jwk_bytes(jwk, "x", idx, &xl, &rc, err, err_len);
    if (!x)
        return rc;
    *out = xl == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl) : NULL;
    if (!*out)
        rc = mf_err_set(err, err_len, MF_EINVAL, "jwks.keys[%zu] is not an Ed25519 key", idx);
    ERR_clear_error();
    free(x);
    return rc;
}

/* The algorithm a key allows, from its type alone; 0 if unsupported. Also
 * refuses RSA keys under MF_JWT_RSA_BITS_MIN bits. */
static enum mf_jwt_alg pkey_alg(EVP_PKEY *pk, const char *where, int *rc, char *err,
                                size_t err_len)
{
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pk) < MF_JWT_RSA_BITS_MIN) {
            *rc = mf_err_set(err, err_len, MF_EINVAL,
                             "%s: RSA key of %d bits; at least %d bits required", where,
                             EVP_PKEY_get_bits(pk), MF_JWT_RSA_BITS_MIN);
            return 0;
        }
        return MF_JWT_RS256;
    case EVP_PKEY_EC: {
        char group[64] = "";
        size_t gl = 0;
        if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &gl) == 1 &&
            strcmp(group, "prime256v1") == 0)
            return MF_JWT_ES256;
        ERR_clear_error();
        *rc = mf_err_set(err, err_len, MF_EINVAL, "%s: only the EC curve P-256 is supported",
                         where);
        return 0;
    }
    case EVP_PKEY_ED25519:
        return MF_JWT_EDDSA;
    default:
        *rc = mf_err_set(err, err_len, MF_EINVAL,
                         "%s: unsupported key type (RSA, EC P-256 or Ed25519)", where);
        return 0;
    }
}

static const char *const jwk_fields[] = {"kty", "kid", "alg", "use", "key_ops", "n", "e",
                                         "crv", "x", "y", "x5c", "x5t", "x5t#S256", NULL};
static const char *const jwk_private[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k", NULL};

static int jwk_parse(json_t *jwk, size_t idx, struct jwt_key *k, char *err, size_t err_len)
{
    char where[48];
    snprintf(where, sizeof(where), "jwks.keys[%zu]", idx);
    if (!json_is_object(jwk))
        return mf_err_set(err, err_len, MF_EINVAL, "%s must be an object", where);
    for (size_t i = 0; jwk_private[i]; i++)
        if (json_object_get(jwk, jwk_private[i]))
            return mf_err_set(err, err_len, MF_EINVAL,
                              "%s holds private key material (\"%s\"): give public keys only",
                              where, jwk_private[i]);
    int rc = mf_ident_json_only(jwk, jwk_fields, where, err, err_len);
    if (rc)
        return rc;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    json_t *use = json_object_get(jwk, "use");
    if (use && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
        return mf_err_set(err, err_len, MF_EINVAL, "%s: use must be \"sig\"", where);
    if (!kty)
        return mf_err_set(err, err_len, MF_EINVAL, "%s: kty must be a string", where);
    if (strcmp(kty, "RSA") == 0)
        rc = jwk_rsa(jwk, idx, &k->pkey, err, err_len);
    else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0)
        rc = jwk_ec(jwk, idx, &k->pkey, err, err_len);
    else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0)
        rc = jwk_okp(jwk, idx, &k->pkey, err, err_len);
    else
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "%s: unsupported key (RSA, EC with crv P-256, OKP with crv Ed25519)",
                        where);
    if (rc)
        return rc;
    if (!(k->alg = pkey_alg(k->pkey, where, &rc, err, err_len)))
        return rc;
    json_t *alg = json_object_get(jwk, "alg");
    if (alg && !(json_is_string(alg) && alg_from_name(json_string_value(alg)) == k->alg))
        return mf_err_set(err, err_len, MF_EINVAL, "%s: alg must be %s for this key", where,
                          alg_name(k->alg));
    json_t *kid = json_object_get(jwk, "kid");
    if (kid) {
        const char *s = json_string_value(kid);
        if (!s || !*s || strlen(s) > MF_JWT_KID_BYTES_MAX)
            return mf_err_set(err, err_len, MF_EINVAL, "%s: kid must be a non-empty string",
                              where);
        if (!(k->kid = strdup(s)))
            return -ENOMEM;
    }
    return 0;
}

static int pem_parse(json_t *v, size_t idx, struct jwt_key *k, char *err, size_t err_len)
{
    char where[48];
    snprintf(where, sizeof(where), "jwt_validation_pubkeys[%zu]", idx);
    const char *s = json_string_value(v);
    if (!s || strlen(s) > PEM_BYTES_MAX)
        return mf_err_set(err, err_len, MF_EINVAL, "%s must be a PEM string", where);
    BIO *b = BIO_new_mem_buf(s, (int)strlen(s));
    if (!b)
        return -ENOMEM;
    k->pkey = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (!k->pkey)
        return mf_err_set(err, err_len, MF_EINVAL, "%s is not a PEM public key", where);
    int rc = 0;
    if (!(k->alg = pkey_alg(k->pkey, where, &rc, err, err_len)))
        return rc;
    return 0;
}

static int algs_parse(json_t *cfg, unsigned *algs, char *err, size_t err_len)
{
    json_t *a = json_object_get(cfg, "jwt_supported_algs");
    *algs = MF_JWT_RS256 | MF_JWT_ES256 | MF_JWT_EDDSA;
    if (!a)
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "jwt_supported_algs must be a non-empty list");
    *algs = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        enum mf_jwt_alg x = json_is_string(v) ? alg_from_name(json_string_value(v)) : 0;
        if (!x)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "jwt_supported_algs[%zu]: only RS256, ES256 and EdDSA are supported",
                              i);
        *algs |= x;
    }
    return 0;
}

static int mount_add_key(struct mf_jwt_mount *m, struct jwt_key *k, char *err, size_t err_len)
{
    if (!(m->algs & k->alg))
        return mf_err_set(err, err_len, MF_EINVAL,
                          "a %s key is configured but %s is not in jwt_supported_algs",
                          alg_name(k->alg), alg_name(k->alg));
    if (m->keys_len == MF_JWT_KEYS_MAX)
        return mf_err_set(err, err_len, MF_EINVAL, "more than %d keys", MF_JWT_KEYS_MAX);
    for (size_t i = 0; k->kid && i < m->keys_len; i++)
        if (m->keys[i].kid && strcmp(m->keys[i].kid, k->kid) == 0)
            return mf_err_set(err, err_len, MF_EINVAL, "two keys share the kid \"%.64s\"",
                              k->kid);
    m->keys[m->keys_len++] = *k;
    memset(k, 0, sizeof(*k));
    return 0;
}

static const char *const mount_fields[] = {"jwks", "jwt_validation_pubkeys", "bound_issuer",
                                           "jwt_supported_algs", "leeway_ms", NULL};

static int mount_fill(struct mf_jwt_mount *m, json_t *cfg, char *err, size_t err_len)
{
    int rc = mf_ident_json_only(cfg, mount_fields, "jwt mount config", err, err_len);
    if (rc || (rc = algs_parse(cfg, &m->algs, err, err_len)))
        return rc;
    json_t *lw = json_object_get(cfg, "leeway_ms");
    m->leeway_ms = MF_JWT_LEEWAY_MS_DEFAULT;
    if (lw) {
        if (!json_is_integer(lw) || json_integer_value(lw) < 0 ||
            json_integer_value(lw) > MF_JWT_LEEWAY_MS_MAX)
            return mf_err_set(err, err_len, MF_EINVAL, "leeway_ms must be an integer in 0..%d",
                              MF_JWT_LEEWAY_MS_MAX);
        m->leeway_ms = json_integer_value(lw);
    }
    json_t *iss = json_object_get(cfg, "bound_issuer");
    if (iss) {
        const char *s = json_string_value(iss);
        if (!s || !*s || strlen(s) > MF_IDENT_VALUE_BYTES_MAX)
            return mf_err_set(err, err_len, MF_EINVAL, "bound_issuer must be a non-empty string");
        if (!(m->bound_issuer = strdup(s)))
            return -ENOMEM;
    }
    json_t *jwks = json_object_get(cfg, "jwks");
    if (jwks) {
        json_t *keys = json_is_object(jwks) ? json_object_get(jwks, "keys") : NULL;
        if (!json_is_array(keys) || json_object_size(jwks) != 1)
            return mf_err_set(err, err_len, MF_EINVAL, "jwks must be {\"keys\": [...]}");
        size_t i;
        json_t *v;
        json_array_foreach(keys, i, v) {
            struct jwt_key k = {0};
            if (i >= MF_JWT_KEYS_MAX)
                return mf_err_set(err, err_len, MF_EINVAL, "more than %d keys", MF_JWT_KEYS_MAX);
            rc = jwk_parse(v, i, &k, err, err_len);
            if (rc == 0)
                rc = mount_add_key(m, &k, err, err_len);
            key_free(&k);
            if (rc)
                return rc;
        }
    }
    json_t *pems = json_object_get(cfg, "jwt_validation_pubkeys");
    if (pems) {
        if (!json_is_array(pems))
            return mf_err_set(err, err_len, MF_EINVAL,
                              "jwt_validation_pubkeys must be a list of PEM strings");
        size_t i;
        json_t *v;
        json_array_foreach(pems, i, v) {
            struct jwt_key k = {0};
            if (i >= MF_JWT_KEYS_MAX)
                return mf_err_set(err, err_len, MF_EINVAL, "more than %d keys", MF_JWT_KEYS_MAX);
            rc = pem_parse(v, i, &k, err, err_len);
            if (rc == 0)
                rc = mount_add_key(m, &k, err, err_len);
            key_free(&k);
            if (rc)
                return rc;
        }
    }
    if (m->keys_len == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "no keys: give jwks and/or jwt_validation_pubkeys");
    return 0;
}

int mf_jwt_mount_parse(const char *config, size_t len, struct mf_jwt_mount **out, char *err,
                       size_t err_len)
{
    MF_ASSERT(config && out);
    *out = NULL;
    json_t *cfg = mf_ident_json_object(config, len, "jwt mount config", err, err_len);
    if (!cfg)
        return MF_EINVAL;
    struct mf_jwt_mount *m = calloc(1, sizeof(*m));
    int rc = m ? mount_fill(m, cfg, err, err_len) : -ENOMEM;
    json_decref(cfg);
    if (rc) {
        mf_jwt_mount_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* --- verification ------------------------------------------------------------- */

/* Parses one base64url part of the token as a strict JSON object. */
static json_t *part_json(const char *s, size_t n, const char *what, enum mf_jwt_reason *reason,
                         int *rc, char *err, size_t err_len)
{
    size_t bl = 0;
    bool bad;
    unsigned char *b = b64url_decode(s, n, &bl, &bad);
    if (!b) {
        *rc = bad ? refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                           "the %s is not base64url", what)
                  : -ENOMEM;
        return NULL;
    }
    char inner[160];
    json_t *j = mf_ident_json_object((const char *)b, bl, what, inner, sizeof(inner));
    free(b);
    if (!j)
        *rc = refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len, "%s", inner);
    return j;
}

/* Reads the header: the algorithm the token claims and its kid. */
static int header_check(const struct mf_jwt_mount *m, json_t *h, enum mf_jwt_alg *alg,
                        const char **kid, enum mf_jwt_reason *reason, char *err, size_t err_len)
{
    const char *a = json_string_value(json_object_get(h, "alg"));
    if (!a)
        return refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                      "the header has no alg string");
    if (strcasecmp(a, "none") == 0)
        return refuse(reason, MF_JWT_R_ALGORITHM, MF_EPERM, err, err_len,
                      "unsigned tokens (alg none) are refused");
    if (strncmp(a, "HS", 2) == 0)
        return refuse(reason, MF_JWT_R_ALGORITHM, MF_EPERM, err, err_len,
                      "HMAC algorithms are refused: the mount holds public keys only");
    *alg = alg_from_name(a);
    if (!*alg || !(m->algs & *alg))
        return refuse(reason, MF_JWT_R_ALGORITHM, MF_EPERM, err, err_len,
                      "the token's algorithm is not supported by this mount");
    if (json_object_get(h, "crit"))
        return refuse(reason, MF_JWT_R_CRIT, MF_EPERM, err, err_len,
                      "the header lists critical extensions, none of which is implemented");
    json_t *k = json_object_get(h, "kid");
    *kid = NULL;
    if (k && !(*kid = json_string_value(k)))
        return refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                      "the header's kid is not a string");
    /* jku, x5u, jwk, x5c: deliberately never read (keys come from the mount only). */
    return 0;
}

/* Turns ES256's raw r||s into DER for OpenSSL, refusing r or s equal to 0 or
 * not below the group order first (PITFALLS.md "Psychic signatures"). */
static int es256_der(const unsigned char *sig, size_t sig_len, unsigned char **der,
                     size_t *der_len, enum mf_jwt_reason *reason, char *err, size_t err_len)
{
    if (sig_len != 2 * ES256_HALF_BYTES)
        return refuse(reason, MF_JWT_R_SIGNATURE, MF_EPERM, err, err_len,
                      "an ES256 signature is 64 bytes");
    int rc = MF_ECRYPTO;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *r = BN_bin2bn(sig, ES256_HALF_BYTES, NULL);
    BIGNUM *s = BN_bin2bn(sig + ES256_HALF_BYTES, ES256_HALF_BYTES, NULL);
    ECDSA_SIG *es = NULL;
    if (!g || !r || !s)
        goto out;
    const BIGNUM *order = EC_GROUP_get0_order(g);
    if (BN_is_zero(r) || BN_is_zero(s) || BN_cmp(r, order) >= 0 || BN_cmp(s, order) >= 0) {
        rc = refuse(reason, MF_JWT_R_SIGNATURE, MF_EPERM, err, err_len,
                    "ES256 r or s is zero or not below the curve order");
        goto out;
    }
    if (!(es = ECDSA_SIG_new()) || ECDSA_SIG_set0(es, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by es now */
    *der = NULL;
    int n = i2d_ECDSA_SIG(es, der);
    if (n <= 0)
        goto out;
    *der_len = (size_t)n;
    rc = 0;
out:
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    EC_GROUP_free(g);
    ERR_clear_error();
    return rc;
}

/* 1: the signature verifies under k; 0: it does not; MF_ECRYPTO. */
static int verify_one(const struct jwt_key *k, const unsigned char *input, size_t input_len,
                      const unsigned char *sig, size_t sig_len)
{
    if (k->alg == MF_JWT_RS256 && sig_len != (size_t)EVP_PKEY_get_size(k->pkey))
        return 0;
    if (k->alg == MF_JWT_EDDSA && sig_len != ED25519_SIG_BYTES)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return MF_ECRYPTO;
    /* The digest comes from the key's pinned algorithm; Ed25519 takes none. */
    const EVP_MD *md = k->alg == MF_JWT_EDDSA ? NULL : EVP_sha256();
    int ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, input, input_len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* Tries the key the kid names, or every key pinned to the header's
 * algorithm, and reports which one verified. */
static int signature_check(const struct mf_jwt_mount *m, enum mf_jwt_alg alg, const char *kid,
                           const char *input, size_t input_len, const char *sig_b64,
                           size_t sig_b64_len, size_t *key_index, enum mf_jwt_reason *reason,
                           char *err, size_t err_len)
{
    size_t cand[MF_JWT_KEYS_MAX], ncand = 0;
    for (size_t i = 0; i < m->keys_len; i++) {
        if (kid && !(m->keys[i].kid && strcmp(m->keys[i].kid, kid) == 0))
            continue;
        if (kid && m->keys[i].alg != alg)
            return refuse(reason, MF_JWT_R_ALGORITHM, MF_EPERM, err, err_len,
                          "the token's alg is not the algorithm of the key its kid names (%s)",
                          alg_name(m->keys[i].alg));
        if (m->keys[i].alg == alg)
            cand[ncand++] = i;
    }
    if (ncand == 0)
        return kid ? refuse(reason, MF_JWT_R_UNKNOWN_KEY, MF_EPERM, err, err_len,
                            "no key of this mount has the token's kid")
                   : refuse(reason, MF_JWT_R_ALGORITHM, MF_EPERM, err, err_len,
                            "no key of this mount is a %s key", alg_name(alg));
    size_t sl = 0;
    bool bad;
    unsigned char *sig = b64url_decode(sig_b64, sig_b64_len, &sl, &bad);
    if (!sig)
        return bad ? refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                            "the signature is not base64url")
                   : -ENOMEM;
    unsigned char *der = NULL;
    size_t der_len = 0;
    int rc = 0;
    if (alg == MF_JWT_ES256)
        rc = es256_der(sig, sl, &der, &der_len, reason, err, err_len);
    const unsigned char *use = der ? der : sig;
    size_t use_len = der ? der_len : sl;
    for (size_t c = 0; rc == 0 && c < ncand; c++) {
        int v = verify_one(&m->keys[cand[c]], (const unsigned char *)input, input_len, use,
                           use_len);
        if (v < 0)
            rc = v;
        else if (v == 1) {
            *key_index = cand[c];
            goto done;
        }
    }
    if (rc == 0)
        rc = refuse(reason, MF_JWT_R_SIGNATURE, MF_EPERM, err, err_len,
                    "the signature does not verify under %s",
                    kid ? "the key its kid names" : "any key of the token's algorithm");
done:
    OPENSSL_free(der);
    free(sig);
    return rc;
}

/* A NumericDate (seconds since the epoch, fractions allowed) in ms. */
static bool numeric_date_ms(json_t *v, int64_t *ms)
{
    if (!json_is_number(v))
        return false;
    double s = json_number_value(v);
    if (!isfinite(s) || s < 0 || s > NUMERIC_DATE_S_MAX)
        return false;
    *ms = json_is_integer(v) ? (int64_t)json_integer_value(v) * 1000 : (int64_t)(s * 1000.0);
    return true;
}

static bool string_no_nul(json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int claims_check(const struct mf_jwt_mount *m, json_t *c, int64_t now_ms,
                        int64_t *exp_ms, enum mf_jwt_reason *reason, char *err, size_t err_len)
{
    static const char *const strs[] = {"iss", "sub", NULL};
    for (size_t i = 0; strs[i]; i++) {
        json_t *v = json_object_get(c, strs[i]);
        if (v && !string_no_nul(v))
            return refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                          "claim %s is not a string", strs[i]);
    }
    json_t *aud = json_object_get(c, "aud");
    if (aud && !string_no_nul(aud)) {
        bool ok = json_is_array(aud) && json_array_size(aud) <= AUD_ENTRIES_MAX;
        for (size_t i = 0; ok && i < json_array_size(aud); i++)
            ok = string_no_nul(json_array_get(aud, i));
        if (!ok)
            return refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                          "claim aud is neither a string nor a list of strings");
    }
    json_t *exp = json_object_get(c, "exp");
    int64_t nbf_ms = 0, iat_ms = 0;
    if (!exp)
        return refuse(reason, MF_JWT_R_MISSING_EXP, MF_EPERM, err, err_len,
                      "the token has no exp claim");
    if (!numeric_date_ms(exp, exp_ms))
        return refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                      "claim exp is not a NumericDate");
    json_t *nbf = json_object_get(c, "nbf"), *iat = json_object_get(c, "iat");
    if ((nbf && !numeric_date_ms(nbf, &nbf_ms)) || (iat && !numeric_date_ms(iat, &iat_ms)))
        return refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                      "claim nbf or iat is not a NumericDate");
    if (now_ms >= *exp_ms + m->leeway_ms)
        return refuse(reason, MF_JWT_R_EXPIRED, MF_EPERM, err, err_len,
                      "the token expired %lld ms ago (leeway %lld ms)",
                      (long long)(now_ms - *exp_ms), (long long)m->leeway_ms);
    if (nbf && nbf_ms > now_ms + m->leeway_ms)
        return refuse(reason, MF_JWT_R_NOT_YET_VALID, MF_EPERM, err, err_len,
                      "nbf is %lld ms ahead (leeway %lld ms)", (long long)(nbf_ms - now_ms),
                      (long long)m->leeway_ms);
    if (iat && iat_ms > now_ms + m->leeway_ms)
        return refuse(reason, MF_JWT_R_NOT_YET_VALID, MF_EPERM, err, err_len,
                      "iat is %lld ms ahead (leeway %lld ms)", (long long)(iat_ms - now_ms),
                      (long long)m->leeway_ms);
    if (m->bound_issuer) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        if (!iss || strcmp(iss, m->bound_issuer) != 0)
            return refuse(reason, MF_JWT_R_ISSUER, MF_EPERM, err, err_len,
                          "iss is not the mount's bound_issuer");
    }
    return 0;
}

void mf_jwt_token_clear(struct mf_jwt_token *t)
{
    if (!t)
        return;
    json_decref(t->claims);
    memset(t, 0, sizeof(*t));
}

int mf_jwt_verify(const struct mf_jwt_mount *m, const char *token, size_t token_len,
                  int64_t now_ms, struct mf_jwt_token *out, enum mf_jwt_reason *reason,
                  char *err, size_t err_len)
{
    MF_ASSERT(m && token && out && reason);
    *reason = MF_JWT_R_OK;
    if (token_len > MF_JWT_TOKEN_BYTES_MAX)
        return refuse(reason, MF_JWT_R_TOO_LARGE, MF_EINVAL, err, err_len,
                      "the token is %zu bytes; at most %d are accepted", token_len,
                      MF_JWT_TOKEN_BYTES_MAX);
    const char *d1 = memchr(token, '.', token_len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', token_len - (size_t)(d1 + 1 - token)) : NULL;
    const char *end = token + token_len;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return refuse(reason, MF_JWT_R_MALFORMED, MF_EINVAL, err, err_len,
                      "not a compact JWS (three base64url parts joined by dots)");
    int rc = 0;
    json_t *hdr = part_json(token, (size_t)(d1 - token), "header", reason, &rc, err, err_len);
    if (!hdr)
        return rc;
    enum mf_jwt_alg alg = 0;
    const char *kid = NULL;
    size_t key_index = 0;
    rc = header_check(m, hdr, &alg, &kid, reason, err, err_len);
    if (rc == 0)
        rc = signature_check(m, alg, kid, token, (size_t)(d2 - token), d2 + 1,
                             (size_t)(end - d2 - 1), &key_index, reason, err, err_len);
    json_decref(hdr); /* kid pointed into it: not used past here */
    if (rc)
        return rc;
    /* Only a signed payload is parsed. */
    json_t *claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1), "claims", reason, &rc, err,
                               err_len);
    if (!claims)
        return rc;
    int64_t exp_ms = 0;
    rc = claims_check(m, claims, now_ms, &exp_ms, reason, err, err_len);
    if (rc) {
        json_decref(claims);
        return rc;
    }
    out->claims = claims;
    out->iss = json_string_value(json_object_get(claims, "iss"));
    out->sub = json_string_value(json_object_get(claims, "sub"));
    out->exp_ms = exp_ms;
    out->key_index = key_index;
    out->alg = alg;
    return 0;
}

/* --- roles ------------------------------------------------------------------ */

void mf_jwt_role_free(struct mf_jwt_role *r)
{
    if (!r)
        return;
    mf_ident_strv_free(r->auds, r->auds_len);
    free(r->bound_subject);
    for (size_t i = 0; i < r->claims_len; i++) {
        free(r->claims[i].name);
        mf_ident_strv_free(r->claims[i].values, r->claims[i].values_len);
    }
    free(r->user_claim);
    for (size_t i = 0; i < r->maps_len; i++) {
        free(r->maps[i].claim);
        free(r->maps[i].key);
    }
    mf_ident_token_clear(&r->token);
    free(r);
}

const struct mf_ident_token *mf_jwt_role_token(const struct mf_jwt_role *r)
{
    return &r->token;
}

/* A claim name: plain, or a JSON pointer whose every "~" is "~0" or "~1". */
static bool claim_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MF_IDENT_NAME_BYTES_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20)
            return false;
        if (s[0] == '/' && s[i] == '~' && s[i + 1] != '0' && s[i + 1] != '1')
            return false;
    }
    return true;
}

static int bound_claims_parse(struct mf_jwt_role *r, json_t *bc, char *err, size_t err_len)
{
    if (!bc)
        return 0;
    if (!json_is_object(bc) || json_object_size(bc) > MF_JWT_BOUND_CLAIMS_MAX)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "bound_claims must be an object of at most %d claims",
                          MF_JWT_BOUND_CLAIMS_MAX);
    const char *name;
    json_t *v;
    json_object_foreach(bc, name, v) {
        struct bound_claim *b = &r->claims[r->claims_len];
        if (!claim_name_ok(name))
            return mf_err_set(err, err_len, MF_EINVAL, "bound_claims: bad claim name");
        if (!(b->name = strdup(name)))
            return -ENOMEM;
        r->claims_len++;
        /* One string or a list: wrap a lone string to parse both alike. */
        json_t *wrap = json_is_string(v) ? json_pack("{s:[O]}", "v", v) : json_pack("{s:O}", "v", v);
        if (!wrap)
            return -ENOMEM;
        char inner[128];
        int rc = mf_ident_json_strv(wrap, "v", MF_IDENT_GLOBS_MAX, MF_IDENT_GLOB_BYTES_MAX,
                                    &b->values, &b->values_len, inner, sizeof(inner));
        json_decref(wrap);
        if (rc == 0 && b->values_len == 0)
            rc = MF_EINVAL;
        if (rc)
            return rc == -ENOMEM ? rc
                                 : mf_err_set(err, err_len, MF_EINVAL,
                                              "bound_claims.%.64s must be a non-empty string or "
                                              "list of strings",
                                              name);
    }
    return 0;
}

static int mappings_parse(struct mf_jwt_role *r, json_t *cm, char *err, size_t err_len)
{
    if (!cm)
        return 0;
    if (!json_is_object(cm) || json_object_size(cm) > MF_JWT_CLAIM_MAPPINGS_MAX)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "claim_mappings must be an object of at most %d claims",
                          MF_JWT_CLAIM_MAPPINGS_MAX);
    const char *claim;
    json_t *v;
    json_object_foreach(cm, claim, v) {
        const char *key = json_string_value(v);
        if (!claim_name_ok(claim) || !key || !claim_name_ok(key) || key[0] == '/')
            return mf_err_set(err, err_len, MF_EINVAL,
                              "claim_mappings: each entry maps a claim name to a metadata key");
        for (size_t i = 0; i < r->maps_len; i++)
            if (strcmp(r->maps[i].key, key) == 0)
                return mf_err_set(err, err_len, MF_EINVAL,
                                  "claim_mappings: two claims map to metadata key %.64s", key);
        struct claim_mapping *m = &r->maps[r->maps_len];
        m->claim = strdup(claim);
        m->key = strdup(key);
        r->maps_len++;
        if (!m->claim || !m->key)
            return -ENOMEM;
    }
    return 0;
}

static const char *const role_fields[] = {
    "bound_audiences", "bound_subject",  "bound_claims",     "user_claim", "claim_mappings",
    "token_policies",  "token_ttl_ms",   "token_max_ttl_ms", NULL};

static int role_fill(struct mf_jwt_role *r, json_t *j, char *err, size_t err_len)
{
    int rc = mf_ident_json_only(j, role_fields, "jwt role", err, err_len);
    if (rc == 0)
        rc = mf_ident_json_strv(j, "bound_audiences", MF_IDENT_GLOBS_MAX, MF_IDENT_VALUE_BYTES_MAX,
                                &r->auds, &r->auds_len, err, err_len);
    if (rc == 0 && r->auds_len == 0)
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "bound_audiences is required: a jwt role must name its audience");
    if (rc)
        return rc;
    json_t *bs = json_object_get(j, "bound_subject");
    if (bs) {
        const char *s = json_string_value(bs);
        if (!s || !*s)
            return mf_err_set(err, err_len, MF_EINVAL, "bound_subject must be a non-empty string");
        if (!(r->bound_subject = strdup(s)))
            return -ENOMEM;
    }
    json_t *uc = json_object_get(j, "user_claim");
    const char *ucs = uc ? json_string_value(uc) : "sub";
    if (!ucs || !claim_name_ok(ucs))
        return mf_err_set(err, err_len, MF_EINVAL, "user_claim must be a claim name");
    if (!(r->user_claim = strdup(ucs)))
        return -ENOMEM;
    if ((rc = bound_claims_parse(r, json_object_get(j, "bound_claims"), err, err_len)) ||
        (rc = mappings_parse(r, json_object_get(j, "claim_mappings"), err, err_len)))
        return rc;
    return mf_ident_token_parse(j, &r->token, err, err_len);
}

int mf_jwt_role_parse(const char *json, size_t len, struct mf_jwt_role **out, char *err,
                      size_t err_len)
{
    MF_ASSERT(json && out);
    *out = NULL;
    json_t *j = mf_ident_json_object(json, len, "jwt role", err, err_len);
    if (!j)
        return MF_EINVAL;
    struct mf_jwt_role *r = calloc(1, sizeof(*r));
    int rc = r ? role_fill(r, j, err, err_len) : -ENOMEM;
    json_decref(j);
    if (rc) {
        mf_jwt_role_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* A claim by name, or by JSON pointer into nested objects. Borrowed. */
static json_t *claim_get(json_t *claims, const char *name)
{
    if (name[0] != '/')
        return json_object_get(claims, name);
    json_t *cur = claims;
    const char *p = name;
    while (*p == '/' && cur) {
        char tok[MF_IDENT_NAME_BYTES_MAX + 1];
        size_t n = 0;
        for (p++; *p && *p != '/'; p++) {
            char c = *p;
            if (c == '~') /* claim_name_ok guarantees ~0 or ~1 */
                c = *++p == '1' ? '/' : '~';
            tok[n++] = c;
        }
        tok[n] = '\0';
        cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
    }
    return cur;
}

/* The text a scalar claim is matched and mapped as; NULL for anything else
 * (objects, lists, reals, null, strings holding a NUL). */
static const char *scalar_text(json_t *v, char *buf, size_t n)
{
    if (string_no_nul(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

static bool value_matches(const struct bound_claim *b, json_t *v)
{
    char buf[32];
    const char *s = scalar_text(v, buf, sizeof(buf));
    for (size_t i = 0; s && i < b->values_len; i++)
        if (mf_ident_glob_match(b->values[i], s, MF_IDENT_SEPS_URI))
            return true;
    return false;
}

static bool claim_matches(const struct bound_claim *b, json_t *v)
{
    if (!json_is_array(v))
        return value_matches(b, v);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
        if (value_matches(b, e))
            return true;
    return false;
}

static bool audience_ok(const struct mf_jwt_role *r, json_t *aud)
{
    for (size_t i = 0; i < r->auds_len; i++) {
        if (json_is_string(aud) && strcmp(json_string_value(aud), r->auds[i]) == 0)
            return true;
        for (size_t k = 0; json_is_array(aud) && k < json_array_size(aud); k++)
            if (strcmp(json_string_value(json_array_get(aud, k)), r->auds[i]) == 0)
                return true;
    }
    return false;
}

static int match_fill(const struct mf_jwt_role *r, const struct mf_jwt_token *t,
                      struct mf_ident *id, enum mf_jwt_reason *reason, char *err, size_t err_len)
{
    /* Shapes of aud and sub were checked by mf_jwt_verify. */
    if (!audience_ok(r, json_object_get(t->claims, "aud")))
        return refuse(reason, MF_JWT_R_AUDIENCE, MF_EPERM, err, err_len,
                      "the token's aud names none of the role's bound_audiences");
    if (r->bound_subject && !(t->sub && strcmp(t->sub, r->bound_subject) == 0))
        return refuse(reason, MF_JWT_R_SUBJECT, MF_EPERM, err, err_len,
                      "sub is not the role's bound_subject");
    for (size_t i = 0; i < r->claims_len; i++) {
        json_t *v = claim_get(t->claims, r->claims[i].name);
        if (!v)
            return refuse(reason, MF_JWT_R_CLAIM, MF_EPERM, err, err_len,
                          "claim %.64s is missing from the token", r->claims[i].name);
        if (!claim_matches(&r->claims[i], v))
            return refuse(reason, MF_JWT_R_CLAIM, MF_EPERM, err, err_len,
                          "claim %.64s does not match the role's bound_claims",
                          r->claims[i].name);
    }
    char buf[32];
    json_t *u = claim_get(t->claims, r->user_claim);
    const char *name = u && !json_is_boolean(u) ? scalar_text(u, buf, sizeof(buf)) : NULL;
    if (!name || !*name)
        return refuse(reason, MF_JWT_R_CLAIM, MF_EPERM, err, err_len,
                      "user claim %.64s is missing or not a string", r->user_claim);
    if (strlen(name) > MF_IDENT_VALUE_BYTES_MAX)
        return refuse(reason, MF_JWT_R_CLAIM, MF_ETOOLARGE, err, err_len,
                      "user claim %.64s is longer than %d bytes", r->user_claim,
                      MF_IDENT_VALUE_BYTES_MAX);
    if (!(id->name = strdup(name)))
        return -ENOMEM;
    for (size_t i = 0; i < r->maps_len; i++) {
        json_t *v = claim_get(t->claims, r->maps[i].claim);
        if (!v)
            continue; /* an absent claim maps to no metadata: conditions on it fail closed */
        const char *s = scalar_text(v, buf, sizeof(buf));
        if (!s)
            return refuse(reason, MF_JWT_R_CLAIM, MF_EPERM, err, err_len,
                          "claim %.64s cannot be mapped: not a string, integer or boolean",
                          r->maps[i].claim);
        int rc = mf_ident_meta_add(id, r->maps[i].key, s);
        if (rc == MF_ETOOLARGE)
            return refuse(reason, MF_JWT_R_CLAIM, rc, err, err_len,
                          "claim %.64s is longer than %d bytes", r->maps[i].claim,
                          MF_IDENT_VALUE_BYTES_MAX);
        if (rc)
            return rc;
    }
    return 0;
}

int mf_jwt_role_match(const struct mf_jwt_role *r, const struct mf_jwt_token *t,
                      struct mf_ident *id, enum mf_jwt_reason *reason, char *err,
                      size_t err_len)
{
    MF_ASSERT(r && t && t->claims && id && reason);
    *reason = MF_JWT_R_OK;
    int rc = match_fill(r, t, id, reason, err, err_len);
    if (rc)
        mf_ident_clear(id);
    return rc;
}
