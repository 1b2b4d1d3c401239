/* net_bench: rough numbers for src/net on loopback (not a test).
 * An echo server runs on its own loop thread; the main thread measures
 *  1. blocking-client round trips (mf_bclient: send one frame, read the echo),
 *  2. pipelined echoes through a libuv client with a window of frames in flight.
 * Usage: build/bench/net_bench [round_trips] [pipelined_frames] [window] [frame_bytes] */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <uv.h>

#include "common/err.h"
#include "net/bclient.h"
#include "net/conn.h"
#include "net/devpki.h"
#include "net/tls.h"
#include "tmpdir.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void echo_frame(struct mf_conn *c, const uint8_t *d, size_t n)
{
    if (mf_conn_send(c, d, n) == -ENOBUFS)
        mf_conn_close(c, -ENOBUFS);
}

static void echo_close(struct mf_conn *c, int r)
{
    (void)c, (void)r;
}

static const struct mf_conn_cbs echo_cbs = {.frame = echo_frame, .close = echo_close};

struct server {
    uv_loop_t loop;
    uv_async_t stop;
    struct mf_listener *l;
    char addr[64];
    uv_sem_t ready;
};

static void on_stop(uv_async_t *a)
{
    struct server *s = a->data;
    mf_listener_close(s->l, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct pipe_client {
    struct mf_conn *c;
    size_t total, sent, got, window, frame;
    uint8_t *buf;
    int done;
};

static void pc_pump(struct pipe_client *p)
{
    while (p->sent < p->total && p->sent - p->got < p->window) {
        if (mf_conn_send(p->c, p->buf, p->frame) < 0)
            return;
        p->sent++;
    }
}

static void pc_open(struct mf_conn *c)
{
    pc_pump(mf_conn_data(c));
}

static void pc_frame(struct mf_conn *c, const uint8_t *d, size_t n)
{
    (void)d, (void)n;
    struct pipe_client *p = mf_conn_data(c);
    if (++p->got == p->total) {
        p->done = 1;
        mf_conn_close(c, 0);
        return;
    }
    pc_pump(p);
}

static void pc_drain(struct mf_conn *c)
{
    pc_pump(mf_conn_data(c));
}

static void pc_close(struct mf_conn *c, int r)
{
    (void)c;
    if (r)
        fprintf(stderr, "pipelined client closed: %s\n", mf_strerror(r));
}

static const struct mf_conn_cbs pc_cbs = {
    .open = pc_open, .frame = pc_frame, .drain = pc_drain, .close = pc_close};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    size_t rts = argc > 1 ? strtoul(argv[1], NULL, 10) : 5000;
    size_t frames = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
    size_t window = argc > 3 ? strtoul(argv[3], NULL, 10) : 256;
    size_t fbytes = argc > 4 ? strtoul(argv[4], NULL, 10) : 100;
    char dir[64];
    if (mf_tmpdir_make("net-bench", dir, sizeof(dir)) < 0 || mf_devpki_make_dir(dir, 1) < 0)
        return 1;
    char ca[128], cert[128], key[128], err[512];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/node-1.pem", dir);
    snprintf(key, sizeof(key), "%s/node-1-key.pem", dir);
    SSL_CTX *sctx, *cctx;
    if (mf_tls_server_ctx_new(ca, cert, key, MF_TLS_CLIENT_AUTH_NONE, &sctx, err, sizeof(err)) ||
        mf_tls_client_ctx_new(ca, NULL, NULL, &cctx, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct server s;
    uv_loop_init(&s.loop);
    if (mf_listener_new(&s.loop, sctx, "127.0.0.1:0", NULL, &echo_cbs, NULL, NULL, &s.l))
        return 1;
    mf_listener_addr(s.l, s.addr, sizeof(s.addr), NULL);
    uv_async_init(&s.loop, &s.stop, on_stop);
    s.stop.data = &s;
    pthread_t th;
    pthread_create(&th, NULL, server_main, &s);

    /* 1. blocking round trips */
    struct mf_bclient b;
    if (mf_bclient_connect(&b, cctx, s.addr, NULL, 0, 5000, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint8_t *buf = calloc(1, fbytes);
    uint64_t *lat = calloc(rts, sizeof(*lat));
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < rts; i++) {
        uint64_t a = now_ns();
        uint8_t *r;
        size_t n;
        if (mf_bclient_send(&b, buf, fbytes, 5000) || mf_bclient_recv(&b, &r, &n, 5000))
            return 1;
        free(r);
        lat[i] = now_ns() - a;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(lat, rts, sizeof(*lat), cmp_u64);
    printf("bclient round trips: n=%zu frame=%zuB rt/s=%.0f p50_us=%.1f p99_us=%.1f\n", rts,
           fbytes, (double)rts / secs, (double)lat[rts / 2] / 1e3,
           (double)lat[rts * 99 / 100] / 1e3);
    mf_bclient_close(&b);

    /* 2. pipelined */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct pipe_client p = {.total = frames, .window = window, .frame = fbytes, .buf = buf};
    if (mf_conn_dial(&loop, cctx, s.addr, NULL, &pc_cbs, &p, &p.c))
        return 1;
    t0 = now_ns();
    uv_run(&loop, UV_RUN_DEFAULT);
    secs = (double)(now_ns() - t0) / 1e9;
    printf("pipelined echoes: n=%zu window=%zu frame=%zuB frames/s=%.0f (%s)\n", p.got, window,
           fbytes, (double)p.got / secs, p.done ? "complete" : "INCOMPLETE");
    uv_loop_close(&loop);

    uv_async_send(&s.stop);
    pthread_join(th, NULL);
    uv_loop_close(&s.loop);
    mf_tls_ctx_free(sctx);
    mf_tls_ctx_free(cctx);
    free(buf);
    free(lat);
    return mf_tmpdir_remove(dir) == 0 && p.done ? 0 : 1;
}
