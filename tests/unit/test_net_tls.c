/* Tests of src/net/tls.c and devpki.c: generated certificates, contexts, and
 * the node id carried in a certificate's SAN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "net_harness.h"

static int setup(void **state)
{
    (void)state;
    return h_setup_pki();
}

static int teardown(void **state)
{
    (void)state;
    h_remove_pki();
    return 0;
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

/* 0 if `leaf` verifies against the CA at ca_path for `purpose` (and `ip` if
 * not NULL), else the X509 verify error. */
static int verify(const char *ca_path, X509 *leaf, int purpose, const char *ip)
{
    X509_STORE *store = X509_STORE_new();
    assert_int_equal(X509_STORE_load_file(store, ca_path), 1);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    if (ip)
        X509_VERIFY_PARAM_set1_ip_asc(X509_STORE_CTX_get0_param(ctx), ip);
    int ok = X509_verify_cert(ctx);
    int err = ok == 1 ? 0 : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return err;
}

/* Node and client certificates from devpki verify against their CA for their
 * purposes and IP, not against another CA, and keys are written 0600. */
static void test_net_devpki_certs_verify(void **state)
{
    (void)state;
    X509 *node = load_cert(h_path("node-1.pem"));
    X509 *client = load_cert(h_path("client.pem"));
    assert_int_equal(verify(h_path("ca.pem"), node, X509_PURPOSE_SSL_SERVER, "127.0.0.1"), 0);
    assert_int_equal(verify(h_path("ca.pem"), node, X509_PURPOSE_SSL_CLIENT, NULL), 0);
    assert_int_equal(verify(h_path("ca.pem"), client, X509_PURPOSE_SSL_CLIENT, NULL), 0);
    assert_int_not_equal(verify(h_path("ca.pem"), client, X509_PURPOSE_SSL_SERVER, NULL), 0);
    assert_int_not_equal(verify(h_path("ca.pem"), node, X509_PURPOSE_SSL_SERVER, "10.1.2.3"),
                         0);
    assert_int_not_equal(verify(h_path("other/ca.pem"), node, X509_PURPOSE_SSL_SERVER, NULL),
                         0);
    struct stat st;
    assert_int_equal(stat(h_path("node-1-key.pem"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(h_path("ca-key.pem"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    X509_free(node);
    X509_free(client);
}

/* A CA written to disk loads back and issues certificates that verify. */
static void test_net_devpki_ca_reload_issues(void **state)
{
    (void)state;
    struct mf_devpki_ca ca;
    assert_int_equal(mf_devpki_ca_load(&ca, h_path("ca.pem"), h_path("ca-key.pem")), 0);
    struct mf_devpki_req req = {.common_name = "extra", .node_id = 42,
                                .ips = {"::1", "10.0.0.7"}, .dns = {"n42.example"},
                                .server = 1, .client = 1};
    assert_int_equal(mf_devpki_issue(&ca, &req, h_path("n42.pem"), h_path("n42-key.pem")), 0);
    struct mf_devpki_req bad = {.common_name = "bad", .ips = {"not-an-ip"}};
    assert_int_equal(mf_devpki_issue(&ca, &bad, h_path("bad.pem"), h_path("bad-key.pem")),
                     MF_EINVAL);
    mf_devpki_ca_close(&ca);
    X509 *x = load_cert(h_path("n42.pem"));
    assert_int_equal(verify(h_path("ca.pem"), x, X509_PURPOSE_SSL_SERVER, "10.0.0.7"), 0);
    uint64_t id = 0;
    assert_int_equal(mf_tls_cert_node_id(x, &id), 0);
    assert_int_equal(id, 42);
    X509_free(x);
    assert_int_equal(mf_devpki_ca_load(&ca, h_path("ca.pem"), h_path("node-1-key.pem")),
                     MF_ECONFIG);
}

/* The node id comes from the mayfly://node/<id> URI SAN; a client
 * certificate has none. */
static void test_net_peer_id_extraction(void **state)
{
    (void)state;
    for (int n = 1; n <= 3; n++) {
        char name[32];
        snprintf(name, sizeof(name), "node-%d.pem", n);
        X509 *x = load_cert(h_path(name));
        uint64_t id = 0;
        assert_int_equal(mf_tls_cert_node_id(x, &id), 0);
        assert_int_equal(id, (uint64_t)n);
        X509_free(x);
    }
    X509 *c = load_cert(h_path("client.pem"));
    uint64_t id = 99;
    assert_int_equal(mf_tls_cert_node_id(c, &id), MF_ENOTFOUND);
    assert_int_equal(id, 99);
    X509_free(c);
}

/* Contexts refuse a key that does not match the certificate and a missing
 * file, with a message naming the file. */
static void test_net_tls_ctx_errors(void **state)
{
    (void)state;
    SSL_CTX *ctx = NULL;
    char err[512] = "";
    assert_int_equal(mf_tls_server_ctx_new(h_path("ca.pem"), h_path("node-1.pem"),
                                           h_path("node-2-key.pem"),
                                           MF_TLS_CLIENT_AUTH_REQUIRE, &ctx, err, sizeof(err)),
                     MF_ECONFIG);
    assert_non_null(strstr(err, "node-2-key.pem"));
    assert_int_equal(mf_tls_client_ctx_new(h_path("missing.pem"), NULL, NULL, &ctx, err,
                                           sizeof(err)),
                     MF_ECONFIG);
    assert_non_null(strstr(err, "missing.pem"));
    assert_int_equal(mf_tls_client_ctx_new(h_path("ca.pem"), h_path("client.pem"),
                                           h_path("client-key.pem"), &ctx, err, sizeof(err)),
                     0);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    mf_tls_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_devpki_certs_verify),
        cmocka_unit_test(test_net_devpki_ca_reload_issues),
        cmocka_unit_test(test_net_peer_id_extraction),
        cmocka_unit_test(test_net_tls_ctx_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
