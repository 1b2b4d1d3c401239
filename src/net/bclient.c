/* Blocking TLS client: a non-blocking socket driven by poll() with
 * deadlines, so a dead server never hangs the CLI (see bclient.h). */
#include "net/bclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/assert.h"
#include "common/err.h"
#include "net/addr.h"
#include "net/conn.h"
#include "net/tls.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline. 0, MF_ETIMEOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return MF_ETIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            int e = -errno;
            close(fd);
            return e;
        }
        int rc = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            rc = -errno;
        if (rc == 0 && soerr)
            rc = -soerr;
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    return fd;
}

/* Runs one SSL operation to completion (or error) within the deadline. */
#define SSL_LOOP(c, call, deadline, out_rc)                                       \
    do {                                                                          \
        for (;;) {                                                                \
            ERR_clear_error();                                                    \
            int r_ = (call);                                                      \
            if (r_ > 0) {                                                         \
                (out_rc) = r_;                                                    \
                break;                                                            \
            }                                                                     \
            int e_ = SSL_get_error((c)->ssl, r_);                                 \
            int w_;                                                               \
            if (e_ == SSL_ERROR_WANT_READ)                                        \
                w_ = wait_fd((c)->fd, POLLIN, deadline);                          \
            else if (e_ == SSL_ERROR_WANT_WRITE)                                  \
                w_ = wait_fd((c)->fd, POLLOUT, deadline);                         \
            else if (e_ == SSL_ERROR_ZERO_RETURN)                                 \
                w_ = MF_ECLOSED;                                                  \
            else if (e_ == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)            \
                w_ = errno ? -errno : MF_ECLOSED;                                 \
            else if (e_ == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) ==  \
                                                SSL_R_UNEXPECTED_EOF_WHILE_READING) \
                w_ = MF_ECLOSED; /* the server closed without close_notify */     \
            else                                                                  \
                w_ = MF_ECRYPTO;                                                  \
            if (w_ < 0) {                                                         \
                (out_rc) = w_;                                                    \
                break;                                                            \
            }                                                                     \
        }                                                                         \
    } while (0)

int mf_bclient_connect(struct mf_bclient *c, SSL_CTX *ctx, const char *addr,
                       const char *expect_name, size_t frame_max_bytes, int timeout_ms,
                       char *err, size_t err_len)
{
    MF_ASSERT(c && ctx && addr);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->frame_max_bytes = frame_max_bytes ? frame_max_bytes : MF_CONN_FRAME_MAX_DEFAULT;
    snprintf(c->peer, sizeof(c->peer), "%s", addr);
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    char host[MF_NET_HOST_MAX], port_s[8];
    uint16_t port;
    if (mf_net_split_hostport(addr, host, sizeof(host), &port) < 0 || port == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "bad address %s (want host:port)", addr);
    snprintf(port_s, sizeof(port_s), "%u", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port_s, &hints, &res);
    if (g != 0)
        return mf_err_set(err, err_len, MF_EINVAL, "cannot resolve %s: %s", host,
                          gai_strerror(g));
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai, deadline);
        if (rc >= 0 || rc == MF_ETIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc < 0)
        return mf_err_set(err, err_len, rc, "cannot connect to %s: %s", addr, mf_strerror(rc));
    c->fd = rc;
    c->ssl = SSL_new(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        mf_bclient_close(c);
        return mf_err_set(err, err_len, -ENOMEM, "cannot create a TLS session");
    }
    rc = mf_tls_set_expected_name(c->ssl, expect_name ? expect_name : host);
    if (rc < 0) {
        mf_bclient_close(c);
        return mf_err_set(err, err_len, rc, "bad server name");
    }
    SSL_set_connect_state(c->ssl);
    SSL_LOOP(c, SSL_do_handshake(c->ssl), deadline, rc);
    if (rc < 0) {
        char ossl[512];
        long vr = SSL_get_verify_result(c->ssl);
        mf_tls_errors(ossl, sizeof(ossl));
        mf_err_set(err, err_len, rc, "TLS handshake with %s failed: %s%s%s", addr,
                   rc == MF_ECRYPTO ? ossl : mf_strerror(rc),
                   vr != X509_V_OK ? "; certificate: " : "",
                   vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
        /* The socket is broken: no close_notify. */
        SSL_free(c->ssl);
        c->ssl = NULL;
        mf_bclient_close(c);
        return rc;
    }
    return 0;
}

static int write_all(struct mf_bclient *c, const void *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int rc;
        SSL_LOOP(c, SSL_write(c->ssl, p, chunk), deadline, rc);
        if (rc < 0)
            return rc;
        p = (const uint8_t *)p + rc;
        len -= (size_t)rc;
    }
    return 0;
}

static int read_all(struct mf_bclient *c, void *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int rc;
        SSL_LOOP(c, SSL_read(c->ssl, p, chunk), deadline, rc);
        if (rc < 0)
            return rc;
        p = (uint8_t *)p + rc;
        len -= (size_t)rc;
    }
    return 0;
}

int mf_bclient_send(struct mf_bclient *c, const void *data, size_t len, int timeout_ms)
{
    if (!c->ssl)
        return MF_ECLOSED;
    if (len > c->frame_max_bytes || len > UINT32_MAX)
        return MF_ETOOLARGE;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    if (len + 4 <= 16384) {
        uint8_t one[16384];
        one[0] = (uint8_t)(len >> 24);
        one[1] = (uint8_t)(len >> 16);
        one[2] = (uint8_t)(len >> 8);
        one[3] = (uint8_t)len;
        if (len)
            memcpy(one + 4, data, len);
        int rc = write_all(c, one, len + 4, deadline);
        OPENSSL_cleanse(one, len + 4); /* requests may carry secrets */
        return rc;
    }
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    int rc = write_all(c, hdr, 4, deadline);
    return rc < 0 ? rc : write_all(c, data, len, deadline);
}

int mf_bclient_recv(struct mf_bclient *c, uint8_t **out, size_t *len, int timeout_ms)
{
    if (!c->ssl)
        return MF_ECLOSED;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    uint8_t hdr[4];
    int rc = read_all(c, hdr, 4, deadline);
    if (rc < 0)
        return rc;
    size_t n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
    if (n > c->frame_max_bytes)
        return MF_ETOOLARGE;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    rc = read_all(c, buf, n, deadline);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

void mf_bclient_close(struct mf_bclient *c)
{
    if (!c)
        return;
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* non-blocking socket: one attempt, no wait */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    ERR_clear_error();
}
