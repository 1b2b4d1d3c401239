/* Raft peer links: per peer a control and a bulk outbound connection with
 * their own bounded queues, reconnect with capped exponential backoff and
 * jitter, and an inbound listener that authenticates peers by certificate and
 * Hello. Policies are described in transport.h. */
#include "net/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "net/conn.h"

#define MOD "transport"
#define HELLO_MAGIC "MFY1"
#define HELLO_LEN (1 + 4 + 8 + 1)
/* Queued output on a connection above which the link stops handing it
 * messages (and waits for the drain callback): small for control so the
 * transport queue, where old messages can be dropped, holds the backlog. */
#define CONTROL_CONN_PAUSE_BYTES (256u << 10)
#define BULK_CONN_PAUSE_BYTES (4u << 20)

struct msg {
    struct msg *next;
    size_t len;
    uint8_t tag;
    uint8_t data[];
};

struct peer;

struct link {
    struct peer *peer;
    enum mf_transport_link kind;
    struct mf_conn *conn;
    int up;
    int retry_pending;
    uv_timer_t retry;
    unsigned attempt;          /* consecutive failures */
    struct msg *head, **tail;
    size_t bytes;              /* payload bytes queued */
    size_t bytes_max;
    struct mf_transport_link_stats st;
};

struct peer {
    struct mf_transport *t;
    struct peer *next;
    uint64_t id;
    char addr[128];
    int removed;
    int refs;                  /* open timers + live connections */
    struct link link[2];
};

/* An accepted connection until its Hello, then a known peer's link. */
struct inbound {
    struct mf_transport *t;
    struct mf_conn *conn;
    struct inbound *next, *prev;   /* t->inbound, after the Hello */
    uint64_t id;
    int kind;
    int hello;
};

struct mf_transport {
    uv_loop_t *loop;
    struct mf_transport_config cfg;
    void *data;
    mf_transport_link_cb link_cb;
    mf_transport_recv_cb recv_cb;
    mf_transport_close_cb close_cb;
    struct mf_listener *listener;
    struct peer *peers;
    struct inbound *inbound;   /* inbound links that said Hello */
    int live_peers;            /* peers not yet freed */
    int closing;
    int listener_closed;
};

static void link_dial(struct link *l);
static void transport_maybe_done(struct mf_transport *t);

static struct peer *find_peer(const struct mf_transport *t, uint64_t id)
{
    for (struct peer *p = t->peers; p; p = p->next)
        if (p->id == id && !p->removed)
            return p;
    return NULL;
}

static const char *link_name(enum mf_transport_link k)
{
    return k == MF_TRANSPORT_CONTROL ? "control" : "bulk";
}

static void queue_pop(struct link *l)
{
    struct msg *m = l->head;
    l->head = m->next;
    if (!l->head)
        l->tail = &l->head;
    l->bytes -= m->len;
    free(m);
}

static void queue_clear(struct link *l, int count_as_dropped)
{
    while (l->head) {
        if (count_as_dropped)
            l->st.dropped++;
        queue_pop(l);
    }
}

static void peer_unref(struct peer *p)
{
    MF_ASSERT(p->refs > 0);
    if (--p->refs > 0)
        return;
    MF_ASSERT(p->removed);
    struct mf_transport *t = p->t;
    struct peer **pp = &t->peers;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    for (int k = 0; k < 2; k++)
        queue_clear(&p->link[k], 0);
    free(p);
    t->live_peers--;
    transport_maybe_done(t);
}

/* Hands queued messages to the connection until it backs up. */
static void link_pump(struct link *l)
{
    while (l->up && l->head) {
        if (mf_conn_queued_bytes(l->conn) > (l->kind == MF_TRANSPORT_CONTROL
                                                 ? CONTROL_CONN_PAUSE_BYTES
                                                 : BULK_CONN_PAUSE_BYTES))
            return; /* the drain callback resumes */
        struct msg *m = l->head;
        uv_buf_t b[2] = {uv_buf_init((char *)&m->tag, 1), uv_buf_init((char *)m->data,
                                                                       (unsigned)m->len)};
        int rc = mf_conn_sendv(l->conn, b, 2);
        if (rc == -ENOBUFS)
            return;
        if (rc < 0) {
            /* Cannot happen for a message that fitted frame_max; the
             * connection is closing and its close callback reconnects. */
            return;
        }
        l->st.sent++;
        queue_pop(l);
    }
}

static uint32_t backoff_ms(struct mf_transport *t, unsigned attempt)
{
    uint64_t base = t->cfg.backoff_min_ms;
    for (unsigned i = 0; i < attempt && base < t->cfg.backoff_max_ms; i++)
        base *= 2;
    if (base > t->cfg.backoff_max_ms)
        base = t->cfg.backoff_max_ms;
    uint64_t half = base / 2;
    return (uint32_t)(half + mf_rand_u64() % (base - half + 1));
}

static void on_retry(uv_timer_t *timer)
{
    struct link *l = timer->data;
    l->retry_pending = 0;
    if (!l->peer->removed && !l->peer->t->closing)
        link_dial(l);
}

static void schedule_retry(struct link *l)
{
    struct mf_transport *t = l->peer->t;
    if (l->peer->removed || t->closing || l->retry_pending)
        return;
    /* A bulk link with nothing to send stays down until the next send. */
    if (l->kind == MF_TRANSPORT_BULK && !l->head)
        return;
    uint32_t delay = backoff_ms(t, l->attempt);
    if (l->attempt < 32)
        l->attempt++;
    l->st.last_backoff_ms = delay;
    l->retry_pending = 1;
    uv_timer_start(&l->retry, on_retry, delay, 0);
}

static void out_open(struct mf_conn *c)
{
    struct link *l = mf_conn_data(c);
    struct mf_transport *t = l->peer->t;
    uint8_t hello[HELLO_LEN];
    hello[0] = MF_TRANSPORT_TAG_HELLO;
    memcpy(hello + 1, HELLO_MAGIC, 4);
    for (int i = 0; i < 8; i++)
        hello[5 + i] = (uint8_t)(t->cfg.self_id >> (56 - 8 * i));
    hello[13] = (uint8_t)l->kind;
    if (mf_conn_send(c, hello, sizeof(hello)) < 0) {
        mf_conn_close(c, MF_EINTERNAL);
        return;
    }
    l->up = 1;
    l->attempt = 0;
    l->st.connects++;
    MF_INFO(MOD, "%s link to node %llu (%s) is up", link_name(l->kind),
            (unsigned long long)l->peer->id, l->peer->addr);
    if (t->link_cb)
        t->link_cb(t, l->peer->id, l->kind, 1);
    if (l->conn == c)
        link_pump(l);
}

static void out_frame(struct mf_conn *c, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    /* Peers never send on our outbound links. */
    struct link *l = mf_conn_data(c);
    MF_WARN(MOD, "node %llu sent data on an outbound link; closing it",
            (unsigned long long)l->peer->id);
    mf_conn_close(c, MF_EINVAL);
}

static void out_drain(struct mf_conn *c)
{
    link_pump(mf_conn_data(c));
}

static void out_close(struct mf_conn *c, int reason)
{
    struct link *l = mf_conn_data(c);
    struct peer *p = l->peer;
    struct mf_transport *t = p->t;
    MF_ASSERT(l->conn == c);
    int was_up = l->up;
    l->conn = NULL;
    l->up = 0;
    if (!p->removed && !t->closing) {
        l->st.failures++;
        if (was_up)
            MF_INFO(MOD, "%s link to node %llu (%s) is down: %s", link_name(l->kind),
                    (unsigned long long)p->id, p->addr, mf_strerror(reason));
        else
            MF_DEBUG(MOD, "cannot reach node %llu (%s) on its %s link: %s",
                     (unsigned long long)p->id, p->addr, link_name(l->kind),
                     mf_strerror(reason));
        if (l->kind == MF_TRANSPORT_BULK)
            queue_clear(l, 1);
        if (was_up && t->link_cb)
            t->link_cb(t, p->id, l->kind, 0);
        schedule_retry(l);
    }
    peer_unref(p);
}

static const struct mf_conn_cbs out_cbs = {
    .open = out_open,
    .frame = out_frame,
    .drain = out_drain,
    .close = out_close,
};

static void link_dial(struct link *l)
{
    struct peer *p = l->peer;
    struct mf_transport *t = p->t;
    if (l->conn || l->retry_pending || p->removed || t->closing)
        return;
    struct mf_conn_dial_opts opts = {
        .limits = {
            .frame_max_bytes = t->cfg.frame_max_bytes,
            .out_pause_bytes = l->kind == MF_TRANSPORT_CONTROL ? CONTROL_CONN_PAUSE_BYTES
                                                               : BULK_CONN_PAUSE_BYTES,
            .handshake_timeout_ms = t->cfg.connect_timeout_ms,
        },
        .expect_node_id = p->id,
        .skip_name_check = t->cfg.skip_addr_check,
    };
    l->st.dials++;
    int rc = mf_conn_dial(t->loop, t->cfg.client_ctx, p->addr, &opts, &out_cbs, l, &l->conn);
    if (rc < 0) {
        l->conn = NULL;
        l->st.failures++;
        MF_WARN(MOD, "cannot dial node %llu at %s: %s", (unsigned long long)p->id, p->addr,
                mf_strerror(rc));
        schedule_retry(l);
        return;
    }
    p->refs++;
}

/* ---- inbound ---- */

static void in_accept(struct mf_listener *lst, struct mf_conn *c)
{
    struct mf_transport *t = mf_listener_data(lst);
    struct inbound *in = calloc(1, sizeof(*in));
    if (!in) {
        mf_conn_set_data(c, NULL);
        mf_conn_close(c, -ENOMEM);
        return;
    }
    in->t = t;
    in->conn = c;
    mf_conn_set_data(c, in);
}

static void in_frame(struct mf_conn *c, const uint8_t *data, size_t len)
{
    struct inbound *in = mf_conn_data(c);
    struct mf_transport *t = in->t;
    if (!in->hello) {
        uint64_t cert_id = 0, id = 0;
        if (len != HELLO_LEN || data[0] != MF_TRANSPORT_TAG_HELLO ||
            memcmp(data + 1, HELLO_MAGIC, 4) != 0 || data[13] > MF_TRANSPORT_BULK) {
            MF_WARN(MOD, "closing %s: the first frame is not a Hello", mf_conn_peer(c));
            mf_conn_close(c, MF_EINVAL);
            return;
        }
        for (int i = 0; i < 8; i++)
            id = (id << 8) | data[5 + i];
        int rc = mf_conn_peer_node_id(c, &cert_id);
        if (rc < 0 || cert_id != id || id == t->cfg.self_id) {
            MF_WARN(MOD, "closing %s: Hello says node %llu, its certificate %s %llu",
                    mf_conn_peer(c), (unsigned long long)id,
                    rc < 0 ? mf_strerror(rc) : "says", (unsigned long long)cert_id);
            mf_conn_close(c, MF_EUNAUTH);
            return;
        }
        in->id = id;
        in->kind = data[13];
        in->hello = 1;
        /* A peer keeps one outbound link of each kind: an older one from it
         * is dead (it reconnected, maybe without our seeing a FIN), so close
         * it rather than wait for TCP keepalive. */
        for (struct inbound *o = t->inbound; o; o = o->next)
            if (o->id == id && o->kind == in->kind) {
                MF_DEBUG(MOD, "node %llu reconnected; closing its older link from %s",
                         (unsigned long long)id, mf_conn_peer(o->conn));
                mf_conn_close(o->conn, 0);
            }
        in->next = t->inbound;
        if (t->inbound)
            t->inbound->prev = in;
        t->inbound = in;
        MF_DEBUG(MOD, "inbound %s link from node %llu (%s)",
                 link_name((enum mf_transport_link)data[13]), (unsigned long long)id,
                 mf_conn_peer(c));
        return;
    }
    if (len < 1 || data[0] == MF_TRANSPORT_TAG_HELLO) {
        MF_WARN(MOD, "closing %s: node %llu sent a frame without a tag", mf_conn_peer(c),
                (unsigned long long)in->id);
        mf_conn_close(c, MF_EINVAL);
        return;
    }
    t->recv_cb(t, in->id, data[0], data + 1, len - 1);
}

static void in_close(struct mf_conn *c, int reason)
{
    (void)reason;
    struct inbound *in = mf_conn_data(c);
    if (in && in->hello) {
        if (in->prev)
            in->prev->next = in->next;
        else
            in->t->inbound = in->next;
        if (in->next)
            in->next->prev = in->prev;
    }
    free(in);
}

static const struct mf_conn_cbs in_cbs = {
    .frame = in_frame,
    .close = in_close,
};

/* ---- API ---- */

int mf_transport_new(uv_loop_t *loop, const struct mf_transport_config *cfg, void *data,
                     mf_transport_link_cb link_cb, mf_transport_recv_cb recv_cb,
                     struct mf_transport **out)
{
    MF_ASSERT(loop && cfg && recv_cb && out);
    if (cfg->self_id == 0 || !cfg->server_ctx || !cfg->client_ctx || !cfg->listen_addr)
        return MF_EINVAL;
    struct mf_transport *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->loop = loop;
    t->cfg = *cfg;
    t->cfg.listen_addr = NULL; /* not kept: the caller's string */
    t->data = data;
    t->link_cb = link_cb;
    t->recv_cb = recv_cb;
    struct mf_transport_config *c = &t->cfg;
    if (!c->frame_max_bytes)
        c->frame_max_bytes = MF_TRANSPORT_FRAME_MAX_DEFAULT;
    if (!c->control_queue_max_bytes)
        c->control_queue_max_bytes = MF_TRANSPORT_CONTROL_QUEUE_MAX_DEFAULT;
    if (!c->bulk_queue_max_bytes)
        c->bulk_queue_max_bytes = MF_TRANSPORT_BULK_QUEUE_MAX_DEFAULT;
    if (!c->backoff_min_ms)
        c->backoff_min_ms = MF_TRANSPORT_BACKOFF_MIN_MS_DEFAULT;
    if (!c->backoff_max_ms)
        c->backoff_max_ms = MF_TRANSPORT_BACKOFF_MAX_MS_DEFAULT;
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms;
    if (!c->connect_timeout_ms)
        c->connect_timeout_ms = MF_TRANSPORT_CONNECT_TIMEOUT_MS_DEFAULT;
    if (!c->inbound_max)
        c->inbound_max = MF_TRANSPORT_INBOUND_MAX_DEFAULT;
    struct mf_listener_opts lo = {
        .limits = {.frame_max_bytes = c->frame_max_bytes,
                   .handshake_timeout_ms = c->connect_timeout_ms},
        .require_node_id = 1,
        .conns_max = c->inbound_max,
        /* Peers prove who they are in the handshake (mutual TLS), so the
         * only cost a stranger can impose is handshakes: rate-limited here,
         * so a flood spends a bounded share of the loop that ticks Raft. */
        .handshakes_per_s = c->inbound_handshakes_per_s,
        .conns_per_addr_max = c->inbound_per_addr_max,
    };
    int rc = mf_listener_new(loop, c->server_ctx, cfg->listen_addr, &lo, &in_cbs, t, in_accept,
                             &t->listener);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void *mf_transport_data(const struct mf_transport *t) { return t->data; }

uint64_t mf_transport_listener_tls_failures(const struct mf_transport *t)
{
    struct mf_listener_stats ls = {0};
    if (t->listener)
        mf_listener_stats(t->listener, &ls);
    return ls.tls_failures;
}

int mf_transport_listen_addr(const struct mf_transport *t, char *buf, size_t len,
                             uint16_t *port)
{
    return mf_listener_addr(t->listener, buf, len, port);
}

int mf_transport_add_peer(struct mf_transport *t, uint64_t id, const char *addr)
{
    if (t->closing)
        return MF_ECLOSED;
    if (id == 0 || id == t->cfg.self_id || !addr || strlen(addr) >= sizeof(((struct peer *)0)->addr))
        return MF_EINVAL;
    if (find_peer(t, id))
        return MF_EEXISTS;
    struct peer *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->t = t;
    p->id = id;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    for (int k = 0; k < 2; k++) {
        struct link *l = &p->link[k];
        l->peer = p;
        l->kind = (enum mf_transport_link)k;
        l->tail = &l->head;
        l->bytes_max = k == MF_TRANSPORT_CONTROL ? t->cfg.control_queue_max_bytes
                                                 : t->cfg.bulk_queue_max_bytes;
        uv_timer_init(t->loop, &l->retry);
        l->retry.data = l;
        p->refs++;
    }
    p->next = t->peers;
    t->peers = p;
    t->live_peers++;
    link_dial(&p->link[MF_TRANSPORT_CONTROL]);
    return 0;
}

static void on_retry_closed(uv_handle_t *h)
{
    struct link *l = h->data;
    peer_unref(l->peer);
}

static void peer_remove(struct peer *p)
{
    p->removed = 1;
    for (int k = 0; k < 2; k++) {
        struct link *l = &p->link[k];
        queue_clear(l, 0);
        uv_close((uv_handle_t *)&l->retry, on_retry_closed);
        if (l->conn)
            mf_conn_close(l->conn, 0);
    }
}

int mf_transport_remove_peer(struct mf_transport *t, uint64_t id)
{
    struct peer *p = find_peer(t, id);
    if (!p)
        return MF_ENOTFOUND;
    peer_remove(p);
    return 0;
}

int mf_transport_send(struct mf_transport *t, uint64_t to, enum mf_transport_link link,
                      uint8_t tag, const void *data, size_t len)
{
    MF_ASSERT(link == MF_TRANSPORT_CONTROL || link == MF_TRANSPORT_BULK);
    if (t->closing)
        return MF_ECLOSED;
    if (tag == MF_TRANSPORT_TAG_HELLO)
        return MF_EINVAL;
    struct peer *p = find_peer(t, to);
    if (!p)
        return MF_ENOTFOUND;
    struct link *l = &p->link[link];
    if (len + 1 > t->cfg.frame_max_bytes || len > l->bytes_max)
        return MF_ETOOLARGE;
    if (l->bytes + len > l->bytes_max) {
        if (link == MF_TRANSPORT_BULK)
            return -ENOBUFS;
        while (l->head && l->bytes + len > l->bytes_max) {
            l->st.dropped++;
            queue_pop(l);
        }
    }
    struct msg *m = malloc(sizeof(*m) + len);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->len = len;
    m->tag = tag;
    if (len)
        memcpy(m->data, data, len);
    *l->tail = m;
    l->tail = &m->next;
    l->bytes += len;
    if (l->up)
        link_pump(l);
    else if (!l->conn)
        link_dial(l); /* no-op while a retry is pending */
    return 0;
}

int mf_transport_peer_stats(const struct mf_transport *t, uint64_t id,
                            struct mf_transport_peer_stats *out)
{
    const struct peer *p = find_peer(t, id);
    if (!p)
        return MF_ENOTFOUND;
    for (int k = 0; k < 2; k++) {
        out->link[k] = p->link[k].st;
        out->link[k].queued_bytes = p->link[k].bytes;
        out->link[k].up = p->link[k].up;
    }
    return 0;
}

static void transport_maybe_done(struct mf_transport *t)
{
    if (!t->closing || !t->listener_closed || t->live_peers > 0)
        return;
    mf_transport_close_cb cb = t->close_cb;
    if (cb)
        cb(t);
    free(t);
}

static void on_listener_closed(struct mf_listener *lst)
{
    struct mf_transport *t = mf_listener_data(lst);
    t->listener_closed = 1;
    transport_maybe_done(t);
}

void mf_transport_close(struct mf_transport *t, mf_transport_close_cb cb)
{
    if (!t || t->closing)
        return;
    t->closing = 1;
    t->close_cb = cb;
    for (struct peer *p = t->peers; p; p = p->next)
        if (!p->removed)
            peer_remove(p);
    mf_listener_close(t->listener, on_listener_closed);
}
