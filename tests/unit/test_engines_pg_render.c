/* Tests of the PostgreSQL template renderer (mf_pg_render, postgres.h), the
 * code issue, renew and revoke substitute with (no database needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "engines/postgres.h"

/* Every placeholder is replaced as it is, the rest copied. */
static void test_pg_render_substitutes(void **state)
{
    (void)state;
    char *out = NULL, err[128];
    assert_int_equal(mf_pg_render("CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' "
                                  "VALID UNTIL '{{expiration}}';{{password_scram}}",
                                  "mf_x", "pw", "SCRAM", "2030", &out, err, sizeof(err)),
                     0);
    assert_string_equal(out, "CREATE ROLE \"mf_x\" PASSWORD 'pw' VALID UNTIL '2030';SCRAM");
    free(out);
    assert_int_equal(mf_pg_render("", "n", NULL, NULL, NULL, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "");
    free(out);
}

/* Unknown, unterminated and not-allowed placeholders are refused, named. */
static void test_pg_render_refuses(void **state)
{
    (void)state;
    char *out = (char *)1, err[128];
    assert_int_equal(mf_pg_render("{{nope}}", "n", "p", "s", "e", &out, err, sizeof(err)),
                     MF_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err, "{{nope}}"));
    assert_int_equal(mf_pg_render("x {{name", "n", "p", "s", "e", &out, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "unterminated"));
    /* A revocation template has no password. */
    assert_int_equal(mf_pg_render("{{password}}", "n", NULL, NULL, NULL, &out, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "not available"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_render_substitutes),
        cmocka_unit_test(test_pg_render_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
