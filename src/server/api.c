/* The client API: TLS connections, request framing, answers, and forwarding
 * of writes from followers to the leader over the peer link.
 *
 * A connection may pipeline requests; answers carry the request's id and may
 * come back in any order. At most CONN_INFLIGHT_MAX requests run per
 * connection: past that the connection stops reading (backpressure), so a
 * client that sends without reading cannot grow the server's memory. A frame
 * that is not a valid Request gets an INVALID_ARGUMENT answer (id 0) and the
 * connection is closed: after garbage, framing cannot be trusted. */
#include "server/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "common/utf8.h"
#include "forward.pb-c.h"
#include "net/conn.h"
#include "server/auditlog.h"
#include "server/gate.h"
#include "server/reqstats.h"

#define LOG_MOD "api"
#define FORWARD_TIMEOUT_MS 10000 /* a forwarded request with no answer */
#define CONN_INFLIGHT_MAX 1024   /* requests in flight per client connection */
#define FWD_CERT_BYTES_MAX 65536 /* one forwarded client certificate, DER */
#define FWD_CHAIN_MAX 8          /* forwarded intermediates (certauth.h's chain limit) */

/* Application tags on the peer transport (node.h: >= 16). */
enum {
    /* [fwd id: 8 BE][mayfly.peer.ForwardEnvelope] follower -> leader: the
     * envelope only a peer can set (proto/forward.proto), holding the
     * Request, the client's address as the entry node saw it (policy cidrs
     * conditions), the entry node's id (the sender, proven by its
     * certificate) and, for a cert login, the client's certificate. */
    TAG_FWD_REQ = 16,
    TAG_FWD_RESP = 17, /* [fwd id: 8 BE][Response] leader -> follower */
};

struct client_conn {
    struct mf_server *srv;
    struct mf_conn *conn;     /* NULL once closed */
    unsigned refs;            /* the connection itself + requests in flight */
    unsigned inflight;
    bool paused;
    bool authed;              /* a request with a valid token was served: full frame cap */
};

struct mf_api {
    struct mf_listener *listener;
    char client_addr[64];
    mf_api_request_cb on_request;
    int (*authenticate)(struct req *r); /* the token check (op_tokens) */
    struct mf_gate_rate preauth; /* client_preauth_bytes_per_s (gate.h) */
    uint64_t next_fwd_id;
    struct req *fwd_head;     /* requests forwarded to the leader, oldest first */
    struct req *fwd_tail;
};

static Mayfly__Api__ErrorCode wire_code(int code)
{
    const char *name = mf_err_name(code);
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value_by_name(&mayfly__api__error_code__descriptor, name);
    return v ? (Mayfly__Api__ErrorCode)v->value : MAYFLY__API__ERROR_CODE__INTERNAL;
}

/* Requests and answers hold tokens and values: wiped when freed (secmem.h). */
static ProtobufCAllocator wipe_alloc = {mf_wipe_pb_alloc, mf_wipe_pb_free, NULL};

/* ---- connections ---- */

static void cc_unref(struct client_conn *cc)
{
    if (--cc->refs == 0)
        free(cc);
}

static void maybe_resume(struct client_conn *cc)
{
    if (cc->paused && cc->conn && cc->inflight < CONN_INFLIGHT_MAX / 2) {
        cc->paused = false;
        mf_conn_read_start(cc->conn);
    }
}

static void req_free(struct req *r)
{
    if (r->cc && r->has_token && !r->cc->authed && r->cc->conn) {
        /* A valid token seen once: this connection may send full-size frames. */
        r->cc->authed = true;
        mf_conn_set_frame_in_max(r->cc->conn, SIZE_MAX);
        mf_conn_read_pause_ms(r->cc->conn, 0); /* strangers' byte rate no more */
    }
    if (r->cc) {
        r->cc->inflight--;
        maybe_resume(r->cc);
        cc_unref(r->cc);
    }
    mayfly__api__request__free_unpacked(r->pb, &wipe_alloc); /* NULL: no-op */
    mayfly__cmd__token_record__free_unpacked(r->token, &wipe_alloc);
    X509_free(r->fwd_cert);
    sk_X509_pop_free(r->fwd_chain, X509_free);
    if (r->op_state)
        r->op_state_free(r->op_state);
    free(r->audit_path);
    mf_wipe_free(r->answer);
    mf_wipe_free(r->secret_plain);
    free(r);
}

/* The answer as it goes on the wire (with the forwarding header for a peer). */
static uint8_t *pack_answer(struct req *r, const Mayfly__Api__Response *resp, size_t *len)
{
    size_t n = mayfly__api__response__get_packed_size(resp);
    size_t head = r->cc ? 0 : 8;
    uint8_t *buf = malloc(head + (n ? n : 1));
    if (!buf)
        return NULL;
    for (size_t i = 0; i < head; i++)
        buf[i] = (uint8_t)(r->fwd_id >> (56 - 8 * i));
    mayfly__api__response__pack(resp, buf + head);
    *len = head + n;
    return buf;
}

static void send_answer(struct req *r, const uint8_t *buf, size_t len)
{
    if (r->cc) {
        if (r->cc->conn) {
            int rc = mf_conn_send(r->cc->conn, buf, len);
            if (rc == -ENOBUFS) /* the client does not read its answers */
                mf_conn_close(r->cc->conn, -ENOBUFS);
        }
    } else if (r->srv->node) {
        mf_node_send(r->srv->node, r->peer, TAG_FWD_RESP, buf, len);
    }
}

/* An answer whose audit record is durable (or failed: logged) leaves. */
static void answer_audited(struct req *r, bool durable, const char *err)
{
    if (!durable && r->audit_withhold) {
        /* A read's request record failed with its answer: fail closed. */
        Mayfly__Api__Error e = MAYFLY__API__ERROR__INIT;
        e.code = wire_code(MF_EUNAVAIL);
        e.message = (char *)err;
        Mayfly__Api__Response resp = MAYFLY__API__RESPONSE__INIT;
        resp.id = r->pb ? r->pb->id : 0;
        resp.error = &e;
        mf_wipe_free(r->answer);
        r->answer = pack_answer(r, &resp, &r->answer_len);
    }
    if (r->answer)
        send_answer(r, r->answer, r->answer_len);
    mf_wipe_free(r->answer);
    r->answer = NULL;
    req_free(r);
}

/* An answer's code as an MF_E* code (0: OK), for its audit record. */
static int response_code(const Mayfly__Api__Response *resp)
{
    if (!resp->error)
        return 0;
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &mayfly__api__error_code__descriptor, resp->error->code);
    int code = v ? mf_err_from_name(v->name) : 0;
    return code ? code : MF_EINTERNAL;
}

void mf_api_reply(struct req *r, Mayfly__Api__Response *resp)
{
    resp->id = r->pb ? r->pb->id : 0;
    mf_reqstats_done(r->srv->reqstats, r->pb ? (int)r->pb->op_case : 0, response_code(resp),
                     mf_now_mono_us_figures() - r->start_us); /* op 0: not counted */
    r->answer = pack_answer(r, resp, &r->answer_len);
    if (r->answer && mf_auditlog_response(r, response_code(resp), resp, answer_audited) == 1)
        return; /* leaves once its record is durable */
    if (r->answer)
        send_answer(r, r->answer, r->answer_len);
    req_free(r); /* wipes and frees r->answer */
}

void mf_api_reply_error(struct req *r, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    Mayfly__Api__Error e = MAYFLY__API__ERROR__INIT;
    e.code = wire_code(code);
    e.message = msg;
    Mayfly__Api__Response resp = MAYFLY__API__RESPONSE__INIT;
    resp.error = &e;
    mf_api_reply(r, &resp);
}

int mf_api_set_credential(struct req *r, const char *kind, const void *cred, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, "mayfly-cred-1", 13) &&
             EVP_DigestUpdate(md, kind, strlen(kind) + 1) && EVP_DigestUpdate(md, cred, len) &&
             EVP_DigestFinal_ex(md, r->cred_hash, NULL);
    EVP_MD_CTX_free(md);
    r->has_cred_hash = ok;
    return ok ? 0 : -ENOMEM;
}

static struct req *req_new(struct mf_server *s, Mayfly__Api__Request *pb)
{
    struct req *r = calloc(1, sizeof(*r));
    if (r)
        *r = (struct req){.srv = s, .pb = pb, .start_us = mf_now_mono_us_figures()};
    return r;
}

/* Whether the token in a request's head verifies (0) or why not. */
static int head_authenticate(struct mf_server *s, const uint8_t *tok, size_t tok_len)
{
    if (!tok || !tok_len || !s->api->authenticate || memchr(tok, 0, tok_len))
        return MF_EUNAUTH;
    char *token = malloc(tok_len + 1);
    if (!token)
        return -ENOMEM;
    memcpy(token, tok, tok_len);
    token[tok_len] = '\0';
    Mayfly__Api__Request pb = MAYFLY__API__REQUEST__INIT;
    pb.token = token;
    struct req probe = {.srv = s, .pb = &pb};
    int rc = s->api->authenticate(&probe);
    if (probe.token)
        mayfly__cmd__token_record__free_unpacked(probe.token, NULL);
    OPENSSL_cleanse(token, tok_len);
    free(token);
    return rc;
}

/* A frame over the pre-authentication cap: only its head is buffered. The
 * token in it must verify before the rest is read (a stranger's request costs
 * the head and one token lookup, not a 4 MiB buffer and a full decode). */
static int on_client_gate(struct mf_conn *c, const uint8_t *head, size_t head_len,
                          size_t frame_len)
{
    struct client_conn *cc = mf_conn_data(c);
    uint64_t id;
    const uint8_t *tok;
    size_t tok_len;
    char msg[256];
    mf_gate_head_fields(head, head_len, &id, &tok, &tok_len);
    if (mf_conn_refusal(c)) {
        mf_gate_answer(c, id, wire_code(MF_ERATELIMIT), mf_conn_refusal(c));
        return MF_ERATELIMIT;
    }
    int rc = head_authenticate(cc->srv, tok, tok_len);
    if (rc == 0) {
        cc->authed = true;
        mf_conn_set_frame_in_max(c, SIZE_MAX);
        mf_conn_read_pause_ms(c, 0);
        return 0;
    }
    MF_INFO(LOG_MOD, "%s: refusing a request of %zu bytes before authentication: %s",
            mf_conn_peer(c), frame_len, mf_strerror(rc));
    snprintf(msg, sizeof(msg),
             "a request of %zu bytes needs a valid token: until one is seen on this "
             "connection, requests are limited to %zu bytes (client_preauth_frame_max_bytes)",
             frame_len, head_len);
    mf_gate_answer(c, id, wire_code(rc), msg);
    return rc;
}

static void on_client_frame(struct mf_conn *c, const uint8_t *data, size_t len)
{
    struct client_conn *cc = mf_conn_data(c);
    struct mf_server *s = cc->srv;
    if (mf_conn_refusal(c)) {
        /* Admitted only to say why it is refused (connections per address). */
        uint64_t id;
        const uint8_t *tok;
        size_t tok_len;
        mf_gate_head_fields(data, len, &id, &tok, &tok_len);
        mf_gate_answer(c, id, wire_code(MF_ERATELIMIT), mf_conn_refusal(c));
        mf_conn_shutdown(c);
        return;
    }
    if (!cc->authed) /* strangers share one byte rate: pause past it */
        mf_conn_read_pause_ms(c, mf_gate_charge(&s->api->preauth,
                                                s->cfg->client_preauth_bytes_per_s,
                                                mf_now_mono_ms(), len));
    Mayfly__Api__Request *pb = mayfly__api__request__unpack(NULL, len, data);
    struct req *r = req_new(s, pb);
    if (!r) {
        if (pb)
            mayfly__api__request__free_unpacked(pb, &wipe_alloc);
        mf_conn_close(c, -ENOMEM);
        return;
    }
    r->cc = cc;
    snprintf(r->client_addr, sizeof(r->client_addr), "%s", mf_conn_peer(c));
    cc->refs++;
    cc->inflight++;
    if (cc->inflight >= CONN_INFLIGHT_MAX && !cc->paused) {
        cc->paused = true;
        mf_conn_read_stop(c);
    }
    if (!pb) {
        MF_WARN(LOG_MOD, "%s: malformed request frame (%zu bytes); closing", mf_conn_peer(c),
                len);
        mf_api_reply_error(r, MF_EINVAL, "malformed request: not a mayfly.api.Request");
        mf_conn_shutdown(c);
        return;
    }
    /* protobuf-c hands strings out NUL-terminated: one with a NUL inside
     * would be cut silently ("app/db\0junk" would read app/db). A request
     * that does not pack back to the bytes' length holds such a string (or
     * an encoding we do not produce): refused, not guessed at. */
    if (mayfly__api__request__get_packed_size(pb) != len)
        return mf_api_reply_error(r, MF_EINVAL, "malformed request: a string holds a NUL byte, "
                                                "or the encoding is not canonical");
    const char *bad = NULL; /* paths, names and keys are UTF-8 (common/utf8.h) */
    if (!mf_utf8_message_valid((const ProtobufCMessage *)pb, &bad))
        return mf_api_reply_error(r, MF_EINVAL, "malformed request: %s is not valid UTF-8", bad);
    s->api->on_request(r);
}

static void on_client_close(struct mf_conn *c, int reason)
{
    struct client_conn *cc = mf_conn_data(c);
    if (reason && reason != MF_ECLOSED)
        MF_DEBUG(LOG_MOD, "%s: closed: %s", mf_conn_peer(c), mf_strerror(reason));
    cc->conn = NULL;
    cc_unref(cc);
}

static void on_client_accept(struct mf_listener *l, struct mf_conn *c)
{
    struct mf_server *s = mf_listener_data(l);
    struct client_conn *cc = calloc(1, sizeof(*cc));
    if (!cc) {
        mf_conn_close(c, -ENOMEM);
        return;
    }
    cc->srv = s;
    cc->conn = c;
    cc->refs = 1;
    mf_conn_set_data(c, cc);
}

static const struct mf_conn_cbs client_cbs = {
    .frame = on_client_frame,
    .close = on_client_close,
    .gate = on_client_gate,
};

void mf_api_set_authenticator(struct mf_server *s, int (*authenticate)(struct req *r))
{
    if (s->api)
        s->api->authenticate = authenticate;
}

int mf_api_listen(struct mf_server *s, mf_api_request_cb on_request)
{
    struct mf_api *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->on_request = on_request;
    a->preauth = (struct mf_gate_rate){s->cfg->client_preauth_bytes_per_s, mf_now_mono_ms()};
    s->api = a;
    struct mf_listener_opts lo = {0};
    mf_gate_listener_opts(s->cfg, &lo);
    int rc = mf_listener_new(s->loop, s->client_ctx, s->cfg->listen, &lo, &client_cbs, s,
                             on_client_accept, &a->listener);
    if (rc) {
        MF_ERROR(LOG_MOD, "cannot listen on %s: %s", s->cfg->listen, mf_strerror(rc));
        return rc;
    }
    mf_listener_addr(a->listener, a->client_addr, sizeof(a->client_addr), NULL);
    return 0;
}

void mf_api_close(struct mf_server *s)
{
    struct mf_api *a = s->api;
    if (!a)
        return;
    mf_api_fail_forwards(s, MF_EUNAVAIL);
    if (a->listener)
        mf_listener_close(a->listener, NULL);
    free(a);
    s->api = NULL;
}

const char *mf_api_client_addr(const struct mf_server *s)
{
    return s->api ? s->api->client_addr : "";
}

/* ---- forwarding ---- */

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* DER of one certificate into b (malloc'd). @return 0; -ENOMEM; MF_ETOOLARGE. */
static int cert_der(X509 *x, ProtobufCBinaryData *b)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0)
        return -ENOMEM;
    if (n > FWD_CERT_BYTES_MAX) {
        OPENSSL_free(der);
        return MF_ETOOLARGE;
    }
    b->data = der;
    b->len = (size_t)n;
    return 0;
}

/* A cert login's credential is the client's TLS certificate, which exists
 * only on the entry node's connection: it rides in the envelope. Any other
 * request carries no certificate to the leader. */
static bool is_cert_login(const struct req *r)
{
    return r->pb->op_case == MAYFLY__API__REQUEST__OP_LOGIN &&
           strcmp(r->pb->login->method, "cert") == 0;
}

static void envelope_free_certs(Mayfly__Peer__ForwardEnvelope *e)
{
    OPENSSL_free(e->client_cert.data);
    for (size_t i = 0; i < e->n_client_chain; i++)
        OPENSSL_free(e->client_chain[i].data);
}

/* The envelope's certificates from r's connection (none presented: none). */
static int envelope_certs(const struct req *r, Mayfly__Peer__ForwardEnvelope *e,
                          ProtobufCBinaryData *chain)
{
    STACK_OF(X509) *sk = NULL;
    X509 *leaf = mf_api_client_cert(r, &sk);
    e->client_chain = chain;
    if (!leaf || !is_cert_login(r))
        return 0;
    int rc = cert_der(leaf, &e->client_cert);
    int n = sk ? sk_X509_num(sk) : 0;
    for (int i = 0; !rc && i < n; i++) {
        if (e->n_client_chain == FWD_CHAIN_MAX)
            return MF_ETOOLARGE;
        if (X509_cmp(sk_X509_value(sk, i), leaf) == 0)
            continue; /* some stacks hold the leaf too */
        rc = cert_der(sk_X509_value(sk, i), &chain[e->n_client_chain]);
        if (!rc)
            e->n_client_chain++;
    }
    return rc;
}

int mf_api_forward(struct mf_server *s, struct req *r)
{
    struct mf_api *a = s->api;
    if (!s->leader || s->leader == s->cfg->node_id)
        return MF_EUNAVAIL;
    Mayfly__Peer__ForwardEnvelope e = MAYFLY__PEER__FORWARD_ENVELOPE__INIT;
    ProtobufCBinaryData chain[FWD_CHAIN_MAX];
    e.request = r->pb;
    e.client_addr = r->client_addr;
    e.entry_node = s->cfg->node_id;
    e.audit_record = r->audit_rid;
    int rc = envelope_certs(r, &e, chain);
    size_t len = mayfly__peer__forward_envelope__get_packed_size(&e);
    uint8_t *buf = rc ? NULL : malloc(8 + len);
    if (!rc && !buf)
        rc = -ENOMEM;
    if (!rc) {
        r->fwd_id = ++a->next_fwd_id;
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(r->fwd_id >> (56 - 8 * i));
        mayfly__peer__forward_envelope__pack(&e, buf + 8);
        rc = mf_node_send(s->node, s->leader, TAG_FWD_REQ, buf, 8 + len);
    }
    envelope_free_certs(&e);
    mf_wipe_free(buf);
    if (rc)
        return rc;
    r->fwd_deadline_ms = mf_now_mono_ms() + FORWARD_TIMEOUT_MS;
    r->next_fwd = NULL;
    if (a->fwd_tail)
        a->fwd_tail->next_fwd = r;
    else
        a->fwd_head = r;
    a->fwd_tail = r;
    return 0;
}

static struct req *take_forward(struct mf_api *a, uint64_t fwd_id)
{
    struct req *prev = NULL;
    for (struct req *r = a->fwd_head; r; prev = r, r = r->next_fwd) {
        if (r->fwd_id != fwd_id)
            continue;
        if (prev)
            prev->next_fwd = r->next_fwd;
        else
            a->fwd_head = r->next_fwd;
        if (a->fwd_tail == r)
            a->fwd_tail = prev;
        return r;
    }
    return NULL;
}

void mf_api_expire_forwards(struct mf_server *s)
{
    struct mf_api *a = s->api;
    uint64_t now = mf_now_mono_ms();
    while (a && a->fwd_head && a->fwd_head->fwd_deadline_ms <= now) {
        struct req *r = a->fwd_head;
        a->fwd_head = r->next_fwd;
        if (!a->fwd_head)
            a->fwd_tail = NULL;
        mf_api_reply_error(r, MF_EUNKNOWN,
                           "the leader did not answer in time: the write may or may not have "
                           "been applied");
    }
}

void mf_api_fail_forwards(struct mf_server *s, int code)
{
    struct mf_api *a = s->api;
    if (!a)
        return;
    while (a->fwd_head) {
        struct req *r = a->fwd_head;
        a->fwd_head = r->next_fwd;
        mf_api_reply_error(r, code, "forwarding to the leader failed");
    }
    a->fwd_tail = NULL;
}

/* The entry node records the leader's answer it relays before it leaves.
 * @return true when it waits for its record (answer_audited sends it). */
static bool audit_relayed(struct req *r, const uint8_t *data, size_t len)
{
    if (!mf_auditlog_active(r->srv))
        return false;
    Mayfly__Api__Response *resp = mayfly__api__response__unpack(NULL, len, data);
    r->answer = malloc(len ? len : 1);
    if (!r->answer) {
        if (resp)
            mayfly__api__response__free_unpacked(resp, &wipe_alloc);
        return false;
    }
    memcpy(r->answer, data, len);
    r->answer_len = len;
    int rc = mf_auditlog_response(r, resp ? response_code(resp) : MF_EINTERNAL, resp,
                                  answer_audited);
    if (resp)
        mayfly__api__response__free_unpacked(resp, &wipe_alloc);
    if (rc == 1)
        return true;
    mf_wipe_free(r->answer);
    r->answer = NULL;
    return false;
}

static void relay_forward_response(struct mf_server *s, const uint8_t *data, size_t len)
{
    if (len < 8)
        return;
    struct req *r = take_forward(s->api, be64(data));
    if (!r)
        return; /* expired already */
    if (audit_relayed(r, data + 8, len - 8))
        return;
    if (r->cc && r->cc->conn) {
        int rc = mf_conn_send(r->cc->conn, data + 8, len - 8);
        if (rc == -ENOBUFS)
            mf_conn_close(r->cc->conn, -ENOBUFS);
    }
    req_free(r);
}

static X509 *cert_from_der(const ProtobufCBinaryData *b)
{
    const unsigned char *p = b->data;
    if (b->len == 0 || b->len > FWD_CERT_BYTES_MAX)
        return NULL;
    X509 *x = d2i_X509(NULL, &p, (long)b->len);
    if (x && p != b->data + b->len) { /* trailing bytes: not one certificate */
        X509_free(x);
        return NULL;
    }
    return x;
}

/* The forwarded certificates into r (a cert login's only). @return 0 or -1. */
static int take_certs(struct req *r, const Mayfly__Peer__ForwardEnvelope *e)
{
    if (!e->client_cert.len && !e->n_client_chain)
        return 0;
    if (!is_cert_login(r) || !e->client_cert.len || e->n_client_chain > FWD_CHAIN_MAX)
        return -1;
    if (!(r->fwd_cert = cert_from_der(&e->client_cert)))
        return -1;
    if (!e->n_client_chain)
        return 0;
    if (!(r->fwd_chain = sk_X509_new_null()))
        return -1;
    for (size_t i = 0; i < e->n_client_chain; i++) {
        X509 *x = cert_from_der(&e->client_chain[i]);
        if (!x || !sk_X509_push(r->fwd_chain, x)) {
            X509_free(x);
            return -1;
        }
    }
    return 0;
}

static void serve_forwarded(struct mf_server *s, uint64_t from, const uint8_t *data, size_t len)
{
    if (len < 8)
        return;
    Mayfly__Peer__ForwardEnvelope *e =
        mayfly__peer__forward_envelope__unpack(NULL, len - 8, data + 8);
    /* The entry node is the sender the peer link authenticated; an envelope
     * naming another is not believed. */
    if (!e || !e->request || e->entry_node != from ||
        strlen(e->client_addr) >= sizeof(((struct req *)0)->client_addr)) {
        MF_WARN(LOG_MOD, "malformed forwarded request from node %" PRIu64, from);
        if (e)
            mayfly__peer__forward_envelope__free_unpacked(e, &wipe_alloc);
        return;
    }
    struct req *r = req_new(s, e->request);
    if (!r) {
        mayfly__peer__forward_envelope__free_unpacked(e, &wipe_alloc);
        return;
    }
    e->request = NULL; /* r owns the Request now */
    r->peer = from;
    r->fwd_id = be64(data);
    snprintf(r->client_addr, sizeof(r->client_addr), "%s", e->client_addr);
    if (e->audit_record) { /* one record id on the entry node and here */
        r->audit_rid = e->audit_record;
        r->audit_rid_node = from;
    }
    int bad = take_certs(r, e);
    mayfly__peer__forward_envelope__free_unpacked(e, &wipe_alloc);
    if (bad) {
        MF_WARN(LOG_MOD, "a forwarded request from node %" PRIu64 " carries a certificate "
                         "that does not parse or belongs to no cert login", from);
        return mf_api_reply_error(r, MF_EINVAL, "the forwarded client certificate is invalid");
    }
    s->api->on_request(r);
}

void mf_api_peer_message(struct mf_server *s, uint64_t from, uint8_t tag, const uint8_t *data,
                         size_t len)
{
    if (!s->api)
        return;
    if (tag == TAG_FWD_REQ)
        serve_forwarded(s, from, data, len);
    else if (tag == TAG_FWD_RESP)
        relay_forward_response(s, data, len);
}

X509 *mf_api_client_cert(const struct req *r, STACK_OF(X509) **chain)
{
    *chain = NULL;
    if (r->peer) {
        *chain = r->fwd_chain;
        return r->fwd_cert;
    }
    if (!r->cc || !r->cc->conn)
        return NULL;
    SSL *ssl = mf_conn_ssl(r->cc->conn);
    X509 *leaf = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    if (leaf) /* on a server, the chain without the leaf */
        *chain = SSL_get_peer_cert_chain(ssl);
    return leaf;
}
