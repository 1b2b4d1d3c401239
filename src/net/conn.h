/* TLS connections on a libuv loop: framed messages over TCP, with limits.
 *
 * A struct mf_conn is one TLS 1.3 connection over a uv_tcp_t. OpenSSL never
 * touches the socket: bytes read from it go into a memory BIO, SSL_read runs
 * until it wants more, and after every SSL call the write BIO is drained into
 * uv_write (TLS 1.3 sends tickets and key updates from inside reads).
 *
 * Framing: each message is a 4-byte big-endian length followed by that many
 * payload bytes. The length is checked against frame_max_bytes before anything
 * is allocated; a longer frame closes the connection (close reason
 * MF_ETOOLARGE) with a log line naming the peer.
 *
 * Backpressure, in both directions, so a slow or hostile peer cannot make the
 * process's memory grow without bound:
 *  - Output: every byte handed to uv_write is counted until its callback runs
 *    (mf_conn_queued_bytes). A send that would take the count past
 *    out_max_bytes fails with -ENOBUFS and the connection stays open: the
 *    caller decides whether to drop, retry after the drain callback, or close.
 *  - Input: while queued output is above out_pause_bytes (the peer does not
 *    read what we answer), or while the application said so with
 *    mf_conn_read_stop, the connection stops reading from the socket
 *    (uv_read_stop) and stops delivering frames; the kernel's buffers then
 *    push back on the peer. At most one read chunk (16 KiB) of decrypted input
 *    is held per paused connection.
 *
 * Threads: everything runs on the loop thread; no function here is
 * thread-safe.
 *
 * Memory: connections are allocated here (their lifetime ends only when libuv
 * has closed the handles, after the owner lost interest) and freed right after
 * the close callback returns. The pointer stays valid until then, so it is
 * safe to call mf_conn_close from inside any callback, and to call
 * mf_conn_send / mf_conn_close on a connection that is closing (they fail with
 * MF_ECLOSED or do nothing).
 *
 * Callbacks: open (optional) runs once after the handshake and identity
 * checks; frame runs per complete frame; drain (optional) when queued output
 * fell to out_pause_bytes / 2 after it was above out_pause_bytes or after a
 * send failed with -ENOBUFS; close runs exactly once per connection that a
 * successful mf_conn_dial or an accept created, whatever ended it, and is the
 * last callback. A function that returns an error never calls a callback.
 */
#ifndef MF_NET_CONN_H
#define MF_NET_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#define MF_CONN_FRAME_MAX_DEFAULT (4u << 20)    /* 4 MiB: client API frames */
#define MF_CONN_HANDSHAKE_TIMEOUT_MS 10000      /* connect + TLS handshake */
#define MF_CONN_READ_CHUNK 16384                /* socket read and SSL_read size */
#define MF_CONN_FRAME_MAX_LIMIT (1u << 30)      /* 1 GiB: no frame_max above this */
#define MF_LISTENER_CONNS_MAX_DEFAULT 1024

struct mf_conn;
struct mf_listener;

/* Zero fields take the defaults. */
struct mf_conn_limits {
    size_t frame_max_bytes;   /* largest payload sent or accepted; default 4 MiB */
    size_t out_max_bytes;     /* cap on queued output; default 2 * frame_max + 64 KiB,
                                 raised to that if smaller so one maximal frame fits */
    size_t out_pause_bytes;   /* stop reading above this; default out_max / 2 */
    uint32_t handshake_timeout_ms; /* default MF_CONN_HANDSHAKE_TIMEOUT_MS */
    /* Accepted connections only (0: off). The input frame cap until the owner
     * raises it (mf_conn_set_frame_in_max): a frame longer than this but within
     * frame_max_bytes goes to the gate callback after its first
     * frame_preauth_max_bytes bytes, and only then is the rest buffered. */
    size_t frame_preauth_max_bytes;
    /* From accept until the first complete frame (handshake included): a
     * client that connects and sends no request is closed (MF_ETIMEOUT). */
    uint32_t first_frame_timeout_ms;
    /* After the first frame: no complete frame received and none sent for
     * this long closes the connection (MF_ETIMEOUT). */
    uint32_t idle_timeout_ms;
};

struct mf_conn_cbs {
    void (*open)(struct mf_conn *c);
    /* `data` is valid only during the call; `len` <= frame_max_bytes. */
    void (*frame)(struct mf_conn *c, const uint8_t *data, size_t len);
    void (*drain)(struct mf_conn *c);
    /* reason: 0 closed by us without error (mf_conn_close(c, 0), mf_conn_shutdown);
     * MF_ECLOSED the peer closed; MF_ETOOLARGE oversized frame; MF_ETIMEOUT
     * connect/handshake timeout; MF_EUNAUTH peer identity refused;
     * MF_ECRYPTO TLS failure (bad certificate, garbage); -errno socket errors;
     * or the code given to mf_conn_close. */
    void (*close)(struct mf_conn *c, int reason);
    /* Optional (accepted connections with frame_preauth_max_bytes): a frame of
     * frame_len bytes, over the current input cap but within frame_max_bytes,
     * whose first head_len bytes (head_len = the cap) arrived. Return 0 to take
     * the whole frame (the gate usually raised the cap first), or an error:
     * the frame is refused, the connection stops reading and shuts down after
     * what the gate sent (an answer naming the error). Without a gate such a
     * frame closes the connection (MF_ETOOLARGE). */
    int (*gate)(struct mf_conn *c, const uint8_t *head, size_t head_len, size_t frame_len);
};

struct mf_conn_dial_opts {
    struct mf_conn_limits limits;
    /* Name or IP literal the server certificate must match; NULL: the host
     * part of the address. */
    const char *expect_name;
    /* Nonzero: do not check the name at all (only with expect_node_id, where
     * the node id is the identity). */
    int skip_name_check;
    /* Nonzero: the server's certificate must carry this node id (peer links). */
    uint64_t expect_node_id;
};

/* Connects to "host:port" and runs the TLS handshake with a client context.
 * host: an IPv4/IPv6 literal, localhost (127.0.0.1), or a DNS name resolved in
 * libuv's thread pool (the first address is used; resolution counts against
 * the handshake timeout; a failure closes with MF_EUNAVAIL). Frames sent before the handshake
 * completes are queued (and count against out_max_bytes).
 * @param[out] out  the connection; valid until its close callback returns.
 * @return 0 (then exactly one close callback follows, e.g. with -ECONNREFUSED
 *         or MF_ETIMEOUT); MF_EINVAL bad address; -ENOMEM; -errno from libuv. */
int mf_conn_dial(uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
                 const struct mf_conn_dial_opts *opts, const struct mf_conn_cbs *cbs,
                 void *data, struct mf_conn **out);

/* Queues one frame whose payload is the concatenation of bufs[0..n-1].
 * @return 0; MF_ETOOLARGE payload over frame_max_bytes; -ENOBUFS queued output
 *         would pass out_max_bytes (nothing queued; wait for drain);
 *         MF_ECLOSED closing or closed. */
int mf_conn_sendv(struct mf_conn *c, const uv_buf_t *bufs, unsigned n);
int mf_conn_send(struct mf_conn *c, const void *data, size_t len);

/* The application is backed up: stop reading and delivering frames until
 * mf_conn_read_start. read_start delivers held frames later from the loop,
 * never before it returns. */
void mf_conn_read_stop(struct mf_conn *c);
void mf_conn_read_start(struct mf_conn *c);
/* Stops reading for `ms` (a rate limit's debt), independently of
 * read_stop/read_start; a later call restarts the wait; 0 ends it now. */
void mf_conn_read_pause_ms(struct mf_conn *c, uint32_t ms);

/* Closes now: queued output is dropped. Idempotent; the first reason wins. */
void mf_conn_close(struct mf_conn *c, int reason);

/* Closes gracefully: stops reading, sends what is queued and a TLS
 * close_notify, then closes (after at most 2 s if the peer does not read). */
void mf_conn_shutdown(struct mf_conn *c);

void mf_conn_set_data(struct mf_conn *c, void *data);
void *mf_conn_data(const struct mf_conn *c);
/* The peer's address as text ("127.0.0.1:51234"), for log lines. */
const char *mf_conn_peer(const struct mf_conn *c);
/* Bytes handed to the socket whose write has not completed, plus frames
 * waiting for the handshake, plus small frames gathered for this loop turn
 * (frames under 16 KiB are coalesced and encrypted once per loop turn, so
 * many answers share a TLS record and a write(2)). */
size_t mf_conn_queued_bytes(const struct mf_conn *c);
/* The input frame cap (frame_preauth_max_bytes until raised), at most
 * frame_max_bytes. Raise it once the peer has proven who it is. */
void mf_conn_set_frame_in_max(struct mf_conn *c, size_t n);
size_t mf_conn_frame_in_max(const struct mf_conn *c);
/* Why the listener admitted this connection only to refuse it (a client
 * address over conns_per_addr_max with explain_refusals set): a message for
 * the client, or NULL. The owner answers the first frame with it and shuts
 * the connection down. */
const char *mf_conn_refusal(const struct mf_conn *c);
/* 1 once the handshake completed and until the connection starts closing. */
int mf_conn_is_open(const struct mf_conn *c);
/* The node id in the peer's verified certificate (tls.h); MF_ENOTFOUND if it
 * has none, MF_EUNAUTH before the handshake or without a certificate. */
int mf_conn_peer_node_id(const struct mf_conn *c, uint64_t *out);
SSL *mf_conn_ssl(const struct mf_conn *c);

/* ---- listener ---- */

struct mf_listener_opts {
    struct mf_conn_limits limits;
    /* Refuse (close, MF_EUNAUTH) a client whose certificate has no node id
     * (peer listener). Whether a certificate is required at all is the
     * server context's choice (tls.h). */
    int require_node_id;
    size_t conns_max;         /* default MF_LISTENER_CONNS_MAX_DEFAULT */
    int backlog;              /* default 128 */
    /* TLS handshakes started per second (token bucket, burst = rate): an
     * accept beyond it is closed at once, before any TLS work (0: no limit).
     * This caps the handshake CPU spent on the loop thread. */
    uint32_t handshakes_per_s;
    /* Connections at once from one IP address (0: no limit). */
    size_t conns_per_addr_max;
    /* Nonzero: a connection over conns_per_addr_max is still handshaken
     * (within handshakes_per_s) so its owner can answer the first request with
     * mf_conn_refusal; otherwise it is closed at accept. */
    int explain_refusals;
    /* Bytes of partly received frames buffered across all connections (0: no
     * limit). A frame that would pass it waits: its connection stops reading
     * until buffered frames complete (one frame is always allowed when none
     * is buffered, so a frame larger than the budget still passes). */
    size_t frame_budget_bytes;
};

/* Called for each accepted connection before its handshake, so the owner can
 * set its data (accepted connections start with the listener's data). */
typedef void (*mf_listener_accept_cb)(struct mf_listener *l, struct mf_conn *c);
typedef void (*mf_listener_close_cb)(struct mf_listener *l);

/* Listens on "host:port" (port 0: a free port, see mf_listener_addr) and
 * accepts TLS connections with the server context `ctx`; every accepted
 * connection uses `cbs`. A connection beyond conns_max is accepted and closed
 * at once with a log line.
 * @param[out] out  freed by mf_listener_close.
 * @return 0; MF_EINVAL bad address; -EADDRINUSE and other -errno; -ENOMEM. */
int mf_listener_new(uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
                    const struct mf_listener_opts *opts, const struct mf_conn_cbs *cbs,
                    void *data, mf_listener_accept_cb accept_cb, struct mf_listener **out);

/* The bound address as "ip:port"; *port (if not NULL) gets the port. */
int mf_listener_addr(const struct mf_listener *l, char *buf, size_t len, uint16_t *port);
void *mf_listener_data(const struct mf_listener *l);
size_t mf_listener_conns(const struct mf_listener *l);
/* Counters since the listener started: accepts refused for the handshake rate,
 * for the per-address limit, and connections that waited for the budget. */
struct mf_listener_stats {
    uint64_t refused_rate, refused_addr, refused_max, budget_waits;
    size_t budget_used;       /* bytes of partial frames buffered now */
    uint64_t tls_failures;    /* accepted connections whose TLS handshake (or identity) failed */
};
void mf_listener_stats(const struct mf_listener *l, struct mf_listener_stats *out);
/* TLS handshakes (or identity checks) that failed in this process, on
 * accepted connections (every listener together) and on dialed ones. */
void mf_conn_tls_failures(uint64_t *accepted, uint64_t *dialed);

/* Stops listening and closes every accepted connection (their close callbacks
 * run with reason 0); then `cb` (may be NULL) runs once and `l` is freed. */
void mf_listener_close(struct mf_listener *l, mf_listener_close_cb cb);

#endif
