/* The pki CRL on plain HTTP from every node, as Vault's /v1/<mount>/crl.
 *
 * Publishing (leader): the leader's pki engine signs the CRL and the leader
 * stores it at sys/crl/<mount> (a reserved record) after revocations of the
 * mount, when it opens the mount, and at half the CRL's validity.
 * Serving (every node): records whose KV version changed are copied into a
 * table that the HTTP thread answers from (mf_crl_http_get).
 *
 * Ownership: the table's copies belong to this module; mf_crl_http_get
 * hands out a malloc'd copy. Threads: loop thread, but mf_crl_http_get
 * (any thread: the table has its own lock). */
#ifndef MF_SERVER_CRL_H
#define MF_SERVER_CRL_H

#include <stddef.h>
#include <stdint.h>

#include "server/mounts.h"
#include "server/srv.h"

#define MF_CRL_PREFIX "sys/crl/"

/* @return 0 or -ENOMEM. mf_crl_free frees. */
int mf_crl_init(struct mf_server *s);
void mf_crl_free(struct mf_server *s);

/* Leader: sign m's CRL (pki mounts only) and store it at sys/crl/<mount>. */
void mf_crl_publish(struct mf_server *s, struct mf_mount *m);
/* Leader, each scheduler pass: publish what is due (just opened, or half
 * of its validity gone). */
void mf_crl_tick(struct mf_server *s, uint64_t now_ms);
/* Every node, loop thread: copy changed sys/crl/ records to the HTTP table. */
void mf_crl_refresh(struct mf_server *s);

/* GET /v1/<mount>/crl (DER) or /v1/<mount>/crl/pem: a malloc'd copy and
 * its content type, or NULL when no CRL is published there. */
void *mf_crl_http_get(struct mf_crl *crl, const char *url, size_t *len, const char **type);

#endif
