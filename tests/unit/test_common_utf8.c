/* UTF-8 validation (common/utf8.h): RFC 3629's rule, byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/utf8.h"

#define VALID(lit) assert_true(mf_utf8_valid(lit, sizeof(lit) - 1))
#define INVALID(lit) assert_false(mf_utf8_valid(lit, sizeof(lit) - 1))

static void test_valid_text(void **state)
{
    (void)state;
    VALID("");
    VALID("app/db");
    VALID("caf\xc3\xa9");                 /* U+00E9 */
    VALID("\xe2\x82\xac");                /* U+20AC */
    VALID("\xf0\x9f\x94\x91/key");        /* U+1F511 */
    VALID("\xc2\x80");                    /* U+0080, smallest two-byte */
    VALID("\xe0\xa0\x80");                /* U+0800, smallest three-byte */
    VALID("\xed\x9f\xbf");                /* U+D7FF, just below the surrogates */
    VALID("\xee\x80\x80");                /* U+E000, just above */
    VALID("\xf4\x8f\xbf\xbf");            /* U+10FFFF, the last code point */
    VALID("a\0b");                        /* NUL is UTF-8 (the decoder refuses it apart) */
}

static void test_invalid_bytes(void **state)
{
    (void)state;
    INVALID("\x80");                      /* a lone continuation byte */
    INVALID("app/\xff");                  /* never in UTF-8 */
    INVALID("\xfe");
    INVALID("caf\xe9");                   /* Latin-1, not UTF-8 */
    INVALID("\xc3");                      /* cut short */
    INVALID("\xe2\x82");
    INVALID("\xf0\x9f\x94");
    INVALID("\xc3\x28");                  /* bad continuation */
    INVALID("\xe2\x28\xa1");
    INVALID("\xf0\x9f\x28\x91");
}

static void test_overlong_surrogates_and_range(void **state)
{
    (void)state;
    INVALID("\xc0\xaf");                  /* overlong '/' : would hide app/db behind app\xc0\xafdb */
    INVALID("\xc1\xbf");
    INVALID("\xe0\x80\xaf");              /* overlong '/', three bytes */
    INVALID("\xe0\x9f\xbf");              /* overlong U+07FF */
    INVALID("\xf0\x80\x80\xaf");          /* overlong '/', four bytes */
    INVALID("\xf0\x8f\xbf\xbf");          /* overlong U+FFFF */
    INVALID("\xed\xa0\x80");              /* U+D800, a surrogate */
    INVALID("\xed\xbf\xbf");              /* U+DFFF */
    INVALID("\xf4\x90\x80\x80");          /* U+110000 */
    INVALID("\xf5\x80\x80\x80");
}

static void test_length_is_respected(void **state)
{
    (void)state;
    /* Only len bytes are read: a cut multi-byte sequence at the end fails,
     * the same bytes with the rest present pass. */
    const char *s = "ok\xe2\x82\xac";
    assert_true(mf_utf8_valid(s, 5));
    assert_false(mf_utf8_valid(s, 4));
    assert_true(mf_utf8_valid(s, 2));
}

static void test_null_message_is_valid(void **state)
{
    (void)state;
    const char *field = "x";
    assert_true(mf_utf8_message_valid(NULL, &field));
    assert_null(field);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text),
        cmocka_unit_test(test_invalid_bytes),
        cmocka_unit_test(test_overlong_surrogates_and_range),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_null_message_is_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
