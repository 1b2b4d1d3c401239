/* Reserved records and sealed KV writes.
 *
 * The server keeps its own replicated records (engine configs and roles
 * under sys/engines/, published CRLs under sys/crl/) in the KV under the
 * reserved prefix, each a JSON object encrypted by the barrier like any
 * value, so they reach every node through Raft and snapshots. Client KV puts
 * and these records are encrypted by one function here.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_RECORDS_H
#define MF_SERVER_RECORDS_H

#include <jansson.h>

#include "server/proposer.h"
#include "server/srv.h"

/* Reads and decrypts the current version of record `path` (a JSON object,
 * a new reference for the caller).
 * @return 0; MF_ENOTFOUND (none, deleted or destroyed); MF_ESEALED and the
 *   barrier's errors; MF_ECORRUPT (not JSON); storage errors. */
int mf_records_read(struct mf_server *s, const char *path, json_t **out);

/* Prepares a KV put of `plain` at m->path: the write id is the index the
 * entry will get, and m->value is the ciphertext (AAD = path, write id),
 * malloc'd for the caller to free after proposing (*ct).
 * @return 0; MF_ESEALED; -ENOMEM. */
int mf_records_seal_put(struct mf_server *s, Mayfly__Cmd__KvPut *m, const char *plain,
                        uint8_t **ct);

/* Proposes record `obj` at `path` (through s->prop); cb as mf_propose's.
 * @return as mf_propose, and the errors of mf_records_seal_put. */
int mf_records_put(struct mf_server *s, const char *path, json_t *obj, mf_propose_cb cb,
                   void *arg);

#endif
