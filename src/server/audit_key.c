/* The cluster's audit key as this node holds it (audit_key.h). */
#include "server/audit_key.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/err.h"
#include "server/auditlog.h"
#include "server/records.h"

static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return MF_ECORRUPT;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return MF_ECORRUPT;
        out[i] = (uint8_t)v;
    }
    return 0;
}

void mf_audit_key_hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

int mf_audit_key_load(struct mf_server *s, struct mf_audit_key *k)
{
    if (k->have)
        return 0;
    json_t *obj = NULL;
    int rc = mf_records_read(s, MF_AUDITLOG_KEY_PATH, &obj);
    if (rc)
        return rc;
    uint8_t key[MF_AUDIT_KEY_BYTES];
    rc = hex_decode(json_string_value(json_object_get(obj, "key")), key, sizeof(key));
    if (!rc)
        rc = mf_audit_keys_derive(key, &k->keys);
    OPENSSL_cleanse(key, sizeof(key));
    /* The record's text held the key: jansson frees it without wiping, the
     * same as every record this server reads. */
    json_decref(obj);
    k->have = rc == 0;
    return rc;
}

void mf_audit_key_wipe(struct mf_audit_key *k)
{
    if (k->have)
        mf_audit_keys_wipe(&k->keys);
    k->have = false;
}

bool mf_audit_key_hash_allowed(struct mf_audit_key *k, uint64_t now)
{
    k->hash_tokens += (double)(now - k->hash_ms) * MF_AUDITLOG_HASH_RATE / 1000.0;
    if (k->hash_tokens > MF_AUDITLOG_HASH_RATE)
        k->hash_tokens = MF_AUDITLOG_HASH_RATE;
    k->hash_ms = now;
    if (k->hash_tokens < 1.0)
        return false;
    k->hash_tokens -= 1.0;
    return true;
}

/* The device's path on this node: "{node}" stands for the node id, so nodes
 * that share a file system (tests, one host) write separate files. */
char *mf_audit_key_node_path(uint64_t node_id, const char *tmpl)
{
    static const char mark[] = "{node}";
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, node_id);
    size_t n = strlen(tmpl) + 1;
    for (const char *p = strstr(tmpl, mark); p; p = strstr(p + 1, mark))
        n += strlen(id);
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    while (*tmpl) {
        if (strncmp(tmpl, mark, sizeof(mark) - 1) == 0) {
            o += sprintf(o, "%s", id);
            tmpl += sizeof(mark) - 1;
        } else {
            *o++ = *tmpl++;
        }
    }
    *o = '\0';
    return out;
}

