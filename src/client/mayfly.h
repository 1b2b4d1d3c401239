/* libmayfly: the C client of mayfly.
 *
 * A client holds a list of node addresses and talks the protobuf API of
 * proto/mayfly.proto over TLS (4-byte big-endian length + one Request or
 * Response per frame). Any node accepts any request (followers forward writes
 * to the leader), so the client needs no leader discovery to be correct; it
 * prefers the node that answered last and moves to the next address when one
 * cannot be reached or answers UNAVAILABLE, SEALED or NOT_INITIALIZED (but
 * init, unseal, generate-root and rekey take the first node's answer: they address
 * one node). A round in which every node that answered was sealed or not
 * initialised ends the call with that answer.
 *
 * Retries are safe: every write carries a 16-byte idempotency key chosen once
 * per call (mf_client_call fills Request.request_key), so a retried lease grant
 * that had in fact been applied is answered with its first result.
 *
 * Threads: a struct mf_client is used by one thread at a time.
 * Ownership: the caller owns the Request; *resp is allocated by the client and
 * freed by the caller with mayfly__api__response__free_unpacked(resp, NULL).
 */
#ifndef MF_CLIENT_MAYFLY_H
#define MF_CLIENT_MAYFLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mayfly.pb-c.h"

#define MF_CLIENT_ADDRS_MAX 16
#define MF_CLIENT_FRAME_MAX (4u << 20) /* largest response accepted, bytes */

struct mf_client_opts {
    const char *addrs;        /* "host:port[,host:port...]" (required) */
    const char *ca_file;      /* CA that signed the servers' certificates (required) */
    const char *cert_file;    /* client certificate for mutual TLS, or NULL */
    const char *key_file;
    const char *token;        /* sent with every request, or NULL */
    uint64_t timeout_ms;      /* per request, all retries included; 0 = 10 s */
};

struct mf_client;

/* Validates opts and copies them; does not connect yet.
 * Errors: MF_EINVAL (bad address list; message in err), -ENOMEM. */
int mf_client_open(const struct mf_client_opts *opts, struct mf_client **out, char *err,
                   size_t err_len);
void mf_client_close(struct mf_client *c);

/* Sends req (its id, token and, for writes, request_key are filled in here)
 * and waits for the answer, retrying other nodes while time remains.
 * Returns 0 with *resp set (the server's answer, which may carry an error), or:
 *   MF_EUNAVAIL  no node could be reached (nothing was sent)
 *   MF_EUNKNOWN  a write was sent but no answer came (it may have applied)
 *   MF_ETIMEOUT  a read got no answer in time
 *   MF_ETOOLARGE the request or the answer exceeds the frame limit
 * with a message in err. */
int mf_client_call(struct mf_client *c, Mayfly__Api__Request *req, bool is_write,
                   Mayfly__Api__Response **resp, char *err, size_t err_len);

/* Address of the node that answered last ("host:port"), or NULL. */
const char *mf_client_last_addr(const struct mf_client *c);

#endif
