/* Tests of src/net/transport.c: Raft peer links between transports on one
 * libuv loop over real sockets on 127.0.0.1 (mutual TLS with dev
 * certificates). Waits are for events (a uv_check handle evaluates the
 * condition after every loop iteration), never sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "net_harness.h"
#include "net/conn.h"
#include "net/transport.h"

struct node {
    uv_loop_t *loop;
    struct mf_transport *t;
    uint64_t id;
    SSL_CTX *sctx, *cctx;
    char addr[64];
    int closed;
    /* received */
    int msgs;
    uint64_t last_from;
    uint8_t last_tag;
    size_t last_len;
    int bulk_done;           /* a tag-2 message of bulk_len bytes arrived */
    size_t bulk_len;
    int hb_before_bulk;      /* tag-1 messages seen while bulk_done == 0 */
    int hb_total;
    int bad;
    /* link events */
    int ups, downs;
};

static void node_recv(struct mf_transport *t, uint64_t from, uint8_t tag, const uint8_t *data,
                      size_t len)
{
    struct node *n = mf_transport_data(t);
    n->msgs++;
    n->last_from = from;
    n->last_tag = tag;
    n->last_len = len;
    for (size_t i = 0; i < len; i++)
        if (data[i] != (uint8_t)(i * 31 + tag)) {
            n->bad++;
            break;
        }
    if (tag == 2 && len == n->bulk_len)
        n->bulk_done = 1;
    if (tag == 1) {
        n->hb_total++;
        if (!n->bulk_done)
            n->hb_before_bulk++;
    }
}

static void node_link(struct mf_transport *t, uint64_t peer, enum mf_transport_link link,
                      int up)
{
    (void)peer;
    (void)link;
    struct node *n = mf_transport_data(t);
    if (up)
        n->ups++;
    else
        n->downs++;
}

static void node_start(struct node *n, uv_loop_t *loop, uint64_t id, const char *listen,
                       const struct mf_transport_config *base)
{
    int keep_bulk = n->bulk_len ? 1 : 0;
    size_t bulk_len = n->bulk_len;
    memset(n, 0, sizeof(*n));
    if (keep_bulk)
        n->bulk_len = bulk_len;
    n->loop = loop;
    n->id = id;
    char ident[16];
    snprintf(ident, sizeof(ident), "node-%llu", (unsigned long long)id);
    n->sctx = h_server_ctx("", (int)id, MF_TLS_CLIENT_AUTH_REQUIRE);
    n->cctx = h_client_ctx("", ident);
    struct mf_transport_config cfg = {0};
    if (base)
        cfg = *base;
    cfg.self_id = id;
    cfg.server_ctx = n->sctx;
    cfg.client_ctx = n->cctx;
    cfg.listen_addr = listen ? listen : "127.0.0.1:0";
    assert_int_equal(mf_transport_new(loop, &cfg, n, node_link, node_recv, &n->t), 0);
    assert_int_equal(mf_transport_listen_addr(n->t, n->addr, sizeof(n->addr), NULL), 0);
}

static void node_closed(struct mf_transport *t)
{
    struct node *n = mf_transport_data(t);
    n->closed = 1;
}

static void node_stop(struct node *n)
{
    mf_transport_close(n->t, node_closed);
    assert_int_equal(h_run_until(n->loop, &n->closed), 0);
    mf_tls_ctx_free(n->sctx);
    mf_tls_ctx_free(n->cctx);
}

/* Runs the loop until cond(arg) holds (checked after every iteration). */
struct waiter {
    uv_check_t check;
    int (*cond)(void *);
    void *arg;
    int met;
};

static void waiter_check(uv_check_t *h)
{
    struct waiter *w = h->data;
    if (w->cond(w->arg))
        w->met = 1;
}

static int run_until_cond(uv_loop_t *loop, int (*cond)(void *), void *arg)
{
    struct waiter w = {.cond = cond, .arg = arg, .met = cond(arg)};
    uv_check_init(loop, &w.check);
    w.check.data = &w;
    uv_check_start(&w.check, waiter_check);
    int rc = h_run_until(loop, &w.met);
    uv_close((uv_handle_t *)&w.check, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return rc;
}

static uint8_t *payload(size_t len, uint8_t tag)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + tag);
    return p;
}

static int send_msg(struct node *n, uint64_t to, enum mf_transport_link link, uint8_t tag,
                    size_t len)
{
    uint8_t *p = payload(len, tag);
    int rc = mf_transport_send(n->t, to, link, tag, p, len);
    free(p);
    return rc;
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

struct want_msgs {
    struct node *n;
    int msgs;
};

static int have_msgs(void *arg)
{
    struct want_msgs *w = arg;
    return w->n->msgs >= w->msgs;
}

/* Three nodes send each other messages: each arrives once, intact, tagged,
 * with the sender's id taken from its certificate. */
static void test_net_transport_three_nodes_exchange(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node n[3];
    for (int i = 0; i < 3; i++)
        node_start(&n[i], &loop, (uint64_t)i + 1, NULL, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                assert_int_equal(mf_transport_add_peer(n[i].t, (uint64_t)j + 1, n[j].addr), 0);
    assert_int_equal(mf_transport_add_peer(n[0].t, 2, n[1].addr), MF_EEXISTS);
    assert_int_equal(mf_transport_add_peer(n[0].t, 1, n[1].addr), MF_EINVAL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                assert_int_equal(send_msg(&n[i], (uint64_t)j + 1, MF_TRANSPORT_CONTROL,
                                          (uint8_t)(10 + i), 100 + (size_t)i),
                                 0);
    for (int j = 0; j < 3; j++) {
        struct want_msgs w = {&n[j], 2};
        assert_int_equal(run_until_cond(&loop, have_msgs, &w), 0);
        assert_int_equal(n[j].bad, 0);
    }
    /* Node 3 receives from 1 and 2 only: last_from identifies a peer. */
    assert_true(n[2].last_from == 1 || n[2].last_from == 2);
    assert_int_equal(n[2].last_len, 100 + n[2].last_from - 1);
    assert_int_equal(n[2].last_tag, 10 + n[2].last_from - 1);
    struct mf_transport_peer_stats st;
    assert_int_equal(mf_transport_peer_stats(n[0].t, 2, &st), 0);
    assert_int_equal(st.link[MF_TRANSPORT_CONTROL].up, 1);
    assert_int_equal(st.link[MF_TRANSPORT_CONTROL].sent, 1);
    assert_int_equal(st.link[MF_TRANSPORT_BULK].up, 0); /* dialed on first use */
    assert_int_equal(mf_transport_remove_peer(n[0].t, 3), 0);
    assert_int_equal(mf_transport_send(n[0].t, 3, MF_TRANSPORT_CONTROL, 1, "x", 1),
                     MF_ENOTFOUND);
    for (int i = 0; i < 3; i++)
        node_stop(&n[i]);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct want_failures {
    struct node *n;
    uint64_t peer;
    uint64_t failures;
};

static int have_failures(void *arg)
{
    struct want_failures *w = arg;
    struct mf_transport_peer_stats st;
    if (mf_transport_peer_stats(w->n->t, w->peer, &st) < 0)
        return 0;
    return st.link[MF_TRANSPORT_CONTROL].failures >= w->failures;
}

/* When the remote goes away the link retries with growing backoff (seen in
 * the failure counter and the chosen delays), keeps the control messages
 * queued meanwhile, and delivers them once the remote is back on the same
 * port. */
static void test_net_transport_reconnects_after_restart(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mf_transport_config cfg = {.backoff_min_ms = 4, .backoff_max_ms = 64};
    struct node a, b;
    node_start(&a, &loop, 1, NULL, &cfg);
    node_start(&b, &loop, 2, NULL, &cfg);
    char b_addr[64];
    strcpy(b_addr, b.addr);
    assert_int_equal(mf_transport_add_peer(a.t, 2, b.addr), 0);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_CONTROL, 1, 10), 0);
    struct want_msgs w = {&b, 1};
    assert_int_equal(run_until_cond(&loop, have_msgs, &w), 0);
    assert_int_equal(a.ups, 1);

    node_stop(&b);
    /* Wait for the link to notice and for several refused retries. */
    struct want_failures wf = {&a, 2, 6};
    assert_int_equal(run_until_cond(&loop, have_failures, &wf), 0);
    assert_int_equal(a.downs, 1);
    struct mf_transport_peer_stats st;
    assert_int_equal(mf_transport_peer_stats(a.t, 2, &st), 0);
    const struct mf_transport_link_stats *ls = &st.link[MF_TRANSPORT_CONTROL];
    assert_int_equal(ls->up, 0);
    assert_int_equal(ls->connects, 1);
    assert_true(ls->dials >= 6);
    /* After 5+ consecutive failures the base delay reached the 64 ms cap:
     * the jittered delay is in [32, 64]. */
    assert_true(ls->last_backoff_ms >= 32 && ls->last_backoff_ms <= 64);
    for (int i = 0; i < 5; i++)
        assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_CONTROL, 1, 20 + (size_t)i), 0);

    node_start(&b, &loop, 2, b_addr, &cfg);
    struct want_msgs w2 = {&b, 5};
    assert_int_equal(run_until_cond(&loop, have_msgs, &w2), 0);
    assert_int_equal(b.bad, 0);
    assert_int_equal(b.last_len, 24); /* in order, the last one last */
    assert_int_equal(mf_transport_peer_stats(a.t, 2, &st), 0);
    assert_int_equal(st.link[MF_TRANSPORT_CONTROL].connects, 2);
    assert_int_equal(st.link[MF_TRANSPORT_CONTROL].dropped, 0);
    assert_int_equal(a.ups, 2);
    node_stop(&a);
    node_stop(&b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int bulk_arrived(void *arg)
{
    return ((struct node *)arg)->bulk_done;
}

/* A heartbeat sent on the control link right after an 8 MiB transfer was
 * queued on the bulk link to the same peer arrives before that transfer
 * completes: no head-of-line blocking. */
static void test_net_transport_heartbeat_during_bulk(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node a, b;
    node_start(&a, &loop, 1, NULL, NULL);
    b.bulk_len = 8u << 20;
    node_start(&b, &loop, 2, NULL, NULL);
    assert_int_equal(mf_transport_add_peer(a.t, 2, b.addr), 0);
    /* Bring both links up first, so the race is only between the two links. */
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_CONTROL, 3, 1), 0);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_BULK, 3, 1), 0);
    struct want_msgs w = {&b, 2};
    assert_int_equal(run_until_cond(&loop, have_msgs, &w), 0);

    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_BULK, 2, 8u << 20), 0);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_CONTROL, 1, 40), 0);
    assert_int_equal(run_until_cond(&loop, bulk_arrived, &b), 0);
    assert_int_equal(b.bad, 0);
    assert_int_equal(b.hb_total, 1);
    assert_int_equal(b.hb_before_bulk, 1);
    node_stop(&a);
    node_stop(&b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* With the peer unreachable, the control queue keeps its byte bound by
 * dropping the oldest messages, the bulk queue refuses, and bad sends are
 * refused with the documented codes. */
static void test_net_transport_queue_limits(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mf_transport_config cfg = {.control_queue_max_bytes = 1000,
                                      .bulk_queue_max_bytes = 3000,
                                      .frame_max_bytes = 5000,
                                      .backoff_min_ms = 1000};
    struct node a;
    node_start(&a, &loop, 1, NULL, &cfg);
    /* A port we hold bound without listening: connections are refused. */
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ha = {.sin_family = AF_INET};
    ha.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t hlen = sizeof(ha);
    assert_int_equal(bind(hold, (struct sockaddr *)&ha, sizeof(ha)), 0);
    assert_int_equal(getsockname(hold, (struct sockaddr *)&ha, &hlen), 0);
    char refused[64];
    snprintf(refused, sizeof(refused), "127.0.0.1:%u", (unsigned)ntohs(ha.sin_port));
    assert_int_equal(mf_transport_add_peer(a.t, 2, refused), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_CONTROL, 1, 100), 0);
    struct mf_transport_peer_stats st;
    assert_int_equal(mf_transport_peer_stats(a.t, 2, &st), 0);
    assert_int_equal(st.link[MF_TRANSPORT_CONTROL].queued_bytes, 1000);
    assert_int_equal(st.link[MF_TRANSPORT_CONTROL].dropped, 10);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_BULK, 2, 2000), 0);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_BULK, 2, 2000), -ENOBUFS);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_BULK, 2, 4000), MF_ETOOLARGE);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_CONTROL, 1, 5000), MF_ETOOLARGE);
    assert_int_equal(send_msg(&a, 2, MF_TRANSPORT_CONTROL, 0, 10), MF_EINVAL);
    assert_int_equal(send_msg(&a, 9, MF_TRANSPORT_CONTROL, 1, 10), MF_ENOTFOUND);
    node_stop(&a);
    close(hold);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct raw {
    int closed, reason, opened;
};

static void raw_open(struct mf_conn *c)
{
    ((struct raw *)mf_conn_data(c))->opened = 1;
}

static void raw_frame(struct mf_conn *c, const uint8_t *d, size_t l)
{
    (void)c, (void)d, (void)l;
}

static void raw_close(struct mf_conn *c, int reason)
{
    struct raw *r = mf_conn_data(c);
    r->closed = 1;
    r->reason = reason;
}

static const struct mf_conn_cbs raw_cbs = {.open = raw_open, .frame = raw_frame,
                                           .close = raw_close};

/* A peer whose Hello claims another node id than its certificate, and a
 * client certificate without a node id, are both cut off without delivering
 * anything. */
static void test_net_transport_refuses_spoofed_hello(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node b;
    node_start(&b, &loop, 2, NULL, NULL);
    SSL_CTX *cctx = h_client_ctx("", "node-1");
    struct mf_conn *c;
    struct raw r = {0};
    struct mf_conn_dial_opts d = {.expect_node_id = 2};
    assert_int_equal(mf_conn_dial(&loop, cctx, b.addr, &d, &raw_cbs, &r, &c), 0);
    uint8_t hello[14] = {0, 'M', 'F', 'Y', '1', 0, 0, 0, 0, 0, 0, 0, 3, 0};
    assert_int_equal(mf_conn_send(c, hello, sizeof(hello)), 0);
    uint8_t msg[3] = {1, 0, 31};
    assert_int_equal(mf_conn_send(c, msg, sizeof(msg)), 0);
    assert_int_equal(h_run_until(&loop, &r.closed), 0);
    assert_int_equal(r.reason, MF_ECLOSED);
    assert_int_equal(b.msgs, 0);
    mf_tls_ctx_free(cctx);

    cctx = h_client_ctx("", "client");
    struct raw r2 = {0};
    assert_int_equal(mf_conn_dial(&loop, cctx, b.addr, NULL, &raw_cbs, &r2, &c), 0);
    assert_int_equal(h_run_until(&loop, &r2.closed), 0);
    assert_int_equal(b.msgs, 0);
    mf_tls_ctx_free(cctx);
    node_stop(&b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A peer reached at an address its certificate does not list (127.0.0.2,
 * the certificate says 127.0.0.1) is refused by default and accepted with
 * skip_addr_check, where the node id alone identifies it. */
static void test_net_transport_addr_check(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mf_transport_config strict = {.backoff_min_ms = 1000};
    struct mf_transport_config lax = {.skip_addr_check = 1};
    struct node a, a2, b;
    node_start(&b, &loop, 2, "0.0.0.0:0", NULL);
    uint16_t port;
    assert_int_equal(mf_transport_listen_addr(b.t, NULL, 0, &port), 0);
    char other[64];
    snprintf(other, sizeof(other), "127.0.0.2:%u", (unsigned)port);

    node_start(&a, &loop, 1, NULL, &strict);
    assert_int_equal(mf_transport_add_peer(a.t, 2, other), 0);
    struct want_failures wf = {&a, 2, 1};
    assert_int_equal(run_until_cond(&loop, have_failures, &wf), 0);
    struct mf_transport_peer_stats st;
    assert_int_equal(mf_transport_peer_stats(a.t, 2, &st), 0);
    assert_int_equal(st.link[MF_TRANSPORT_CONTROL].connects, 0);
    node_stop(&a);

    node_start(&a2, &loop, 1, NULL, &lax);
    assert_int_equal(mf_transport_add_peer(a2.t, 2, other), 0);
    assert_int_equal(send_msg(&a2, 2, MF_TRANSPORT_CONTROL, 1, 10), 0);
    struct want_msgs w = {&b, 1};
    assert_int_equal(run_until_cond(&loop, have_msgs, &w), 0);
    assert_int_equal(b.last_from, 1);
    node_stop(&a2);
    node_stop(&b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* When a peer opens a new control link (it restarted or lost the old one
 * without a FIN reaching us), the older inbound link from it is closed, and
 * the new one delivers. */
static void test_net_transport_replaces_stale_inbound(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node b;
    node_start(&b, &loop, 2, NULL, NULL);
    SSL_CTX *cctx = h_client_ctx("", "node-1");
    struct mf_conn_dial_opts d = {.expect_node_id = 2};
    uint8_t hello[14] = {0, 'M', 'F', 'Y', '1', 0, 0, 0, 0, 0, 0, 0, 1, 0};
    uint8_t msg[3] = {1, 0, 31};
    struct mf_conn *c1, *c2;
    struct raw r1 = {0}, r2 = {0};
    assert_int_equal(mf_conn_dial(&loop, cctx, b.addr, &d, &raw_cbs, &r1, &c1), 0);
    assert_int_equal(mf_conn_send(c1, hello, sizeof(hello)), 0);
    assert_int_equal(mf_conn_send(c1, msg, sizeof(msg)), 0);
    struct want_msgs w = {&b, 1};
    assert_int_equal(run_until_cond(&loop, have_msgs, &w), 0);
    assert_int_equal(mf_conn_dial(&loop, cctx, b.addr, &d, &raw_cbs, &r2, &c2), 0);
    assert_int_equal(mf_conn_send(c2, hello, sizeof(hello)), 0);
    assert_int_equal(mf_conn_send(c2, msg, sizeof(msg)), 0);
    assert_int_equal(h_run_until(&loop, &r1.closed), 0);
    assert_int_equal(r1.reason, MF_ECLOSED);
    struct want_msgs w2 = {&b, 2};
    assert_int_equal(run_until_cond(&loop, have_msgs, &w2), 0);
    assert_int_equal(r2.closed, 0);
    assert_int_equal(b.last_from, 1);
    mf_conn_close(c2, 0);
    assert_int_equal(h_run_until(&loop, &r2.closed), 0);
    mf_tls_ctx_free(cctx);
    node_stop(&b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_transport_three_nodes_exchange),
        cmocka_unit_test(test_net_transport_reconnects_after_restart),
        cmocka_unit_test(test_net_transport_heartbeat_during_bulk),
        cmocka_unit_test(test_net_transport_queue_limits),
        cmocka_unit_test(test_net_transport_refuses_spoofed_hello),
        cmocka_unit_test(test_net_transport_addr_check),
        cmocka_unit_test(test_net_transport_replaces_stale_inbound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
