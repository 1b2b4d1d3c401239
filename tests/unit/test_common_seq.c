/* Tests of src/common/seq.c: SEQ printed as 13 Crockford base32 digits, the
 * text shared by lease ids and engine object names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/err.h"
#include "common/seq.h"

/* Deterministic spread of 64-bit values (splitmix64), so the tests see the
 * same numbers on every run. */
static uint64_t next_value(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Known values print as expected: zero-padded, Crockford digits, lower case. */
static void test_common_seq_format_known_values(void **state)
{
    (void)state;
    char s[MF_SEQ_CHARS + 1];
    mf_seq_format(0, s);
    assert_string_equal(s, "0000000000000");
    mf_seq_format(4, s);
    assert_string_equal(s, "0000000000004");
    mf_seq_format(31, s);
    assert_string_equal(s, "000000000000z");
    mf_seq_format(32, s);
    assert_string_equal(s, "0000000000010");
    mf_seq_format(18, s); /* Crockford skips i: 18 is 'j', not 'i' */
    assert_string_equal(s, "000000000000j");
    mf_seq_format(UINT64_MAX, s);
    assert_string_equal(s, "fzzzzzzzzzzzz");
    assert_int_equal(strlen(s), MF_SEQ_CHARS);
}

/* Every value parses back to itself, across edges and a spread of values. */
static void test_common_seq_round_trip(void **state)
{
    (void)state;
    const uint64_t edges[] = {0, 1, 15, 16, 31, 32, 1023, 1024, UINT64_C(1) << 60,
                              (UINT64_C(1) << 60) - 1, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        char s[MF_SEQ_CHARS + 1];
        uint64_t back = 0;
        mf_seq_format(edges[i], s);
        assert_int_equal(mf_seq_parse(s, MF_SEQ_CHARS, &back), 0);
        assert_int_equal(back, edges[i]);
    }
    uint64_t x = 1;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = next_value(&x) >> (i % 64);
        char s[MF_SEQ_CHARS + 1];
        uint64_t back = ~v;
        mf_seq_format(v, s);
        assert_int_equal(mf_seq_parse(s, MF_SEQ_CHARS, &back), 0);
        assert_int_equal(back, v);
    }
}

/* Byte order of the text is the numeric order of the values. */
static void test_common_seq_text_order_is_numeric_order(void **state)
{
    (void)state;
    uint64_t x = 7;
    for (int i = 0; i < 10000; i++) {
        uint64_t a = next_value(&x) >> (i % 64), b = next_value(&x) >> ((i * 7) % 64);
        char sa[MF_SEQ_CHARS + 1], sb[MF_SEQ_CHARS + 1];
        mf_seq_format(a, sa);
        mf_seq_format(b, sb);
        int c = strcmp(sa, sb);
        assert_true(a < b ? c < 0 : a > b ? c > 0 : c == 0);
    }
    /* Neighbours across a digit carry. */
    char lo[MF_SEQ_CHARS + 1], hi[MF_SEQ_CHARS + 1];
    mf_seq_format(31, lo);
    mf_seq_format(32, hi);
    assert_true(strcmp(lo, hi) < 0);
}

/* Bytes outside the alphabet are refused, including Crockford's decode-only
 * aliases (i, l, o), u, and control bytes that a case-folding bit trick
 * would turn into digits; *seq stays untouched. */
static void test_common_seq_parse_rejects_bad_chars(void **state)
{
    (void)state;
    const char *bad[] = {"000000000000i", "000000000000l", "000000000000o", "000000000000u",
                         "000000000000!", "00000000000 1", "000000000000/", "000000000000_",
                         "0000000000\x10" "00", "000000000000\x11", "000000000000\xe1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t seq = 77;
        assert_int_equal(mf_seq_parse(bad[i], MF_SEQ_CHARS, &seq), MF_EINVAL);
        assert_int_equal(seq, 77);
    }
    /* A NUL inside the counted bytes is a bad byte, not an end. */
    uint64_t seq = 77;
    assert_int_equal(mf_seq_parse("000000\0" "000000", MF_SEQ_CHARS, &seq), MF_EINVAL);
    assert_int_equal(mf_seq_parse(NULL, MF_SEQ_CHARS, &seq), MF_EINVAL);
    assert_int_equal(seq, 77);
}

/* Only exactly 13 bytes parse; the first digit above 'f' needs a 65th bit. */
static void test_common_seq_parse_length_and_range(void **state)
{
    (void)state;
    uint64_t seq = 77;
    assert_int_equal(mf_seq_parse("000000000001", 12, &seq), MF_EINVAL);
    assert_int_equal(mf_seq_parse("00000000000001", 14, &seq), MF_EINVAL);
    assert_int_equal(mf_seq_parse("", 0, &seq), MF_EINVAL);
    assert_int_equal(mf_seq_parse("g000000000000", MF_SEQ_CHARS, &seq), MF_EINVAL);
    assert_int_equal(mf_seq_parse("zzzzzzzzzzzzz", MF_SEQ_CHARS, &seq), MF_EINVAL);
    assert_int_equal(seq, 77);
    /* Only len bytes are read: the rest of a longer string is not looked at. */
    assert_int_equal(mf_seq_parse("0000000000004/x", MF_SEQ_CHARS, &seq), 0);
    assert_int_equal(seq, 4);
    assert_int_equal(mf_seq_parse("fzzzzzzzzzzzz", MF_SEQ_CHARS, &seq), 0);
    assert_int_equal(seq, UINT64_MAX);
}

/* Upper case parses like lower case (Crockford's decoding is case-blind). */
static void test_common_seq_parse_accepts_upper_case(void **state)
{
    (void)state;
    uint64_t a = 0, b = 1;
    assert_int_equal(mf_seq_parse("00000000000ZJ", MF_SEQ_CHARS, &a), 0);
    assert_int_equal(mf_seq_parse("00000000000zj", MF_SEQ_CHARS, &b), 0);
    assert_int_equal(a, b);
    assert_int_equal(a, 31 * 32 + 18);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_seq_format_known_values),
        cmocka_unit_test(test_common_seq_round_trip),
        cmocka_unit_test(test_common_seq_text_order_is_numeric_order),
        cmocka_unit_test(test_common_seq_parse_rejects_bad_chars),
        cmocka_unit_test(test_common_seq_parse_length_and_range),
        cmocka_unit_test(test_common_seq_parse_accepts_upper_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
