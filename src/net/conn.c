/* TLS 1.3 over libuv TCP with memory BIOs, length-prefixed frames, output
 * caps and read pausing; plus the listener that accepts such connections.
 * The contract is in conn.h; this file holds the state machine:
 *
 *   CONNECTING (dial only) -> HANDSHAKE -> OPEN -> CLOSING
 *
 * Every path that ends a connection goes through conn_close, which closes the
 * five libuv handles (socket, timeout timer, kick timer, flush idle, pause
 * timer); the close callback runs when the last of them is closed, and the
 * memory is freed after it. */
#include "net/conn.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "net/addr.h"
#include "net/tls.h"

#define MOD "net"
#define FRAME_HDR 4
#define TLS_RECORD_MAX 16384
/* Bytes a TLS 1.3 record adds (header 5, content type 1, AEAD tag 16), with
 * slack: used to estimate the ciphertext size of a send. */
#define TLS_RECORD_OVERHEAD 32
#define SHUTDOWN_LINGER_MS 2000
/* TCP keepalive: a peer that vanished without a FIN is noticed by the kernel
 * after this idle time plus its probes, even on links we only read from. */
#define KEEPALIVE_S 30

enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

/* A plaintext frame waiting for the handshake. */
struct pend {
    struct pend *next;
    size_t len;            /* header + payload */
    uint8_t data[];
};

/* One uv_write in flight; the buffer lives until on_write. */
struct wreq {
    uv_write_t req;
    struct mf_conn *c;
    size_t len;
    uint8_t data[];
};

struct mf_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;          /* connect/handshake timeout, shutdown linger */
    uv_timer_t kick;           /* deferred processing after read_start */
    uv_timer_t pause_timer;    /* ends a mf_conn_read_pause_ms */
    uv_idle_t flusher;         /* writes coalesced small frames once per loop turn */
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai_req;  /* resolving a host name (dial only) */
    int resolving;             /* gai_req outstanding: memory must wait for it */
    uv_shutdown_t shutdown_req;
    uv_loop_t *loop;
    int handles;               /* libuv handles not yet closed */

    SSL *ssl;
    BIO *rbio, *wbio;
    struct mf_conn_cbs cbs;
    void *data;
    struct mf_conn_limits lim;
    char peer[64];
    int is_client;
    uint64_t expect_node_id;
    int require_node_id;

    enum conn_state state;
    int close_reason;
    int shutting_down;
    int opened;                /* the open callback ran */
    int paused_app;
    int paused_out;
    int want_drain;
    int reading;               /* uv_read_start is in effect */
    int in_process;

    size_t queued;             /* ciphertext handed to uv_write, not completed */
    uint8_t *obuf;             /* small frames (header + payload) not yet encrypted */
    size_t olen;
    int flush_scheduled;
    struct pend *pend_head, **pend_tail;
    size_t pend_bytes;

    /* Frame being assembled. */
    uint8_t hdr[FRAME_HDR];
    size_t hdr_have;
    uint8_t *body;
    size_t body_len, body_have;

    /* Decrypted input not yet framed because reading was paused mid-chunk. */
    uint8_t *left;
    size_t left_len, left_off;

    struct mf_listener *listener;
    struct mf_conn *lnext, *lprev;

    /* Limits of accepted connections (conn.h). */
    size_t in_max;             /* input frame cap now (preauth cap until raised) */
    size_t body_cap;           /* bytes allocated for `body` */
    int gating;                /* the frame in `body` is only its head, for the gate */
    size_t budget_held;        /* of the listener's frame budget */
    int paused_budget;         /* waiting for the listener's frame budget */
    int paused_rate;           /* mf_conn_read_pause_ms in effect */
    struct mf_conn *bnext;     /* listener's budget waiters */
    int got_frame;             /* a complete frame arrived */
    int hs_admitted;           /* took a token of the listener's handshake rate */
    uint64_t accepted_ms, active_ms; /* loop time of accept, of the last frame */
    struct sockaddr_storage sa; /* the peer (accepted connections) */
    char refusal[160];         /* mf_conn_refusal, "" when admitted */

    uint8_t rbuf[MF_CONN_READ_CHUNK];
};

struct mf_listener {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    SSL_CTX *ctx;
    struct mf_listener_opts opts;
    struct mf_conn_cbs cbs;
    void *data;
    mf_listener_accept_cb accept_cb;
    mf_listener_close_cb close_cb;
    struct mf_conn *conns;
    size_t nconns;
    int closing;
    int tcp_closed;
    double tokens;             /* handshake bucket */
    uint64_t refill_ms;
    struct mf_conn *bwait_head, *bwait_tail; /* waiting for the frame budget */
    struct mf_listener_stats st;
    uint64_t log_ms;           /* refusal log lines: one a second at most */
    uint64_t log_suppressed;
};

static void conn_close(struct mf_conn *c, int reason);
static void process(struct mf_conn *c);
static void update_reading(struct mf_conn *c);
static void start_reading(struct mf_conn *c);
static void listener_conn_gone(struct mf_listener *l, struct mf_conn *c);
static void start_open_timer(struct mf_conn *c);

static void limits_normalise(struct mf_conn_limits *l)
{
    if (l->frame_max_bytes == 0)
        l->frame_max_bytes = MF_CONN_FRAME_MAX_DEFAULT;
    if (l->frame_max_bytes > MF_CONN_FRAME_MAX_LIMIT)
        l->frame_max_bytes = MF_CONN_FRAME_MAX_LIMIT; /* the length prefix is 32 bits */
    size_t min_out = l->frame_max_bytes + l->frame_max_bytes / 64 + 65536;
    if (l->out_max_bytes == 0)
        l->out_max_bytes = 2 * l->frame_max_bytes + 65536;
    if (l->out_max_bytes < min_out)
        l->out_max_bytes = min_out;
    if (l->out_pause_bytes == 0 || l->out_pause_bytes > l->out_max_bytes)
        l->out_pause_bytes = l->out_max_bytes / 2;
    if (l->handshake_timeout_ms == 0)
        l->handshake_timeout_ms = MF_CONN_HANDSHAKE_TIMEOUT_MS;
}

/* Upper bound on the ciphertext a frame of `len` payload bytes becomes. */
static size_t cipher_estimate(size_t len)
{
    size_t n = len + FRAME_HDR;
    return n + (n / TLS_RECORD_MAX + 2) * TLS_RECORD_OVERHEAD;
}

static void log_ssl_failure(struct mf_conn *c, const char *what, int ssl_err)
{
    char buf[512];
    mf_tls_errors(buf, sizeof(buf));
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK)
        MF_WARN(MOD, "%s %s: %s (ssl error %d; certificate: %s)", what, c->peer, buf, ssl_err,
                X509_verify_cert_error_string(vr));
    else
        MF_WARN(MOD, "%s %s: %s (ssl error %d)", what, c->peer, buf, ssl_err);
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct mf_conn *c = w->c;
    MF_ASSERT(c->queued >= w->len);
    c->queued -= w->len;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED && c->state != ST_CLOSING)
            MF_INFO(MOD, "write to %s failed: %s", c->peer, uv_strerror(status));
        conn_close(c, status == UV_ECANCELED ? 0 : status);
        return;
    }
    if (c->state == ST_CLOSING)
        return;
    size_t low = c->lim.out_pause_bytes / 2;
    if (c->queued <= low) {
        if (c->paused_out) {
            c->paused_out = 0;
            update_reading(c);
        }
        if (c->want_drain) {
            c->want_drain = 0;
            if (c->cbs.drain)
                c->cbs.drain(c);
        }
    }
}

/* Moves whatever OpenSSL wrote into the write BIO to the socket. Called after
 * every SSL call. */
static int flush_wbio(struct mf_conn *c)
{
    size_t n;
    while ((n = BIO_ctrl_pending(c->wbio)) > 0) {
        if (c->state == ST_CLOSING || c->state == ST_CONNECTING) {
            (void)BIO_reset(c->wbio);
            return MF_ECLOSED;
        }
        struct wreq *w = malloc(sizeof(*w) + n);
        if (!w) {
            conn_close(c, -ENOMEM);
            return -ENOMEM;
        }
        int got = BIO_read(c->wbio, w->data, (int)n);
        MF_ASSERT(got == (int)n);
        w->c = c;
        w->len = n;
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc < 0) {
            free(w);
            MF_INFO(MOD, "write to %s failed: %s", c->peer, uv_strerror(rc));
            conn_close(c, rc);
            return rc;
        }
        c->queued += n;
    }
    if (c->queued > c->lim.out_pause_bytes && !c->paused_out) {
        c->paused_out = 1;
        c->want_drain = 1;
        update_reading(c);
    }
    return 0;
}

static int ssl_write_all(struct mf_conn *c, const void *p, size_t len)
{
    /* A memory BIO never blocks, so a healthy SSL_write takes everything. */
    while (len > 0) {
        int chunk = len > (size_t)(1 << 30) ? (1 << 30) : (int)len;
        int n = SSL_write(c->ssl, p, chunk);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            log_ssl_failure(c, "TLS write to", e);
            conn_close(c, MF_ECRYPTO);
            return MF_ECLOSED;
        }
        p = (const uint8_t *)p + n;
        len -= (size_t)n;
    }
    return 0;
}

/* Encrypts and sends the coalesced small frames. */
static int flush_obuf(struct mf_conn *c)
{
    if (c->flush_scheduled) {
        c->flush_scheduled = 0;
        uv_idle_stop(&c->flusher);
    }
    if (c->olen == 0 || c->state != ST_OPEN)
        return 0;
    size_t n = c->olen;
    c->olen = 0;
    int rc = ssl_write_all(c, c->obuf, n);
    OPENSSL_cleanse(c->obuf, n);
    return rc < 0 ? rc : flush_wbio(c);
}

static void on_flush(uv_idle_t *h)
{
    flush_obuf(h->data);
}

static int write_frame(struct mf_conn *c, const uv_buf_t *bufs, unsigned n, size_t total)
{
    uint8_t hdr[FRAME_HDR] = {(uint8_t)(total >> 24), (uint8_t)(total >> 16),
                              (uint8_t)(total >> 8), (uint8_t)total};
    int rc = 0;
    if (total + FRAME_HDR <= TLS_RECORD_MAX) {
        /* Small frames (heartbeats, votes, most answers) are gathered and
         * written once per loop turn: many answers share one TLS record and
         * one write(2). The idle handle keeps the poll from blocking, so the
         * delay is one loop turn, not a timer. */
        if (c->olen + total + FRAME_HDR > TLS_RECORD_MAX && (rc = flush_obuf(c)) < 0)
            return rc;
        if (!c->obuf && !(c->obuf = malloc(TLS_RECORD_MAX))) {
            conn_close(c, -ENOMEM);
            return -ENOMEM;
        }
        memcpy(c->obuf + c->olen, hdr, FRAME_HDR);
        c->olen += FRAME_HDR;
        for (unsigned i = 0; i < n; i++) {
            memcpy(c->obuf + c->olen, bufs[i].base, bufs[i].len);
            c->olen += bufs[i].len;
        }
        if (!c->flush_scheduled) {
            c->flush_scheduled = 1;
            uv_idle_start(&c->flusher, on_flush);
        }
        return 0;
    } else {
        /* Keep the order: what was gathered goes first. */
        if ((rc = flush_obuf(c)) < 0)
            return rc;
        rc = ssl_write_all(c, hdr, FRAME_HDR);
        for (unsigned i = 0; rc == 0 && i < n; i++)
            rc = ssl_write_all(c, bufs[i].base, bufs[i].len);
    }
    if (rc == 0)
        rc = flush_wbio(c);
    return rc;
}

int mf_conn_sendv(struct mf_conn *c, const uv_buf_t *bufs, unsigned n)
{
    MF_ASSERT(c && (bufs || n == 0));
    if (c->state == ST_CLOSING || c->shutting_down)
        return MF_ECLOSED;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (total > c->lim.frame_max_bytes)
        return MF_ETOOLARGE;
    if (c->queued + c->pend_bytes + c->olen + cipher_estimate(total) > c->lim.out_max_bytes) {
        c->want_drain = 1;
        return -ENOBUFS;
    }
    if (c->state != ST_OPEN) {
        struct pend *p = malloc(sizeof(*p) + FRAME_HDR + total);
        if (!p)
            return -ENOMEM;
        p->next = NULL;
        p->len = FRAME_HDR + total;
        p->data[0] = (uint8_t)(total >> 24);
        p->data[1] = (uint8_t)(total >> 16);
        p->data[2] = (uint8_t)(total >> 8);
        p->data[3] = (uint8_t)total;
        size_t off = FRAME_HDR;
        for (unsigned i = 0; i < n; i++) {
            memcpy(p->data + off, bufs[i].base, bufs[i].len);
            off += bufs[i].len;
        }
        *c->pend_tail = p;
        c->pend_tail = &p->next;
        c->pend_bytes += cipher_estimate(total);
        return 0;
    }
    int rc = write_frame(c, bufs, n, total);
    c->active_ms = uv_now(c->loop);
    return rc < 0 ? MF_ECLOSED : 0;
}

int mf_conn_send(struct mf_conn *c, const void *data, size_t len)
{
    if (len > MF_CONN_FRAME_MAX_LIMIT)
        return MF_ETOOLARGE;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return mf_conn_sendv(c, &b, 1);
}

static void free_pending(struct mf_conn *c)
{
    struct pend *p = c->pend_head;
    while (p) {
        struct pend *next = p->next;
        OPENSSL_cleanse(p->data, p->len);
        free(p);
        p = next;
    }
    c->pend_head = NULL;
    c->pend_tail = &c->pend_head;
    c->pend_bytes = 0;
}

static void flush_pending(struct mf_conn *c)
{
    struct pend *p = c->pend_head;
    c->pend_head = NULL;
    c->pend_tail = &c->pend_head;
    c->pend_bytes = 0;
    int rc = 0;
    while (p) {
        struct pend *next = p->next;
        if (rc == 0 && c->state == ST_OPEN) {
            rc = ssl_write_all(c, p->data, p->len);
            if (rc == 0)
                rc = flush_wbio(c);
        }
        OPENSSL_cleanse(p->data, p->len);
        free(p);
        p = next;
    }
}

/* ---- input ---- */

static void on_kick(uv_timer_t *t)
{
    process(t->data);
}

static int readable(const struct mf_conn *c)
{
    return c->state == ST_OPEN && !c->shutting_down && !c->paused_app && !c->paused_out &&
           !c->paused_budget && !c->paused_rate;
}

/* ---- frame budget (listener-wide) ---- */

/* Takes n bytes of the listener's budget for c, or queues c to wait (reading
 * stops) and returns 0. One frame always passes when c is the only holder,
 * so a frame larger than the whole budget cannot wait forever. */
static int budget_take(struct mf_conn *c, size_t n)
{
    struct mf_listener *l = c->listener;
    if (!l || !l->opts.frame_budget_bytes) {
        c->budget_held += n;
        return 1;
    }
    if (l->st.budget_used + n <= l->opts.frame_budget_bytes ||
        l->st.budget_used == c->budget_held) {
        l->st.budget_used += n;
        c->budget_held += n;
        return 1;
    }
    if (!c->paused_budget) {
        c->paused_budget = 1;
        c->bnext = NULL;
        if (l->bwait_tail)
            l->bwait_tail->bnext = c;
        else
            l->bwait_head = c;
        l->bwait_tail = c;
        l->st.budget_waits++;
        MF_INFO(MOD, "%s waits: the frame memory budget of %zu bytes is in use "
                     "(frame_budget_bytes)", c->peer, l->opts.frame_budget_bytes);
    }
    return 0;
}

static void budget_unlink(struct mf_listener *l, struct mf_conn *c)
{
    struct mf_conn **pp = &l->bwait_head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->bnext;
    }
    if (!*pp)
        return;
    *pp = c->bnext;
    if (l->bwait_tail == c)
        l->bwait_tail = prev;
    c->bnext = NULL;
}

/* Gives back what c holds and lets the waiters try again (each re-queues if
 * the budget is still short), from the loop, never re-entrantly. */
static void budget_give(struct mf_conn *c)
{
    struct mf_listener *l = c->listener;
    size_t n = c->budget_held;
    c->budget_held = 0;
    if (!l || !l->opts.frame_budget_bytes || n == 0)
        return;
    MF_ASSERT(l->st.budget_used >= n);
    l->st.budget_used -= n;
    struct mf_conn *w = l->bwait_head;
    l->bwait_head = l->bwait_tail = NULL;
    while (w) {
        struct mf_conn *next = w->bnext;
        w->bnext = NULL;
        w->paused_budget = 0;
        update_reading(w);
        w = next;
    }
}

static void release_body(struct mf_conn *c)
{
    if (c->body) {
        OPENSSL_cleanse(c->body, c->body_cap);
        free(c->body);
    }
    c->body = NULL;
    c->body_cap = 0;
    budget_give(c);
}

/* The buffer for the current frame grows to `want` bytes (the head while
 * gating, then the whole frame). @return 1; 0 waiting or closed. */
static int body_reserve(struct mf_conn *c, size_t want)
{
    if (c->body_cap >= want)
        return 1;
    if (!budget_take(c, want - c->body_cap))
        return 0;
    uint8_t *nb = malloc(want ? want : 1);
    if (!nb) {
        conn_close(c, -ENOMEM);
        return 0;
    }
    if (c->body) {
        memcpy(nb, c->body, c->body_have);
        OPENSSL_cleanse(c->body, c->body_cap);
        free(c->body);
    }
    c->body = nb;
    c->body_cap = want;
    return 1;
}

static void on_idle_timer(uv_timer_t *t);

/* A complete frame arrived: the first-frame deadline is met, idleness
 * restarts. */
static void frame_done(struct mf_conn *c)
{
    c->active_ms = uv_now(c->loop);
    if (c->got_frame || c->is_client || c->state != ST_OPEN)
        return;
    c->got_frame = 1;
    if (c->lim.idle_timeout_ms)
        uv_timer_start(&c->timer, on_idle_timer, c->lim.idle_timeout_ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void update_reading(struct mf_conn *c)
{
    if (c->state == ST_CLOSING || c->state == ST_CONNECTING)
        return;
    int want = (c->state == ST_HANDSHAKE) || readable(c);
    if (want && !c->reading) {
        start_reading(c);
        /* Input may already wait in OpenSSL's buffers or in `left`: process it
         * from the loop, not from inside whatever resumed us. */
        if (c->state != ST_CLOSING)
            uv_timer_start(&c->kick, on_kick, 0, 0);
    } else if (!want && c->reading) {
        c->reading = 0;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

/* Feeds decrypted bytes to the framer; returns how many were consumed, which
 * is fewer than len only when delivery paused or the connection closed. */
static size_t feed(struct mf_conn *c, const uint8_t *p, size_t len)
{
    size_t used = 0;
    while (used < len && readable(c)) {
        if (c->hdr_have < FRAME_HDR) {
            size_t k = FRAME_HDR - c->hdr_have;
            if (k > len - used)
                k = len - used;
            memcpy(c->hdr + c->hdr_have, p + used, k);
            c->hdr_have += k;
            used += k;
            if (c->hdr_have < FRAME_HDR)
                break;
            size_t flen = ((size_t)c->hdr[0] << 24) | ((size_t)c->hdr[1] << 16) |
                          ((size_t)c->hdr[2] << 8) | (size_t)c->hdr[3];
            size_t cap = c->cbs.gate ? c->lim.frame_max_bytes : c->in_max;
            if (flen > cap) {
                MF_WARN(MOD, "closing %s: frame of %zu bytes exceeds the limit of %zu bytes",
                        c->peer, flen, cap);
                conn_close(c, MF_ETOOLARGE);
                return used;
            }
            c->body_len = flen;
            c->body_have = 0;
            c->gating = flen > c->in_max;
            if (!c->gating && (flen == 0 || len - used >= flen)) {
                /* The whole payload is here: deliver without copying. */
                c->hdr_have = 0;
                used += flen;
                frame_done(c);
                c->cbs.frame(c, p + used - flen, flen);
                continue;
            }
            continue;
        }
        if (c->gating && c->in_max >= c->body_len)
            c->gating = 0; /* the cap was raised meanwhile */
        size_t target = c->gating ? c->in_max : c->body_len;
        if (!body_reserve(c, target))
            return used;
        size_t k = target - c->body_have;
        if (k > len - used)
            k = len - used;
        memcpy(c->body + c->body_have, p + used, k);
        c->body_have += k;
        used += k;
        if (c->body_have < target)
            continue;
        if (c->gating) {
            /* The head of an over-cap frame: the owner decides before the
             * rest is buffered. */
            c->gating = 0;
            int rc = c->cbs.gate(c, c->body, c->body_have, c->body_len);
            if (c->state == ST_CLOSING)
                return used;
            if (rc < 0) {
                release_body(c);
                mf_conn_shutdown(c);
                return used;
            }
            continue;
        }
        uint8_t *body = c->body;
        size_t cap = c->body_cap;
        c->body = NULL;
        c->body_cap = 0;
        c->hdr_have = 0;
        frame_done(c);
        c->cbs.frame(c, body, c->body_len);
        OPENSSL_cleanse(body, cap);
        free(body);
        budget_give(c);
    }
    return used;
}

static void keep_leftover(struct mf_conn *c, const uint8_t *p, size_t len)
{
    MF_ASSERT(c->left_off == c->left_len);
    if (!c->left) {
        c->left = malloc(MF_CONN_READ_CHUNK);
        if (!c->left) {
            conn_close(c, -ENOMEM);
            return;
        }
    }
    MF_ASSERT(len <= MF_CONN_READ_CHUNK);
    memcpy(c->left, p, len);
    c->left_len = len;
    c->left_off = 0;
}

static int check_identity(struct mf_conn *c)
{
    uint64_t id = 0;
    int rc;
    if (c->is_client && c->expect_node_id) {
        rc = mf_tls_peer_node_id(c->ssl, &id);
        if (rc < 0 || id != c->expect_node_id) {
            MF_WARN(MOD, "refusing %s: expected node %llu, certificate says %s%llu", c->peer,
                    (unsigned long long)c->expect_node_id, rc < 0 ? mf_strerror(rc) : "",
                    rc < 0 ? 0ULL : (unsigned long long)id);
            return MF_EUNAUTH;
        }
    }
    if (!c->is_client && c->require_node_id) {
        rc = mf_tls_peer_node_id(c->ssl, &id);
        if (rc < 0) {
            MF_WARN(MOD, "refusing %s: no node id in its certificate (%s)", c->peer,
                    mf_strerror(rc));
            return MF_EUNAUTH;
        }
    }
    return 0;
}

/* Process-wide: read by the metrics snapshot on the loop thread too. */
static uint64_t accepted_tls_failures, dialed_tls_failures;

void mf_conn_tls_failures(uint64_t *accepted, uint64_t *dialed)
{
    *accepted = __atomic_load_n(&accepted_tls_failures, __ATOMIC_RELAXED);
    *dialed = __atomic_load_n(&dialed_tls_failures, __ATOMIC_RELAXED);
}

/* A failed handshake counts on its listener, or among the dialed ones. */
static void count_tls_failure(struct mf_conn *c)
{
    if (c->listener)
        c->listener->st.tls_failures++;
    __atomic_add_fetch(c->listener ? &accepted_tls_failures : &dialed_tls_failures, 1,
                       __ATOMIC_RELAXED);
}

/* Runs the handshake on what has arrived; returns 1 once open. */
static int handshake(struct mf_conn *c)
{
    int n = SSL_do_handshake(c->ssl);
    int e = n == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
    if (flush_wbio(c) < 0)
        return 0;
    if (n != 1) {
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        log_ssl_failure(c, "TLS handshake with", e);
        count_tls_failure(c);
        conn_close(c, MF_ECRYPTO);
        return 0;
    }
    int rc = check_identity(c);
    if (rc < 0) {
        count_tls_failure(c);
        conn_close(c, rc);
        return 0;
    }
    c->state = ST_OPEN;
    uv_timer_stop(&c->timer);
    start_open_timer(c);
    MF_DEBUG(MOD, "TLS open with %s (%s)", c->peer, SSL_get_cipher(c->ssl));
    flush_pending(c);
    if (c->state != ST_OPEN)
        return 0;
    c->opened = 1;
    if (c->cbs.open)
        c->cbs.open(c);
    return c->state == ST_OPEN;
}

static int admit_handshake(struct mf_conn *c);

static void process(struct mf_conn *c)
{
    uint8_t plain[MF_CONN_READ_CHUNK];
    size_t plain_used = 0;
    if (c->in_process || c->state == ST_CLOSING)
        return;
    c->in_process = 1;
    if (c->state == ST_HANDSHAKE && admit_handshake(c) < 0) {
        conn_close(c, MF_ERATELIMIT);
        goto out;
    }
    if (c->state == ST_HANDSHAKE && !handshake(c))
        goto out;
    /* First what a pause left behind, then what OpenSSL holds. */
    while (c->left_off < c->left_len && readable(c))
        c->left_off += feed(c, c->left + c->left_off, c->left_len - c->left_off);
    while (readable(c) && c->left_off == c->left_len) {
        int n = SSL_read(c->ssl, plain, sizeof(plain));
        int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
        if (flush_wbio(c) < 0)
            break;
        if (n > 0) {
            if ((size_t)n > plain_used)
                plain_used = (size_t)n;
            size_t used = feed(c, plain, (size_t)n);
            if (used < (size_t)n && c->state == ST_OPEN)
                keep_leftover(c, plain + used, (size_t)n - used);
            continue;
        }
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            MF_DEBUG(MOD, "%s closed the TLS session", c->peer);
            conn_close(c, MF_ECLOSED);
            break;
        }
        log_ssl_failure(c, "TLS read from", e);
        conn_close(c, MF_ECRYPTO);
        break;
    }
out:
    OPENSSL_cleanse(plain, plain_used);
    c->in_process = 0;
    update_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct mf_conn *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mf_conn *c = s->data;
    if (nread == 0 || c->state == ST_CLOSING)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            MF_DEBUG(MOD, "%s closed the connection", c->peer);
            conn_close(c, MF_ECLOSED);
        } else {
            MF_INFO(MOD, "read from %s failed: %s", c->peer, uv_strerror((int)nread));
            conn_close(c, (int)nread);
        }
        return;
    }
    int w = BIO_write(c->rbio, buf->base, (int)nread);
    MF_ASSERT(w == (int)nread);
    process(c);
}


/* ---- lifecycle ---- */

static void conn_free(struct mf_conn *c)
{
    free_pending(c);
    /* Plaintext may hold secrets (answers carry credentials). */
    if (c->body)
        OPENSSL_cleanse(c->body, c->body_cap);
    free(c->body);
    if (c->left)
        OPENSSL_cleanse(c->left, MF_CONN_READ_CHUNK);
    free(c->left);
    if (c->obuf)
        OPENSSL_cleanse(c->obuf, TLS_RECORD_MAX);
    free(c->obuf);
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
}

/* The last step of a close: once every handle is closed and no request is
 * outstanding, the close callback runs and the memory goes. */
static void conn_finish(struct mf_conn *c)
{
    if (c->handles > 0 || c->resolving)
        return;
    struct mf_listener *l = c->listener;
    if (c->cbs.close)
        c->cbs.close(c, c->close_reason);
    if (l)
        listener_conn_gone(l, c);
    conn_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct mf_conn *c = h->data;
    MF_ASSERT(c->handles > 0);
    c->handles--;
    conn_finish(c);
}

static void conn_close(struct mf_conn *c, int reason)
{
    if (c->state == ST_CLOSING)
        return;
    c->state = ST_CLOSING;
    c->close_reason = reason;
    free_pending(c);
    if (c->listener) {
        if (c->paused_budget)
            budget_unlink(c->listener, c);
        c->paused_budget = 0;
        release_body(c); /* others may take its budget now */
    }
    (void)BIO_reset(c->wbio);
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai_req); /* if it already runs, its callback sees CLOSING */
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->kick, on_handle_closed);
    uv_close((uv_handle_t *)&c->flusher, on_handle_closed);
    uv_close((uv_handle_t *)&c->pause_timer, on_handle_closed);
}

void mf_conn_close(struct mf_conn *c, int reason)
{
    if (c)
        conn_close(c, reason);
}

static void on_linger(uv_timer_t *t)
{
    conn_close(t->data, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct mf_conn *c = req->data;
    conn_close(c, 0);
}

void mf_conn_shutdown(struct mf_conn *c)
{
    if (!c || c->state == ST_CLOSING || c->shutting_down)
        return;
    if (c->state != ST_OPEN) {
        conn_close(c, 0);
        return;
    }
    if (flush_obuf(c) < 0)
        return;
    c->shutting_down = 1;
    update_reading(c);
    SSL_shutdown(c->ssl);
    if (flush_wbio(c) < 0)
        return;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c, 0);
        return;
    }
    uv_timer_start(&c->timer, on_linger, SHUTDOWN_LINGER_MS, 0);
}

static void on_first_timeout(uv_timer_t *t)
{
    struct mf_conn *c = t->data;
    MF_WARN(MOD, "closing %s: no request within %u ms of connecting (first_request_timeout_ms)",
            c->peer, (unsigned)c->lim.first_frame_timeout_ms);
    conn_close(c, MF_ETIMEOUT);
}

static void on_idle_timer(uv_timer_t *t)
{
    struct mf_conn *c = t->data;
    uint64_t now = uv_now(c->loop), idle = now - c->active_ms;
    if (idle < c->lim.idle_timeout_ms) {
        uv_timer_start(&c->timer, on_idle_timer, c->lim.idle_timeout_ms - idle, 0);
        return;
    }
    MF_INFO(MOD, "closing %s: idle for %u ms (idle_timeout_ms)", c->peer,
            (unsigned)c->lim.idle_timeout_ms);
    conn_close(c, MF_ETIMEOUT);
}

/* After the handshake of an accepted connection: the first frame must come
 * within first_frame_timeout_ms of the accept; after it, idleness counts. */
static void start_open_timer(struct mf_conn *c)
{
    if (c->is_client)
        return;
    c->active_ms = uv_now(c->loop);
    if (c->lim.first_frame_timeout_ms) {
        uint64_t spent = c->active_ms - c->accepted_ms;
        uint64_t left = spent < c->lim.first_frame_timeout_ms
                            ? c->lim.first_frame_timeout_ms - spent : 1;
        uv_timer_start(&c->timer, on_first_timeout, left, 0);
    } else if (c->lim.idle_timeout_ms) {
        c->got_frame = 1; /* no first-frame rule: idleness counts from now */
        uv_timer_start(&c->timer, on_idle_timer, c->lim.idle_timeout_ms, 0);
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct mf_conn *c = t->data;
    MF_WARN(MOD, "closing %s: no TLS session after %u ms", c->peer,
            (unsigned)c->lim.handshake_timeout_ms);
    conn_close(c, MF_ETIMEOUT);
}

/* Allocates a connection with initialised handles and an SSL in the right
 * role. On failure nothing is left behind. */
static int conn_new(uv_loop_t *loop, SSL_CTX *ctx, int is_client,
                    const struct mf_conn_limits *lim, const struct mf_conn_cbs *cbs, void *data,
                    struct mf_conn **out)
{
    MF_ASSERT(cbs && cbs->frame);
    struct mf_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->is_client = is_client;
    c->cbs = *cbs;
    c->data = data;
    if (lim)
        c->lim = *lim;
    limits_normalise(&c->lim);
    c->in_max = c->lim.frame_max_bytes;
    if (!is_client && c->lim.frame_preauth_max_bytes &&
        c->lim.frame_preauth_max_bytes < c->in_max)
        c->in_max = c->lim.frame_preauth_max_bytes;
    c->pend_tail = &c->pend_head;
    snprintf(c->peer, sizeof(c->peer), "?");
    c->ssl = SSL_new(ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return -ENOMEM;
    }
    /* An empty memory BIO reports "retry" instead of EOF. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    if (is_client)
        SSL_set_connect_state(c->ssl);
    else
        SSL_set_accept_state(c->ssl);
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc < 0) {
        SSL_free(c->ssl);
        free(c);
        return rc;
    }
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->kick);
    uv_idle_init(loop, &c->flusher);
    uv_timer_init(loop, &c->pause_timer);
    c->tcp.data = c->timer.data = c->kick.data = c->flusher.data = c->pause_timer.data = c;
    c->handles = 5;
    *out = c;
    return 0;
}

static void start_reading(struct mf_conn *c)
{
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        conn_close(c, rc);
        return;
    }
    c->reading = 1;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct mf_conn *c = req->data;
    if (c->state == ST_CLOSING)
        return;
    if (status < 0) {
        MF_INFO(MOD, "connect to %s failed: %s", c->peer, uv_strerror(status));
        conn_close(c, status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
    c->state = ST_HANDSHAKE;
    start_reading(c);
    if (c->state == ST_CLOSING)
        return;
    process(c); /* sends the ClientHello */
}

/* Letters, digits, '-', '.', '_' : a DNS name, not something else. */
static int valid_host_name(const char *h)
{
    if (!*h || strlen(h) > 253)
        return 0;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            return 0;
    return 1;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct mf_conn *c = req->data;
    c->resolving = 0;
    if (c->state == ST_CLOSING) {
        uv_freeaddrinfo(res);
        conn_finish(c);
        return;
    }
    if (status < 0 || !res) {
        MF_INFO(MOD, "cannot resolve %s: %s", c->peer, uv_strerror(status));
        uv_freeaddrinfo(res);
        conn_close(c, MF_EUNAVAIL);
        return;
    }
    /* The first address only: a name with several addresses is a load
     * balancer's job, and the retry logic of the caller tries again. */
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        MF_INFO(MOD, "connect to %s failed: %s", c->peer, uv_strerror(rc));
        conn_close(c, rc);
    }
}

int mf_conn_dial(uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
                 const struct mf_conn_dial_opts *opts, const struct mf_conn_cbs *cbs,
                 void *data, struct mf_conn **out)
{
    MF_ASSERT(loop && ctx && addr && cbs && out);
    char host[MF_NET_HOST_MAX];
    uint16_t port;
    struct sockaddr_storage sa;
    int rc = mf_net_split_hostport(addr, host, sizeof(host), &port);
    if (rc < 0 || port == 0)
        return MF_EINVAL;
    int literal = mf_net_sockaddr(host, port, &sa) == 0;
    if (!literal && !valid_host_name(host))
        return MF_EINVAL;
    struct mf_conn *c;
    rc = conn_new(loop, ctx, 1, opts ? &opts->limits : NULL, cbs, data, &c);
    if (rc < 0)
        return rc;
    const char *name = opts && opts->expect_name ? opts->expect_name : host;
    if (strcmp(name, "localhost") == 0 && strcmp(host, "localhost") == 0)
        name = "127.0.0.1"; /* dialed as 127.0.0.1 (addr.h): check that IP */
    MF_ASSERT(!(opts && opts->skip_name_check) || opts->expect_node_id);
    if (!(opts && opts->skip_name_check) && (rc = mf_tls_set_expected_name(c->ssl, name)) < 0)
        goto fail;
    c->expect_node_id = opts ? opts->expect_node_id : 0;
    snprintf(c->peer, sizeof(c->peer), "%s", addr);
    c->state = ST_CONNECTING;
    c->connect_req.data = c;
    if (literal) {
        rc = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&sa, on_connect);
    } else {
        char port_s[8];
        snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        c->gai_req.data = c;
        rc = uv_getaddrinfo(loop, &c->gai_req, on_resolved, host, port_s, &hints);
        if (rc == 0)
            c->resolving = 1;
    }
    if (rc < 0)
        goto fail;
    uv_timer_start(&c->timer, on_timeout, c->lim.handshake_timeout_ms, 0);
    *out = c;
    return 0;

fail:
    /* The handles exist: close them silently, without a close callback. */
    c->cbs.close = NULL;
    conn_close(c, rc);
    return rc;
}

void mf_conn_read_stop(struct mf_conn *c)
{
    if (!c || c->state == ST_CLOSING)
        return;
    c->paused_app = 1;
    update_reading(c);
}

void mf_conn_read_start(struct mf_conn *c)
{
    if (!c || c->state == ST_CLOSING || !c->paused_app)
        return;
    c->paused_app = 0;
    update_reading(c);
    if (c->state != ST_CLOSING)
        uv_timer_start(&c->kick, on_kick, 0, 0);
}

static void on_pause_end(uv_timer_t *t)
{
    struct mf_conn *c = t->data;
    c->paused_rate = 0;
    update_reading(c);
}

void mf_conn_read_pause_ms(struct mf_conn *c, uint32_t ms)
{
    if (!c || c->state == ST_CLOSING)
        return;
    if (ms == 0) {
        if (c->paused_rate) {
            uv_timer_stop(&c->pause_timer);
            on_pause_end(&c->pause_timer);
        }
        return;
    }
    c->paused_rate = 1;
    update_reading(c);
    uv_timer_start(&c->pause_timer, on_pause_end, ms, 0);
}

void mf_conn_set_data(struct mf_conn *c, void *data) { c->data = data; }
void *mf_conn_data(const struct mf_conn *c) { return c->data; }
const char *mf_conn_peer(const struct mf_conn *c) { return c->peer; }
size_t mf_conn_queued_bytes(const struct mf_conn *c)
{
    return c->queued + c->pend_bytes + c->olen;
}
void mf_conn_set_frame_in_max(struct mf_conn *c, size_t n)
{
    c->in_max = n < c->lim.frame_max_bytes ? n : c->lim.frame_max_bytes;
}
size_t mf_conn_frame_in_max(const struct mf_conn *c) { return c->in_max; }
const char *mf_conn_refusal(const struct mf_conn *c) { return c->refusal[0] ? c->refusal : NULL; }
int mf_conn_is_open(const struct mf_conn *c) { return c->state == ST_OPEN && !c->shutting_down; }
SSL *mf_conn_ssl(const struct mf_conn *c) { return c->ssl; }

int mf_conn_peer_node_id(const struct mf_conn *c, uint64_t *out)
{
    if (!c->opened)
        return MF_EUNAUTH;
    return mf_tls_peer_node_id(c->ssl, out);
}

/* ---- listener ---- */

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return 0;
}

/* The client's IP as text (the peer string without its port). */
static void peer_ip(const struct mf_conn *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s", c->peer);
    char *colon = strrchr(buf, ':');
    if (colon && colon != buf)
        *colon = '\0';
}

/* A refusal log line, at most one a second per listener: a flood must not
 * turn into a flood of log lines. */
static void log_refusal(struct mf_listener *l, const struct mf_conn *c, const char *why)
{
    uint64_t now = uv_now(l->loop);
    if (l->log_ms && now - l->log_ms < 1000) {
        l->log_suppressed++;
        return;
    }
    MF_WARN(MOD, "refusing %s: %s (%llu more refusals in the last second not logged)", c->peer,
            why, (unsigned long long)l->log_suppressed);
    l->log_ms = now;
    l->log_suppressed = 0;
}

static int take_handshake_token(struct mf_listener *l)
{
    double rate = l->opts.handshakes_per_s;
    if (rate <= 0)
        return 1;
    uint64_t now = uv_now(l->loop);
    l->tokens += (double)(now - l->refill_ms) * rate / 1000.0;
    if (l->tokens > rate)
        l->tokens = rate;
    l->refill_ms = now;
    if (l->tokens < 1.0)
        return 0;
    l->tokens -= 1.0;
    return 1;
}

/* The listener's limits on a new connection (already in l->conns): the total,
 * the per-address count, then the handshake rate. @return 0 admitted (maybe
 * with a refusal to explain); -1 close now. */
static int admit(struct mf_listener *l, struct mf_conn *c)
{
    char why[160];
    if (l->nconns > l->opts.conns_max) {
        l->st.refused_max++;
        snprintf(why, sizeof(why), "%zu connections is the limit", l->opts.conns_max);
        log_refusal(l, c, why);
        return -1;
    }
    if (l->opts.conns_per_addr_max) {
        size_t same = 0;
        for (struct mf_conn *o = l->conns; o; o = o->lnext)
            same += same_ip(&o->sa, &c->sa);
        if (same > l->opts.conns_per_addr_max) {
            char ip[64];
            peer_ip(c, ip, sizeof(ip));
            l->st.refused_addr++;
            snprintf(c->refusal, sizeof(c->refusal),
                     "too many connections from %s: %zu at once is the limit per client "
                     "address", ip, l->opts.conns_per_addr_max);
            log_refusal(l, c, c->refusal);
            if (!l->opts.explain_refusals)
                return -1;
        }
    }
    return 0;
}

/* The first bytes of a ClientHello arrived: the TLS work (key exchange,
 * signature) starts only within the listener's handshake rate. Taken here,
 * not at accept, so a connection that sends nothing costs no token. */
static int admit_handshake(struct mf_conn *c)
{
    struct mf_listener *l = c->listener;
    if (!l || c->hs_admitted || BIO_ctrl_pending(c->rbio) == 0)
        return 0;
    if (!take_handshake_token(l)) {
        char why[96];
        l->st.refused_rate++;
        snprintf(why, sizeof(why), "more than %u TLS handshakes a second (handshakes_per_s)",
                 (unsigned)l->opts.handshakes_per_s);
        log_refusal(l, c, why);
        return -1;
    }
    c->hs_admitted = 1;
    return 0;
}

void mf_listener_stats(const struct mf_listener *l, struct mf_listener_stats *out)
{
    *out = l->st;
}

static void on_accept(uv_stream_t *server, int status)
{
    struct mf_listener *l = server->data;
    if (status < 0) {
        MF_WARN(MOD, "accept failed: %s", uv_strerror(status));
        return;
    }
    if (l->closing)
        return;
    struct mf_conn *c;
    int rc = conn_new(l->loop, l->ctx, 0, &l->opts.limits, &l->cbs, l->data, &c);
    if (rc < 0) {
        MF_ERROR(MOD, "cannot accept a connection: %s", mf_strerror(rc));
        return;
    }
    c->require_node_id = l->opts.require_node_id;
    c->listener = l;
    c->lnext = l->conns;
    if (l->conns)
        l->conns->lprev = c;
    l->conns = c;
    l->nconns++;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        MF_WARN(MOD, "accept failed: %s", uv_strerror(rc));
        c->cbs.close = NULL;
        conn_close(c, rc);
        return;
    }
    int salen = sizeof(c->sa);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->sa, &salen) == 0)
        mf_net_format((struct sockaddr *)&c->sa, c->peer, sizeof(c->peer));
    c->accepted_ms = uv_now(l->loop);
    if (admit(l, c) < 0) {
        c->cbs.close = NULL;
        conn_close(c, MF_ERATELIMIT);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
    c->state = ST_HANDSHAKE;
    uv_timer_start(&c->timer, on_timeout, c->lim.handshake_timeout_ms, 0);
    if (l->accept_cb)
        l->accept_cb(l, c);
    if (c->state == ST_CLOSING)
        return;
    start_reading(c);
}

static void listener_maybe_done(struct mf_listener *l)
{
    if (!l->closing || !l->tcp_closed || l->conns)
        return;
    mf_listener_close_cb cb = l->close_cb;
    if (cb)
        cb(l);
    free(l);
}

static void listener_conn_gone(struct mf_listener *l, struct mf_conn *c)
{
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        l->conns = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    MF_ASSERT(l->nconns > 0);
    l->nconns--;
    listener_maybe_done(l);
}

static void free_listener_handle(uv_handle_t *h)
{
    free(h->data);
}

int mf_listener_new(uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
                    const struct mf_listener_opts *opts, const struct mf_conn_cbs *cbs,
                    void *data, mf_listener_accept_cb accept_cb, struct mf_listener **out)
{
    MF_ASSERT(loop && ctx && addr && cbs && cbs->frame && out);
    char host[MF_NET_HOST_MAX];
    uint16_t port;
    struct sockaddr_storage sa;
    int rc = mf_net_split_hostport(addr, host, sizeof(host), &port);
    if (rc < 0 || mf_net_sockaddr(host, port, &sa) < 0)
        return MF_EINVAL;
    struct mf_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->loop = loop;
    l->ctx = ctx;
    if (opts)
        l->opts = *opts;
    limits_normalise(&l->opts.limits);
    if (l->opts.conns_max == 0)
        l->opts.conns_max = MF_LISTENER_CONNS_MAX_DEFAULT;
    if (l->opts.backlog <= 0)
        l->opts.backlog = 128;
    l->tokens = l->opts.handshakes_per_s;
    l->refill_ms = uv_now(loop);
    l->cbs = *cbs;
    l->data = data;
    l->accept_cb = accept_cb;
    rc = uv_tcp_init(loop, &l->tcp);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->tcp.data = l;
    rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, l->opts.backlog, on_accept);
    if (rc < 0) {
        MF_ERROR(MOD, "cannot listen on %s: %s", addr, uv_strerror(rc));
        l->closing = 1;
        uv_close((uv_handle_t *)&l->tcp, free_listener_handle);
        return rc;
    }
    *out = l;
    return 0;
}

int mf_listener_addr(const struct mf_listener *l, char *buf, size_t len, uint16_t *port)
{
    struct sockaddr_storage sa;
    int salen = sizeof(sa);
    int rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&sa, &salen);
    if (rc < 0)
        return rc;
    if (buf)
        mf_net_format((struct sockaddr *)&sa, buf, len);
    if (port)
        *port = ntohs(((struct sockaddr_in *)&sa)->sin_port); /* same offset for v6 */
    return 0;
}

void *mf_listener_data(const struct mf_listener *l) { return l->data; }
size_t mf_listener_conns(const struct mf_listener *l) { return l->nconns; }

static void on_listener_closed(uv_handle_t *h)
{
    struct mf_listener *l = h->data;
    l->tcp_closed = 1;
    listener_maybe_done(l);
}

void mf_listener_close(struct mf_listener *l, mf_listener_close_cb cb)
{
    if (!l || l->closing)
        return;
    l->closing = 1;
    l->close_cb = cb;
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    for (struct mf_conn *c = l->conns; c; c = c->lnext)
        conn_close(c, 0);
}
