/* libmayfly: blocking client over TLS, with failover between nodes and safe
 * retries (idempotency keys). See mayfly.h for the contract.
 *
 * One request at a time on one connection: the CLI and simple programs need
 * nothing more; the load generator pipelines on its own connections. Time is
 * bounded by one deadline per call, shared by connects, writes and reads, so a
 * dead node never stretches a call past its timeout. */
#include "client/mayfly.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "net/addr.h"
#include "net/bclient.h"
#include "net/tls.h"

#define RETRY_BACKOFF_MIN_MS 20
#define RETRY_BACKOFF_MAX_MS 500

struct mf_client {
    char *addrs[MF_CLIENT_ADDRS_MAX];
    size_t addrs_len;
    size_t cur;               /* index of the node we talk to */
    char *token;
    uint64_t timeout_ms;
    SSL_CTX *ctx;
    struct mf_bclient conn;
    bool connected;
    uint64_t next_id;
};

static void disconnect(struct mf_client *c)
{
    if (c->connected) {
        mf_bclient_close(&c->conn);
        c->connected = false;
    }
}

static int split_addrs(struct mf_client *c, const char *list, char *err, size_t err_len)
{
    char *copy = strdup(list);
    if (!copy)
        return -ENOMEM;
    char *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char host[MF_NET_HOST_MAX];
        uint16_t port;
        if (mf_net_split_hostport(tok, host, sizeof(host), &port) || port == 0) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "'%s' is not host:port", tok);
            break;
        }
        if (c->addrs_len == MF_CLIENT_ADDRS_MAX) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "at most %d addresses", MF_CLIENT_ADDRS_MAX);
            break;
        }
        c->addrs[c->addrs_len] = strdup(tok);
        if (!c->addrs[c->addrs_len]) {
            rc = -ENOMEM;
            break;
        }
        c->addrs_len++;
    }
    free(copy);
    if (!rc && c->addrs_len == 0)
        rc = mf_err_set(err, err_len, MF_EINVAL, "no server address given");
    return rc;
}

int mf_client_open(const struct mf_client_opts *opts, struct mf_client **out, char *err,
                   size_t err_len)
{
    if (!opts->addrs || !opts->ca_file)
        return mf_err_set(err, err_len, MF_EINVAL, "an address and a CA certificate are needed");
    if ((opts->cert_file == NULL) != (opts->key_file == NULL))
        return mf_err_set(err, err_len, MF_EINVAL,
                          "-client-cert and -client-key go together");
    struct mf_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 10000;
    c->next_id = 1;
    int rc = split_addrs(c, opts->addrs, err, err_len);
    if (!rc && opts->token && !(c->token = strdup(opts->token)))
        rc = -ENOMEM;
    if (!rc)
        rc = mf_tls_client_ctx_new(opts->ca_file, opts->cert_file, opts->key_file, &c->ctx, err,
                                   err_len);
    if (rc) {
        mf_client_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void mf_client_close(struct mf_client *c)
{
    if (!c)
        return;
    disconnect(c);
    for (size_t i = 0; i < c->addrs_len; i++)
        free(c->addrs[i]);
    if (c->token) {
        OPENSSL_cleanse(c->token, strlen(c->token));
        free(c->token);
    }
    mf_tls_ctx_free(c->ctx);
    free(c);
}

const char *mf_client_last_addr(const struct mf_client *c)
{
    return c->connected ? c->addrs[c->cur] : NULL;
}

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = mf_now_mono_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

static int connect_current(struct mf_client *c, uint64_t deadline, char *err, size_t err_len)
{
    int rc = mf_bclient_connect(&c->conn, c->ctx, c->addrs[c->cur], NULL, MF_CLIENT_FRAME_MAX,
                                remaining_ms(deadline), err, err_len);
    if (rc)
        return MF_EUNAVAIL;
    c->connected = true;
    return 0;
}

/* One exchange on the current connection. Returns 0 with *resp, or an error;
 * *sent says whether the request may have reached the server. */
static int exchange(struct mf_client *c, const uint8_t *body, size_t body_len, uint64_t id,
                    uint64_t deadline, Mayfly__Api__Response **resp, bool *sent, char *err,
                    size_t err_len)
{
    const char *addr = c->addrs[c->cur];
    int rc = mf_bclient_send(&c->conn, body, body_len, remaining_ms(deadline));
    if (rc == MF_ETOOLARGE)
        return mf_err_set(err, err_len, rc, "request too large");
    *sent = true;
    if (rc)
        return mf_err_set(err, err_len, rc, "%s: send failed: %s", addr, mf_strerror(rc));
    for (;;) {
        uint8_t *frame = NULL;
        size_t len = 0;
        rc = mf_bclient_recv(&c->conn, &frame, &len, remaining_ms(deadline));
        if (rc) {
            free(frame);
            return mf_err_set(err, err_len, rc, "%s: no answer: %s", addr, mf_strerror(rc));
        }
        Mayfly__Api__Response *r = mayfly__api__response__unpack(NULL, len, frame);
        free(frame);
        if (!r)
            return mf_err_set(err, err_len, MF_ECORRUPT, "%s: malformed answer", addr);
        if (r->id == id) {
            *resp = r;
            return 0;
        }
        /* An answer to an earlier, abandoned request on this connection. */
        mayfly__api__response__free_unpacked(r, NULL);
    }
}

/* Only UNAVAILABLE moves on to the next node; TOO_LARGE and every other
 * answer is final (no node would take a request over the limit). */
static bool retryable(const Mayfly__Api__Response *r)
{
    return r->error && r->error->code == MAYFLY__API__ERROR_CODE__UNAVAILABLE;
}

/* SEALED and NOT_INITIALIZED are about the node that answered, not the
 * cluster: another node may be unsealed (CLI.md "Operations"). Init,
 * unseal, generate-root and rekey address the
 * one node named, so their answer is final. A sealed node refuses before doing anything, so sending the same
 * request (same idempotency key) elsewhere is safe. */
static bool node_state_refusal(const Mayfly__Api__Request *q, const Mayfly__Api__Response *r)
{
    if (!r->error || (r->error->code != MAYFLY__API__ERROR_CODE__SEALED &&
                      r->error->code != MAYFLY__API__ERROR_CODE__NOT_INITIALIZED))
        return false;
    return q->op_case != MAYFLY__API__REQUEST__OP_INIT &&
           q->op_case != MAYFLY__API__REQUEST__OP_UNSEAL &&
           q->op_case != MAYFLY__API__REQUEST__OP_GENERATE_ROOT &&
           q->op_case != MAYFLY__API__REQUEST__OP_REKEY;
}

int mf_client_call(struct mf_client *c, Mayfly__Api__Request *req, bool is_write,
                   Mayfly__Api__Response **resp, char *err, size_t err_len)
{
    uint8_t key[16];
    req->id = c->next_id++;
    req->token = c->token ? c->token : (char *)"";
    if (is_write) {
        /* One key for every attempt of this call: the server applies it once. */
        if (mf_rand_bytes(key, sizeof(key)))
            return mf_err_set(err, err_len, MF_ECRYPTO, "random source failed");
        req->request_key.data = key;
        req->request_key.len = sizeof(key);
    }
    size_t body_len = mayfly__api__request__get_packed_size(req);
    if (body_len > MF_CLIENT_FRAME_MAX)
        return mf_err_set(err, err_len, MF_ETOOLARGE, "request of %zu bytes is too large",
                          body_len);
    uint8_t *frame = malloc(body_len ? body_len : 1);
    if (!frame)
        return -ENOMEM;
    mayfly__api__request__pack(req, frame);

    uint64_t deadline = mf_now_mono_ms() + c->timeout_ms;
    uint64_t backoff = RETRY_BACKOFF_MIN_MS;
    bool ever_sent = false;
    size_t failures_in_round = 0;
    bool unavail_in_round = false; /* some node said UNAVAILABLE this round */
    bool sealed_in_round = false;  /* some node said SEALED or NOT_INITIALIZED */
    int rc = MF_EUNAVAIL;
    Mayfly__Api__Response *last = NULL;
    while (remaining_ms(deadline) > 0) {
        if (!c->connected)
            rc = connect_current(c, deadline, err, err_len);
        else
            rc = 0;
        if (!rc) {
            bool sent = false;
            Mayfly__Api__Response *r = NULL;
            rc = exchange(c, frame, body_len, req->id, deadline, &r, &sent, err, err_len);
            ever_sent |= sent;
            if (rc == MF_ETOOLARGE) { /* no node takes it: retrying cannot help */
                OPENSSL_clear_free(frame, body_len);
                mayfly__api__response__free_unpacked(last, NULL);
                return rc;
            }
            if (!rc && !retryable(r) && !node_state_refusal(req, r)) {
                mayfly__api__response__free_unpacked(last, NULL);
                *resp = r;
                OPENSSL_clear_free(frame, body_len);
                return 0;
            }
            if (!rc) { /* UNAVAILABLE, SEALED...: keep it in case time runs out */
                unavail_in_round |= retryable(r);
                sealed_in_round |= !retryable(r);
                mayfly__api__response__free_unpacked(last, NULL);
                last = r;
            }
            if (rc)
                disconnect(c);
        }
        /* Next node; after a full round, back off before trying again. */
        disconnect(c);
        c->cur = (c->cur + 1) % c->addrs_len;
        if (++failures_in_round >= c->addrs_len) {
            /* A whole round of sealed or uninitialised nodes (the others
             * unreachable): waiting will not unseal them, so answer now. */
            if (sealed_in_round && !unavail_in_round)
                break;
            failures_in_round = 0;
            unavail_in_round = sealed_in_round = false;
            int ms = remaining_ms(deadline);
            uint64_t sleep_ms = backoff < (uint64_t)ms ? backoff : (uint64_t)ms;
            poll(NULL, 0, (int)sleep_ms);
            backoff = backoff * 2 > RETRY_BACKOFF_MAX_MS ? RETRY_BACKOFF_MAX_MS : backoff * 2;
        }
    }
    OPENSSL_clear_free(frame, body_len);
    if (last) { /* every node said UNAVAILABLE or SEALED...: report that answer */
        *resp = last;
        return 0;
    }
    /* The last failure's text, copied: err is also the message's destination. */
    char why[256];
    snprintf(why, sizeof(why), "%s", err_len && err[0] ? err : "timeout");
    if (ever_sent && is_write)
        return mf_err_set(err, err_len, MF_EUNKNOWN,
                          "no answer in time: the write may or may not have been applied (%s)",
                          why);
    if (ever_sent)
        return mf_err_set(err, err_len, MF_ETIMEOUT, "no answer in time (%s)", why);
    return rc ? rc : MF_EUNAVAIL;
}
