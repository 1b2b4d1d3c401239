/* A blocking TLS client for libmayfly and the CLI (no event loop).
 *
 * Plain sockets and OpenSSL on the file descriptor, with a deadline on every
 * call: connect (TCP and handshake), send one frame, receive one frame. The
 * framing is conn.h's (4-byte big-endian length, then the payload), with the
 * same check of the length against frame_max_bytes before allocating.
 *
 * Not thread-safe: one connection per thread, or a lock around it.
 * After any error other than MF_ETOOLARGE from mf_bclient_send (nothing was
 * sent), the connection is unusable: close it.
 * Writing to a socket the server closed raises SIGPIPE: a program using this
 * must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)), as the CLI and mayflyd do.
 */
#ifndef MF_NET_BCLIENT_H
#define MF_NET_BCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct mf_bclient {
    int fd;
    SSL *ssl;
    size_t frame_max_bytes;
    char peer[128];
};

/* Connects to "host:port" (a name is resolved with getaddrinfo; every address
 * is tried until one answers) and completes the handshake with `ctx` (a
 * client context, tls.h). The server certificate must match `expect_name`, or
 * the host when it is NULL. frame_max_bytes 0 means MF_CONN_FRAME_MAX_DEFAULT.
 * @return 0; MF_EINVAL bad address; MF_ETIMEOUT; MF_ECRYPTO handshake or
 *         certificate failure; -errno (e.g. -ECONNREFUSED); err gets a message
 *         a user can act on. */
int mf_bclient_connect(struct mf_bclient *c, SSL_CTX *ctx, const char *addr,
                       const char *expect_name, size_t frame_max_bytes, int timeout_ms,
                       char *err, size_t err_len);

/* Sends one frame. @return 0; MF_ETOOLARGE; MF_ETIMEOUT; MF_ECLOSED; -errno. */
int mf_bclient_send(struct mf_bclient *c, const void *data, size_t len, int timeout_ms);

/* Receives one frame into a buffer allocated with malloc; the caller frees
 * *out (also when *len is 0).
 * @return 0; MF_ETOOLARGE (the announced length is over the limit; nothing
 *         was allocated); MF_ETIMEOUT; MF_ECLOSED the server closed; -ENOMEM. */
int mf_bclient_recv(struct mf_bclient *c, uint8_t **out, size_t *len, int timeout_ms);

/* Sends close_notify (best effort) and frees everything. Safe after a failed
 * mf_bclient_connect and after a previous close. */
void mf_bclient_close(struct mf_bclient *c);

#endif
