/* Peer links for Raft: authenticated, framed, bounded, reconnecting.
 *
 * Each node dials every peer it sends to and accepts the peers' dials; an
 * outbound connection only carries messages from us to that peer, an inbound
 * one only from the peer to us (no ordering between the two is needed by Raft).
 *
 * Two links per peer and direction, so a snapshot never delays a heartbeat:
 *  - CONTROL: small Raft messages (heartbeats, votes, appends, read index).
 *    Its queue is bounded by control_queue_max_bytes; when full the OLDEST
 *    queued messages are dropped (counted in the stats): Raft tolerates loss
 *    and the newest message carries the freshest state. It survives reconnects.
 *  - BULK: snapshot chunks and other large transfers, dialed on first use.
 *    When its queue is full a send is REFUSED (-ENOBUFS): dropping a chunk in
 *    the middle would corrupt a stream, so the sender retries later. A
 *    disconnect drops the bulk queue (the stream must restart anyway).
 *
 * Messages are opaque payloads with a one-byte tag the caller chooses (1..255;
 * 0 is the transport's own Hello). On the wire a frame is conn.h's 4-byte
 * length, then the tag, then the payload. The first frame on a link is a Hello
 * (tag 0, "MFY1", the sender's node id as 8 bytes big-endian, the link kind);
 * the receiver checks that the id equals the node id in the sender's verified
 * certificate (tls.h), and delivers every later message with that id as
 * `from`, so the node driver can compare it with a Raft message's `from`.
 * Any node certificate of the cluster CA is accepted inbound, whether or not
 * that node was added as a peer (a joining node talks first): the driver
 * decides what a message from a non-member means.
 *
 * Reconnects: a link that fails to connect or drops is redialed after an
 * exponential backoff with jitter: base = min(backoff_max, backoff_min * 2^n)
 * for the n-th consecutive failure, delay uniformly in [base/2, base]. A link
 * that completes its handshake resets n to 0.
 *
 * Threads: the loop thread only. Memory: the transport allocates itself, its
 * peers and queued messages (sends copy the payload) and frees them in
 * mf_transport_close. A function that returns an error never calls a callback.
 */
#ifndef MF_NET_TRANSPORT_H
#define MF_NET_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#define MF_TRANSPORT_FRAME_MAX_DEFAULT (16u << 20)        /* 16 MiB */
#define MF_TRANSPORT_CONTROL_QUEUE_MAX_DEFAULT (4u << 20) /* 4 MiB */
#define MF_TRANSPORT_BULK_QUEUE_MAX_DEFAULT (64u << 20)   /* 64 MiB */
#define MF_TRANSPORT_BACKOFF_MIN_MS_DEFAULT 50
#define MF_TRANSPORT_BACKOFF_MAX_MS_DEFAULT 3000
#define MF_TRANSPORT_CONNECT_TIMEOUT_MS_DEFAULT 3000
#define MF_TRANSPORT_INBOUND_MAX_DEFAULT 64
#define MF_TRANSPORT_TAG_HELLO 0

struct mf_transport;

enum mf_transport_link {
    MF_TRANSPORT_CONTROL = 0,
    MF_TRANSPORT_BULK = 1,
};

/* Zero fields take the defaults above. */
struct mf_transport_config {
    uint64_t self_id;              /* required, must match our certificate */
    SSL_CTX *server_ctx;           /* MF_TLS_CLIENT_AUTH_REQUIRE (mutual TLS) */
    SSL_CTX *client_ctx;           /* presents our node certificate */
    const char *listen_addr;       /* "host:port"; port 0 picks one */
    size_t frame_max_bytes;        /* largest tag + payload */
    size_t control_queue_max_bytes;
    size_t bulk_queue_max_bytes;
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    uint32_t connect_timeout_ms;   /* connect + handshake */
    size_t inbound_max;            /* accepted connections at once */
    uint32_t inbound_handshakes_per_s; /* TLS handshakes a second on the listener (0: none) */
    size_t inbound_per_addr_max;   /* inbound connections from one IP (0: no limit) */
    /* The peer's identity is the node id in its certificate, always checked.
     * By default its certificate must also list the address dialed (IP SAN
     * for an IP, DNS SAN for a name); set this to skip that check when
     * addresses are rewritten (NAT) or certificates do not list them. */
    int skip_addr_check;
};

struct mf_transport_link_stats {
    uint64_t dials;          /* connection attempts */
    uint64_t connects;       /* handshakes completed (Hello sent) */
    uint64_t failures;       /* attempts or links that ended: each one schedules a retry */
    uint64_t sent;           /* messages handed to the connection */
    uint64_t dropped;        /* messages dropped (control overflow, bulk on disconnect) */
    uint32_t last_backoff_ms;/* the last retry delay chosen */
    size_t queued_bytes;     /* payload bytes waiting in the transport queue */
    int up;                  /* connected and Hello sent */
};

struct mf_transport_peer_stats {
    struct mf_transport_link_stats link[2]; /* by enum mf_transport_link */
};

/* A message from peer `from` (its certificate's node id); `data` is valid only
 * during the call. */
typedef void (*mf_transport_recv_cb)(struct mf_transport *t, uint64_t from, uint8_t tag,
                                     const uint8_t *data, size_t len);
/* A link to `peer` came up (up = 1) or went down (up = 0). A Raft driver can
 * report the peer unreachable, or a snapshot failed, on a bulk link down. */
typedef void (*mf_transport_link_cb)(struct mf_transport *t, uint64_t peer,
                                     enum mf_transport_link link, int up);
typedef void (*mf_transport_close_cb)(struct mf_transport *t);

/* Starts listening. recv_cb is required; link_cb may be NULL.
 * @param[out] out  freed by mf_transport_close.
 * @return 0; MF_EINVAL (bad address, self_id 0, missing context); -errno from
 *         listen (e.g. -EADDRINUSE); -ENOMEM. */
int mf_transport_new(uv_loop_t *loop, const struct mf_transport_config *cfg, void *data,
                     mf_transport_link_cb link_cb, mf_transport_recv_cb recv_cb,
                     struct mf_transport **out);

void *mf_transport_data(const struct mf_transport *t);

/* The bound listen address ("ip:port") and port. */
int mf_transport_listen_addr(const struct mf_transport *t, char *buf, size_t len,
                             uint16_t *port);

/* Adds a peer at "host:port" (host: IP literal, localhost or DNS name; its
 * certificate must carry node id `id` and, unless skip_addr_check, that IP or
 * name) and dials its control link.
 * @return 0; MF_EINVAL (id 0 or self, bad address); MF_EEXISTS; -ENOMEM. */
int mf_transport_add_peer(struct mf_transport *t, uint64_t id, const char *addr);

/* Forgets a peer: closes its links and drops its queues.
 * @return 0; MF_ENOTFOUND. */
int mf_transport_remove_peer(struct mf_transport *t, uint64_t id);

/* Queues a copy of `data` for `to` on `link` with `tag` (1..255).
 * @return 0 (queued; delivery is not guaranteed); MF_ENOTFOUND unknown peer;
 *         MF_EINVAL tag 0; MF_ETOOLARGE longer than frame_max_bytes - 1 or than
 *         the link's queue; -ENOBUFS bulk queue full; MF_ECLOSED closing;
 *         -ENOMEM. */
int mf_transport_send(struct mf_transport *t, uint64_t to, enum mf_transport_link link,
                      uint8_t tag, const void *data, size_t len);

/* @return 0; MF_ENOTFOUND. */
/* Inbound peer connections whose TLS handshake or identity check failed. */
uint64_t mf_transport_listener_tls_failures(const struct mf_transport *t);
int mf_transport_peer_stats(const struct mf_transport *t, uint64_t id,
                            struct mf_transport_peer_stats *out);

/* Closes the listener, every link and every inbound connection, drops the
 * queues; `cb` (may be NULL) runs once everything is closed, then `t` is
 * freed. */
void mf_transport_close(struct mf_transport *t, mf_transport_close_cb cb);

#endif
