/* Tests of the engine helpers shared by every engine (src/engines/engine.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/err.h"
#include "engines/engine.h"

/* Names are "mf_" + 13 base32 characters, safe as PostgreSQL identifiers, and
 * parse back to the same SEQ; foreign names are refused. */
static void test_engines_name_round_trip(void **state)
{
    (void)state;
    const uint64_t seqs[] = {0, 1, 4, 31, 32, 1234567, UINT64_C(1) << 40, UINT64_MAX};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        char name[MF_ENGINE_NAME_MAX];
        mf_engine_name(seqs[i], name, sizeof(name));
        assert_int_equal(strlen(name), 16);
        assert_memory_equal(name, "mf_", 3);
        for (const char *p = name; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
        uint64_t back = 0;
        assert_int_equal(mf_engine_name_parse(name, &back), 0);
        assert_int_equal(back, seqs[i]);
    }
    char a[MF_ENGINE_NAME_MAX], b[MF_ENGINE_NAME_MAX];
    mf_engine_name(4, a, sizeof(a));
    mf_engine_name(5, b, sizeof(b));
    assert_true(strcmp(a, b) < 0); /* Crockford digits sort like their values */
    uint64_t seq;
    assert_int_equal(mf_engine_name_parse("postgres", &seq), MF_EINVAL);
    assert_int_equal(mf_engine_name_parse("mf_000000000000", &seq), MF_EINVAL);
    assert_int_equal(mf_engine_name_parse("mf_00000000000001", &seq), MF_EINVAL);
    assert_int_equal(mf_engine_name_parse("mf_zzzzzzzzzzzzz", &seq), MF_EINVAL); /* > 64 bits */
    assert_int_equal(mf_engine_name_parse("mf_000000000000u", &seq), MF_EINVAL); /* not Crockford */
    assert_int_equal(mf_engine_name_parse("mf_000000000000A", &seq), MF_EINVAL); /* upper case */
    /* The same SEQ text as the lease id. */
    char name[MF_ENGINE_NAME_MAX];
    mf_engine_name(4, name, sizeof(name));
    assert_string_equal(name, "mf_0000000000004");
}

/* Every engine type is compiled in and found by name (a weak reference once
 * left PostgreSQL out of the program). */
static void test_engines_registry_finds_every_type(void **state)
{
    (void)state;
    assert_non_null(mf_engine_find("postgres"));
    assert_non_null(mf_engine_find("pki"));
    assert_string_equal(mf_engine_find("postgres")->type, "postgres");
    assert_null(mf_engine_find("mysql"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engines_name_round_trip),
        cmocka_unit_test(test_engines_registry_finds_every_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
