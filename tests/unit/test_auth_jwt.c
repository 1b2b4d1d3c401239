/* The jwt auth method (src/auth/jwt.h): mount configs, compact JWS
 * verification and role matching, with every key and token made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth/ident.h"
#include "auth/jwt.h"
#include "auth_testkit.h"
#include "common/err.h"

#define ISS "https://issuer.test"
#define MARKER "MARKER-7f3a" /* a claim value that must never reach an error message */

static EVP_PKEY *rsa, *rsa_b, *ec, *ed, *rsa1024;

static int setup(void **state)
{
    (void)state;
    rsa = tk_rsa(2048);
    rsa_b = tk_rsa(2048);
    ec = tk_ec();
    ed = tk_ed25519();
    rsa1024 = tk_rsa(1024);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_b);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa1024);
    return 0;
}

/* A mount config text: JWKs for keys[i] with kids[i] (NULL: no kid), plus
 * `extra` fields (may be ""), bound to ISS. */
static char *config_text(EVP_PKEY **keys, const char **kids, size_t n, const char *extra)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, tk_jwk(keys[i], kids[i]));
    json_t *cfg = json_pack("{s:{s:o}, s:s}", "jwks", "keys", arr, "bound_issuer", ISS);
    char *body = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    body[strlen(body) - 1] = '\0'; /* drop the closing brace to append extra */
    char *s = tk_fmt("%s%s}", body, extra);
    free(body);
    return s;
}

static struct mf_jwt_mount *mount_of(EVP_PKEY **keys, const char **kids, size_t n,
                                     const char *extra)
{
    char *cfg = config_text(keys, kids, n, extra);
    struct mf_jwt_mount *m = NULL;
    char err[256] = "";
    int rc = mf_jwt_mount_parse(cfg, strlen(cfg), &m, err, sizeof(err));
    if (rc)
        fprintf(stderr, "mount_parse: %s\n", err);
    assert_int_equal(rc, 0);
    free(cfg);
    return m;
}

/* The standard claims, valid at TK_NOW_MS, plus `extra` (",\"k\":v..." or ""). */
static char *claims(const char *extra)
{
    return tk_fmt("{\"iss\":\"" ISS "\",\"sub\":\"system:serviceaccount:payments:api\","
                  "\"aud\":\"mayfly\",\"exp\":%lld,\"iat\":%lld,\"note\":\"" MARKER "\"%s}",
                  TK_NOW_S + 600, TK_NOW_S - 10, extra);
}

static char *sign(EVP_PKEY *k, const char *alg, const char *kid, const char *payload)
{
    char *h = kid ? tk_fmt("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid)
                  : tk_fmt("{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    char *t = tk_sign(k, alg, h, payload);
    free(h);
    return t;
}

static void expect_ok(const struct mf_jwt_mount *m, const char *token, int64_t now_ms,
                      struct mf_jwt_token *out)
{
    enum mf_jwt_reason reason = 99;
    char err[256] = "";
    int rc = mf_jwt_verify(m, token, strlen(token), now_ms, out, &reason, err, sizeof(err));
    if (rc)
        fprintf(stderr, "verify: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(reason, MF_JWT_R_OK);
}

/* Refused with `want` and `code`; the message starts with the reason's name
 * and holds neither a piece of the token nor a claim value. */
static void expect_refused_at(const struct mf_jwt_mount *m, const char *token, int64_t now_ms,
                              enum mf_jwt_reason want, int code)
{
    struct mf_jwt_token t = {0};
    enum mf_jwt_reason reason = MF_JWT_R_OK;
    char err[256] = "";
    int rc = mf_jwt_verify(m, token, strlen(token), now_ms, &t, &reason, err, sizeof(err));
    if (reason != want)
        fprintf(stderr, "got reason %s: %s\n", mf_jwt_reason_name(reason), err);
    assert_int_equal(rc, code);
    assert_int_equal(reason, want);
    assert_null(t.claims);
    const char *name = mf_jwt_reason_name(want);
    assert_int_equal(strncmp(err, name, strlen(name)), 0);
    assert_null(strstr(err, MARKER));
    char piece[13];
    size_t tl = strlen(token);
    for (size_t off = 0; tl >= sizeof(piece) && off + sizeof(piece) - 1 <= tl; off += 8) {
        memcpy(piece, token + off, sizeof(piece) - 1);
        piece[sizeof(piece) - 1] = '\0';
        assert_null(strstr(err, piece));
    }
}

static void expect_refused(const struct mf_jwt_mount *m, const char *token,
                           enum mf_jwt_reason want, int code)
{
    expect_refused_at(m, token, TK_NOW_MS, want, code);
}

static int config_err(const char *cfg, char *err, size_t err_len)
{
    struct mf_jwt_mount *m = NULL;
    int rc = mf_jwt_mount_parse(cfg, strlen(cfg), &m, err, err_len);
    assert_true(rc != 0);
    assert_null(m);
    return rc;
}

/* A valid RS256 token with a kid verifies and reports its claims and key. */
static void test_auth_jwt_rs256_valid(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {ec, rsa};
    const char *kids[] = {"e1", "r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 2, "");
    assert_int_equal(mf_jwt_mount_keys(m), 2);
    char *c = claims("");
    char *tok = sign(rsa, "RS256", "r1", c);
    struct mf_jwt_token t = {0};
    expect_ok(m, tok, TK_NOW_MS, &t);
    assert_int_equal(t.key_index, 1);
    assert_int_equal(t.alg, MF_JWT_RS256);
    assert_string_equal(t.iss, ISS);
    assert_string_equal(t.sub, "system:serviceaccount:payments:api");
    assert_int_equal(t.exp_ms, (TK_NOW_S + 600) * 1000);
    mf_jwt_token_clear(&t);
    assert_null(t.claims);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* A valid ES256 token (raw r||s) without a kid is tried against the EC key. */
static void test_auth_jwt_es256_valid(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa, ec};
    const char *kids[] = {"r1", "e1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 2, "");
    char *c = claims("");
    char *tok = sign(ec, "ES256", NULL, c);
    struct mf_jwt_token t = {0};
    expect_ok(m, tok, TK_NOW_MS, &t);
    assert_int_equal(t.key_index, 1);
    assert_int_equal(t.alg, MF_JWT_ES256);
    mf_jwt_token_clear(&t);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* A valid EdDSA token verifies against a key given as a PEM in
 * jwt_validation_pubkeys. */
static void test_auth_jwt_eddsa_valid_pem(void **state)
{
    (void)state;
    char *pem = tk_pubkey_pem(ed);
    json_t *cfg = json_pack("{s:[s], s:s}", "jwt_validation_pubkeys", pem, "bound_issuer", ISS);
    char *txt = json_dumps(cfg, 0);
    struct mf_jwt_mount *m = NULL;
    char err[256];
    assert_int_equal(mf_jwt_mount_parse(txt, strlen(txt), &m, err, sizeof(err)), 0);
    char *c = claims("");
    char *tok = sign(ed, "EdDSA", NULL, c);
    struct mf_jwt_token t = {0};
    expect_ok(m, tok, TK_NOW_MS, &t);
    assert_int_equal(t.alg, MF_JWT_EDDSA);
    mf_jwt_token_clear(&t);
    /* An EdDSA token with a kid the PEM key lacks names an unknown key. */
    char *tok2 = sign(ed, "EdDSA", "nope", c);
    expect_refused(m, tok2, MF_JWT_R_UNKNOWN_KEY, MF_EPERM);
    free(tok2);
    free(tok);
    free(c);
    free(txt);
    free(pem);
    json_decref(cfg);
    mf_jwt_mount_free(m);
}

/* alg none, in any case, is refused as an algorithm, signature or not. */
static void test_auth_jwt_alg_none_refused(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = claims("");
    char *tok = tk_jws_join("{\"alg\":\"none\"}", c, (const unsigned char *)"", 0);
    expect_refused(m, tok, MF_JWT_R_ALGORITHM, MF_EPERM);
    free(tok);
    tok = tk_jws_join("{\"alg\":\"NoNe\",\"kid\":\"r1\"}", c, (const unsigned char *)"x", 1);
    expect_refused(m, tok, MF_JWT_R_ALGORITHM, MF_EPERM);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* HS256 with the RSA public key's PEM (and DER) bytes as the HMAC key is
 * refused: the algorithm comes from the key, never from the header. */
static void test_auth_jwt_hs256_with_public_key_refused(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = claims("");
    char *pem = tk_pubkey_pem(rsa);
    char *tok = tk_sign_hs256((unsigned char *)pem, strlen(pem),
                              "{\"alg\":\"HS256\",\"kid\":\"r1\"}", c);
    expect_refused(m, tok, MF_JWT_R_ALGORITHM, MF_EPERM);
    free(tok);
    unsigned char *der = NULL;
    int dl = i2d_PUBKEY(rsa, &der);
    assert_true(dl > 0);
    tok = tk_sign_hs256(der, (size_t)dl, "{\"alg\":\"HS256\"}", c);
    expect_refused(m, tok, MF_JWT_R_ALGORITHM, MF_EPERM);
    free(tok);
    OPENSSL_free(der);
    free(pem);
    free(c);
    mf_jwt_mount_free(m);
}

/* The header's alg must be the pinned algorithm of the key: RS256 naming an
 * EC key's kid, an ES256 token on a mount with only RSA keys, and an
 * unsupported alg are refused as algorithm. */
static void test_auth_jwt_alg_pinned_by_key(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa, ec};
    const char *kids[] = {"r1", "e1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 2, "");
    char *c = claims("");
    char *tok = sign(rsa, "RS256", "e1", c);
    expect_refused(m, tok, MF_JWT_R_ALGORITHM, MF_EPERM);
    free(tok);
    tok = tk_jws_join("{\"alg\":\"RS512\",\"kid\":\"r1\"}", c, (const unsigned char *)"sig", 3);
    expect_refused(m, tok, MF_JWT_R_ALGORITHM, MF_EPERM);
    free(tok);
    mf_jwt_mount_free(m);

    EVP_PKEY *only_rsa[] = {rsa};
    m = mount_of(only_rsa, kids, 1, "");
    tok = sign(ec, "ES256", NULL, c);
    expect_refused(m, tok, MF_JWT_R_ALGORITHM, MF_EPERM);
    free(tok);
    mf_jwt_mount_free(m);

    /* jwt_supported_algs narrows the mount: an EC key is then refused at
     * config, and RS256 only is accepted. */
    EVP_PKEY *both[] = {rsa, ec};
    char *cfg = config_text(both, kids, 2, ",\"jwt_supported_algs\":[\"RS256\"]");
    char err[256];
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "ES256"));
    free(cfg);
    free(c);
}

/* A kid that no key has is refused as an unknown key. */
static void test_auth_jwt_unknown_kid(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = claims("");
    char *tok = sign(rsa, "RS256", "r2", c);
    expect_refused(m, tok, MF_JWT_R_UNKNOWN_KEY, MF_EPERM);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* A signature by another key, a tampered payload, and a token whose header
 * offers its own key (jwk, jku, x5u, x5c: ignored) are refused as signature. */
static void test_auth_jwt_bad_signature(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa, ec};
    const char *kids[] = {"r1", "e1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 2, "");
    char *c = claims("");
    char *tok = sign(rsa_b, "RS256", "r1", c);
    expect_refused(m, tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    free(tok);
    tok = sign(rsa_b, "RS256", NULL, c);
    expect_refused(m, tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    free(tok);

    /* Swap the payload of a good token for another one. */
    tok = sign(rsa, "RS256", "r1", c);
    char *c2 = claims(",\"admin\":true");
    char *p2 = tk_b64url_str(c2);
    char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    *d1 = '\0';
    char *forged = tk_fmt("%s.%s%s", tok, p2, d2);
    expect_refused(m, forged, MF_JWT_R_SIGNATURE, MF_EPERM);
    free(forged);
    free(p2);
    free(c2);
    free(tok);

    /* The attacker's own key in the header does not count. */
    json_t *jwk = tk_jwk(rsa_b, "evil");
    char *jwks = json_dumps(jwk, JSON_COMPACT);
    char *h = tk_fmt("{\"alg\":\"RS256\",\"jwk\":%s,\"jku\":\"https://evil.test/jwks\","
                     "\"x5u\":\"https://evil.test/x\",\"x5c\":[\"AAAA\"]}",
                     jwks);
    tok = tk_sign(rsa_b, "RS256", h, c);
    expect_refused(m, tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    free(tok);
    free(h);
    free(jwks);
    json_decref(jwk);

    /* An ES256 signature of the wrong length. */
    tok = tk_jws_join("{\"alg\":\"ES256\",\"kid\":\"e1\"}", c, (const unsigned char *)"0123", 4);
    expect_refused(m, tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* ES256 with r = 0, s = 0, or s equal to the group order is refused before
 * OpenSSL sees it (CVE-2022-21449's psychic signature). */
static void test_auth_jwt_es256_psychic_signature(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {ec};
    const char *kids[] = {"e1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = claims("");
    unsigned char raw[64];
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    const char *hdr = "{\"alg\":\"ES256\",\"kid\":\"e1\"}";

    memset(raw, 0, 32);
    memset(raw + 32, 0x11, 32);
    char *tok = tk_jws_join(hdr, c, raw, 64);
    expect_refused(m, tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    struct mf_jwt_token t = {0};
    enum mf_jwt_reason reason;
    char err[256];
    mf_jwt_verify(m, tok, strlen(tok), TK_NOW_MS, &t, &reason, err, sizeof(err));
    assert_non_null(strstr(err, "zero"));
    free(tok);

    memset(raw, 0, 64);
    tok = tk_jws_join(hdr, c, raw, 64);
    expect_refused(m, tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    free(tok);

    memset(raw, 0x11, 32);
    assert_int_equal(BN_bn2binpad(EC_GROUP_get0_order(g), raw + 32, 32), 32);
    tok = tk_jws_join(hdr, c, raw, 64);
    expect_refused(m, tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    free(tok);

    EC_GROUP_free(g);
    free(c);
    mf_jwt_mount_free(m);
}

/* exp in the past beyond the leeway is expired; within the leeway it is
 * accepted; a configured leeway of 0 refuses at exp. */
static void test_auth_jwt_expired(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = tk_fmt("{\"iss\":\"" ISS "\",\"aud\":\"mayfly\",\"exp\":%lld}", TK_NOW_S);
    char *tok = sign(rsa, "RS256", "r1", c);
    expect_refused_at(m, tok, TK_NOW_MS + MF_JWT_LEEWAY_MS_DEFAULT, MF_JWT_R_EXPIRED, MF_EPERM);
    struct mf_jwt_token t = {0};
    expect_ok(m, tok, TK_NOW_MS + MF_JWT_LEEWAY_MS_DEFAULT - 1, &t);
    mf_jwt_token_clear(&t);
    mf_jwt_mount_free(m);
    m = mount_of(keys, kids, 1, ",\"leeway_ms\":0");
    expect_refused_at(m, tok, TK_NOW_MS, MF_JWT_R_EXPIRED, MF_EPERM);
    expect_ok(m, tok, TK_NOW_MS - 1, &t);
    mf_jwt_token_clear(&t);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* nbf or iat in the future beyond the leeway is not yet valid; within the
 * leeway it is accepted. */
static void test_auth_jwt_not_yet_valid(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *x_far = tk_fmt(",\"nbf\":%lld", TK_NOW_S + 61);
    char *x_near = tk_fmt(",\"nbf\":%lld", TK_NOW_S + 30);
    char *nbf_far = claims(x_far);
    char *nbf_near = claims(x_near);
    free(x_far);
    free(x_near);
    char *iat_far = tk_fmt("{\"iss\":\"" ISS "\",\"exp\":%lld,\"iat\":%lld}", TK_NOW_S + 600,
                           TK_NOW_S + 120);
    char *t1 = sign(rsa, "RS256", "r1", nbf_far);
    char *t2 = sign(rsa, "RS256", "r1", nbf_near);
    char *t3 = sign(rsa, "RS256", "r1", iat_far);
    expect_refused(m, t1, MF_JWT_R_NOT_YET_VALID, MF_EPERM);
    struct mf_jwt_token t = {0};
    expect_ok(m, t2, TK_NOW_MS, &t);
    mf_jwt_token_clear(&t);
    expect_refused(m, t3, MF_JWT_R_NOT_YET_VALID, MF_EPERM);
    expect_ok(m, t1, TK_NOW_MS + 2000, &t); /* the clock caught up */
    mf_jwt_token_clear(&t);
    free(t1);
    free(t2);
    free(t3);
    free(nbf_far);
    free(nbf_near);
    free(iat_far);
    mf_jwt_mount_free(m);
}

/* A token without exp is refused, whatever else it carries. */
static void test_auth_jwt_missing_exp(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = tk_fmt("{\"iss\":\"" ISS "\",\"aud\":\"mayfly\",\"iat\":%lld}", TK_NOW_S);
    char *tok = sign(rsa, "RS256", "r1", c);
    expect_refused(m, tok, MF_JWT_R_MISSING_EXP, MF_EPERM);
    free(tok);
    free(c);
    c = tk_fmt("{\"iss\":\"" ISS "\",\"exp\":\"soon\"}");
    tok = sign(rsa, "RS256", "r1", c);
    expect_refused(m, tok, MF_JWT_R_MALFORMED, MF_EINVAL);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* iss other than bound_issuer, or missing, is refused as issuer. */
static void test_auth_jwt_wrong_issuer(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = tk_fmt("{\"iss\":\"https://issuer.test.evil\",\"exp\":%lld}", TK_NOW_S + 60);
    char *tok = sign(rsa, "RS256", "r1", c);
    expect_refused(m, tok, MF_JWT_R_ISSUER, MF_EPERM);
    free(tok);
    free(c);
    c = tk_fmt("{\"exp\":%lld}", TK_NOW_S + 60);
    tok = sign(rsa, "RS256", "r1", c);
    expect_refused(m, tok, MF_JWT_R_ISSUER, MF_EPERM);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* A crit header is refused, even one naming a well-known extension. */
static void test_auth_jwt_crit_header(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = claims("");
    char *tok = tk_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"b64\"],\"b64\":false}", c);
    expect_refused(m, tok, MF_JWT_R_CRIT, MF_EPERM);
    free(tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* A token over 16 KiB is refused before it is decoded; one just under is
 * parsed. */
static void test_auth_jwt_oversized(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *pad = malloc(12001);
    memset(pad, 'a', 12000);
    pad[12000] = '\0';
    char *extra = tk_fmt(",\"pad\":\"%s\"", pad);
    char *c = claims(extra);
    char *tok = sign(rsa, "RS256", "r1", c);
    assert_true(strlen(tok) > MF_JWT_TOKEN_BYTES_MAX);
    expect_refused(m, tok, MF_JWT_R_TOO_LARGE, MF_EINVAL);
    free(tok);
    free(c);
    free(extra);
    pad[11000] = '\0';
    extra = tk_fmt(",\"pad\":\"%s\"", pad);
    c = claims(extra);
    tok = sign(rsa, "RS256", "r1", c);
    assert_true(strlen(tok) <= MF_JWT_TOKEN_BYTES_MAX);
    struct mf_jwt_token t = {0};
    expect_ok(m, tok, TK_NOW_MS, &t);
    mf_jwt_token_clear(&t);
    free(tok);
    free(c);
    free(extra);
    free(pad);
    mf_jwt_mount_free(m);
}

/* Tokens that are not a compact JWS are malformed: two parts, four parts,
 * padding, bad base64url, a header that is not an object. */
static void test_auth_jwt_malformed(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = claims("");
    char *good = sign(rsa, "RS256", "r1", c);
    char *d2 = strrchr(good, '.');
    *d2 = '\0';
    expect_refused(m, good, MF_JWT_R_MALFORMED, MF_EINVAL);
    *d2 = '.';
    char *four = tk_fmt("%s.AAAA", good);
    expect_refused(m, four, MF_JWT_R_MALFORMED, MF_EINVAL);
    char *padded = tk_fmt("%s=", good);
    expect_refused(m, padded, MF_JWT_R_MALFORMED, MF_EINVAL);
    char *h = tk_b64url_str("[\"alg\"]");
    char *arr = tk_fmt("%s.%s", h, strchr(good, '.') + 1);
    expect_refused(m, arr, MF_JWT_R_MALFORMED, MF_EINVAL);
    expect_refused(m, "a+b.c.d", MF_JWT_R_MALFORMED, MF_EINVAL);
    expect_refused(m, "", MF_JWT_R_MALFORMED, MF_EINVAL);
    /* A NUL inside a claim string (jansson refuses \u0000 by default). */
    char *nul = claims(",\"user\":\"bob\\u0000evil\"");
    char *nul_tok = sign(rsa, "RS256", "r1", nul);
    expect_refused(m, nul_tok, MF_JWT_R_MALFORMED, MF_EINVAL);
    free(nul_tok);
    free(nul);
    free(arr);
    free(h);
    free(padded);
    free(four);
    free(good);
    free(c);
    mf_jwt_mount_free(m);
}

/* Duplicate JSON keys are refused everywhere: in the header, in signed
 * claims, in a mount config and in a role. */
static void test_auth_jwt_duplicate_keys(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    char *c = claims("");
    char *tok = tk_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"r1\",\"kid\":\"r2\"}", c);
    expect_refused(m, tok, MF_JWT_R_MALFORMED, MF_EINVAL);
    free(tok);
    char *dup = claims(",\"sub\":\"system:serviceaccount:kube-system:admin\"");
    tok = sign(rsa, "RS256", "r1", dup);
    expect_refused(m, tok, MF_JWT_R_MALFORMED, MF_EINVAL);
    free(tok);
    free(dup);
    free(c);

    char err[256];
    char *cfg = config_text(keys, kids, 1, ",\"bound_issuer\":\"https://other.test\"");
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "duplicate"));
    free(cfg);
    struct mf_jwt_role *r = NULL;
    const char *role = "{\"bound_audiences\":[\"mayfly\"],\"token_policies\":[\"a\"],"
                       "\"token_policies\":[\"root\"]}";
    assert_int_equal(mf_jwt_role_parse(role, strlen(role), &r, err, sizeof(err)), MF_EINVAL);
    assert_null(r);
    mf_jwt_mount_free(m);
}

/* Mount configs that must be refused: an RSA key under 2048 bits (JWK and
 * PEM), a JWK with private parts, duplicate kids, an alg that is not the
 * key's, no keys, unknown fields, an off-curve EC point. */
static void test_auth_jwt_config_refusals(void **state)
{
    (void)state;
    char err[256];
    EVP_PKEY *weak[] = {rsa1024};
    const char *kid[] = {"w"};
    char *cfg = config_text(weak, kid, 1, "");
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "1024 bits"));
    free(cfg);
    char *pem = tk_pubkey_pem(rsa1024);
    json_t *j = json_pack("{s:[s]}", "jwt_validation_pubkeys", pem);
    cfg = json_dumps(j, 0);
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "2048"));
    free(cfg);
    json_decref(j);
    free(pem);

    json_t *jwk = tk_jwk(ec, "e1");
    json_object_set_new(jwk, "d", json_string("AAAA"));
    j = json_pack("{s:{s:[o]}}", "jwks", "keys", jwk);
    cfg = json_dumps(j, 0);
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "private"));
    free(cfg);
    json_decref(j);

    EVP_PKEY *two[] = {rsa, rsa_b};
    const char *same[] = {"k", "k"};
    cfg = config_text(two, same, 2, "");
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    free(cfg);

    jwk = tk_jwk(rsa, "r1");
    json_object_set_new(jwk, "alg", json_string("HS256"));
    j = json_pack("{s:{s:[o]}}", "jwks", "keys", jwk);
    cfg = json_dumps(j, 0);
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    free(cfg);
    json_decref(j);

    jwk = tk_jwk(ec, "e1");
    json_object_set_new(jwk, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
    j = json_pack("{s:{s:[o]}}", "jwks", "keys", jwk);
    cfg = json_dumps(j, 0);
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    free(cfg);
    json_decref(j);

    assert_int_equal(config_err("{\"bound_issuer\":\"x\"}", err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "no keys"));
    assert_int_equal(config_err("{\"jwks_url\":\"https://x\"}", err, sizeof(err)), MF_EINVAL);
    assert_int_equal(config_err("[1]", err, sizeof(err)), MF_EINVAL);
    EVP_PKEY *one[] = {rsa};
    cfg = config_text(one, kid, 1, ",\"leeway_ms\":-1");
    assert_int_equal(config_err(cfg, err, sizeof(err)), MF_EINVAL);
    free(cfg);
}

/* Rotation: a token signed with the old key fails against the new key set
 * (same kid), and a token from the new key passes. */
static void test_auth_jwt_jwks_replacement(void **state)
{
    (void)state;
    EVP_PKEY *old_keys[] = {rsa}, *new_keys[] = {rsa_b};
    const char *kids[] = {"k1"};
    struct mf_jwt_mount *m = mount_of(old_keys, kids, 1, "");
    char *c = claims("");
    char *old_tok = sign(rsa, "RS256", "k1", c);
    char *new_tok = sign(rsa_b, "RS256", "k1", c);
    struct mf_jwt_token t = {0};
    expect_ok(m, old_tok, TK_NOW_MS, &t);
    mf_jwt_token_clear(&t);
    expect_refused(m, new_tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    mf_jwt_mount_free(m);
    m = mount_of(new_keys, kids, 1, "");
    expect_refused(m, old_tok, MF_JWT_R_SIGNATURE, MF_EPERM);
    expect_ok(m, new_tok, TK_NOW_MS, &t);
    mf_jwt_token_clear(&t);
    free(old_tok);
    free(new_tok);
    free(c);
    mf_jwt_mount_free(m);
}

/* --- roles --------------------------------------------------------------- */

static struct mf_jwt_role *role_of(const char *json)
{
    struct mf_jwt_role *r = NULL;
    char err[256] = "";
    int rc = mf_jwt_role_parse(json, strlen(json), &r, err, sizeof(err));
    if (rc)
        fprintf(stderr, "role_parse: %s\n", err);
    assert_int_equal(rc, 0);
    return r;
}

/* Verifies payload signed by rsa, matches it against role; returns rc. */
static int match(const char *role_json, const char *payload, struct mf_ident *id,
                 enum mf_jwt_reason *reason, char *err, size_t err_len)
{
    EVP_PKEY *keys[] = {rsa};
    const char *kids[] = {"r1"};
    struct mf_jwt_mount *m = mount_of(keys, kids, 1, "");
    struct mf_jwt_role *r = role_of(role_json);
    char *tok = sign(rsa, "RS256", "r1", payload);
    struct mf_jwt_token t = {0};
    expect_ok(m, tok, TK_NOW_MS, &t);
    int rc = mf_jwt_role_match(r, &t, id, reason, err, err_len);
    assert_null(strstr(err, MARKER));
    mf_jwt_token_clear(&t);
    free(tok);
    mf_jwt_role_free(r);
    mf_jwt_mount_free(m);
    return rc;
}

#define K8S_CLAIMS                                                                         \
    ",\"kubernetes.io\":{\"namespace\":\"payments\",\"serviceaccount\":{\"name\":\"api\"}}," \
    "\"repository\":\"acme/payments\",\"ref\":\"refs/heads/main\","                        \
    "\"groups\":[\"dev\",\"ops\"],\"run\":42,\"protected\":true"

/* A role whose audience, subject and every bound claim match issues an
 * identity named by user_claim with the mapped claims as metadata. */
static void test_auth_jwt_role_match(void **state)
{
    (void)state;
    const char *role =
        "{\"bound_audiences\":[\"other\",\"mayfly\"],"
        "\"bound_subject\":\"system:serviceaccount:payments:api\","
        "\"bound_claims\":{\"/kubernetes.io/namespace\":\"payments\","
        "\"/kubernetes.io/serviceaccount/name\":[\"web\",\"api\"],"
        "\"repository\":\"acme/*\",\"ref\":\"refs/heads/*\",\"groups\":\"ops\","
        "\"run\":\"42\",\"protected\":\"true\"},"
        "\"user_claim\":\"sub\","
        "\"claim_mappings\":{\"/kubernetes.io/namespace\":\"namespace\",\"repository\":\"repo\","
        "\"run\":\"run\",\"absent\":\"nothing\"},"
        "\"token_policies\":[\"app-read\"],\"token_ttl_ms\":600000,\"token_max_ttl_ms\":3600000}";
    char *c = claims(K8S_CLAIMS);
    struct mf_ident id = {0};
    enum mf_jwt_reason reason = 99;
    char err[256] = "";
    assert_int_equal(match(role, c, &id, &reason, err, sizeof(err)), 0);
    assert_int_equal(reason, MF_JWT_R_OK);
    assert_string_equal(id.name, "system:serviceaccount:payments:api");
    assert_string_equal(mf_ident_meta_get(&id, "namespace"), "payments");
    assert_string_equal(mf_ident_meta_get(&id, "repo"), "acme/payments");
    assert_string_equal(mf_ident_meta_get(&id, "run"), "42");
    assert_null(mf_ident_meta_get(&id, "nothing"));
    assert_null(mf_ident_meta_get(&id, "note"));
    assert_int_equal(id.meta_len, 3);
    mf_ident_clear(&id);
    struct mf_jwt_role *r = role_of(role);
    const struct mf_ident_token *tp = mf_jwt_role_token(r);
    assert_int_equal(tp->policies_len, 1);
    assert_string_equal(tp->policies[0], "app-read");
    assert_int_equal(tp->ttl_ms, 600000);
    assert_int_equal(tp->max_ttl_ms, 3600000);
    mf_jwt_role_free(r);
    free(c);
}

/* Each bound claim is checked: a missing claim, a wrong exact value, a glob
 * that would have to cross a '/' boundary, a wrong audience, a missing aud
 * and a wrong subject are all refused with their reason. */
static void test_auth_jwt_role_refusals(void **state)
{
    (void)state;
    struct {
        const char *role_extra;
        const char *claims_extra;
        enum mf_jwt_reason want;
        const char *in_err;
    } cases[] = {
        {",\"bound_claims\":{\"namespace\":\"payments\"}", K8S_CLAIMS, MF_JWT_R_CLAIM,
         "namespace is missing"},
        {",\"bound_claims\":{\"/kubernetes.io/namespace\":\"billing\"}", K8S_CLAIMS,
         MF_JWT_R_CLAIM, "does not match"},
        {",\"bound_claims\":{\"/kubernetes.io/namespace\":\"pay\"}", K8S_CLAIMS, MF_JWT_R_CLAIM,
         "does not match"},
        {",\"bound_claims\":{\"repository\":\"*\"}", ",\"repository\":{\"x\":1}",
         MF_JWT_R_CLAIM, "does not match"},
        /* One segment only: "acme/p" and a star never reach "acme/pay/evil". */
        {",\"bound_claims\":{\"repository\":\"acme/p*\"}", ",\"repository\":\"acme/pay/evil\"",
         MF_JWT_R_CLAIM, "repository"},
        {",\"bound_claims\":{\"sub\":\"system:serviceaccount:*:api\"}",
         ",\"sub\":\"system:serviceaccount:a:b:api\"", MF_JWT_R_CLAIM, "sub"},
        {",\"bound_claims\":{\"groups\":\"admin\"}", K8S_CLAIMS, MF_JWT_R_CLAIM, "groups"},
        {",\"bound_claims\":{\"run\":\"4*\"}", ",\"run\":4.5", MF_JWT_R_CLAIM, "run"},
        {",\"bound_subject\":\"system:serviceaccount:payments:web\"", "", MF_JWT_R_SUBJECT,
         "subject"},
        {",\"user_claim\":\"email\"", "", MF_JWT_R_CLAIM, "email"},
        {",\"claim_mappings\":{\"groups\":\"g\"}", K8S_CLAIMS, MF_JWT_R_CLAIM, "groups"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *role = tk_fmt("{\"bound_audiences\":[\"mayfly\"]%s}", cases[i].role_extra);
        /* claims() puts its own sub first; a later duplicate sub would be
         * refused, so the sub cases build their payload by hand. */
        char *c = strstr(cases[i].claims_extra, "\"sub\"")
                      ? tk_fmt("{\"iss\":\"" ISS "\",\"aud\":\"mayfly\",\"exp\":%lld%s}",
                               TK_NOW_S + 600, cases[i].claims_extra)
                      : claims(cases[i].claims_extra);
        struct mf_ident id = {0};
        enum mf_jwt_reason reason = MF_JWT_R_OK;
        char err[256] = "";
        int rc = match(role, c, &id, &reason, err, sizeof(err));
        if (rc == 0 || reason != cases[i].want || !strstr(err, cases[i].in_err))
            fprintf(stderr, "case %zu: rc %d reason %s: %s\n", i, rc,
                    mf_jwt_reason_name(reason), err);
        assert_int_equal(rc, MF_EPERM);
        assert_int_equal(reason, cases[i].want);
        assert_non_null(strstr(err, cases[i].in_err));
        assert_null(id.name);
        assert_int_equal(id.meta_len, 0);
        free(c);
        free(role);
    }

    /* Audience: none of the role's, or no aud at all. */
    const char *role = "{\"bound_audiences\":[\"vault\"]}";
    char *c = claims("");
    struct mf_ident id = {0};
    enum mf_jwt_reason reason;
    char err[256];
    assert_int_equal(match(role, c, &id, &reason, err, sizeof(err)), MF_EPERM);
    assert_int_equal(reason, MF_JWT_R_AUDIENCE);
    free(c);
    c = tk_fmt("{\"iss\":\"" ISS "\",\"sub\":\"x\",\"exp\":%lld}", TK_NOW_S + 60);
    assert_int_equal(match("{\"bound_audiences\":[\"mayfly\"]}", c, &id, &reason, err,
                           sizeof(err)),
                     MF_EPERM);
    assert_int_equal(reason, MF_JWT_R_AUDIENCE);
    free(c);
    /* aud as a list holding the role's audience matches. */
    c = tk_fmt("{\"iss\":\"" ISS "\",\"sub\":\"x\",\"aud\":[\"a\",\"mayfly\"],\"exp\":%lld}",
               TK_NOW_S + 60);
    assert_int_equal(match("{\"bound_audiences\":[\"mayfly\"]}", c, &id, &reason, err,
                           sizeof(err)),
                     0);
    assert_string_equal(id.name, "x");
    mf_ident_clear(&id);
    free(c);
}

/* Roles that must be refused: no bound_audiences, unknown fields, an empty
 * bound claim list, a bad JSON pointer, two claims mapped to one key, max
 * TTL under TTL. */
static void test_auth_jwt_role_parse_refusals(void **state)
{
    (void)state;
    const char *bad[] = {
        "{}",
        "{\"bound_audiences\":[]}",
        "{\"bound_audiences\":[\"m\"],\"bound_claims_type\":\"glob\"}",
        "{\"bound_audiences\":[\"m\"],\"bound_claims\":{\"ns\":[]}}",
        "{\"bound_audiences\":[\"m\"],\"bound_claims\":{\"ns\":7}}",
        "{\"bound_audiences\":[\"m\"],\"bound_claims\":{\"/a~2b\":\"x\"}}",
        "{\"bound_audiences\":[\"m\"],\"claim_mappings\":{\"a\":\"k\",\"b\":\"k\"}}",
        "{\"bound_audiences\":[\"m\"],\"token_ttl_ms\":10,\"token_max_ttl_ms\":5}",
        "{\"bound_audiences\":[\"m\"],\"token_policies\":[\"\"]}",
        "{\"bound_audiences\":[\"m\"],\"token_ttl_ms\":-1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mf_jwt_role *r = NULL;
        char err[256] = "";
        int rc = mf_jwt_role_parse(bad[i], strlen(bad[i]), &r, err, sizeof(err));
        if (rc != MF_EINVAL)
            fprintf(stderr, "case %zu accepted\n", i);
        assert_int_equal(rc, MF_EINVAL);
        assert_null(r);
        assert_true(strlen(err) > 0);
    }
}

/* The glob rule of ident.h, case by case. */
static void test_auth_jwt_glob(void **state)
{
    (void)state;
    struct {
        const char *glob, *value, *seps;
        bool want;
    } cases[] = {
        {"payments", "payments", MF_IDENT_SEPS_URI, true},
        {"payments", "payment", MF_IDENT_SEPS_URI, false},
        {"pay*", "payments", MF_IDENT_SEPS_URI, true},
        {"pay*", "pay", MF_IDENT_SEPS_URI, true},
        {"*ments", "payments", MF_IDENT_SEPS_URI, true},
        {"p*y*s", "payments", MF_IDENT_SEPS_URI, true},
        {"p*y*x", "payments", MF_IDENT_SEPS_URI, false},
        {"*", "anything/at:all", MF_IDENT_SEPS_URI, true},
        {"*", "", MF_IDENT_SEPS_URI, true},
        {"spiffe://prod/ns/payments/*", "spiffe://prod/ns/payments/sa/api", MF_IDENT_SEPS_URI,
         true},
        {"spiffe://prod/ns/payments/*", "spiffe://prod/ns/paymentsX/sa/api", MF_IDENT_SEPS_URI,
         false},
        {"spiffe://prod/ns/payments/*", "spiffe://prod/ns/payments", MF_IDENT_SEPS_URI, false},
        {"spiffe://prod/ns/pay*", "spiffe://prod/ns/payments", MF_IDENT_SEPS_URI, true},
        {"spiffe://prod/ns/pay*", "spiffe://prod/ns/payments/sa/api", MF_IDENT_SEPS_URI, false},
        {"spiffe://prod/ns/*/sa/api", "spiffe://prod/ns/payments/sa/api", MF_IDENT_SEPS_URI,
         true},
        {"spiffe://prod/ns/*/sa/api", "spiffe://prod/ns/a/b/sa/api", MF_IDENT_SEPS_URI, false},
        {"spiffe://*/ns/x", "spiffe://evil/prod/ns/x", MF_IDENT_SEPS_URI, false},
        {"repo:acme/*:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main",
         MF_IDENT_SEPS_URI, true},
        {"repo:acme/*:ref:refs/heads/main", "repo:acme/a:b:ref:refs/heads/main",
         MF_IDENT_SEPS_URI, false},
        {"repo:acme/*", "repo:acme/api:ref:refs/heads/dev", MF_IDENT_SEPS_URI, true},
        {"repo:acme*", "repo:acme-evil/api", MF_IDENT_SEPS_URI, false},
        {"*.payments.svc", "api.payments.svc", MF_IDENT_SEPS_DNS, true},
        {"*.payments.svc", "a.b.payments.svc", MF_IDENT_SEPS_DNS, false},
        {"*.payments.svc", "a.b.payments.svc", MF_IDENT_SEPS_URI, true},
        {"a/b", "a:b", MF_IDENT_SEPS_URI, false},
        {"Payments", "payments", MF_IDENT_SEPS_URI, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = mf_ident_glob_match(cases[i].glob, cases[i].value, cases[i].seps);
        if (got != cases[i].want)
            fprintf(stderr, "glob case %zu: %s vs %s\n", i, cases[i].glob, cases[i].value);
        assert_int_equal(got, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_jwt_rs256_valid),
        cmocka_unit_test(test_auth_jwt_es256_valid),
        cmocka_unit_test(test_auth_jwt_eddsa_valid_pem),
        cmocka_unit_test(test_auth_jwt_alg_none_refused),
        cmocka_unit_test(test_auth_jwt_hs256_with_public_key_refused),
        cmocka_unit_test(test_auth_jwt_alg_pinned_by_key),
        cmocka_unit_test(test_auth_jwt_unknown_kid),
        cmocka_unit_test(test_auth_jwt_bad_signature),
        cmocka_unit_test(test_auth_jwt_es256_psychic_signature),
        cmocka_unit_test(test_auth_jwt_expired),
        cmocka_unit_test(test_auth_jwt_not_yet_valid),
        cmocka_unit_test(test_auth_jwt_missing_exp),
        cmocka_unit_test(test_auth_jwt_wrong_issuer),
        cmocka_unit_test(test_auth_jwt_crit_header),
        cmocka_unit_test(test_auth_jwt_oversized),
        cmocka_unit_test(test_auth_jwt_malformed),
        cmocka_unit_test(test_auth_jwt_duplicate_keys),
        cmocka_unit_test(test_auth_jwt_config_refusals),
        cmocka_unit_test(test_auth_jwt_jwks_replacement),
        cmocka_unit_test(test_auth_jwt_role_match),
        cmocka_unit_test(test_auth_jwt_role_refusals),
        cmocka_unit_test(test_auth_jwt_role_parse_refusals),
        cmocka_unit_test(test_auth_jwt_glob),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
