/* Audit records: key derivation, the HMAC of secret fields, and the canonical
 * JSON of one record (see record.h for the format and why each choice). */
#include "audit/record.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <jansson.h>
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

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

int mf_audit_mac(const uint8_t *key, const void *a, size_t a_len, const void *b, size_t b_len,
                 const void *c, size_t c_len, uint8_t out[MF_AUDIT_MAC_BYTES])
{
    MF_ASSERT(key && out);
    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_alg)
        return MF_ECRYPTO;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!ctx)
        return MF_ECRYPTO;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t n = 0;
    int ok = EVP_MAC_init(ctx, key, MF_AUDIT_KEY_BYTES, params) &&
             (a_len == 0 || EVP_MAC_update(ctx, a, a_len)) &&
             (b_len == 0 || EVP_MAC_update(ctx, b, b_len)) &&
             (c_len == 0 || EVP_MAC_update(ctx, c, c_len)) &&
             EVP_MAC_final(ctx, out, &n, MF_AUDIT_MAC_BYTES) && n == MF_AUDIT_MAC_BYTES;
    EVP_MAC_CTX_free(ctx); /* wipes the keyed state */
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
    if (rc != 0)
        mf_audit_keys_wipe(out);
    return rc;
}

void mf_audit_keys_wipe(struct mf_audit_keys *k)
{
    if (k)
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

/* --- building the JSON object --- */

/* A JSON string for `s`; bytes that are not UTF-8 are kept as hex (record.h). */
static json_t *str_value(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    if (n > MF_AUDIT_LINE_MAX)
        return NULL;
    size_t plen = strlen(INVALID_UTF8_PREFIX);
    char *hex = malloc(plen + 2 * n + 1);
    if (!hex)
        return NULL;
    memcpy(hex, INVALID_UTF8_PREFIX, plen);
    to_hex((const uint8_t *)s, n, hex + plen);
    j = json_string(hex);
    free(hex);
    return j;
}

/* Set obj[key] = s unless s is NULL. Returns 0 or -ENOMEM. */
static int set_str(json_t *obj, const char *key, const char *s)
{
    if (!s)
        return 0;
    json_t *v = str_value(s);
    if (!v || json_object_set_new(obj, key, v) != 0)
        return -ENOMEM;
    return 0;
}

static int set_new(json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) != 0)
        return -ENOMEM;
    return 0;
}

static bool name_ok(const char *name)
{
    return name && name[0] && strlen(name) <= MF_AUDIT_NAME_MAX;
}

/* Set obj[name] = v, refusing a bad or repeated name (a duplicate would
 * silently replace a value the caller meant to record). v is consumed. */
static int set_named(json_t *obj, const char *name, json_t *v)
{
    if (!v)
        return -ENOMEM;
    if (!name_ok(name) || json_object_get(obj, name)) {
        json_decref(v);
        return MF_EINVAL;
    }
    json_t *key_check = json_string(name);
    if (!key_check) { /* jansson keys must be UTF-8 too */
        json_decref(v);
        return MF_EINVAL;
    }
    json_decref(key_check);
    return json_object_set_new(obj, name, v) == 0 ? 0 : -ENOMEM;
}

static int build_identity(const struct mf_audit_identity *id, json_t **out)
{
    if (id->claims_n > MF_AUDIT_CLAIMS_MAX)
        return MF_ETOOLARGE;
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    int rc = set_str(o, "accessor", id->accessor);
    if (rc == 0)
        rc = set_str(o, "auth_method", id->auth_method);
    if (rc == 0)
        rc = set_str(o, "cert_san", id->cert_san);
    if (rc == 0)
        rc = set_str(o, "role", id->role);
    if (rc == 0 && id->claims_n > 0) {
        MF_ASSERT(id->claims);
        json_t *claims = json_object();
        rc = claims ? 0 : -ENOMEM;
        for (size_t i = 0; rc == 0 && i < id->claims_n; i++) {
            const struct mf_audit_claim *c = &id->claims[i];
            rc = c->value ? set_named(claims, c->name, str_value(c->value)) : MF_EINVAL;
        }
        if (rc == 0)
            rc = set_new(o, "claims", claims);
        else
            json_decref(claims);
    }
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int build_secrets(const struct mf_audit_keys *k, const struct mf_audit_record *r,
                         json_t **out)
{
    if (r->secrets_n > MF_AUDIT_SECRETS_MAX)
        return MF_ETOOLARGE;
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    int rc = 0;
    char hash[MF_AUDIT_HASH_STR_BYTES];
    for (size_t i = 0; rc == 0 && i < r->secrets_n; i++) {
        const struct mf_audit_secret *s = &r->secrets[i];
        if (s->kind == MF_AUDIT_SECRET_REDACT) {
            rc = set_named(o, s->name, json_string(MF_AUDIT_REDACTED));
        } else {
            MF_ASSERT(s->kind == MF_AUDIT_SECRET_HMAC);
            rc = mf_audit_hash(k, s->value, s->len, hash);
            if (rc == 0)
                rc = set_named(o, s->name, json_string(hash));
        }
    }
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int build_decision(const struct mf_audit_decision *d, json_t **out)
{
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    int rc = set_new(o, "allowed", json_boolean(d->allowed));
    if (rc == 0)
        rc = set_str(o, "policy", d->policy);
    if (rc == 0)
        rc = set_str(o, "rule", d->rule);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int build_record(const struct mf_audit_keys *k, const struct mf_audit_record *r,
                        const char *file_id, uint64_t seq, json_t *o)
{
    char hash[MF_AUDIT_HASH_STR_BYTES];
    json_t *sub = NULL;
    int rc = set_str(o, "client_addr", r->client_addr);
    if (rc == 0 && (rc = build_decision(&r->decision, &sub)) == 0)
        rc = set_new(o, "decision", sub);
    if (rc == 0)
        rc = set_str(o, "file", file_id);
    if (rc == 0 && (rc = build_identity(&r->identity, &sub)) == 0)
        rc = set_new(o, "identity", sub);
    if (rc == 0)
        rc = set_str(o, "key_id", k->key_id);
    if (rc == 0)
        rc = set_str(o, "lease_id", r->lease_id);
    if (rc == 0)
        rc = set_str(o, "node", r->node_id);
    if (rc == 0)
        rc = set_str(o, "operation", r->operation);
    if (rc == 0)
        rc = set_str(o, "path", r->path);
    if (rc == 0)
        rc = set_str(o, "record_id", r->record_id);
    if (rc == 0 && r->request_id) {
        rc = mf_audit_hash(k, r->request_id, strlen(r->request_id), hash);
        if (rc == 0)
            rc = set_str(o, "request_id", hash);
    }
    if (rc == 0)
        rc = set_str(o, "result", r->result);
    if (rc == 0 && r->secrets_n > 0) {
        MF_ASSERT(r->secrets);
        if ((rc = build_secrets(k, r, &sub)) == 0)
            rc = set_new(o, "secrets", sub);
    }
    if (rc == 0)
        rc = set_new(o, "seq", json_integer((json_int_t)seq));
    if (rc == 0)
        rc = set_new(o, "time_ms", json_integer((json_int_t)r->time_ms));
    return rc;
}

int mf_audit_record_format(const struct mf_audit_keys *k, const struct mf_audit_record *r,
                           const char *file_id, uint64_t seq, char *buf, size_t cap,
                           size_t *len)
{
    MF_ASSERT(k && r && file_id && buf && len);
    if (r->time_ms > JSON_INT_MAX || seq > JSON_INT_MAX)
        return MF_EINVAL;
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    int rc = build_record(k, r, file_id, seq, o);
    if (rc == 0) {
        size_t n = json_dumpb(o, buf, cap, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        if (n == 0)
            rc = -ENOMEM;
        else if (n > cap || n > MF_AUDIT_LINE_MAX)
            rc = MF_ETOOLARGE;
        else
            *len = n;
    }
    json_decref(o);
    return rc;
}
