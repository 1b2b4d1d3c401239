/* mayfly-bench: the load generator of ../shared/CLI.md.
 *
 *   mayfly-bench -addr A[,B,...] -workload grant|put|get-l|get-s|revoke-storm|lease|creds
 *                [-clients 64] [-conns 8] [-total 20000] [-ttl 60s] [-value-size 256]
 *                [-name LEASE_NAME] [-path MOUNT/ROLE] [-expire-at UNIX_MS]
 *
 * Beyond CLI.md's workloads: `lease` grants bare leases (no bound KV: the
 * fastest way to fill the expiry index), `creds` issues dynamic credentials
 * at -path MOUNT/ROLE (a real CREATE ROLE per op for a postgres mount).
 * -expire-at gives every lease (lease, grant, creds) the same expiry instead
 * of one TTL: its TTL is computed when the op is sent, so a storm of leases
 * issued over minutes falls due at one instant.
 *
 * -conns TLS connections, each driven by one thread that keeps
 * clients/conns requests in flight on it (pipelining: answers are matched by
 * request id). Prints one line scripts compare across systems:
 *   mayfly grant clients=64 total=20000 errors=0 ops/s=21400 p50_ms=2.10 p99_ms=6.80
 * Token and CA come from -token/-ca-cert or MAYFLY_TOKEN/MAYFLY_CACERT. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/env.h"
#include "common/err.h"
#include "mayfly.pb-c.h"
#include "net/bclient.h"
#include "net/tls.h"

enum workload { W_GRANT, W_PUT, W_GET_L, W_GET_S, W_STORM, W_LEASE, W_CREDS };

struct opts {
    const char *addr, *token, *ca;
    const char *name;   /* lease name (grant, revoke-storm, lease); optional */
    char mount[128], role[128]; /* creds: from -path MOUNT/ROLE */
    enum workload w;
    const char *wname;
    unsigned clients, conns;
    uint64_t total, ttl_ms;
    uint64_t expire_at_ms; /* -expire-at: every lease expires then (TTL computed per op) */
    size_t value_size;
    bool prefill;       /* put every key bench/k0..k999 once, in order */
};

static uint64_t prefill_next; /* atomic: the next key a prefill writes */

struct slot {
    uint64_t id;        /* request id in flight, 0 if idle */
    uint64_t start_ns;  /* when the op (not the step) began */
    int step;           /* grant: 0 = lease grant, 1 = kv put */
    char lease_id[128];
    uint8_t key[16];    /* idempotency key of the step: kept across retries */
    char path[64];      /* the step's KV path: kept across retries too */
    bool retry;         /* resend the step with the same key */
    unsigned retries;
};

#define RETRIES_MAX 20 /* per step: UNAVAILABLE while a leader is elected */

struct worker {
    const struct opts *o;
    SSL_CTX *ctx;
    const char *addr;
    unsigned n_slots;
    struct slot *slots;
    uint64_t *lat_ns;   /* per completed op */
    uint64_t done, errors, quota, retries;
    uint64_t next_id;
    unsigned seed;
    char last_error[256];
};

static char value_buf[65536];

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int send_req(struct worker *w, struct mf_bclient *c, Mayfly__Api__Request *req,
                    uint8_t *key)
{
    req->token = (char *)w->o->token;
    if (key) {
        req->request_key.data = key;
        req->request_key.len = 16;
    }
    size_t len = mayfly__api__request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    mayfly__api__request__pack(req, buf);
    int rc = mf_bclient_send(c, buf, len, 30000);
    free(buf);
    return rc;
}

/* Sends the next step of slot s. */
/* The TTL of an op sent now: -ttl, or what is left until -expire-at (at
 * least 1 ms: a lease sent late still gets granted, and expires at once). */
static uint64_t op_ttl_ms(const struct opts *o)
{
    if (!o->expire_at_ms)
        return o->ttl_ms;
    uint64_t now = mf_now_wall_ms();
    return o->expire_at_ms > now ? o->expire_at_ms - now : 1;
}

static int start_step(struct worker *w, struct mf_bclient *c, struct slot *s)
{
    Mayfly__Api__Request req = MAYFLY__API__REQUEST__INIT;
    Mayfly__Api__LeaseGrantRequest g = MAYFLY__API__LEASE_GRANT_REQUEST__INIT;
    Mayfly__Api__KvPutRequest p = MAYFLY__API__KV_PUT_REQUEST__INIT;
    Mayfly__Api__KvPutRequest__DataEntry e = MAYFLY__API__KV_PUT_REQUEST__DATA_ENTRY__INIT;
    Mayfly__Api__KvPutRequest__DataEntry *ep = &e;
    Mayfly__Api__KvGetRequest get = MAYFLY__API__KV_GET_REQUEST__INIT;
    Mayfly__Api__CredsIssueRequest ci = MAYFLY__API__CREDS_ISSUE_REQUEST__INIT;
    char *path = s->path;
    bool write = true;
    if (!s->retry) {
        mf_rand_bytes(s->key, sizeof(s->key)); /* a new step: a new key and path */
        s->retries = 0;
        unsigned k = w->o->prefill
                         ? (unsigned)(__atomic_fetch_add(&prefill_next, 1, __ATOMIC_RELAXED) % 1000)
                         : (unsigned)(rand_r(&w->seed) % 1000);
        snprintf(s->path, sizeof(s->path), "bench/k%u", k);
    }
    s->retry = false;
    s->id = ++w->next_id;
    req.id = s->id;
    e.key = "v";
    e.value = value_buf;
    p.n_data = 1;
    p.data = &ep;
    switch (w->o->w) {
    case W_GRANT:
    case W_STORM:
    case W_LEASE:
        if (s->step == 0) {
            g.ttl_ms = op_ttl_ms(w->o);
            g.name = (char *)(w->o->name ? w->o->name
                                         : w->o->w == W_STORM ? "bench-storm" : "bench");
            req.op_case = MAYFLY__API__REQUEST__OP_LEASE_GRANT;
            req.lease_grant = &g;
        } else {
            snprintf(s->path, sizeof(s->path), "bench/lease/%s", s->lease_id + strlen(s->lease_id) - 13);
            p.path = path;
            p.lease_id = s->lease_id;
            req.op_case = MAYFLY__API__REQUEST__OP_KV_PUT;
            req.kv_put = &p;
        }
        break;
    case W_CREDS:
        ci.mount = (char *)w->o->mount;
        ci.role = (char *)w->o->role;
        ci.ttl_ms = op_ttl_ms(w->o);
        req.op_case = MAYFLY__API__REQUEST__OP_CREDS_ISSUE;
        req.creds_issue = &ci;
        break;
    case W_PUT:
        p.path = path;
        req.op_case = MAYFLY__API__REQUEST__OP_KV_PUT;
        req.kv_put = &p;
        break;
    case W_GET_L:
    case W_GET_S:
        get.path = path;
        req.op_case = MAYFLY__API__REQUEST__OP_KV_GET;
        req.kv_get = &get;
        req.consistency = w->o->w == W_GET_S ? MAYFLY__API__CONSISTENCY__STALE
                                             : MAYFLY__API__CONSISTENCY__LINEARIZABLE;
        write = false;
        break;
    }
    return send_req(w, c, &req, write ? s->key : NULL);
}

static struct slot *find_slot(struct worker *w, uint64_t id)
{
    for (unsigned i = 0; i < w->n_slots; i++)
        if (w->slots[i].id == id)
            return &w->slots[i];
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct mf_bclient c;
    char err[256];
    if (mf_bclient_connect(&c, w->ctx, w->addr, NULL, 0, 10000, err, sizeof(err))) {
        snprintf(w->last_error, sizeof(w->last_error), "%s", err);
        w->errors = w->quota;
        return NULL;
    }
    uint64_t started = 0;
    unsigned inflight = 0;
    for (unsigned i = 0; i < w->n_slots && started < w->quota; i++, started++) {
        w->slots[i].start_ns = mono_ns();
        if (start_step(w, &c, &w->slots[i]))
            goto broken;
        inflight++;
    }
    while (inflight > 0) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (mf_bclient_recv(&c, &buf, &len, 30000)) {
            free(buf);
            goto broken;
        }
        Mayfly__Api__Response *r = mayfly__api__response__unpack(NULL, len, buf);
        free(buf);
        struct slot *s = r ? find_slot(w, r->id) : NULL;
        if (!s) {
            if (r)
                mayfly__api__response__free_unpacked(r, NULL);
            continue;
        }
        bool failed = r->error && r->error->code != MAYFLY__API__ERROR_CODE__OK;
        if (failed)
            snprintf(w->last_error, sizeof(w->last_error), "%s", r->error->message);
        /* Like libmayfly: UNAVAILABLE (no leader yet) is retried with the same
         * key, so a write that did apply is answered, not applied twice. */
        if (failed && r->error->code == MAYFLY__API__ERROR_CODE__UNAVAILABLE &&
            s->retries < RETRIES_MAX) {
            mayfly__api__response__free_unpacked(r, NULL);
            s->retries++;
            w->retries++;
            s->retry = true;
            struct timespec gap = {0, 20 * 1000000};
            nanosleep(&gap, NULL); /* back off: an election takes a few hundred ms */
            if (start_step(w, &c, s))
                goto broken;
            continue;
        }
        bool more_steps = !failed && (w->o->w == W_GRANT) && s->step == 0;
        if (more_steps) {
            snprintf(s->lease_id, sizeof(s->lease_id), "%s", r->lease_grant->lease_id);
            s->step = 1;
        }
        mayfly__api__response__free_unpacked(r, NULL);
        if (more_steps) {
            if (start_step(w, &c, s))
                goto broken;
            continue;
        }
        if (failed)
            w->errors++;
        else
            w->lat_ns[w->done++] = mono_ns() - s->start_ns;
        inflight--;
        s->id = 0;
        s->step = 0;
        if (started < w->quota) {
            started++;
            s->start_ns = mono_ns();
            if (start_step(w, &c, s))
                goto broken;
            inflight++;
        }
    }
    mf_bclient_close(&c);
    return NULL;
broken:
    snprintf(w->last_error, sizeof(w->last_error), "connection to %s failed", w->addr);
    w->errors += w->quota - w->done - w->errors;
    mf_bclient_close(&c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int parse(int argc, char **argv, struct opts *o)
{
    o->addr = getenv("MAYFLY_ADDR");
    o->token = getenv("MAYFLY_TOKEN");
    o->ca = getenv("MAYFLY_CACERT");
    o->wname = "grant";
    o->clients = 64, o->conns = 8, o->total = 20000, o->ttl_ms = 60000, o->value_size = 256;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i] + (argv[i][0] == '-') + (argv[i][1] == '-');
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return fprintf(stderr, "mayfly-bench: %s needs a value\n", argv[i]), -1;
        i++;
        if (!strcmp(f, "addr")) o->addr = v;
        else if (!strcmp(f, "token")) o->token = v;
        else if (!strcmp(f, "ca-cert")) o->ca = v;
        else if (!strcmp(f, "workload")) o->wname = v;
        else if (!strcmp(f, "name")) o->name = v;
        else if (!strcmp(f, "path")) {
            const char *slash = strchr(v, '/');
            if (!slash || slash == v || !slash[1] || (size_t)(slash - v) >= sizeof(o->mount) ||
                strlen(slash + 1) >= sizeof(o->role))
                return fprintf(stderr, "mayfly-bench: -path wants MOUNT/ROLE\n"), -1;
            snprintf(o->mount, sizeof(o->mount), "%.*s", (int)(slash - v), v);
            snprintf(o->role, sizeof(o->role), "%s", slash + 1);
        }
        else if (!strcmp(f, "clients")) o->clients = (unsigned)atoi(v);
        else if (!strcmp(f, "conns")) o->conns = (unsigned)atoi(v);
        else if (!strcmp(f, "total")) o->total = strtoull(v, NULL, 10);
        else if (!strcmp(f, "value-size")) o->value_size = (size_t)atoi(v);
        else if (!strcmp(f, "expire-at")) o->expire_at_ms = strtoull(v, NULL, 10);
        else if (!strcmp(f, "ttl")) {
            if (mf_duration_parse_ms(v, &o->ttl_ms))
                return fprintf(stderr, "mayfly-bench: bad -ttl %s\n", v), -1;
        } else {
            return fprintf(stderr, "mayfly-bench: unknown flag %s\n", argv[i - 1]), -1;
        }
    }
    static const char *names[] = {"grant", "put", "get-l", "get-s", "revoke-storm", "lease",
                                  "creds"};
    int found = -1;
    for (int k = 0; k < (int)(sizeof(names) / sizeof(names[0])); k++)
        if (!strcmp(o->wname, names[k]))
            found = k;
    if (found < 0 || !o->addr || !o->ca || !o->token || o->conns == 0 ||
        o->clients < o->conns || o->value_size == 0 || o->value_size >= sizeof(value_buf) ||
        (found == W_CREDS && !o->mount[0])) {
        fprintf(stderr, "usage: mayfly-bench -addr A[,B,...] -workload "
                        "grant|put|get-l|get-s|revoke-storm|lease|creds [-clients 64] "
                        "[-conns 8] [-total 20000] [-ttl 60s] [-value-size 256] "
                        "[-name LEASE_NAME] [-path MOUNT/ROLE (creds)] [-expire-at UNIX_MS]\n"
                        "(-token/-ca-cert or MAYFLY_TOKEN/MAYFLY_CACERT are required)\n");
        return -1;
    }
    o->w = (enum workload)found;
    return 0;
}

/* Runs `total` ops of workload w over the connections; fills stats. */
static int run(const struct opts *o, SSL_CTX *ctx, char **addrs, size_t n_addrs, uint64_t total,
               enum workload w, double *secs, uint64_t **lat, uint64_t *n_lat, uint64_t *errors,
               char *last_error, size_t le_len)
{
    struct opts oo = *o;
    oo.w = w;
    struct worker *ws = calloc(o->conns, sizeof(*ws));
    pthread_t *th = calloc(o->conns, sizeof(*th));
    *lat = calloc(total ? total : 1, sizeof(uint64_t));
    if (!ws || !th || !*lat)
        return -ENOMEM;
    uint64_t t0 = mono_ns();
    for (unsigned i = 0; i < o->conns; i++) {
        struct worker *x = &ws[i];
        x->o = &oo;
        x->ctx = ctx;
        x->addr = addrs[i % n_addrs];
        x->n_slots = o->clients / o->conns + (i < o->clients % o->conns);
        x->slots = calloc(x->n_slots, sizeof(struct slot));
        x->quota = total / o->conns + (i < total % o->conns);
        x->lat_ns = calloc(x->quota ? x->quota : 1, sizeof(uint64_t));
        x->seed = (unsigned)mf_rand_u64();
        pthread_create(&th[i], NULL, worker_main, x);
    }
    *n_lat = 0;
    *errors = 0;
    uint64_t retries = 0;
    for (unsigned i = 0; i < o->conns; i++) {
        pthread_join(th[i], NULL);
        memcpy(*lat + *n_lat, ws[i].lat_ns, ws[i].done * sizeof(uint64_t));
        *n_lat += ws[i].done;
        *errors += ws[i].errors;
        retries += ws[i].retries;
        if (ws[i].last_error[0])
            snprintf(last_error, le_len, "%s", ws[i].last_error);
        free(ws[i].slots);
        free(ws[i].lat_ns);
    }
    *secs = (double)(mono_ns() - t0) / 1e9;
    if (retries)
        fprintf(stderr, "mayfly-bench: %" PRIu64 " request(s) retried after UNAVAILABLE\n",
                retries);
    free(ws);
    free(th);
    return 0;
}

/* Leases of the storm still not revoked (pages through lease list). */
static int64_t storm_remaining(SSL_CTX *ctx, const struct opts *o, const char *addr)
{
    struct mf_bclient c;
    char err[256];
    if (mf_bclient_connect(&c, ctx, addr, NULL, 0, 10000, err, sizeof(err)))
        return -1;
    int64_t remaining = 0;
    char after[256] = "";
    for (;;) {
        Mayfly__Api__Request req = MAYFLY__API__REQUEST__INIT;
        Mayfly__Api__LeaseListRequest l = MAYFLY__API__LEASE_LIST_REQUEST__INIT;
        char prefix[256];
        snprintf(prefix, sizeof(prefix), "lease/%s/", o->name ? o->name : "bench-storm");
        l.prefix = prefix;
        l.limit = 10000;
        l.after = after;
        req.id = 1;
        req.token = (char *)o->token;
        req.consistency = MAYFLY__API__CONSISTENCY__STALE;
        req.op_case = MAYFLY__API__REQUEST__OP_LEASE_LIST;
        req.lease_list = &l;
        size_t len = mayfly__api__request__get_packed_size(&req);
        uint8_t *buf = malloc(len);
        mayfly__api__request__pack(&req, buf);
        int rc = mf_bclient_send(&c, buf, len, 10000);
        free(buf);
        uint8_t *in = NULL;
        size_t in_len = 0;
        if (!rc)
            rc = mf_bclient_recv(&c, &in, &in_len, 10000);
        Mayfly__Api__Response *r = rc ? NULL : mayfly__api__response__unpack(NULL, in_len, in);
        free(in);
        if (!r || r->result_case != MAYFLY__API__RESPONSE__RESULT_LEASE_LIST) {
            if (r)
                mayfly__api__response__free_unpacked(r, NULL);
            remaining = -1;
            break;
        }
        for (size_t i = 0; i < r->lease_list->n_leases; i++)
            remaining += r->lease_list->leases[i]->state != MAYFLY__API__LEASE_STATE__REVOKED;
        bool more = r->lease_list->next[0] != '\0';
        snprintf(after, sizeof(after), "%s", r->lease_list->next);
        mayfly__api__response__free_unpacked(r, NULL);
        if (!more)
            break;
    }
    mf_bclient_close(&c);
    return remaining;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct opts o = {0}; /* parse sets only what it is given */
    if (parse(argc, argv, &o))
        return 1;
    for (size_t i = 0; i < o.value_size; i++)
        value_buf[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
    value_buf[o.value_size] = '\0';
    SSL_CTX *ctx = NULL;
    char err[512];
    if (mf_tls_client_ctx_new(o.ca, NULL, NULL, &ctx, err, sizeof(err))) {
        fprintf(stderr, "mayfly-bench: %s\n", err);
        return 1;
    }
    char *list = strdup(o.addr), *save = NULL, *addrs[16];
    size_t n_addrs = 0;
    for (char *t = strtok_r(list, ",", &save); t && n_addrs < 16; t = strtok_r(NULL, ",", &save))
        addrs[n_addrs++] = t;

    double secs;
    uint64_t *lat, n_lat, errors;
    char last_error[256] = "";
    if (o.w == W_GET_L || o.w == W_GET_S) { /* the 1,000 keys reads pick from */
        struct opts pre = o;
        pre.clients = pre.conns;
        pre.prefill = true;
        run(&pre, ctx, addrs, n_addrs, 1000, W_PUT, &secs, &lat, &n_lat, &errors, last_error,
            sizeof(last_error));
        free(lat);
    }
    enum workload w = o.w == W_STORM ? W_GRANT : o.w;
    if (o.w == W_STORM) {
        struct opts so = o;
        so.w = W_STORM;
        run(&so, ctx, addrs, n_addrs, o.total, W_STORM, &secs, &lat, &n_lat, &errors,
            last_error, sizeof(last_error));
    } else {
        run(&o, ctx, addrs, n_addrs, o.total, w, &secs, &lat, &n_lat, &errors, last_error,
            sizeof(last_error));
    }
    qsort(lat, n_lat, sizeof(uint64_t), cmp_u64);
    double p50 = n_lat ? (double)lat[n_lat / 2] / 1e6 : 0;
    double p99 = n_lat ? (double)lat[(n_lat * 99) / 100] / 1e6 : 0;
    printf("mayfly %s clients=%u total=%" PRIu64 " errors=%" PRIu64 " ops/s=%.0f p50_ms=%.2f "
           "p99_ms=%.2f",
           o.wname, o.clients, o.total, errors, secs > 0 ? (double)n_lat / secs : 0, p50, p99);
    if (o.w == W_STORM) {
        /* Time from the last grant's expiry until every lease is revoked. */
        uint64_t expire_all = mf_now_wall_ms() + o.ttl_ms;
        int64_t left;
        struct timespec poll_gap = {0, 20 * 1000000};
        while ((left = storm_remaining(ctx, &o, addrs[0])) > 0 &&
               mf_now_wall_ms() < expire_all + 120000)
            nanosleep(&poll_gap, NULL); /* polling the server: no event to wait on */
        uint64_t end = mf_now_wall_ms();
        printf(" revoked_after_expiry_ms=%lld remaining=%lld",
               (long long)(end > expire_all ? end - expire_all : 0), (long long)left);
    }
    printf("\n");
    if (errors && last_error[0])
        fprintf(stderr, "mayfly-bench: last error: %s\n", last_error);
    free(lat);
    free(list);
    mf_tls_ctx_free(ctx);
    return errors ? 2 : 0;
}
