/* The cluster's audit key as this node holds it (auditlog.h): read from the
 * barrier record sys/audit/key ({"key": 64 hex digits}) and its subkeys
 * derived (audit/record.h); the node's `audit hash` bucket
 * (MF_AUDITLOG_HASH_RATE a second, as many at once); the device path on
 * this node. Loop thread. */
#ifndef MF_SERVER_AUDIT_KEY_H
#define MF_SERVER_AUDIT_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/record.h"

struct mf_server;

struct mf_audit_key {
    bool have;
    struct mf_audit_keys keys;
    double hash_tokens;
    uint64_t hash_ms;
};

/* Loads the key unless held. @return 0; errors of reading the record
 * (MF_ENOTFOUND: no key yet), MF_ECORRUPT, MF_ECRYPTO. */
int mf_audit_key_load(struct mf_server *s, struct mf_audit_key *k);
/* Forgets the key (sealed, stopped). */
void mf_audit_key_wipe(struct mf_audit_key *k);
/* Takes a token from the `audit hash` bucket at now (monotonic ms). */
bool mf_audit_key_hash_allowed(struct mf_audit_key *k, uint64_t now);
/* Lower-case hex of n bytes, NUL-terminated (2n + 1 bytes). */
void mf_audit_key_hex(const uint8_t *in, size_t n, char *out);
/* The device's path on this node: "{node}" in tmpl stands for the node id,
 * so nodes that share a file system write separate files. malloc'd; NULL
 * without memory. */
char *mf_audit_key_node_path(uint64_t node_id, const char *tmpl);

#endif
