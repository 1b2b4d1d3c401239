/* The cert auth method (src/auth/certauth.h): mount CAs and CRLs, client
 * certificate verification at a given time, and role matching on SPIFFE URI
 * SANs and common names. Every CA, leaf and CRL is made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth/certauth.h"
#include "auth/ident.h"
#include "auth_testkit.h"
#include "common/err.h"

#define SPIFFE_API "spiffe://prod/ns/payments/sa/api"

static EVP_PKEY *ca_key, *other_key, *peer_key, *inter_key, *leaf_key;
static X509 *mount_ca, *other_ca, *peer_ca, *inter_ca;
static char *mount_ca_pem, *peer_ca_pem;

static int setup(void **state)
{
    (void)state;
    ca_key = tk_ec();
    other_key = tk_ec();
    peer_key = tk_ec();
    inter_key = tk_ec();
    leaf_key = tk_ec();
    mount_ca = tk_x509(&(struct tk_cert){.cn = "mount CA", .ca = 1, .key = ca_key,
                                         .not_after_s = TK_NOW_S + 3650 * 86400LL});
    other_ca = tk_x509(&(struct tk_cert){.cn = "mount CA", .ca = 1, .key = other_key});
    peer_ca = tk_x509(&(struct tk_cert){.cn = "mayfly peer CA", .ca = 1, .key = peer_key});
    inter_ca = tk_x509(&(struct tk_cert){.cn = "payments intermediate", .ca = 1, .serial = 7,
                                         .key = inter_key, .issuer = mount_ca,
                                         .issuer_key = ca_key});
    mount_ca_pem = tk_x509_pem(mount_ca);
    peer_ca_pem = tk_x509_pem(peer_ca);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_free(mount_ca);
    X509_free(other_ca);
    X509_free(peer_ca);
    X509_free(inter_ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(peer_key);
    EVP_PKEY_free(inter_key);
    EVP_PKEY_free(leaf_key);
    free(mount_ca_pem);
    free(peer_ca_pem);
    return 0;
}

/* A client leaf with a URI SAN, issued by issuer. */
static X509 *leaf(const char *uri, X509 *issuer, EVP_PKEY *issuer_key, long serial)
{
    return tk_x509(&(struct tk_cert){.cn = "api.payments.svc", .uri_san = uri, .serial = serial,
                                     .key = leaf_key, .issuer = issuer,
                                     .issuer_key = issuer_key});
}

static char *config(const char *ca_pem, const char *crl_pem)
{
    json_t *j = crl_pem ? json_pack("{s:s, s:s}", "ca_pem", ca_pem, "crl_pem", crl_pem)
                        : json_pack("{s:s}", "ca_pem", ca_pem);
    char *s = json_dumps(j, 0);
    json_decref(j);
    return s;
}

static struct mf_certauth_mount *mount_of(const char *ca_pem, const char *crl_pem)
{
    char *cfg = config(ca_pem, crl_pem);
    struct mf_certauth_mount *m = NULL;
    char err[256] = "";
    int rc = mf_certauth_mount_parse(cfg, strlen(cfg), peer_ca_pem, &m, err, sizeof(err));
    if (rc)
        fprintf(stderr, "mount_parse: %s\n", err);
    assert_int_equal(rc, 0);
    free(cfg);
    return m;
}

static int mount_err(const char *ca_pem, const char *crl_pem, char *err, size_t err_len)
{
    char *cfg = config(ca_pem, crl_pem);
    struct mf_certauth_mount *m = NULL;
    int rc = mf_certauth_mount_parse(cfg, strlen(cfg), peer_ca_pem, &m, err, err_len);
    assert_true(rc != 0);
    assert_null(m);
    free(cfg);
    return rc;
}

static void expect_ok(const struct mf_certauth_mount *m, X509 *x, STACK_OF(X509) *chain,
                      struct mf_certauth_cert *out)
{
    enum mf_certauth_reason reason = 99;
    char err[256] = "";
    int rc = mf_certauth_verify(m, x, chain, TK_NOW_MS, out, &reason, err, sizeof(err));
    if (rc)
        fprintf(stderr, "verify: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(reason, MF_CERTAUTH_R_OK);
}

static void expect_refused(const struct mf_certauth_mount *m, X509 *x, STACK_OF(X509) *chain,
                           int64_t now_ms, enum mf_certauth_reason want, int code)
{
    struct mf_certauth_cert c = {0};
    enum mf_certauth_reason reason = MF_CERTAUTH_R_OK;
    char err[256] = "";
    int rc = mf_certauth_verify(m, x, chain, now_ms, &c, &reason, err, sizeof(err));
    if (reason != want)
        fprintf(stderr, "got %s: %s\n", mf_certauth_reason_name(reason), err);
    assert_int_equal(rc, code);
    assert_int_equal(reason, want);
    assert_int_equal(c.uri_sans_len, 0);
    assert_null(c.common_name);
    const char *name = mf_certauth_reason_name(want);
    assert_int_equal(strncmp(err, name, strlen(name)), 0);
}

static struct mf_certauth_role *role_of(const char *json)
{
    struct mf_certauth_role *r = NULL;
    char err[256] = "";
    int rc = mf_certauth_role_parse(json, strlen(json), &r, err, sizeof(err));
    if (rc)
        fprintf(stderr, "role_parse: %s\n", err);
    assert_int_equal(rc, 0);
    return r;
}

/* A SPIFFE leaf from the mount's CA verifies and maps to the role whose URI
 * glob covers it, with the SAN and serial as metadata; a role for another
 * namespace does not match. */
static void test_auth_certauth_spiffe_maps_to_role(void **state)
{
    (void)state;
    struct mf_certauth_mount *m = mount_of(mount_ca_pem, NULL);
    X509 *x = leaf(SPIFFE_API, mount_ca, ca_key, 100);
    struct mf_certauth_cert c = {0};
    expect_ok(m, x, NULL, &c);
    assert_int_equal(c.uri_sans_len, 1);
    assert_string_equal(c.uri_sans[0], SPIFFE_API);
    assert_string_equal(c.common_name, "api.payments.svc");
    assert_string_equal(c.serial_hex, "64");
    assert_int_equal(c.not_after_ms, (TK_NOW_S + 30 * 86400) * 1000);

    struct mf_certauth_role *r =
        role_of("{\"allowed_uri_sans\":[\"spiffe://prod/ns/billing/*\","
                "\"spiffe://prod/ns/payments/*\"],\"token_policies\":[\"app-read\"],"
                "\"token_ttl_ms\":600000}");
    struct mf_ident id = {0};
    enum mf_certauth_reason reason = 99;
    char err[256] = "";
    assert_int_equal(mf_certauth_role_match(r, &c, &id, &reason, err, sizeof(err)), 0);
    assert_int_equal(reason, MF_CERTAUTH_R_OK);
    assert_string_equal(id.name, SPIFFE_API);
    assert_string_equal(mf_ident_meta_get(&id, "uri_san"), SPIFFE_API);
    assert_string_equal(mf_ident_meta_get(&id, "serial"), "64");
    assert_null(mf_ident_meta_get(&id, "common_name"));
    const struct mf_ident_token *tp = mf_certauth_role_token(r);
    assert_int_equal(tp->policies_len, 1);
    assert_string_equal(tp->policies[0], "app-read");
    assert_int_equal(tp->ttl_ms, 600000);
    mf_ident_clear(&id);
    mf_certauth_role_free(r);

    /* Another namespace, or a glob that would have to cross a '/': no match. */
    const char *no[] = {
        "{\"allowed_uri_sans\":[\"spiffe://prod/ns/billing/*\"]}",
        "{\"allowed_uri_sans\":[\"spiffe://prod/ns/*/api\"]}",
        "{\"allowed_uri_sans\":[\"spiffe://prod/ns/pay*\"]}",
        "{\"allowed_uri_sans\":[\"spiffe://dev/*\"],\"allowed_common_names\":[\"web.*\"]}",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        r = role_of(no[i]);
        assert_int_equal(mf_certauth_role_match(r, &c, &id, &reason, err, sizeof(err)),
                         MF_EPERM);
        assert_int_equal(reason, MF_CERTAUTH_R_NO_MATCH);
        assert_null(id.name);
        mf_certauth_role_free(r);
    }
    mf_certauth_cert_clear(&c);
    X509_free(x);
    mf_certauth_mount_free(m);
}

/* The common name counts only when the role lists allowed_common_names; a
 * CN glob's star covers one DNS label. */
static void test_auth_certauth_common_name_only_when_listed(void **state)
{
    (void)state;
    struct mf_certauth_mount *m = mount_of(mount_ca_pem, NULL);
    X509 *x = leaf("spiffe://prod/ns/other/sa/x", mount_ca, ca_key, 101);
    struct mf_certauth_cert c = {0};
    expect_ok(m, x, NULL, &c);
    struct mf_ident id = {0};
    enum mf_certauth_reason reason;
    char err[256];
    struct mf_certauth_role *r = role_of("{\"allowed_uri_sans\":[\"api.payments.svc\"]}");
    assert_int_equal(mf_certauth_role_match(r, &c, &id, &reason, err, sizeof(err)), MF_EPERM);
    assert_int_equal(reason, MF_CERTAUTH_R_NO_MATCH);
    mf_certauth_role_free(r);
    r = role_of("{\"allowed_common_names\":[\"*.payments.svc\"]}");
    assert_int_equal(mf_certauth_role_match(r, &c, &id, &reason, err, sizeof(err)), 0);
    assert_string_equal(id.name, "api.payments.svc");
    assert_string_equal(mf_ident_meta_get(&id, "common_name"), "api.payments.svc");
    mf_ident_clear(&id);
    mf_certauth_role_free(r);
    r = role_of("{\"allowed_common_names\":[\"*.svc\"]}");
    assert_int_equal(mf_certauth_role_match(r, &c, &id, &reason, err, sizeof(err)), MF_EPERM);
    mf_certauth_role_free(r);
    mf_certauth_cert_clear(&c);
    X509_free(x);
    mf_certauth_mount_free(m);
}

/* A leaf from another CA (even one with the same subject name) and a leaf
 * from the peer CA are untrusted. */
static void test_auth_certauth_other_ca_and_peer_ca_refused(void **state)
{
    (void)state;
    struct mf_certauth_mount *m = mount_of(mount_ca_pem, NULL);
    X509 *x = leaf(SPIFFE_API, other_ca, other_key, 100);
    expect_refused(m, x, NULL, TK_NOW_MS, MF_CERTAUTH_R_UNTRUSTED, MF_EPERM);
    X509_free(x);
    x = leaf(SPIFFE_API, peer_ca, peer_key, 100);
    expect_refused(m, x, NULL, TK_NOW_MS, MF_CERTAUTH_R_UNTRUSTED, MF_EPERM);
    /* Presenting the peer CA as an intermediate changes nothing. */
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, peer_ca);
    expect_refused(m, x, chain, TK_NOW_MS, MF_CERTAUTH_R_UNTRUSTED, MF_EPERM);
    sk_X509_free(chain);
    X509_free(x);
    mf_certauth_mount_free(m);
}

/* A mount whose CA is the peer CA, was issued by it, or issued it is refused;
 * so is a CA re-issued with the peer CA's key. */
static void test_auth_certauth_peer_ca_mount_refused(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(mount_err(peer_ca_pem, NULL, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "peer CA"));

    X509 *under_peer = tk_x509(&(struct tk_cert){.cn = "sub of peer", .ca = 1, .serial = 9,
                                                 .key = inter_key, .issuer = peer_ca,
                                                 .issuer_key = peer_key});
    char *pem = tk_x509_pem(under_peer);
    assert_int_equal(mount_err(pem, NULL, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "chains to"));
    free(pem);
    X509_free(under_peer);

    /* The peer CA hangs under the mount CA: refused the other way round. */
    X509 *peer_child = tk_x509(&(struct tk_cert){.cn = "mayfly peer CA", .ca = 1, .serial = 3,
                                                 .key = peer_key, .issuer = mount_ca,
                                                 .issuer_key = ca_key});
    char *peer_child_pem = tk_x509_pem(peer_child);
    char *cfg = config(mount_ca_pem, NULL);
    struct mf_certauth_mount *m = NULL;
    int rc = mf_certauth_mount_parse(cfg, strlen(cfg), peer_child_pem, &m, err, sizeof(err));
    assert_int_equal(rc, MF_EINVAL);
    assert_null(m);
    assert_non_null(strstr(err, "issued the cluster's peer CA"));

    /* A CA re-issued with the peer CA's key is the peer CA. */
    X509 *rekeyed = tk_x509(&(struct tk_cert){.cn = "innocent", .ca = 1, .key = peer_key});
    pem = tk_x509_pem(rekeyed);
    assert_int_equal(mount_err(pem, NULL, err, sizeof(err)), MF_EINVAL);
    free(pem);
    X509_free(rekeyed);

    /* Two CAs, one of them the peer CA: refused as a whole. */
    char *both = tk_fmt("%s%s", mount_ca_pem, peer_ca_pem);
    assert_int_equal(mount_err(both, NULL, err, sizeof(err)), MF_EINVAL);
    free(both);
    free(cfg);
    free(peer_child_pem);
    X509_free(peer_child);
}

/* A leaf past its notAfter, or before its notBefore, at now_ms is refused;
 * the same leaf verifies at a time inside its validity. */
static void test_auth_certauth_expired(void **state)
{
    (void)state;
    struct mf_certauth_mount *m = mount_of(mount_ca_pem, NULL);
    X509 *x = tk_x509(&(struct tk_cert){.cn = "old", .uri_san = SPIFFE_API, .key = leaf_key,
                                        .issuer = mount_ca, .issuer_key = ca_key,
                                        .not_before_s = TK_NOW_S - 7200,
                                        .not_after_s = TK_NOW_S - 3600});
    expect_refused(m, x, NULL, TK_NOW_MS, MF_CERTAUTH_R_EXPIRED, MF_EPERM);
    expect_refused(m, x, NULL, (TK_NOW_S - 10800) * 1000, MF_CERTAUTH_R_NOT_YET_VALID,
                   MF_EPERM);
    struct mf_certauth_cert c = {0};
    enum mf_certauth_reason reason;
    char err[256];
    assert_int_equal(mf_certauth_verify(m, x, NULL, (TK_NOW_S - 5000) * 1000, &c, &reason, err,
                                        sizeof(err)),
                     0);
    mf_certauth_cert_clear(&c);
    X509_free(x);
    mf_certauth_mount_free(m);
}

/* A leaf on the mount's CRL is revoked while another leaf of the same CA
 * verifies; a CRL past its nextUpdate refuses every login; a CRL from a CA
 * outside the mount is refused at config. */
static void test_auth_certauth_crl(void **state)
{
    (void)state;
    long revoked[] = {200};
    X509_CRL *crl = tk_crl(mount_ca, ca_key, revoked, 1, TK_NOW_S - 3600, TK_NOW_S + 3600);
    char *crl_pem = tk_crl_pem(crl);
    struct mf_certauth_mount *m = mount_of(mount_ca_pem, crl_pem);
    X509 *bad = leaf(SPIFFE_API, mount_ca, ca_key, 200);
    X509 *good = leaf(SPIFFE_API, mount_ca, ca_key, 201);
    expect_refused(m, bad, NULL, TK_NOW_MS, MF_CERTAUTH_R_REVOKED, MF_EPERM);
    struct mf_certauth_cert c = {0};
    expect_ok(m, good, NULL, &c);
    mf_certauth_cert_clear(&c);
    /* Two hours on, the CRL is stale: even the good leaf is refused. */
    expect_refused(m, good, NULL, TK_NOW_MS + 7200 * 1000, MF_CERTAUTH_R_CRL_STALE, MF_EPERM);
    expect_refused(m, good, NULL, TK_NOW_MS + 3600 * 1000, MF_CERTAUTH_R_CRL_STALE, MF_EPERM);
    mf_certauth_mount_free(m);

    X509_CRL *old = tk_crl(mount_ca, ca_key, NULL, 0, TK_NOW_S - 7200, TK_NOW_S - 1);
    char *old_pem = tk_crl_pem(old);
    m = mount_of(mount_ca_pem, old_pem);
    expect_refused(m, good, NULL, TK_NOW_MS, MF_CERTAUTH_R_CRL_STALE, MF_EPERM);
    mf_certauth_mount_free(m);

    /* A second CA without a CRL in a mount that has CRLs: its leaves are refused. */
    X509 *billing_ca = tk_x509(&(struct tk_cert){.cn = "billing CA", .ca = 1, .key = other_key});
    char *other_pem = tk_x509_pem(billing_ca);
    char *two = tk_fmt("%s%s", mount_ca_pem, other_pem);
    m = mount_of(two, crl_pem);
    X509 *other_leaf = leaf(SPIFFE_API, billing_ca, other_key, 5);
    expect_refused(m, other_leaf, NULL, TK_NOW_MS, MF_CERTAUTH_R_CRL_MISSING, MF_EPERM);
    mf_certauth_mount_free(m);

    X509_CRL *foreign = tk_crl(other_ca, other_key, NULL, 0, TK_NOW_S - 60, TK_NOW_S + 3600);
    char *foreign_pem = tk_crl_pem(foreign);
    char err[256];
    assert_int_equal(mount_err(mount_ca_pem, foreign_pem, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "not signed"));

    free(foreign_pem);
    X509_CRL_free(foreign);
    X509_free(other_leaf);
    X509_free(billing_ca);
    free(two);
    free(other_pem);
    free(old_pem);
    X509_CRL_free(old);
    X509_free(bad);
    X509_free(good);
    free(crl_pem);
    X509_CRL_free(crl);
}

/* Any leaf with a mayfly://node/ URI SAN is refused, even from the mount's
 * own CA and even beside a SPIFFE SAN. */
static void test_auth_certauth_node_san_refused(void **state)
{
    (void)state;
    struct mf_certauth_mount *m = mount_of(mount_ca_pem, NULL);
    X509 *x = tk_x509(&(struct tk_cert){.cn = "node", .uri_san = SPIFFE_API,
                                        .uri_san2 = "mayfly://node/3", .key = leaf_key,
                                        .issuer = mount_ca, .issuer_key = ca_key});
    expect_refused(m, x, NULL, TK_NOW_MS, MF_CERTAUTH_R_NODE_CERT, MF_EPERM);
    X509_free(x);
    x = leaf("MAYFLY://NODE/1", mount_ca, ca_key, 8);
    expect_refused(m, x, NULL, TK_NOW_MS, MF_CERTAUTH_R_NODE_CERT, MF_EPERM);
    X509_free(x);
    mf_certauth_mount_free(m);
}

/* A leaf under an intermediate verifies when the client presents the
 * intermediate, not without it; the PEM entry point agrees. */
static void test_auth_certauth_intermediate_chain(void **state)
{
    (void)state;
    struct mf_certauth_mount *m = mount_of(mount_ca_pem, NULL);
    X509 *x = leaf(SPIFFE_API, inter_ca, inter_key, 300);
    expect_refused(m, x, NULL, TK_NOW_MS, MF_CERTAUTH_R_UNTRUSTED, MF_EPERM);
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, inter_ca);
    struct mf_certauth_cert c = {0};
    expect_ok(m, x, chain, &c);
    mf_certauth_cert_clear(&c);
    sk_X509_free(chain);

    char *leaf_pem = tk_x509_pem(x), *inter_pem = tk_x509_pem(inter_ca);
    enum mf_certauth_reason reason;
    char err[256];
    assert_int_equal(mf_certauth_verify_pem(m, leaf_pem, inter_pem, TK_NOW_MS, &c, &reason, err,
                                            sizeof(err)),
                     0);
    assert_string_equal(c.uri_sans[0], SPIFFE_API);
    mf_certauth_cert_clear(&c);
    assert_int_equal(mf_certauth_verify_pem(m, "not a pem", NULL, TK_NOW_MS, &c, &reason, err,
                                            sizeof(err)),
                     MF_EINVAL);
    assert_int_equal(reason, MF_CERTAUTH_R_MALFORMED);
    free(leaf_pem);
    free(inter_pem);
    X509_free(x);
    mf_certauth_mount_free(m);
}

/* Configs and roles that must be refused: a leaf as CA, no CA, unknown
 * fields, duplicate keys, an empty role. */
static void test_auth_certauth_config_and_role_refusals(void **state)
{
    (void)state;
    char err[256];
    X509 *x = leaf(SPIFFE_API, mount_ca, ca_key, 1);
    char *pem = tk_x509_pem(x);
    assert_int_equal(mount_err(pem, NULL, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "not a CA"));
    assert_int_equal(mount_err("garbage", NULL, err, sizeof(err)), MF_EINVAL);
    free(pem);
    X509_free(x);
    const char *bad_cfg[] = {"{}", "{\"ca_pem\":\"\"}", "{\"ca_pem\":1}",
                             "{\"ca_pem\":\"x\",\"ca_pem\":\"y\"}", "{\"cas\":[]}"};
    for (size_t i = 0; i < sizeof(bad_cfg) / sizeof(bad_cfg[0]); i++) {
        struct mf_certauth_mount *m = NULL;
        assert_int_equal(mf_certauth_mount_parse(bad_cfg[i], strlen(bad_cfg[i]), peer_ca_pem, &m,
                                                 err, sizeof(err)),
                         MF_EINVAL);
        assert_null(m);
    }
    const char *bad_role[] = {"{}", "{\"allowed_uri_sans\":[]}",
                              "{\"allowed_uri_sans\":[\"a\"],\"allowed_dns_sans\":[\"b\"]}",
                              "{\"allowed_uri_sans\":[\"a\"],\"allowed_uri_sans\":[\"*\"]}",
                              "{\"allowed_uri_sans\":\"a\"}"};
    for (size_t i = 0; i < sizeof(bad_role) / sizeof(bad_role[0]); i++) {
        struct mf_certauth_role *r = NULL;
        assert_int_equal(
            mf_certauth_role_parse(bad_role[i], strlen(bad_role[i]), &r, err, sizeof(err)),
            MF_EINVAL);
        assert_null(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_certauth_spiffe_maps_to_role),
        cmocka_unit_test(test_auth_certauth_common_name_only_when_listed),
        cmocka_unit_test(test_auth_certauth_other_ca_and_peer_ca_refused),
        cmocka_unit_test(test_auth_certauth_peer_ca_mount_refused),
        cmocka_unit_test(test_auth_certauth_expired),
        cmocka_unit_test(test_auth_certauth_crl),
        cmocka_unit_test(test_auth_certauth_node_san_refused),
        cmocka_unit_test(test_auth_certauth_intermediate_chain),
        cmocka_unit_test(test_auth_certauth_config_and_role_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
