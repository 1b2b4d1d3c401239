/* Tests of src/audit/record.c and the line format of src/audit/chain.c:
 * canonical bytes, HMAC'd secret fields, redacted shares, key derivation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "audit/chain.h"
#include "audit/record.h"
#include "common/err.h"

#define FILE_ID "00112233445566778899aabbccddeeff"

static const uint8_t AUDIT_KEY[MF_AUDIT_KEY_BYTES] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                                      7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
static const uint8_t OTHER_KEY[MF_AUDIT_KEY_BYTES] = {9};

/* Markers that must never reach an audit line in clear. */
#define M_REQUEST "REQID-MARKER-5f1e"
#define M_TOKEN "mft.TOKEN-MARKER-0b3c"
#define M_PASSWORD "PASSWORD-MARKER-77aa"
#define M_SECRET "SECRET-VALUE-MARKER-c0ffee"
#define M_JWT "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJKV1QtTUFSS0VSIn0.SIGNATURE-MARKER"
#define M_SHARE "SHARE-MARKER-unseal-1-of-5"

static const struct mf_audit_claim CLAIMS[] = {
    {"sub", "system:serviceaccount:payments:api"},
    {"namespace", "payments"},
};

static const struct mf_audit_secret SECRETS[] = {
    {"token", M_TOKEN, sizeof(M_TOKEN) - 1, MF_AUDIT_SECRET_HMAC},
    {"password", M_PASSWORD, sizeof(M_PASSWORD) - 1, MF_AUDIT_SECRET_HMAC},
    {"value", M_SECRET, sizeof(M_SECRET) - 1, MF_AUDIT_SECRET_HMAC},
    {"jwt", M_JWT, sizeof(M_JWT) - 1, MF_AUDIT_SECRET_HMAC},
    {"unseal_share", M_SHARE, sizeof(M_SHARE) - 1, MF_AUDIT_SECRET_REDACT},
};

static struct mf_audit_record sample(void)
{
    struct mf_audit_record r = {
        .time_ms = 1700000000123ull,
        .node_id = "n1",
        .record_id = "n1-42",
        .request_id = M_REQUEST,
        .client_addr = "10.0.0.7:53211",
        .identity = {.auth_method = "jwt", .role = "payments-api", .accessor = "acc-1234",
                     .claims = CLAIMS, .claims_n = 2,
                     .cert_san = "spiffe://prod/ns/payments/sa/api"},
        .operation = "kv.put",
        .path = "secret/data/payments/db",
        .decision = {.allowed = true, .policy = "payments", .rule = "secret/data/payments/*"},
        .result = "OK",
        .lease_id = "lease-99",
        .secrets = SECRETS,
        .secrets_n = sizeof(SECRETS) / sizeof(SECRETS[0]),
    };
    return r;
}

static struct mf_audit_keys keys_of(const uint8_t *key)
{
    struct mf_audit_keys k;
    assert_int_equal(mf_audit_keys_derive(key, &k), 0);
    return k;
}

/* Formats r as line 2 of a file (after the start record) into buf (NUL-terminated). */
static size_t line_of(const struct mf_audit_keys *k, const struct mf_audit_record *r, char *buf,
                      size_t cap)
{
    struct mf_audit_chain c;
    size_t n = 0;
    assert_int_equal(mf_audit_chain_start(&c, k->chain_key, FILE_ID), 0);
    assert_int_equal(mf_audit_chain_format_start(&c, k, "n1", r->time_ms, NULL, buf, cap, &n), 0);
    assert_int_equal(mf_audit_chain_format(&c, k, r, buf, cap - 1, &n), 0);
    assert_int_equal(c.at.seq, 2);
    buf[n] = '\0';
    return n;
}

/* The same record formats to the same bytes, claim order does not matter, and
 * the bytes are jansson's sorted compact form of themselves (canonical). */
static void test_audit_record_canonical_stable(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    static char a[MF_AUDIT_LINE_MAX + 1], b[MF_AUDIT_LINE_MAX + 1];
    struct mf_audit_record r = sample();
    size_t na = line_of(&k, &r, a, sizeof(a));
    struct mf_audit_claim swapped[2] = {CLAIMS[1], CLAIMS[0]};
    r.identity.claims = swapped;
    size_t nb = line_of(&k, &r, b, sizeof(b));
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);

    json_error_t jerr;
    json_t *o = json_loadb(a, na, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(o);
    char *again = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    assert_string_equal(again, a);
    assert_int_equal(strncmp(a, "{\"chain\":\"", 10), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 2);
    assert_string_equal(json_string_value(json_object_get(o, "file")), FILE_ID);
    assert_string_equal(json_string_value(json_object_get(o, "key_id")), k.key_id);
    assert_true(json_is_true(json_object_get(json_object_get(o, "decision"), "allowed")));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(o, "identity"), "claims"), "sub")),
                        "system:serviceaccount:payments:api");
    free(again);
    json_decref(o);

    /* A different time gives different bytes (the record is really serialised). */
    r.time_ms++;
    nb = line_of(&k, &r, b, sizeof(b));
    assert_true(na != nb || memcmp(a, b, na) != 0);
    mf_audit_keys_wipe(&k);
}

/* A secret value, a token, a password, a request id, a JWT and a share never
 * appear in the line; each HMAC'd field holds hmac-sha256:KEYID:HEX. */
static void test_audit_record_markers_absent(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    static char buf[MF_AUDIT_LINE_MAX + 1];
    struct mf_audit_record r = sample();
    size_t n = line_of(&k, &r, buf, sizeof(buf));
    const char *markers[] = {M_REQUEST, M_TOKEN, M_PASSWORD, M_SECRET, M_JWT, M_SHARE,
                             "REQID", "MARKER", "eyJ"};
    for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
        assert_null(memmem(buf, n, markers[i], strlen(markers[i])));

    json_t *o = json_loadb(buf, n, 0, NULL);
    assert_non_null(o);
    json_t *sec = json_object_get(o, "secrets");
    char want[MF_AUDIT_HASH_STR_BYTES];
    assert_int_equal(mf_audit_hash(&k, M_TOKEN, strlen(M_TOKEN), want), 0);
    assert_string_equal(json_string_value(json_object_get(sec, "token")), want);
    assert_int_equal(mf_audit_hash(&k, M_REQUEST, strlen(M_REQUEST), want), 0);
    assert_string_equal(json_string_value(json_object_get(o, "request_id")), want);
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "hmac-sha256:%s:", k.key_id);
    const char *fields[] = {"token", "password", "value", "jwt"};
    for (size_t i = 0; i < 4; i++) {
        const char *v = json_string_value(json_object_get(sec, fields[i]));
        assert_non_null(v);
        assert_int_equal(strncmp(v, prefix, strlen(prefix)), 0);
        assert_int_equal(strlen(v), MF_AUDIT_HASH_STR_BYTES - 1);
    }
    json_decref(o);
    mf_audit_keys_wipe(&k);
}

/* The HMAC of one value is the same twice under one key, differs for another
 * value, and differs under another audit key (with another key id). */
static void test_audit_record_hmac_keyed(void **state)
{
    (void)state;
    struct mf_audit_keys k1 = keys_of(AUDIT_KEY), k1b = keys_of(AUDIT_KEY),
                         k2 = keys_of(OTHER_KEY);
    char a[MF_AUDIT_HASH_STR_BYTES], b[MF_AUDIT_HASH_STR_BYTES], c[MF_AUDIT_HASH_STR_BYTES],
        d[MF_AUDIT_HASH_STR_BYTES];
    assert_int_equal(mf_audit_hash(&k1, M_PASSWORD, strlen(M_PASSWORD), a), 0);
    assert_int_equal(mf_audit_hash(&k1b, M_PASSWORD, strlen(M_PASSWORD), b), 0);
    assert_int_equal(mf_audit_hash(&k2, M_PASSWORD, strlen(M_PASSWORD), c), 0);
    assert_int_equal(mf_audit_hash(&k1, M_SECRET, strlen(M_SECRET), d), 0);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_string_not_equal(k1.key_id, k2.key_id);
    assert_int_equal(strlen(k1.key_id), MF_AUDIT_KEY_ID_LEN);
    mf_audit_keys_wipe(&k1);
    mf_audit_keys_wipe(&k1b);
    mf_audit_keys_wipe(&k2);
}

/* The field and chain subkeys differ from each other and from the audit key,
 * and the key id is not a prefix of any of them. */
static void test_audit_record_subkeys_separate(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    assert_memory_not_equal(k.field_key, k.chain_key, MF_AUDIT_KEY_BYTES);
    assert_memory_not_equal(k.field_key, AUDIT_KEY, MF_AUDIT_KEY_BYTES);
    assert_memory_not_equal(k.chain_key, AUDIT_KEY, MF_AUDIT_KEY_BYTES);
    char hex[9];
    snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", AUDIT_KEY[0], AUDIT_KEY[1], AUDIT_KEY[2],
             AUDIT_KEY[3]);
    assert_string_not_equal(k.key_id, hex);
    mf_audit_keys_wipe(&k);
    static const uint8_t zero[sizeof(k)];
    assert_memory_equal(&k, zero, sizeof(k));
}

/* A share is "redacted": neither the share nor its HMAC appears, so it is not
 * linkable across records. */
static void test_audit_record_shares_redacted(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    static char buf[MF_AUDIT_LINE_MAX + 1];
    struct mf_audit_record r = sample();
    size_t n = line_of(&k, &r, buf, sizeof(buf));
    char h[MF_AUDIT_HASH_STR_BYTES];
    assert_int_equal(mf_audit_hash(&k, M_SHARE, strlen(M_SHARE), h), 0);
    assert_null(memmem(buf, n, h + 13 + MF_AUDIT_KEY_ID_LEN, 16));
    json_t *o = json_loadb(buf, n, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "secrets"),
                                                          "unseal_share")),
                        MF_AUDIT_REDACTED);
    json_decref(o);
    mf_audit_keys_wipe(&k);
}

/* Duplicate or empty claim and secret names are refused, as are too many
 * claims and a record longer than a line. */
static void test_audit_record_rejects_bad_input(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    static char buf[MF_AUDIT_LINE_MAX + 1];
    size_t n;
    struct mf_audit_record r = sample();
    struct mf_audit_claim dup[2] = {{"sub", "a"}, {"sub", "b"}};
    r.identity.claims = dup;
    assert_int_equal(mf_audit_record_format(&k, &r, FILE_ID, 1, buf, sizeof(buf), &n), MF_EINVAL);
    r = sample();
    struct mf_audit_secret dups[2] = {SECRETS[0], SECRETS[0]};
    r.secrets = dups;
    r.secrets_n = 2;
    assert_int_equal(mf_audit_record_format(&k, &r, FILE_ID, 1, buf, sizeof(buf), &n), MF_EINVAL);
    struct mf_audit_secret empty = {"", "x", 1, MF_AUDIT_SECRET_HMAC};
    r.secrets = &empty;
    r.secrets_n = 1;
    assert_int_equal(mf_audit_record_format(&k, &r, FILE_ID, 1, buf, sizeof(buf), &n), MF_EINVAL);
    r = sample();
    r.identity.claims_n = MF_AUDIT_CLAIMS_MAX + 1;
    assert_int_equal(mf_audit_record_format(&k, &r, FILE_ID, 1, buf, sizeof(buf), &n),
                     MF_ETOOLARGE);
    r = sample();
    static char big[MF_AUDIT_LINE_MAX];
    memset(big, 'a', sizeof(big) - 1);
    r.path = big;
    assert_int_equal(mf_audit_record_format(&k, &r, FILE_ID, 1, buf, sizeof(buf), &n),
                     MF_ETOOLARGE);
    r = sample();
    assert_int_equal(mf_audit_record_format(&k, &r, FILE_ID, 1, buf, 10, &n), MF_ETOOLARGE);
    mf_audit_keys_wipe(&k);
}

/* A path that is not UTF-8 is recorded as hex, and the line is valid JSON. */
static void test_audit_record_invalid_utf8_kept_as_hex(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    static char buf[MF_AUDIT_LINE_MAX + 1];
    struct mf_audit_record r = sample();
    r.path = "kv/\xff\xfe";
    size_t n = line_of(&k, &r, buf, sizeof(buf));
    json_t *o = json_loadb(buf, n, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "path")),
                        "invalid-utf8-hex:6b762ffffe");
    json_decref(o);
    mf_audit_keys_wipe(&k);
}

/* The writer's bytes are exactly jansson's canonical dump of themselves for
 * strings that need escaping: quotes, backslashes, controls, DEL, '/',
 * two-, three- and four-byte UTF-8 (a surrogate pair), names sorted by byte
 * value (upper case, '_', non-ASCII); and each invalid UTF-8 form (overlong,
 * surrogate, past U+10FFFF, truncated, stray continuation) is kept as hex. */
static void test_audit_record_escapes_as_jansson(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    static char buf[MF_AUDIT_LINE_MAX + 1];
    static const char *const tricky[] = {
        "a\"b\\c/d", "\b\f\n\r\t\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91",
        "\xef\xbf\xbf\xf4\x8f\xbf\xbf", "",
        /* plain ASCII, then one byte the one-pass path must not copy as is */
        "plain/prefix\x7f~", "plain/prefix\x1f", "plain/prefix\"", "plain/prefix\xc3\xa9",
    };
    static const char *const invalid[] = {
        "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80", "\xf5\x80\x80\x80",
        "plain/prefix\xc0\x80", "plain/prefix\xff",
    };
    struct mf_audit_claim claims[] = {
        {"Zed", "1"}, {"z_d", "\xe2\x82\xac"}, {"\xc3\xa9t\xc3\xa9", "a\nb"}, {"a", "\x7f"},
        {"_", "\""},
    };
    struct mf_audit_secret secrets[] = {
        {"\xf0\x9f\x94\x91", "x", 1, MF_AUDIT_SECRET_HMAC},
        {"A", NULL, 0, MF_AUDIT_SECRET_REDACT},
        {"a", "y", 1, MF_AUDIT_SECRET_HMAC},
    };
#define TRICKY_N (sizeof(tricky) / sizeof(tricky[0]))
    for (size_t i = 0; i < TRICKY_N; i++) {
        struct mf_audit_record r = sample();
        r.path = tricky[i];
        r.client_addr = tricky[(i + 1) % TRICKY_N];
        r.identity.role = tricky[(i + 2) % TRICKY_N];
        r.identity.claims = claims;
        r.identity.claims_n = sizeof(claims) / sizeof(claims[0]);
        r.secrets = secrets;
        r.secrets_n = sizeof(secrets) / sizeof(secrets[0]);
        size_t n = line_of(&k, &r, buf, sizeof(buf));
        json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(o);
        char *again = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        assert_string_equal(again, buf);
        assert_string_equal(json_string_value(json_object_get(o, "path")), tricky[i]);
        free(again);
        json_decref(o);
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        struct mf_audit_record r = sample();
        r.path = invalid[i];
        size_t n = line_of(&k, &r, buf, sizeof(buf));
        json_t *o = json_loadb(buf, n, 0, NULL);
        assert_non_null(o);
        const char *p = json_string_value(json_object_get(o, "path"));
        assert_non_null(p);
        assert_int_equal(strncmp(p, "invalid-utf8-hex:", 17), 0);
        assert_int_equal(strlen(p), 17 + 2 * strlen(invalid[i]));
        json_decref(o);
        /* ... and an invalid claim name is refused. */
        struct mf_audit_claim bad = {invalid[i], "v"};
        r.identity.claims = &bad;
        r.identity.claims_n = 1;
        size_t len = 0;
        assert_int_equal(mf_audit_record_format(&k, &r, FILE_ID, 2, buf, sizeof(buf), &len),
                         MF_EINVAL);
    }
    mf_audit_keys_wipe(&k);
}

/* Optional fields left NULL are absent, and a denial carries allowed=false. */
static void test_audit_record_minimal_denied(void **state)
{
    (void)state;
    struct mf_audit_keys k = keys_of(AUDIT_KEY);
    static char buf[MF_AUDIT_LINE_MAX + 1];
    struct mf_audit_record r = {.time_ms = 5, .operation = "sys.seal",
                                .result = "PERMISSION_DENIED"};
    size_t n = line_of(&k, &r, buf, sizeof(buf));
    json_t *o = json_loadb(buf, n, 0, NULL);
    assert_non_null(o);
    assert_null(json_object_get(o, "request_id"));
    assert_null(json_object_get(o, "secrets"));
    assert_null(json_object_get(o, "lease_id"));
    assert_true(json_is_false(json_object_get(json_object_get(o, "decision"), "allowed")));
    assert_string_equal(json_string_value(json_object_get(o, "result")), "PERMISSION_DENIED");
    json_decref(o);
    mf_audit_keys_wipe(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_record_canonical_stable),
        cmocka_unit_test(test_audit_record_markers_absent),
        cmocka_unit_test(test_audit_record_hmac_keyed),
        cmocka_unit_test(test_audit_record_subkeys_separate),
        cmocka_unit_test(test_audit_record_shares_redacted),
        cmocka_unit_test(test_audit_record_rejects_bad_input),
        cmocka_unit_test(test_audit_record_invalid_utf8_kept_as_hex),
        cmocka_unit_test(test_audit_record_minimal_denied),
        cmocka_unit_test(test_audit_record_escapes_as_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
