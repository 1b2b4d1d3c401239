/* Shared fixtures for the src/net unit tests: a temporary directory with a dev
 * PKI (three nodes, a client, and a second unrelated CA), TLS contexts built
 * from it, and a way to run the libuv loop until a condition holds, with a
 * generous safety deadline that fails the test instead of hanging it.
 * Header-only so each test binary stays one file (tests/unit/test_net_*.c). */
#ifndef MF_TESTS_NET_HARNESS_H
#define MF_TESTS_NET_HARNESS_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "common/err.h"
#include "net/devpki.h"
#include "net/tls.h"
#include "tmpdir.h"

#define H_DEADLINE_MS 20000 /* safety net only: tests wait for events */

static char h_dir[64];

static __attribute__((unused)) const char *h_path(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 256, "%s/%s", h_dir, name);
    return b;
}

/* Creates the directory and the certificates: ca.pem, node-1..3, client, and
 * other/ca.pem with other/node-1 (the same names, from a different CA). */
static __attribute__((unused)) int h_setup_pki(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (mf_tmpdir_make("test-net", h_dir, sizeof(h_dir)) < 0)
        return -1;
    if (mf_devpki_make_dir(h_dir, 3) < 0)
        return -1;
    char other[128];
    snprintf(other, sizeof(other), "%s/other", h_dir);
    if (mkdir(other, 0700) < 0 || mf_devpki_make_dir(other, 1) < 0)
        return -1;
    return 0;
}

static __attribute__((unused)) void h_remove_pki(void)
{
    if (h_dir[0] && mf_tmpdir_remove(h_dir) != 0)
        fprintf(stderr, "cannot remove %s: %s\n", h_dir, strerror(errno));
}

/* Server context for node n of the main CA (or the other CA). */
static __attribute__((unused)) SSL_CTX *h_server_ctx(const char *sub, int node, enum mf_tls_client_auth auth)
{
    char ca[256], cert[256], key[256], err[512];
    snprintf(ca, sizeof(ca), "%s/%sca.pem", h_dir, sub);
    snprintf(cert, sizeof(cert), "%s/%snode-%d.pem", h_dir, sub, node);
    snprintf(key, sizeof(key), "%s/%snode-%d-key.pem", h_dir, sub, node);
    SSL_CTX *ctx = NULL;
    if (mf_tls_server_ctx_new(ca, cert, key, auth, &ctx, err, sizeof(err)) < 0) {
        fprintf(stderr, "server ctx: %s\n", err);
        abort();
    }
    return ctx;
}

/* Client context trusting the main CA; identity: "node-N", "client", or
 * NULL for none; `sub` selects the CA that signed the identity ("" or
 * "other/"). */
static __attribute__((unused)) SSL_CTX *h_client_ctx(const char *sub, const char *ident)
{
    char ca[256], cert[256], key[256], err[512];
    snprintf(ca, sizeof(ca), "%s/ca.pem", h_dir);
    snprintf(cert, sizeof(cert), "%s/%s%s.pem", h_dir, sub, ident ? ident : "");
    snprintf(key, sizeof(key), "%s/%s%s-key.pem", h_dir, sub, ident ? ident : "");
    SSL_CTX *ctx = NULL;
    if (mf_tls_client_ctx_new(ca, ident ? cert : NULL, ident ? key : NULL, &ctx, err,
                              sizeof(err)) < 0) {
        fprintf(stderr, "client ctx: %s\n", err);
        abort();
    }
    return ctx;
}

static __attribute__((unused)) void h_on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag becomes nonzero. Returns 0, or -1 if the safety
 * deadline passed first (the caller's assert then fails the test). */
static __attribute__((unused)) int h_run_until(uv_loop_t *loop, const volatile int *flag)
{
    int expired = 0;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, h_on_deadline, H_DEADLINE_MS, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

/* Runs the loop until every handle is closed (end of a test). */
static __attribute__((unused)) void h_drain_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
}

#endif
