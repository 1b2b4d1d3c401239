/* Tests of src/net/conn.c and bclient.c over real sockets on 127.0.0.1: TLS
 * handshakes and refusals, framing, limits and backpressure. The libuv loop
 * runs in the test thread; blocking clients run in a helper thread that wakes
 * the loop with a uv_async when done. Nothing sleeps: every wait is for an
 * event, with a safety deadline that fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include "net_harness.h"
#include "net/bclient.h"
#include "net/conn.h"

/* ---- a server that counts, and echoes when asked ---- */

struct srv {
    uv_loop_t *loop;
    struct mf_listener *l;
    SSL_CTX *ctx;
    char addr[64];
    int echo;
    int pause_on_open;
    int opens, closes, frames;
    int last_reason;
    size_t bytes;
    uint64_t peer_id;
    int peer_id_rc;
    int enobufs;
    size_t queued_max;
    struct mf_conn *last;
    int frames_expected;
    int pause_each;          /* read_stop after every frame, read_start from a timer */
    int shutdown_after;      /* mf_conn_shutdown after echoing this many frames */
    int pauses;
    uv_timer_t resume;
    int done;        /* frames == frames_expected, or closes reached */
    int closes_expected;
    uint8_t pattern_ok;
};

static void srv_open(struct mf_conn *c)
{
    struct srv *s = mf_conn_data(c);
    s->opens++;
    s->last = c;
    s->peer_id_rc = mf_conn_peer_node_id(c, &s->peer_id);
    if (s->pause_on_open)
        mf_conn_read_stop(c);
}

/* Frames carry bytes (i + len) & 0xff so splits and joins are checked. */
static int pattern_check(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)(i + len))
            return 0;
    return 1;
}

static void pattern_fill(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i + len);
}

static void srv_resume(uv_timer_t *t)
{
    struct srv *s = t->data;
    if (s->last)
        mf_conn_read_start(s->last);
}

static void srv_frame(struct mf_conn *c, const uint8_t *data, size_t len)
{
    struct srv *s = mf_conn_data(c);
    s->frames++;
    s->bytes += len;
    if (!pattern_check(data, len))
        s->pattern_ok = 0;
    if (s->echo) {
        int rc = mf_conn_send(c, data, len);
        if (rc == -ENOBUFS)
            s->enobufs++;
        if (mf_conn_queued_bytes(c) > s->queued_max)
            s->queued_max = mf_conn_queued_bytes(c);
    }
    if (s->frames_expected && s->frames == s->frames_expected)
        s->done = 1;
    if (s->shutdown_after && s->frames == s->shutdown_after)
        mf_conn_shutdown(c);
    if (s->pause_each) {
        s->pauses++;
        mf_conn_read_stop(c);
        uv_timer_start(&s->resume, srv_resume, 0, 0);
    }
}

static void srv_close(struct mf_conn *c, int reason)
{
    struct srv *s = mf_conn_data(c);
    s->closes++;
    s->last_reason = reason;
    if (s->last == c)
        s->last = NULL;
    if (s->closes_expected && s->closes == s->closes_expected)
        s->done = 1;
}

static const struct mf_conn_cbs srv_cbs = {
    .open = srv_open, .frame = srv_frame, .close = srv_close};

static void srv_start(struct srv *s, uv_loop_t *loop, SSL_CTX *ctx,
                      const struct mf_listener_opts *opts)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->ctx = ctx;
    s->pattern_ok = 1;
    uv_timer_init(loop, &s->resume);
    s->resume.data = s;
    assert_int_equal(mf_listener_new(loop, ctx, "127.0.0.1:0", opts, &srv_cbs, s, NULL, &s->l),
                     0);
    uint16_t port = 0;
    assert_int_equal(mf_listener_addr(s->l, s->addr, sizeof(s->addr), &port), 0);
    assert_true(port > 0);
}

static void srv_stop(struct srv *s)
{
    mf_listener_close(s->l, NULL);
    uv_close((uv_handle_t *)&s->resume, NULL);
    h_drain_loop(s->loop);
    mf_tls_ctx_free(s->ctx);
}

/* ---- a libuv client ---- */

struct cli {
    struct mf_conn *c;
    int opens, closes, frames;
    int reason;
    size_t bytes;
    uint64_t peer_id;
    int frames_expected;
    int done;
    int drains;
    uint8_t pattern_ok;
    size_t sizes[32];        /* lengths of the first frames, in arrival order */
};

static void cli_open(struct mf_conn *c)
{
    struct cli *k = mf_conn_data(c);
    k->opens++;
    mf_conn_peer_node_id(c, &k->peer_id);
}

static void cli_frame(struct mf_conn *c, const uint8_t *data, size_t len)
{
    struct cli *k = mf_conn_data(c);
    if (k->frames < 32)
        k->sizes[k->frames] = len;
    k->frames++;
    k->bytes += len;
    if (!pattern_check(data, len))
        k->pattern_ok = 0;
    if (k->frames_expected && k->frames == k->frames_expected)
        k->done = 1;
}

static void cli_drain(struct mf_conn *c)
{
    struct cli *k = mf_conn_data(c);
    k->drains++;
}

static void cli_close(struct mf_conn *c, int reason)
{
    struct cli *k = mf_conn_data(c);
    k->closes++;
    k->reason = reason;
    k->c = NULL;
    k->done = 1;
}

static const struct mf_conn_cbs cli_cbs = {
    .open = cli_open, .frame = cli_frame, .drain = cli_drain, .close = cli_close};

static void cli_dial(struct cli *k, uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
                     const struct mf_conn_dial_opts *opts)
{
    memset(k, 0, sizeof(*k));
    k->pattern_ok = 1;
    assert_int_equal(mf_conn_dial(loop, ctx, addr, opts, &cli_cbs, k, &k->c), 0);
}

static int setup(void **state)
{
    (void)state;
    return h_setup_pki();
}

static int teardown(void **state)
{
    (void)state;
    h_remove_pki();
    return 0;
}

/* Mutual TLS between node 2 (client) and node 1 (server): each side sees the
 * other's node id, frames of many sizes go both ways intact, and close is
 * idempotent with one close callback. */
static void test_net_mtls_frames_both_ways(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct mf_listener_opts lo = {.require_node_id = 1};
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_REQUIRE), &lo);
    s.echo = 1;
    SSL_CTX *cctx = h_client_ctx("", "node-2");
    struct cli k;
    struct mf_conn_dial_opts d = {.expect_node_id = 1};
    cli_dial(&k, &loop, cctx, s.addr, &d);
    /* Sent before the handshake: queued, then flushed in order. */
    static uint8_t buf[1 << 20];
    size_t sizes[] = {0, 1, 40000, 3, 4, 100, 16379, 16380, 1 << 20, 16381, 5};
    size_t nsizes = sizeof(sizes) / sizeof(sizes[0]), total = 0;
    for (size_t i = 0; i < nsizes; i++) {
        pattern_fill(buf, sizes[i]);
        assert_int_equal(mf_conn_send(k.c, buf, sizes[i]), 0);
        total += sizes[i];
    }
    k.frames_expected = (int)nsizes;
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(k.frames, (int)nsizes);
    for (size_t i = 0; i < nsizes; i++)
        assert_int_equal(k.sizes[i], sizes[i]); /* small and large stay in order */
    assert_int_equal(k.bytes, total);
    assert_true(k.pattern_ok);
    assert_int_equal(s.frames, (int)nsizes);
    assert_true(s.pattern_ok);
    assert_int_equal(k.opens, 1);
    assert_int_equal(k.peer_id, 1);
    assert_int_equal(s.peer_id_rc, 0);
    assert_int_equal(s.peer_id, 2);
    assert_int_equal(mf_conn_send(k.c, buf, MF_CONN_FRAME_MAX_DEFAULT + 1), MF_ETOOLARGE);

    k.done = 0;
    s.closes_expected = 1;
    struct mf_conn *c = k.c;
    mf_conn_close(c, 0);
    mf_conn_close(c, MF_EINTERNAL);
    assert_int_equal(mf_conn_send(c, "x", 1), MF_ECLOSED);
    assert_int_equal(h_run_until(&loop, &s.done), 0);
    assert_int_equal(k.closes, 1);
    assert_int_equal(k.reason, 0);
    assert_int_equal(s.last_reason, MF_ECLOSED);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- blocking clients in a helper thread ---- */

struct job {
    uv_async_t async;
    pthread_t thread;
    int done;
    int rc;
    char err[512];
    SSL_CTX *ctx;
    const char *addr;
    const char *expect_name;
    void (*fn)(struct job *j);
    size_t n;               /* job-specific */
    size_t result;
};

static void job_async(uv_async_t *a)
{
    struct job *j = a->data;
    j->done = 1;
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    j->fn(j);
    uv_async_send(&j->async);
    return NULL;
}

static void job_start(struct job *j, uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
                      void (*fn)(struct job *))
{
    j->ctx = ctx;
    j->addr = addr;
    j->fn = fn;
    j->done = 0;
    uv_async_init(loop, &j->async, job_async);
    j->async.data = j;
    assert_int_equal(pthread_create(&j->thread, NULL, job_main, j), 0);
}

static void job_finish(struct job *j, uv_loop_t *loop)
{
    assert_int_equal(h_run_until(loop, &j->done), 0);
    pthread_join(j->thread, NULL);
    uv_close((uv_handle_t *)&j->async, NULL);
}

static int ssl_write_blocking(struct mf_bclient *c, const void *p, size_t len)
{
    while (len > 0) {
        int n = SSL_write(c->ssl, p, (int)len);
        if (n > 0) {
            p = (const uint8_t *)p + n;
            len -= (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
            return -1;
        struct pollfd pf = {.fd = c->fd, .events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
        poll(&pf, 1, 1000);
    }
    return 0;
}

/* One frame of 300 bytes written one byte per TLS record (so it arrives in
 * many TCP reads), then 200 small frames in a single record, then the echoes
 * read back with mf_bclient_recv. */
static void job_split_and_join(struct job *j)
{
    struct mf_bclient c;
    j->rc = mf_bclient_connect(&c, j->ctx, j->addr, NULL, 0, 5000, j->err, sizeof(j->err));
    if (j->rc < 0)
        return;
    uint8_t frame[4 + 300];
    frame[0] = 0, frame[1] = 0, frame[2] = 300 >> 8, frame[3] = 300 & 0xff;
    pattern_fill(frame + 4, 300);
    for (size_t i = 0; i < sizeof(frame) && j->rc == 0; i++)
        if (ssl_write_blocking(&c, frame + i, 1) < 0)
            j->rc = -1;
    static uint8_t many[200 * (4 + 50)];
    size_t off = 0;
    for (int i = 0; i < 200; i++) {
        size_t len = (size_t)(i % 50);
        many[off] = 0, many[off + 1] = 0, many[off + 2] = 0, many[off + 3] = (uint8_t)len;
        pattern_fill(many + off + 4, len);
        off += 4 + len;
    }
    if (j->rc == 0 && ssl_write_blocking(&c, many, off) < 0)
        j->rc = -2;
    size_t got = 0;
    for (int i = 0; i < 201 && j->rc == 0; i++) {
        uint8_t *p = NULL;
        size_t len = 0;
        j->rc = mf_bclient_recv(&c, &p, &len, 5000);
        if (j->rc == 0) {
            size_t want = i == 0 ? 300 : (size_t)((i - 1) % 50);
            if (len != want || !pattern_check(p, len))
                j->rc = -3;
            got++;
        }
        free(p);
    }
    j->result = got;
    mf_bclient_close(&c);
}

/* A frame split over many TCP reads and many frames inside one read are both
 * delivered intact to the libuv server, and the blocking client reads the
 * echoes back. */
static void test_net_frames_split_and_joined(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_REQUIRE), NULL);
    s.echo = 1;
    SSL_CTX *cctx = h_client_ctx("", "client");
    struct job j = {0};
    job_start(&j, &loop, cctx, s.addr, job_split_and_join);
    job_finish(&j, &loop);
    assert_string_equal(j.err, "");
    assert_int_equal(j.rc, 0);
    assert_int_equal(j.result, 201);
    assert_int_equal(s.frames, 201);
    assert_true(s.pattern_ok);
    assert_int_equal(s.peer_id_rc, MF_ENOTFOUND); /* a client certificate: no node id */
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* An application that stops reading after every frame (even in the middle of
 * a TLS record holding 200 frames) and resumes from the loop gets every frame
 * once, in order, none while stopped. */
static void test_net_read_stop_start_keeps_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), NULL);
    s.echo = 1;
    s.pause_each = 1;
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct job j = {0};
    job_start(&j, &loop, cctx, s.addr, job_split_and_join);
    job_finish(&j, &loop);
    assert_int_equal(j.rc, 0); /* the echoes came back in order */
    assert_int_equal(j.result, 201);
    assert_int_equal(s.frames, 201);
    assert_int_equal(s.pauses, 201);
    assert_true(s.pattern_ok);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A graceful shutdown sends what was queued (a 1 MiB answer) before the
 * connection closes; the client reads it, then sees the end. */
static void test_net_shutdown_flushes_then_closes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), NULL);
    s.echo = 1;
    s.shutdown_after = 1;
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct cli k;
    cli_dial(&k, &loop, cctx, s.addr, NULL);
    static uint8_t buf[1 << 20];
    pattern_fill(buf, sizeof(buf));
    assert_int_equal(mf_conn_send(k.c, buf, sizeof(buf)), 0);
    assert_int_equal(h_run_until(&loop, &k.done), 0); /* set by the close */
    assert_int_equal(k.frames, 1);
    assert_int_equal(k.bytes, sizeof(buf));
    assert_true(k.pattern_ok);
    assert_int_equal(k.reason, MF_ECLOSED);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(s.last_reason, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Round trips, refusals and timeouts of the blocking client against a libuv
 * server. */
static void job_bclient_basics(struct job *j)
{
    struct mf_bclient c;
    j->rc = mf_bclient_connect(&c, j->ctx, j->addr, j->expect_name, 0, 5000, j->err,
                               sizeof(j->err));
    if (j->rc < 0)
        return;
    for (size_t i = 0; i < j->n && j->rc == 0; i++) {
        static uint8_t buf[100000];
        size_t len = (i * 7919) % sizeof(buf);
        pattern_fill(buf, len);
        j->rc = mf_bclient_send(&c, buf, len, 5000);
        uint8_t *p = NULL;
        size_t got = 0;
        if (j->rc == 0)
            j->rc = mf_bclient_recv(&c, &p, &got, 5000);
        if (j->rc == 0 && (got != len || !pattern_check(p, got)))
            j->rc = -100;
        free(p);
    }
    if (j->rc == 0) {
        /* The server echoes nothing more: a receive times out. */
        uint8_t *p = NULL;
        size_t got;
        j->result = (size_t)-mf_bclient_recv(&c, &p, &got, 50);
    }
    mf_bclient_close(&c);
}

/* The blocking client talks to a libuv server (frames up to 100 KB each way),
 * times out waiting for an answer that never comes, and is refused with a
 * useful message when the name does not match or the port is closed. */
static void test_net_bclient_talks_to_libuv_server(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), NULL);
    s.echo = 1;
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct job j = {.n = 20};
    job_start(&j, &loop, cctx, s.addr, job_bclient_basics);
    job_finish(&j, &loop);
    assert_string_equal(j.err, "");
    assert_int_equal(j.rc, 0);
    assert_int_equal(j.result, (size_t)-MF_ETIMEOUT);
    assert_int_equal(s.frames, 20);

    /* A name the certificate does not carry. */
    struct job bad = {.n = 1, .expect_name = "db.example.com"};
    job_start(&bad, &loop, cctx, s.addr, job_bclient_basics);
    job_finish(&bad, &loop);
    assert_int_equal(bad.rc, MF_ECRYPTO);
    assert_non_null(strstr(bad.err, "certificate"));

    /* A closed port: bound by us but not listening, so nobody else has it. */
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ha = {.sin_family = AF_INET};
    ha.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t hlen = sizeof(ha);
    assert_int_equal(bind(hold, (struct sockaddr *)&ha, sizeof(ha)), 0);
    assert_int_equal(getsockname(hold, (struct sockaddr *)&ha, &hlen), 0);
    char closed[64];
    snprintf(closed, sizeof(closed), "127.0.0.1:%u", (unsigned)ntohs(ha.sin_port));
    struct mf_bclient c;
    char err[256];
    int rc = mf_bclient_connect(&c, cctx, closed, NULL, 0, 2000, err, sizeof(err));
    assert_int_equal(rc, -ECONNREFUSED);
    assert_non_null(strstr(err, closed));
    close(hold);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A client without a certificate is refused by a mutual-TLS server: the
 * server never opens the connection nor delivers its frame. */
static void test_net_client_without_cert_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_REQUIRE), NULL);
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct cli k;
    cli_dial(&k, &loop, cctx, s.addr, NULL);
    assert_int_equal(mf_conn_send(k.c, "hello", 5), 0);
    s.closes_expected = 1;
    assert_int_equal(h_run_until(&loop, &s.done), 0);
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(s.opens, 0);
    assert_int_equal(s.frames, 0);
    assert_int_equal(s.last_reason, MF_ECRYPTO);
    assert_int_equal(k.closes, 1);
    assert_int_not_equal(k.reason, 0);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A certificate from another CA is refused in both roles: a client
 * presenting one to a mutual-TLS server, and a server presenting one to a
 * client. */
static void test_net_other_ca_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_REQUIRE), NULL);
    SSL_CTX *cctx = h_client_ctx("other/", "node-1");
    struct cli k;
    cli_dial(&k, &loop, cctx, s.addr, NULL);
    assert_int_equal(mf_conn_send(k.c, "hello", 5), 0);
    s.closes_expected = 1;
    assert_int_equal(h_run_until(&loop, &s.done), 0);
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(s.opens, 0);
    assert_int_equal(s.frames, 0);
    assert_int_equal(s.last_reason, MF_ECRYPTO);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);

    struct srv o;
    srv_start(&o, &loop, h_server_ctx("other/", 1, MF_TLS_CLIENT_AUTH_NONE), NULL);
    cctx = h_client_ctx("", NULL);
    cli_dial(&k, &loop, cctx, o.addr, NULL);
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(k.opens, 0);
    assert_int_equal(k.reason, MF_ECRYPTO);
    mf_tls_ctx_free(cctx);
    srv_stop(&o);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A peer certificate with the wrong node id is refused by a dialer that
 * expects another node. */
static void test_net_dial_wrong_node_id_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_REQUIRE), NULL);
    SSL_CTX *cctx = h_client_ctx("", "node-2");
    struct cli k;
    struct mf_conn_dial_opts d = {.expect_node_id = 3};
    cli_dial(&k, &loop, cctx, s.addr, &d);
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(k.opens, 0);
    assert_int_equal(k.reason, MF_EUNAUTH);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void job_oversized(struct job *j)
{
    struct mf_bclient c;
    j->rc = mf_bclient_connect(&c, j->ctx, j->addr, NULL, 0, 5000, j->err, sizeof(j->err));
    if (j->rc < 0)
        return;
    /* First a frame of exactly the limit (1024), then a header announcing
     * 4 GiB - 1 with no payload behind it. */
    static uint8_t ok[4 + 1024];
    ok[2] = 1024 >> 8;
    pattern_fill(ok + 4, 1024);
    uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    if (ssl_write_blocking(&c, ok, sizeof(ok)) < 0 || ssl_write_blocking(&c, huge, 4) < 0)
        j->rc = -1;
    /* The server closes: the next receive sees the end. */
    uint8_t *p = NULL;
    size_t len;
    j->result = (size_t)-mf_bclient_recv(&c, &p, &len, 5000);
    free(p);
    mf_bclient_close(&c);
}

/* A frame whose announced length passes the limit closes the connection
 * (MF_ETOOLARGE) as soon as its header arrives, before any payload: nothing
 * of that size is allocated; a frame of exactly the limit passes. */
static void test_net_oversized_frame_closes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct mf_listener_opts lo = {.limits = {.frame_max_bytes = 1024}};
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), &lo);
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct job j = {0};
    s.closes_expected = 1;
    job_start(&j, &loop, cctx, s.addr, job_oversized);
    assert_int_equal(h_run_until(&loop, &s.done), 0);
    job_finish(&j, &loop);
    assert_int_equal(j.rc, 0);
    assert_int_equal(s.frames, 1);
    assert_int_equal(s.bytes, 1024);
    assert_int_equal(s.last_reason, MF_ETOOLARGE);
    assert_true(j.result == (size_t)-MF_ECLOSED || j.result == (size_t)ECONNRESET);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Garbage instead of a TLS ClientHello closes that connection, and the server
 * goes on serving a proper client. */
static void test_net_garbage_instead_of_client_hello(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), NULL);
    s.echo = 1;
    uint16_t port;
    mf_listener_addr(s.l, NULL, 0, &port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\xff\xff garbage";
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    s.closes_expected = 1;
    assert_int_equal(h_run_until(&loop, &s.done), 0);
    assert_int_equal(s.last_reason, MF_ECRYPTO);
    assert_int_equal(s.opens, 0);
    close(fd);

    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct cli k;
    cli_dial(&k, &loop, cctx, s.addr, NULL);
    uint8_t msg[10];
    pattern_fill(msg, sizeof(msg));
    assert_int_equal(mf_conn_send(k.c, msg, sizeof(msg)), 0);
    k.frames_expected = 1;
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(k.frames, 1);
    assert_true(k.pattern_ok);
    mf_conn_close(k.c, 0);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A peer that never reads: the sender's queued output stops at its cap and
 * further sends fail with -ENOBUFS, however much the sender tries to push;
 * the receiver, paused by its application, holds no growing buffer either. */
static void test_net_backpressure_caps_sender(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), NULL);
    s.pause_on_open = 1;
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct cli k;
    const size_t frame = 64 << 10, out_max = 1 << 20;
    struct mf_conn_dial_opts d = {
        .limits = {.frame_max_bytes = frame, .out_max_bytes = out_max}};
    cli_dial(&k, &loop, cctx, s.addr, &d);
    static uint8_t buf[64 << 10];
    pattern_fill(buf, sizeof(buf));
    size_t accepted = 0, attempted = 0, queued_max = 0;
    int refusals = 0;
    /* Push 256 MiB worth of attempts; between attempts let the loop run, so
     * the kernel takes whatever it will take. */
    for (int round = 0; round < 4096 && attempted < (256u << 20); round++) {
        int rc;
        while ((rc = mf_conn_send(k.c, buf, frame)) == 0) {
            accepted += frame;
            attempted += frame;
        }
        assert_int_equal(rc, -ENOBUFS);
        attempted += frame;
        refusals++;
        size_t q = mf_conn_queued_bytes(k.c);
        if (q > queued_max)
            queued_max = q;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_true(refusals > 0);
    assert_true(queued_max <= out_max);
    /* What left the sender fits in the cap plus the kernel's socket buffers
     * (loopback autotuning stays well under 32 MiB); nothing grew with the
     * 256 MiB we tried to push. */
    assert_true(accepted - mf_conn_queued_bytes(k.c) < (32u << 20));
    assert_true(attempted >= (256u << 20) || refusals == 4096);
    assert_int_equal(s.frames, 0);
    assert_int_equal(k.closes, 0);
    mf_conn_close(k.c, 0);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void job_flood(struct job *j)
{
    struct mf_bclient c;
    j->rc = mf_bclient_connect(&c, j->ctx, j->addr, NULL, 0, 5000, j->err, sizeof(j->err));
    if (j->rc < 0)
        return;
    static uint8_t buf[8192];
    pattern_fill(buf, sizeof(buf));
    size_t sent = 0;
    /* Pipeline requests and never read an answer, until the server stops
     * taking them (a send times out) or 512 MiB went out. */
    while (sent < (512u << 20)) {
        int rc = mf_bclient_send(&c, buf, sizeof(buf), 300);
        if (rc < 0) {
            j->rc = rc;
            break;
        }
        sent += sizeof(buf);
    }
    j->result = sent;
    mf_bclient_close(&c);
}

/* A client that pipelines requests but never reads the answers: the server's
 * queued answers stay under its cap because it stops reading from that
 * client, and the client's sends stall (time out) instead. */
static void test_net_slow_reader_pauses_server(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    const size_t out_max = 1 << 20;
    struct mf_listener_opts lo = {
        .limits = {.frame_max_bytes = 64 << 10, .out_max_bytes = out_max}};
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), &lo);
    s.echo = 1;
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct job j = {0};
    job_start(&j, &loop, cctx, s.addr, job_flood);
    job_finish(&j, &loop);
    assert_int_equal(j.rc, MF_ETIMEOUT);
    assert_true(j.result < (512u << 20));
    assert_true(s.queued_max <= out_max);
    assert_int_equal(s.enobufs, 0);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A dial to a port nobody listens on ends with one close callback and no
 * open; a listener over its connection limit refuses the extra client. */
static void test_net_dial_refused_and_conn_limit(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct mf_listener_opts lo = {.conns_max = 1};
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), &lo);
    s.echo = 1;
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct cli a, b;
    cli_dial(&a, &loop, cctx, s.addr, NULL);
    uint8_t m[3];
    pattern_fill(m, 3);
    mf_conn_send(a.c, m, 3);
    a.frames_expected = 1;
    assert_int_equal(h_run_until(&loop, &a.done), 0);
    cli_dial(&b, &loop, cctx, s.addr, NULL);
    assert_int_equal(h_run_until(&loop, &b.done), 0);
    assert_int_equal(b.opens, 0);
    assert_int_equal(b.closes, 1);
    assert_int_equal(mf_listener_conns(s.l), 1);
    mf_conn_close(a.c, 0);
    srv_stop(&s);

    /* The listener is gone: its port refuses. */
    assert_int_equal(uv_loop_close(&loop), 0);
    uv_loop_init(&loop);
    struct cli r;
    cli_dial(&r, &loop, cctx, s.addr, NULL);
    assert_int_equal(h_run_until(&loop, &r.done), 0);
    assert_int_equal(r.opens, 0);
    assert_int_equal(r.reason, -ECONNREFUSED);
    assert_int_equal(mf_conn_dial(&loop, cctx, "127.0.0.1:0", NULL, &cli_cbs, &r, &r.c),
                     MF_EINVAL);
    h_drain_loop(&loop);
    mf_tls_ctx_free(cctx);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A client that connects and says nothing is closed by the server after its
 * handshake timeout, and a dial to a TCP server that never answers TLS ends
 * with MF_ETIMEOUT: no connection can hang forever half-open. */
static void test_net_handshake_timeouts(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct mf_listener_opts lo = {.limits = {.handshake_timeout_ms = 50}};
    srv_start(&s, &loop, h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE), &lo);
    uint16_t port;
    mf_listener_addr(s.l, NULL, 0, &port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    s.closes_expected = 1;
    assert_int_equal(h_run_until(&loop, &s.done), 0);
    assert_int_equal(s.last_reason, MF_ETIMEOUT);
    close(fd);
    srv_stop(&s);

    /* A listening socket nobody accepts from: the kernel completes the TCP
     * handshake, nobody ever sends a ServerHello. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in la = {.sin_family = AF_INET};
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t llen = sizeof(la);
    assert_int_equal(bind(lfd, (struct sockaddr *)&la, sizeof(la)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&la, &llen), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(la.sin_port));
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct cli k;
    struct mf_conn_dial_opts d = {.limits = {.handshake_timeout_ms = 50}};
    cli_dial(&k, &loop, cctx, addr, &d);
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(k.opens, 0);
    assert_int_equal(k.reason, MF_ETIMEOUT);
    close(lfd);
    h_drain_loop(&loop);
    mf_tls_ctx_free(cctx);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The dialer resolves a host name off the loop (this machine's name, when it
 * resolves to IPv4 here), checks the certificate against the expected name,
 * reports a name that does not exist with one close callback, and can be
 * closed while resolving. */
static void test_net_dial_resolves_names(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    memset(&s, 0, sizeof(s));
    s.loop = &loop;
    s.ctx = h_server_ctx("", 1, MF_TLS_CLIENT_AUTH_NONE);
    s.pattern_ok = 1;
    s.echo = 1;
    uv_timer_init(&loop, &s.resume);
    s.resume.data = &s;
    assert_int_equal(mf_listener_new(&loop, s.ctx, "0.0.0.0:0", NULL, &srv_cbs, &s, NULL, &s.l),
                     0);
    uint16_t port;
    mf_listener_addr(s.l, NULL, 0, &port);
    SSL_CTX *cctx = h_client_ctx("", NULL);
    struct cli k;

    char host[256];
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (gethostname(host, sizeof(host)) == 0 && getaddrinfo(host, NULL, &hints, &res) == 0) {
        freeaddrinfo(res);
        char addr[300];
        snprintf(addr, sizeof(addr), "%s:%u", host, (unsigned)port);
        struct mf_conn_dial_opts d = {.expect_name = "localhost"};
        cli_dial(&k, &loop, cctx, addr, &d);
        uint8_t m[7];
        pattern_fill(m, sizeof(m));
        assert_int_equal(mf_conn_send(k.c, m, sizeof(m)), 0);
        k.frames_expected = 1;
        assert_int_equal(h_run_until(&loop, &k.done), 0);
        assert_int_equal(k.frames, 1);
        k.done = 0;
        mf_conn_close(k.c, 0);
        assert_int_equal(h_run_until(&loop, &k.done), 0); /* k is reused below */
    }

    struct mf_conn_dial_opts d2 = {.limits = {.handshake_timeout_ms = 5000}};
    char bad[64];
    snprintf(bad, sizeof(bad), "no-such-host.invalid:%u", (unsigned)port);
    cli_dial(&k, &loop, cctx, bad, &d2);
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(k.opens, 0);
    assert_int_equal(k.closes, 1);
    assert_true(k.reason == MF_EUNAVAIL || k.reason == MF_ETIMEOUT);

    cli_dial(&k, &loop, cctx, bad, &d2);
    mf_conn_close(k.c, 0);
    assert_int_equal(h_run_until(&loop, &k.done), 0);
    assert_int_equal(k.closes, 1);
    assert_int_equal(k.reason, 0);
    assert_int_equal(mf_conn_dial(&loop, cctx, "bad host!:1", NULL, &cli_cbs, &k, &k.c),
                     MF_EINVAL);
    mf_tls_ctx_free(cctx);
    srv_stop(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_mtls_frames_both_ways),
        cmocka_unit_test(test_net_frames_split_and_joined),
        cmocka_unit_test(test_net_read_stop_start_keeps_order),
        cmocka_unit_test(test_net_shutdown_flushes_then_closes),
        cmocka_unit_test(test_net_bclient_talks_to_libuv_server),
        cmocka_unit_test(test_net_client_without_cert_refused),
        cmocka_unit_test(test_net_other_ca_refused),
        cmocka_unit_test(test_net_dial_wrong_node_id_refused),
        cmocka_unit_test(test_net_oversized_frame_closes),
        cmocka_unit_test(test_net_garbage_instead_of_client_hello),
        cmocka_unit_test(test_net_backpressure_caps_sender),
        cmocka_unit_test(test_net_slow_reader_pauses_server),
        cmocka_unit_test(test_net_dial_refused_and_conn_limit),
        cmocka_unit_test(test_net_handshake_timeouts),
        cmocka_unit_test(test_net_dial_resolves_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
