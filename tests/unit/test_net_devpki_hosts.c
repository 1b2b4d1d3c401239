/* Tests of devpki's --hosts SPEC (mayflyd --gen-certs --hosts): the parser's
 * accepted and refused forms, and a node certificate that carries the names
 * besides its node id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/devpki.h"
#include "net/tls.h"
#include "common/err.h"
#include "tmpdir.h"

/* Names sorted into DNS and IP SANs per node, in the order given. */
static void test_devpki_hosts_parse_sorts_names(void **state)
{
    (void)state;
    struct mf_devpki_hosts h;
    char err[256] = "";
    assert_int_equal(mf_devpki_hosts_parse("1=db1.example.com,10.0.0.1;3=fd00::3,db3", 3, &h,
                                           err, sizeof(err)), 0);
    assert_int_equal(h.len, 2);
    const struct mf_devpki_node_names *n1 = mf_devpki_hosts_find(&h, 1);
    assert_non_null(n1);
    assert_string_equal(n1->dns[0], "db1.example.com");
    assert_string_equal(n1->ips[0], "10.0.0.1");
    assert_null(n1->dns[1]);
    const struct mf_devpki_node_names *n3 = mf_devpki_hosts_find(&h, 3);
    assert_non_null(n3);
    assert_string_equal(n3->ips[0], "fd00::3");
    assert_string_equal(n3->dns[0], "db3");
    assert_null(mf_devpki_hosts_find(&h, 2));
    mf_devpki_hosts_free(&h);
}

/* Bad ids, duplicates, junk names and empty lists are refused with a reason. */
static void test_devpki_hosts_parse_refuses_bad_specs(void **state)
{
    (void)state;
    const char *bad[] = {"",           "1",          "0=a",         "4=a",
                         "x=a",        "-1=a",       "1=a;1=b",     "1=",
                         "1=a b",      "1=-a",       "1=a..b",      "1=a_b",
                         "1=a,b,c,d,e,f,g,h", "1=10.0.0.1/24", "1=*x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mf_devpki_hosts h;
        char err[256] = "";
        assert_int_equal(mf_devpki_hosts_parse(bad[i], 3, &h, err, sizeof(err)), MF_EINVAL);
        assert_true(strlen(err) > 0);
        assert_null(h.buf);
    }
}

static int has_san(X509 *x, int type, const char *value)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != type)
            continue;
        if (type == GEN_IPADD) {
            ASN1_OCTET_STRING *want = a2i_IPADDRESS(value);
            found |= want && ASN1_STRING_cmp(want, g->d.iPAddress) == 0;
            ASN1_OCTET_STRING_free(want);
        } else {
            const ASN1_STRING *s = type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
            found |= (size_t)ASN1_STRING_length(s) == strlen(value) &&
                     memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) == 0;
        }
    }
    GENERAL_NAMES_free(sans);
    return found;
}

/* make_dir_hosts: node 2 carries its names, localhost and its node id; node 1
 * only the defaults. */
static void test_devpki_make_dir_hosts_adds_names(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(mf_tmpdir_make("devpki", dir, sizeof(dir)), 0);
    struct mf_devpki_hosts h;
    assert_int_equal(mf_devpki_hosts_parse("2=db2.example,10.93.2.2", 2, &h, NULL, 0), 0);
    assert_int_equal(mf_devpki_make_dir_hosts(dir, 2, &h), 0);
    mf_devpki_hosts_free(&h);
    snprintf(path, sizeof(path), "%s/node-2.pem", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    assert_true(has_san(x, GEN_DNS, "db2.example"));
    assert_true(has_san(x, GEN_IPADD, "10.93.2.2"));
    assert_true(has_san(x, GEN_IPADD, "127.0.0.1"));
    assert_true(has_san(x, GEN_DNS, "localhost"));
    uint64_t id = 0;
    assert_int_equal(mf_tls_cert_node_id(x, &id), 0);
    assert_int_equal(id, 2);
    X509_free(x);
    snprintf(path, sizeof(path), "%s/node-1.pem", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_false(has_san(x, GEN_IPADD, "10.93.2.2"));
    X509_free(x);
    mf_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_devpki_hosts_parse_sorts_names),
        cmocka_unit_test(test_devpki_hosts_parse_refuses_bad_specs),
        cmocka_unit_test(test_devpki_make_dir_hosts_adds_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
