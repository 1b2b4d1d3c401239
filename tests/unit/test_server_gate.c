/* Tests of src/server/gate.c: reading a request's id and token from its
 * head without decoding it, and the strangers' byte rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mayfly.pb-c.h"
#include "server/gate.h"

/* A Request as protobuf-c packs it: id, token, a KV put with a value. */
static uint8_t *packed(uint64_t id, const char *token, size_t value_len, size_t *len)
{
    Mayfly__Api__Request r = MAYFLY__API__REQUEST__INIT;
    Mayfly__Api__KvPutRequest put = MAYFLY__API__KV_PUT_REQUEST__INIT;
    r.id = id;
    r.token = (char *)token;
    put.path = "app/x";
    r.op_case = MAYFLY__API__REQUEST__OP_KV_PUT;
    r.kv_put = &put;
    char *value = calloc(1, value_len + 1);
    memset(value, 'v', value_len);
    Mayfly__Api__KvPutRequest__DataEntry e = MAYFLY__API__KV_PUT_REQUEST__DATA_ENTRY__INIT;
    Mayfly__Api__KvPutRequest__DataEntry *ep = &e;
    e.key = "k";
    e.value = value;
    put.n_data = 1;
    put.data = &ep;
    *len = mayfly__api__request__get_packed_size(&r);
    uint8_t *buf = malloc(*len);
    mayfly__api__request__pack(&r, buf);
    free(value);
    return buf;
}

static void head_of_a_large_request(void **state)
{
    (void)state;
    size_t len;
    const char *token = "mf.0123456789abcdef";
    uint8_t *buf = packed(300, token, 200000, &len);
    uint64_t id;
    const uint8_t *tok;
    size_t tok_len;
    mf_gate_head_fields(buf, 65536, &id, &tok, &tok_len); /* only the head */
    assert_int_equal(id, 300);
    assert_non_null(tok);
    assert_int_equal(tok_len, strlen(token));
    assert_memory_equal(tok, token, tok_len);
    free(buf);
}

static void no_token_or_cut_off(void **state)
{
    (void)state;
    size_t len;
    uint64_t id;
    const uint8_t *tok;
    size_t tok_len;
    uint8_t *buf = packed(7, NULL, 10, &len); /* an empty token is not written */
    mf_gate_head_fields(buf, len, &id, &tok, &tok_len);
    assert_int_equal(id, 7);
    assert_null(tok);
    free(buf);
    buf = packed(7, "mf.abcdef", 10, &len);
    mf_gate_head_fields(buf, 5, &id, &tok, &tok_len); /* the token is cut off */
    assert_null(tok);
    mf_gate_head_fields(buf, 0, &id, &tok, &tok_len);
    assert_int_equal(id, 0);
    assert_null(tok);
    free(buf);
    /* A varint that never ends, a length past the end: nothing, no overread. */
    uint8_t bad[] = {0x08, 0xff, 0xff, 0xff};
    mf_gate_head_fields(bad, sizeof(bad), &id, &tok, &tok_len);
    assert_null(tok);
    uint8_t longer[] = {0x08, 0x01, 0x12, 0x7f, 'm', 'f'};
    mf_gate_head_fields(longer, sizeof(longer), &id, &tok, &tok_len);
    assert_int_equal(id, 1);
    assert_null(tok);
}

static void byte_rate(void **state)
{
    (void)state;
    struct mf_gate_rate r = {1000000, 0}; /* 1 MB/s, full */
    assert_int_equal(mf_gate_charge(&r, 1000000, 0, 500000), 0);
    assert_int_equal(mf_gate_charge(&r, 1000000, 0, 500000), 0);
    /* 200 kB of debt: 200 ms (and 1 of rounding) to pay. */
    assert_int_equal(mf_gate_charge(&r, 1000000, 0, 200000), 201);
    /* 300 ms later the debt is paid and 100 kB is back. */
    assert_int_equal(mf_gate_charge(&r, 1000000, 300, 100000), 0);
    /* A tiny frame counts as 1 KiB. */
    struct mf_gate_rate z = {0, 0};
    assert_int_equal(mf_gate_charge(&z, 1024000, 0, 1), 2);
    /* Refills stop at one second's worth; a huge debt pauses 60 s at most. */
    struct mf_gate_rate f = {0, 0};
    mf_gate_charge(&f, 1000, 1000000, 0);
    assert_true(f.tokens <= 1000);
    assert_int_equal(mf_gate_charge(&f, 1000, 1000000, 100000000), 60000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_of_a_large_request),
        cmocka_unit_test(no_token_or_cut_off),
        cmocka_unit_test(byte_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
