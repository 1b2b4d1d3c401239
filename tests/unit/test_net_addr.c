/* Tests of src/net/addr.c: "host:port" parsing and printing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/err.h"
#include "net/addr.h"

/* Valid forms split into host and port: IPv4, names, bracketed IPv6, port 0. */
static void test_net_addr_split_valid(void **state)
{
    (void)state;
    char host[MF_NET_HOST_MAX];
    uint16_t port = 1;
    assert_int_equal(mf_net_split_hostport("127.0.0.1:8271", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8271);
    assert_int_equal(mf_net_split_hostport("node-1.example:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "node-1.example");
    assert_int_equal(port, 0);
    assert_int_equal(mf_net_split_hostport("[::1]:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 65535);
}

/* Missing or bad ports, empty hosts, bare IPv6 and overlong hosts are
 * refused with MF_EINVAL. */
static void test_net_addr_split_invalid(void **state)
{
    (void)state;
    char host[16];
    uint16_t port;
    const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", ":80", "h:65536", "h:-1", "h:8x",
                         "::1:80", "[::1]80", "[::1", "h:123456",
                         "a-very-long-host-name:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mf_net_split_hostport(bad[i], host, sizeof(host), &port), MF_EINVAL);
}

/* Literals become sockaddrs (localhost is 127.0.0.1) and print back. */
static void test_net_addr_sockaddr_and_format(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    char buf[64];
    assert_int_equal(mf_net_sockaddr("localhost", 80, &sa), 0);
    assert_string_equal(mf_net_format((struct sockaddr *)&sa, buf, sizeof(buf)), "127.0.0.1:80");
    assert_int_equal(mf_net_sockaddr("::1", 443, &sa), 0);
    assert_string_equal(mf_net_format((struct sockaddr *)&sa, buf, sizeof(buf)), "[::1]:443");
    /* An IPv4 client of a "::" listener prints as IPv4. */
    assert_int_equal(mf_net_sockaddr("::ffff:10.231.0.2", 8200, &sa), 0);
    assert_string_equal(mf_net_format((struct sockaddr *)&sa, buf, sizeof(buf)), "10.231.0.2:8200");
    assert_int_equal(mf_net_sockaddr("example.com", 1, &sa), MF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_addr_split_valid),
        cmocka_unit_test(test_net_addr_split_invalid),
        cmocka_unit_test(test_net_addr_sockaddr_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
