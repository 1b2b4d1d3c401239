/* Audit records: key derivation, the HMAC of secret fields, and the canonical
 * JSON of one record (see record.h for the format and why each choice). */
#include "audit/record.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/assert.h"
#include "common/err.h"

#define LABEL_FIELD "mayfly/audit/v1/field"
#define LABEL_CHAIN "mayfly/audit/v1/chain"
#define LABEL_ID "mayfly/audit/v1/id"
#define INVALID_UTF8_PREFIX "invalid-utf8-hex:"
#define JSON_INT_MAX ((uint64_t)INT64_MAX) /* jansson integers are signed 64-bit */

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

/* Keyed HMAC contexts, a few per thread: the algorithm is fetched once per
 * process and a key is set up once per thread (two SHA-256 blocks and the
 * digest's fetch), then each HMAC re-initialises a keyed context (a copy of
 * its inner state) instead of building one. Freed (wiped) by
 * mf_audit_keys_wipe for its keys in the calling thread and at thread exit. */
#define MAC_SLOTS 4
struct mac_slot {
    uint8_t key[MF_AUDIT_KEY_BYTES];
    EVP_MAC_CTX *ctx;
};
struct mac_cache {
    struct mac_slot slot[MAC_SLOTS];
    unsigned next;
};

static EVP_MAC *hmac_alg;
static pthread_key_t cache_key;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void slot_free(struct mac_slot *sl)
{
    EVP_MAC_CTX_free(sl->ctx); /* wipes the keyed state */
    OPENSSL_cleanse(sl, sizeof(*sl));
}

static void cache_free(void *p)
{
    struct mac_cache *c = p;
    for (unsigned i = 0; i < MAC_SLOTS; i++)
        slot_free(&c->slot[i]);
    free(c);
}

static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (pthread_key_create(&cache_key, cache_free) != 0) {
        EVP_MAC_free(hmac_alg);
        hmac_alg = NULL;
    }
}

static struct mac_cache *cache_get(void)
{
    struct mac_cache *c = pthread_getspecific(cache_key);
    if (!c && (c = calloc(1, sizeof(*c))) && pthread_setspecific(cache_key, c) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

/* A context keyed with key, ready for updates; NULL on failure. */
static EVP_MAC_CTX *keyed_ctx(const uint8_t *key)
{
    struct mac_cache *c = cache_get();
    if (!c)
        return NULL;
    for (unsigned i = 0; i < MAC_SLOTS; i++) {
        struct mac_slot *sl = &c->slot[i];
        if (sl->ctx && CRYPTO_memcmp(sl->key, key, MF_AUDIT_KEY_BYTES) == 0)
            return EVP_MAC_init(sl->ctx, NULL, 0, NULL) ? sl->ctx : NULL;
    }
    struct mac_slot *sl = &c->slot[c->next++ % MAC_SLOTS];
    slot_free(sl);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    sl->ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!sl->ctx || !EVP_MAC_init(sl->ctx, key, MF_AUDIT_KEY_BYTES, params)) {
        slot_free(sl);
        return NULL;
    }
    memcpy(sl->key, key, MF_AUDIT_KEY_BYTES);
    return sl->ctx;
}

/* Drop this thread's contexts keyed with key. */
static void forget_key(const uint8_t *key)
{
    struct mac_cache *c = hmac_alg ? pthread_getspecific(cache_key) : NULL;
    for (unsigned i = 0; c && i < MAC_SLOTS; i++)
        if (c->slot[i].ctx && CRYPTO_memcmp(c->slot[i].key, key, MF_AUDIT_KEY_BYTES) == 0)
            slot_free(&c->slot[i]);
}

int mf_audit_mac(const uint8_t *key, const void *a, size_t a_len, const void *b, size_t b_len,
                 const void *c, size_t c_len, uint8_t out[MF_AUDIT_MAC_BYTES])
{
    MF_ASSERT(key && out);
    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_alg)
        return MF_ECRYPTO;
    EVP_MAC_CTX *ctx = keyed_ctx(key);
    if (!ctx)
        return MF_ECRYPTO;
    size_t n = 0;
    int ok = (a_len == 0 || EVP_MAC_update(ctx, a, a_len)) &&
             (b_len == 0 || EVP_MAC_update(ctx, b, b_len)) &&
             (c_len == 0 || EVP_MAC_update(ctx, c, c_len)) &&
             EVP_MAC_final(ctx, out, &n, MF_AUDIT_MAC_BYTES) && n == MF_AUDIT_MAC_BYTES;
    return ok ? 0 : MF_ECRYPTO;
}

static int hmac_label(const uint8_t *key, const char *label, uint8_t out[MF_AUDIT_MAC_BYTES])
{
    return mf_audit_mac(key, label, strlen(label), NULL, 0, NULL, 0, out);
}

int mf_audit_keys_derive(const uint8_t *audit_key, struct mf_audit_keys *out)
{
    MF_ASSERT(audit_key && out);
    uint8_t id_mac[MF_AUDIT_MAC_BYTES];
    uint8_t digest[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    int rc = hmac_label(audit_key, LABEL_FIELD, out->field_key);
    if (rc == 0)
        rc = hmac_label(audit_key, LABEL_CHAIN, out->chain_key);
    if (rc == 0)
        rc = hmac_label(audit_key, LABEL_ID, id_mac);
    if (rc == 0 && !SHA256(id_mac, sizeof(id_mac), digest))
        rc = MF_ECRYPTO;
    if (rc == 0) {
        to_hex(digest, MF_AUDIT_KEY_ID_LEN / 2, hex);
        memcpy(out->key_id, hex, MF_AUDIT_KEY_ID_LEN + 1);
    }
    OPENSSL_cleanse(id_mac, sizeof(id_mac));
    forget_key(audit_key); /* only the subkeys are used from now on */
    if (rc != 0)
        mf_audit_keys_wipe(out);
    return rc;
}

void mf_audit_keys_wipe(struct mf_audit_keys *k)
{
    if (!k)
        return;
    forget_key(k->field_key);
    forget_key(k->chain_key);
    OPENSSL_cleanse(k, sizeof(*k));
}

int mf_audit_hash(const struct mf_audit_keys *k, const void *value, size_t len,
                  char out[MF_AUDIT_HASH_STR_BYTES])
{
    MF_ASSERT(k && (value || len == 0) && out);
    uint8_t mac[MF_AUDIT_MAC_BYTES];
    if (mf_audit_mac(k->field_key, value, len, NULL, 0, NULL, 0, mac) != 0)
        return MF_ECRYPTO;
    memcpy(out, "hmac-sha256:", 12);
    memcpy(out + 12, k->key_id, MF_AUDIT_KEY_ID_LEN);
    out[12 + MF_AUDIT_KEY_ID_LEN] = ':';
    to_hex(mac, sizeof(mac), out + 13 + MF_AUDIT_KEY_ID_LEN);
    MF_ASSERT(strlen(out) + 1 == MF_AUDIT_HASH_STR_BYTES);
    return 0;
}

/* --- the canonical JSON, written in one pass ---
 *
 * The bytes jansson's json_dumpb(JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENSURE_ASCII) gives for the record's object (record.h), written
 * directly: the members in sorted order, strings checked as UTF-8 by
 * jansson's rules (no overlong forms, no surrogates, nothing past U+10FFFF)
 * and escaped as jansson does (\" \\ \b \f \n \r \t, other controls and
 * everything past U+007F as \uXXXX in upper-case hex, a surrogate pair past
 * U+FFFF). tests/unit/test_audit_record.c compares them with jansson's. */

struct out {
    char *buf;
    size_t cap, len;
    bool over; /* did not fit */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->over || o->cap - o->len < n) {
        o->over = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

/* The code point at s (n bytes left) and its length, or 0 if not UTF-8. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
        (len == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return len;
}

static bool utf8_valid(const char *s)
{
    size_t n = strlen(s);
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_next((const uint8_t *)s + i, n - i, &cp)))
            return false;
    return true;
}

static void put_u(struct out *o, uint32_t v)
{
    static const char digits[] = "0123456789ABCDEF";
    char e[6] = {'\\', 'u', digits[v >> 12 & 0xf], digits[v >> 8 & 0xf], digits[v >> 4 & 0xf],
                 digits[v & 0xf]};
    put(o, e, sizeof(e));
}

/* Does byte c go out as it is in a JSON string (printable ASCII and DEL, but
 * the quote and the backslash)? A test on the byte, not a call per code
 * point: most of a record is such bytes (the hot path of formatting). */
static inline bool plain_byte(uint8_t c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* A JSON string of s, which must be valid UTF-8. */
static void put_escaped(struct out *o, const char *s)
{
    size_t n = strlen(s), run = 0;
    put(o, "\"", 1);
    for (size_t i = 0, k; i < n; i += k) {
        uint32_t cp;
        if (plain_byte((uint8_t)s[i])) {
            run++, k = 1;
            continue;
        }
        k = utf8_next((const uint8_t *)s + i, n - i, &cp);
        MF_ASSERT(k);
        if (cp >= 0x20 && cp < 0x80 && cp != '"' && cp != '\\') {
            run++; /* plain bytes go out in runs */
            continue;
        }
        put(o, s + i - run, run);
        run = 0;
        switch (cp) {
        case '"': PUT_LIT(o, "\\\""); break;
        case '\\': PUT_LIT(o, "\\\\"); break;
        case '\b': PUT_LIT(o, "\\b"); break;
        case '\f': PUT_LIT(o, "\\f"); break;
        case '\n': PUT_LIT(o, "\\n"); break;
        case '\r': PUT_LIT(o, "\\r"); break;
        case '\t': PUT_LIT(o, "\\t"); break;
        default:
            if (cp < 0x10000) {
                put_u(o, cp);
            } else {
                cp -= 0x10000;
                put_u(o, 0xd800 | (cp >> 10));
                put_u(o, 0xdc00 | (cp & 0x3ff));
            }
        }
    }
    put(o, s + n - run, run);
    put(o, "\"", 1);
}

/* A string value; bytes that are not UTF-8 are kept as hex (record.h). */
static void put_value(struct out *o, const char *s)
{
    size_t k = 0;
    while (plain_byte((uint8_t)s[k]))
        k++;
    if (!s[k]) { /* all plain (the usual case): one pass, no escaping */
        put(o, "\"", 1);
        put(o, s, k);
        put(o, "\"", 1);
        return;
    }
    if (utf8_valid(s))
        return put_escaped(o, s);
    size_t n = strlen(s);
    if (n > MF_AUDIT_LINE_MAX) {
        o->over = true;
        return;
    }
    PUT_LIT(o, "\"" INVALID_UTF8_PREFIX);
    char hex[2 * 64 + 1];
    for (size_t i = 0; i < n; i += 64) {
        size_t m = n - i < 64 ? n - i : 64;
        to_hex((const uint8_t *)s + i, m, hex);
        put(o, hex, 2 * m);
    }
    put(o, "\"", 1);
}

/* `,"key":` (no comma before an object's first member). key is a literal. */
static void put_key(struct out *o, bool *first, const char *key)
{
    if (!*first)
        put(o, ",", 1);
    *first = false;
    put(o, "\"", 1);
    put(o, key, strlen(key));
    PUT_LIT(o, "\":");
}

static void put_str_member(struct out *o, bool *first, const char *key, const char *s)
{
    if (!s)
        return;
    put_key(o, first, key);
    put_value(o, s);
}

static void put_uint(struct out *o, uint64_t v)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, d + i, sizeof(d) - i);
}

/* Sorts n names (strcmp: by byte value, jansson's order) into idx and checks
 * them: non-empty, at most MF_AUDIT_NAME_MAX bytes, UTF-8, unique. */
static int sort_names(const char *const *names, size_t n, unsigned char *idx)
{
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !names[i][0] || strlen(names[i]) > MF_AUDIT_NAME_MAX ||
            !utf8_valid(names[i]))
            return MF_EINVAL;
        size_t j = i;
        for (; j > 0 && strcmp(names[idx[j - 1]], names[i]) > 0; j--)
            idx[j] = idx[j - 1];
        idx[j] = (unsigned char)i;
    }
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[idx[i - 1]], names[idx[i]]) == 0)
            return MF_EINVAL; /* a duplicate would hide a value the caller meant to record */
    return 0;
}

static int put_identity(struct out *o, const struct mf_audit_identity *id)
{
    if (id->claims_n > MF_AUDIT_CLAIMS_MAX)
        return MF_ETOOLARGE;
    const char *names[MF_AUDIT_CLAIMS_MAX];
    unsigned char idx[MF_AUDIT_CLAIMS_MAX];
    for (size_t i = 0; i < id->claims_n; i++) {
        if (!id->claims[i].value)
            return MF_EINVAL;
        names[i] = id->claims[i].name;
    }
    int rc = sort_names(names, id->claims_n, idx);
    if (rc)
        return rc;
    bool first = true;
    put(o, "{", 1);
    put_str_member(o, &first, "accessor", id->accessor);
    put_str_member(o, &first, "auth_method", id->auth_method);
    put_str_member(o, &first, "cert_san", id->cert_san);
    if (id->claims_n > 0) {
        put_key(o, &first, "claims");
        put(o, "{", 1);
        for (size_t i = 0; i < id->claims_n; i++) {
            if (i)
                put(o, ",", 1);
            put_escaped(o, names[idx[i]]);
            put(o, ":", 1);
            put_value(o, id->claims[idx[i]].value);
        }
        put(o, "}", 1);
    }
    put_str_member(o, &first, "role", id->role);
    put(o, "}", 1);
    return 0;
}

static int put_secrets(struct out *o, const struct mf_audit_keys *k,
                       const struct mf_audit_record *r)
{
    if (r->secrets_n > MF_AUDIT_SECRETS_MAX)
        return MF_ETOOLARGE;
    const char *names[MF_AUDIT_SECRETS_MAX];
    unsigned char idx[MF_AUDIT_SECRETS_MAX];
    for (size_t i = 0; i < r->secrets_n; i++)
        names[i] = r->secrets[i].name;
    int rc = sort_names(names, r->secrets_n, idx);
    if (rc)
        return rc;
    char hash[MF_AUDIT_HASH_STR_BYTES];
    put(o, "{", 1);
    for (size_t i = 0; i < r->secrets_n; i++) {
        const struct mf_audit_secret *sec = &r->secrets[idx[i]];
        if (i)
            put(o, ",", 1);
        put_escaped(o, sec->name);
        put(o, ":", 1);
        if (sec->kind == MF_AUDIT_SECRET_REDACT) {
            PUT_LIT(o, "\"" MF_AUDIT_REDACTED "\"");
            continue;
        }
        MF_ASSERT(sec->kind == MF_AUDIT_SECRET_HMAC);
        if ((rc = mf_audit_hash(k, sec->value, sec->len, hash)) != 0)
            return rc;
        put(o, "\"", 1);
        put(o, hash, MF_AUDIT_HASH_STR_BYTES - 1);
        put(o, "\"", 1);
    }
    put(o, "}", 1);
    return 0;
}

static int put_record(struct out *o, const struct mf_audit_keys *k,
                      const struct mf_audit_record *r, const char *file_id, uint64_t seq)
{
    bool first = true;
    int rc;
    put(o, "{", 1);
    put_str_member(o, &first, "client_addr", r->client_addr);
    put_key(o, &first, "decision");
    bool dfirst = true;
    put(o, "{", 1);
    put_key(o, &dfirst, "allowed");
    if (r->decision.allowed)
        PUT_LIT(o, "true");
    else
        PUT_LIT(o, "false");
    put_str_member(o, &dfirst, "policy", r->decision.policy);
    put_str_member(o, &dfirst, "rule", r->decision.rule);
    put(o, "}", 1);
    put_str_member(o, &first, "file", file_id);
    put_key(o, &first, "identity");
    if ((rc = put_identity(o, &r->identity)) != 0)
        return rc;
    put_str_member(o, &first, "key_id", k->key_id);
    put_str_member(o, &first, "lease_id", r->lease_id);
    put_str_member(o, &first, "node", r->node_id);
    put_str_member(o, &first, "operation", r->operation);
    put_str_member(o, &first, "path", r->path);
    put_str_member(o, &first, "record_id", r->record_id);
    if (r->request_id) {
        char hash[MF_AUDIT_HASH_STR_BYTES];
        if ((rc = mf_audit_hash(k, r->request_id, strlen(r->request_id), hash)) != 0)
            return rc;
        put_str_member(o, &first, "request_id", hash);
    }
    put_str_member(o, &first, "result", r->result);
    if (r->secrets_n > 0) {
        MF_ASSERT(r->secrets);
        put_key(o, &first, "secrets");
        if ((rc = put_secrets(o, k, r)) != 0)
            return rc;
    }
    put_key(o, &first, "seq");
    put_uint(o, seq);
    put_key(o, &first, "time_ms");
    put_uint(o, r->time_ms);
    put(o, "}", 1);
    return 0;
}

int mf_audit_record_format(const struct mf_audit_keys *k, const struct mf_audit_record *r,
                           const char *file_id, uint64_t seq, char *buf, size_t cap,
                           size_t *len)
{
    MF_ASSERT(k && r && file_id && buf && len);
    if (r->time_ms > JSON_INT_MAX || seq > JSON_INT_MAX)
        return MF_EINVAL;
    MF_ASSERT(r->identity.claims_n == 0 || r->identity.claims);
    struct out o = {.buf = buf, .cap = cap};
    int rc = put_record(&o, k, r, file_id, seq);
    if (rc)
        return rc;
    if (o.over || o.len > MF_AUDIT_LINE_MAX)
        return MF_ETOOLARGE;
    *len = o.len;
    return 0;
}
