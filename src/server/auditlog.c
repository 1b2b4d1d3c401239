/* The server's audit (auditlog.h): the key, the device table, the records. */
#include "server/auditlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "audit/file.h"
#include "auth/policy.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/api.h"
#include "server/audit_fields.h"
#include "server/audit_key.h"
#include "server/audit_system.h"
#include "server/proposer.h"
#include "server/records.h"
#include "store/barrier.h"
#include "store/kv.h"

#define LOG_MOD "audit"
#define SYNC_EVERY_TICKS 10 /* housekeeping runs every 100 ms: once a second */
#define ERR_LEN 256
#define LOST_ERR "audit: a record of this request could not be written: the answer is " \
                 "withheld (a write may have been applied)"

struct dev {
    char name[MF_AUDITLOG_NAME_MAX + 1];
    char *path;
    bool open, seen;
    struct mf_audit_file f;
    char err[ERR_LEN]; /* why it cannot write (logged once per change) */
};

/* A request or an answer waiting for its batch to be durable. */
struct pending {
    struct req *r;
    mf_auditlog_then then;
    bool lost; /* its request's record was in a batch that failed */
    bool sys;  /* r is NULL: the system records in flight (audit_system.h) */
};

struct mf_auditlog {
    struct mf_audit_key key;
    struct dev devs[MF_AUDITLOG_DEVICES_MAX];
    size_t n;
    uint64_t next_rid;
    unsigned ticks;
    struct pending *q; /* this loop turn's batch: started in the check phase */
    size_t q_n, q_cap;
    bool batch_failed;      /* a device failed a flush of this batch */
    char batch_err[ERR_LEN];
    uv_idle_t *idle; /* keeps the poll from blocking while a batch waits */
    uv_check_t *check;
    bool flushing, closing; /* closing: server stop, flush with nobody waiting */
    /* This node's record numbers lost with a failed batch: (lost_lo, lost_hi] */
    uint64_t durable_rid, lost_lo, lost_hi;
    struct mf_audit_sysq sysq; /* system records waiting for a device, or in a batch */
    struct job *jobs;          /* batches whose syncs are in flight, oldest first */
    size_t jobs_n;
};

static void on_check(uv_check_t *h);

static void noop_idle(uv_idle_t *h)
{
    (void)h;
}

static struct mf_auditlog *state(struct mf_server *s)
{
    if (s->auditlog)
        return s->auditlog;
    struct mf_auditlog *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->idle = malloc(sizeof(*a->idle));
    a->check = malloc(sizeof(*a->check));
    if (!a->idle || !a->check) {
        free(a->idle);
        free(a->check);
        free(a);
        return NULL;
    }
    uv_idle_init(s->loop, a->idle);
    uv_check_init(s->loop, a->check);
    a->idle->data = s;
    a->check->data = s;
    uv_check_start(a->check, on_check);
    s->auditlog = a;
    return a;
}

/* ---- devices ---- */

static void dev_close(struct dev *d)
{
    if (d->open) {
        char err[ERR_LEN] = "";
        if (mf_audit_file_flush(&d->f, err, sizeof(err)))
            MF_ERROR(LOG_MOD, "device %s: %s", d->name, err);
        mf_audit_file_close(&d->f);
    }
    d->open = false;
    free(d->path);
    d->path = NULL;
}

static void dev_try_open(struct mf_server *s, struct mf_auditlog *a, struct dev *d)
{
    char err[ERR_LEN] = "";
    int rc = mf_audit_key_load(s, &a->key);
    if (rc)
        snprintf(err, sizeof(err), "no audit key (%s)", mf_strerror(rc));
    else if ((rc = mf_audit_file_open(&d->f, d->path, &a->key.keys, NULL, err, sizeof(err))) &&
             !err[0])
        snprintf(err, sizeof(err), "%s: %s", d->path, mf_strerror(rc));
    if (!rc) {
        d->open = true;
        d->err[0] = '\0';
        MF_INFO(LOG_MOD, "device %s: writing to %s", d->name, d->path);
    } else if (strcmp(err, d->err) != 0) {
        snprintf(d->err, sizeof(d->err), "%s", err);
        MF_ERROR(LOG_MOD, "device %s cannot write: %s; requests are refused", d->name, err);
    }
}

static void close_all(struct mf_auditlog *a)
{
    for (size_t i = 0; i < a->n; i++)
        dev_close(&a->devs[i]);
    a->n = 0;
    mf_audit_key_wipe(&a->key);
}

static struct dev *dev_find(struct mf_auditlog *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->devs[i].name, name) == 0)
            return &a->devs[i];
    return NULL;
}

/* One device record: add it, or reopen it if its path changed. */
static void sync_one(struct mf_auditlog *a, const char *name, const char *path)
{
    struct dev *d = dev_find(a, name);
    if (d && strcmp(d->path, path) != 0) {
        dev_close(d);
        d->path = strdup(path);
    } else if (!d) {
        if (a->n == MF_AUDITLOG_DEVICES_MAX || strlen(name) > MF_AUDITLOG_NAME_MAX) {
            MF_ERROR(LOG_MOD, "device %s ignored: too many devices or too long a name", name);
            return;
        }
        d = &a->devs[a->n++];
        memset(d, 0, sizeof(*d));
        snprintf(d->name, sizeof(d->name), "%s", name);
        d->path = strdup(path);
    }
    if (d->path)
        d->seen = true;
}

/* Matches the device table to the records of the state. */
static void sync_devices(struct mf_server *s)
{
    struct mf_auditlog *a = state(s);
    if (!a)
        return;
    if (mf_barrier_sealed(s->barrier))
        return close_all(a); /* no key while sealed */
    MDB_txn *txn;
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    if (mf_srv_read_begin(s, &txn))
        return;
    int rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_AUDITLOG_DEVICES_PREFIX, NULL,
                        MF_AUDITLOG_DEVICES_MAX, &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc) {
        MF_ERROR(LOG_MOD, "cannot list audit devices: %s", mf_strerror(rc));
        return;
    }
    for (size_t i = 0; i < a->n; i++)
        a->devs[i].seen = false;
    for (size_t i = 0; i < n; i++) {
        json_t *obj = NULL;
        if (mf_records_read(s, paths[i], &obj))
            continue; /* deleted */
        const char *path = json_string_value(json_object_get(obj, "path"));
        char *mine = path ? mf_audit_key_node_path(s->cfg->node_id, path) : NULL;
        if (mine)
            sync_one(a, paths[i] + strlen(MF_AUDITLOG_DEVICES_PREFIX), mine);
        free(mine);
        json_decref(obj);
    }
    mf_kv_list_free(paths, n);
    for (size_t i = 0; i < a->n;) {
        if (a->devs[i].seen) {
            if (!a->devs[i].open)
                dev_try_open(s, a, &a->devs[i]);
            i++;
            continue;
        }
        MF_INFO(LOG_MOD, "device %s: disabled", a->devs[i].name);
        dev_close(&a->devs[i]);
        a->devs[i] = a->devs[--a->n];
    }
}

static int wait_batch(struct mf_server *s, struct mf_auditlog *a, struct req *r,
                      mf_auditlog_then then);

/* Stages a system record on every open device. */
static int sys_stage(void *arg, const struct mf_audit_record *rec)
{
    struct mf_auditlog *a = arg;
    int rc = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->devs[i].open && mf_audit_file_stage(&a->devs[i].f, rec))
            rc = MF_EUNAVAIL;
    return rc;
}

/* Queued system records go into the batch (audit_system.h), if a device is
 * open to take them. */
static void sys_pump(struct mf_server *s, struct mf_auditlog *a)
{
    size_t open = 0;
    for (size_t i = 0; i < a->n; i++)
        open += a->devs[i].open;
    if (open && mf_audit_sys_pump(&a->sysq, s->cfg->node_id, &a->next_rid, mf_now_wall_ms(),
                                  sys_stage, a) && wait_batch(s, a, NULL, NULL) != 1)
        mf_audit_sys_done(&a->sysq, false); /* out of memory: again at the next tick */
}

static void sys_done(struct mf_server *s, struct mf_auditlog *a, bool ok)
{
    if (mf_audit_sys_done(&a->sysq, ok))
        sys_pump(s, a);
}

void mf_auditlog_applied(struct mf_server *s, const struct mf_raft_entry *e)
{
    /* Paths travel in clear in a KV command: a cheap filter before a look
     * (anchors, under sys/audit/anchors/, change no device). */
    static const char dev[] = MF_AUDITLOG_DEVICES_PREFIX, key[] = MF_AUDITLOG_KEY_PATH;
    if (e && e->len && e->data &&
        (memmem(e->data, e->len, dev, sizeof(dev) - 1) ||
         memmem(e->data, e->len, key, sizeof(key) - 1)))
        sync_devices(s);
    struct mf_auditlog *a = s->auditlog;
    if (a && a->n && e && e->len && e->data) { /* the cluster's own revocations */
        mf_audit_sys_events(s, e->data, e->len, &a->sysq);
        sys_pump(s, a);
    }
}

/* Where each open device's file stands, durably (audit_anchor.c anchors it). */
size_t mf_auditlog_positions(struct mf_server *s, struct mf_auditlog_position *out, size_t cap)
{
    struct mf_auditlog *a = state(s);
    size_t n = 0;
    for (size_t i = 0; a && i < a->n && n < cap; i++) {
        struct dev *d = &a->devs[i];
        if (!d->open)
            continue;
        snprintf(out[n].device, sizeof(out[n].device), "%s", d->name);
        mf_audit_file_anchor(&d->f, &out[n].at);
        if (out[n].at.seq)
            n++;
    }
    return n;
}

void mf_auditlog_tick(struct mf_server *s)
{
    struct mf_auditlog *a = state(s);
    if (!a)
        return;
    if (++a->ticks % SYNC_EVERY_TICKS == 0)
        sync_devices(s);
    sys_pump(s, a); /* retry what a device could not take */

}

void mf_auditlog_reopen(struct mf_server *s)
{
    struct mf_auditlog *a = s->auditlog;
    for (size_t i = 0; a && i < a->n; i++) {
        char err[ERR_LEN] = "";
        if (a->devs[i].open && mf_audit_file_reopen(&a->devs[i].f, NULL, err, sizeof(err)))
            MF_ERROR(LOG_MOD, "device %s: reopen: %s", a->devs[i].name, err);
    }
}

static void handle_freed(uv_handle_t *h)
{
    struct mf_server *s = h->data;
    free(h);
    mf_srv_handle_released(s);
}

static void flush_batch(struct mf_server *s);
static void orphan_job(struct mf_server *s, struct mf_auditlog *a);

void mf_auditlog_free(struct mf_server *s)
{
    struct mf_auditlog *a = s->auditlog;
    if (!a)
        return;
    a->closing = true;
    orphan_job(s, a);
    flush_batch(s); /* what waits is answered while the node still runs */
    close_all(a);
    mf_audit_sysq_free(&a->sysq);
    free(a->q);
    s->handles_open += 2; /* uv_close stops them */
    uv_close((uv_handle_t *)a->idle, handle_freed);
    uv_close((uv_handle_t *)a->check, handle_freed);
    free(a);
    s->auditlog = NULL;
}

bool mf_auditlog_active(struct mf_server *s)
{
    return s->auditlog && ((struct mf_auditlog *)s->auditlog)->n > 0;
}

/* ---- records ---- */

/* Stages rec on every device. A full batch is flushed at once (its failure
 * fails the whole batch). @return 0, or MF_EUNAVAIL with err naming the
 * first device that cannot take it now (not open, or a staging error). */
static int stage_all(struct mf_auditlog *a, const struct mf_audit_record *rec, char *err,
                     size_t err_len)
{
    int out = 0;
    for (size_t i = 0; i < a->n; i++) {
        struct dev *d = &a->devs[i];
        int rc = d->open ? mf_audit_file_stage(&d->f, rec) : MF_EUNAVAIL;
        if (rc == MF_ETOOLARGE && mf_audit_file_staged(&d->f)) {
            char why[ERR_LEN] = "";
            if (mf_audit_file_flush(&d->f, why, sizeof(why))) {
                a->batch_failed = true;
                snprintf(a->batch_err, sizeof(a->batch_err), "audit device %s cannot write",
                         d->name);
                MF_ERROR(LOG_MOD, "device %s cannot write: %s", d->name, why);
            }
            rc = mf_audit_file_stage(&d->f, rec);
        }
        if (!rc)
            continue;
        if (d->open)
            MF_ERROR(LOG_MOD, "device %s cannot take a record: %s", d->name, mf_strerror(rc));
        if (!out)
            snprintf(err, err_len, "audit device %s cannot write", d->name);
        out = MF_EUNAVAIL;
    }
    return out;
}

/* Flushes what every device staged (one write and one fdatasync each).
 * @return true when all of it is durable, else false with a->batch_err. */

static void dev_failed(struct mf_auditlog *a, struct dev *d, const char *why)
{
    if (strcmp(why, d->err) != 0) {
        snprintf(d->err, sizeof(d->err), "%s", why);
        MF_ERROR(LOG_MOD, "device %s cannot write: %s", d->name, why);
    }
    if (!a->batch_failed)
        snprintf(a->batch_err, sizeof(a->batch_err),
                 "audit device %s cannot write: the answer is withheld (a write may have "
                 "been applied)", d->name);
    a->batch_failed = true;
}

/* Flushes what every device staged (one write and one fdatasync each), on
 * the loop. @return true when all of it is durable, else false. */
static bool flush_devices(struct mf_auditlog *a)
{
    for (size_t i = 0; i < a->n; i++) {
        struct dev *d = &a->devs[i];
        char why[ERR_LEN] = "";
        if (d->open && mf_audit_file_staged(&d->f) && mf_audit_file_flush(&d->f, why, sizeof(why)))
            dev_failed(a, d, why);
    }
    bool ok = !a->batch_failed;
    a->batch_failed = false;
    return ok;
}

/* The batch q (records numbered up to `upto`) is durable, or failed: what
 * waited on it goes on. */
static void release(struct mf_server *s, struct mf_auditlog *a, struct pending *q, size_t n,
                    uint64_t upto, bool ok, const char *err)
{
    if (ok) {
        a->durable_rid = upto;
    } else {
        if (a->lost_hi < a->durable_rid)
            a->lost_lo = a->durable_rid;
        a->lost_hi = upto;
    }
    for (size_t i = 0; i < n; i++)
        if (q[i].sys)
            sys_done(s, a, ok);
        else
            q[i].then(q[i].r, ok && !q[i].lost, q[i].lost && ok ? LOST_ERR : err);
    free(q);
}

/* A batch whose fdatasyncs run on libuv's thread pool while the loop goes
 * on; the next batch gathers meanwhile and starts when this one ends. */
#define JOBS_MAX 4 /* batches in flight: each loop turn's starts at once */

struct job {
    uv_work_t work;
    struct job *next;
    bool ended;          /* its syncs returned; it ends after the older ones */
    struct mf_server *s; /* NULL once the server stopped: the job only frees itself */
    struct pending *q;
    size_t q_n, n;
    uint64_t upto;
    bool failed;
    char err[ERR_LEN];
    char names[MF_AUDITLOG_DEVICES_MAX][MF_AUDITLOG_NAME_MAX + 1];
    struct mf_audit_sync sync[MF_AUDITLOG_DEVICES_MAX];
};

static void job_run(uv_work_t *w)
{
    struct job *j = w->data;
    for (size_t i = 0; i < j->n; i++)
        mf_audit_sync_run(&j->sync[i]);
}

/* The oldest job, its syncs returned: its lines are durable or not. A
 * failure fails the younger jobs too (the device cut their lines off). */
static void job_end(struct mf_server *s, struct mf_auditlog *a, struct job *j, bool *fail)
{
    a->batch_failed = j->failed || *fail;
    snprintf(a->batch_err, sizeof(a->batch_err), "%s",
             j->err[0] ? j->err : "audit: an earlier batch failed");
    for (size_t i = 0; i < j->n; i++) {
        struct dev *d = dev_find(a, j->names[i]);
        char why[ERR_LEN] = "";
        int rc = d && d->open ? mf_audit_file_sync_end(&d->f, &j->sync[i], why, sizeof(why))
                              : j->sync[i].rc;
        if (rc && d)
            dev_failed(a, d, why);
        a->batch_failed = a->batch_failed || rc; /* a device gone meanwhile */
    }
    bool ok = !a->batch_failed;
    *fail = *fail || !ok;
    a->batch_failed = false;
    release(s, a, j->q, j->q_n, j->upto, ok, a->batch_err);
}

static void job_done(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct mf_server *s = j->s;
    (void)status;
    if (!s)
        return free(j);
    struct mf_auditlog *a = s->auditlog;
    j->ended = true;
    bool fail = false;
    while (a->jobs && a->jobs->ended) {
        struct job *head = a->jobs;
        a->jobs = head->next;
        a->jobs_n--;
        job_end(s, a, head, &fail);
        free(head);
    }
    flush_batch(s); /* what gathered meanwhile */
}

/* Writes the batch and hands its syncs to the thread pool. False: no memory
 * (the caller flushes on the loop). */
static bool start_job(struct mf_server *s, struct mf_auditlog *a)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return false;
    j->s = s;
    j->q = a->q;
    j->q_n = a->q_n;
    j->upto = a->next_rid;
    j->work.data = j;
    a->q = NULL;
    a->q_n = a->q_cap = 0;
    for (size_t i = 0; i < a->n; i++) {
        struct dev *d = &a->devs[i];
        char why[ERR_LEN] = "";
        if (!d->open || !mf_audit_file_staged(&d->f))
            continue;
        if (mf_audit_file_sync_begin(&d->f, &j->sync[j->n], why, sizeof(why)))
            dev_failed(a, d, why);
        else
            snprintf(j->names[j->n++], sizeof(j->names[0]), "%s", d->name);
    }
    j->failed = a->batch_failed;
    snprintf(j->err, sizeof(j->err), "%s", a->batch_err);
    a->batch_failed = false;
    struct job **tail = &a->jobs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = j;
    a->jobs_n++;
    if (uv_queue_work(s->loop, &j->work, job_run, job_done) != 0) {
        job_run(&j->work);
        job_done(&j->work, 0);
    }
    return true;
}

/* Server stop with a sync in flight: its waiters join the last flush on the
 * loop (which covers its lines); the job frees itself when it ends. */
static void orphan_job(struct mf_server *s, struct mf_auditlog *a)
{
    for (struct job *j = a->jobs, *next; j; j = next) {
        next = j->next;
        for (size_t i = 0; i < j->q_n; i++)
            if (wait_batch(s, a, j->q[i].r, j->q[i].then) == 1)
                a->q[a->q_n - 1].sys = j->q[i].sys;
        free(j->q);
        if (j->ended)
            free(j);
        else
            j->s = NULL;
    }
    a->jobs = NULL;
    a->jobs_n = 0;
}

/* Makes the batch durable, then lets what waited on it go on: the syncs run
 * on the thread pool while the server runs, on the loop when it stops. */
static void flush_batch(struct mf_server *s)
{
    struct mf_auditlog *a = s->auditlog;
    if (!a || a->flushing || a->jobs_n >= JOBS_MAX)
        return; /* as many batches in flight as allowed: this one waits */
    uv_idle_stop(a->idle);
    if (!a->q_n && !a->closing)
        return; /* nobody waits: what is staged rides with the next answers */
    if (!a->closing && a->q_n && start_job(s, a))
        return;
    a->flushing = true;
    do {
        struct pending *q = a->q;
        size_t n = a->q_n;
        a->q = NULL;
        a->q_n = a->q_cap = 0;
        uint64_t upto = a->next_rid;
        bool ok = flush_devices(a);
        release(s, a, q, n, upto, ok, a->batch_err);
    } while (a->q_n);
    a->flushing = false;
}

static void on_check(uv_check_t *h)
{
    flush_batch(h->data);
}

/* Queues r to go on after the batch's flush. @return 1; -ENOMEM. */
static int wait_batch(struct mf_server *s, struct mf_auditlog *a, struct req *r,
                      mf_auditlog_then then)
{
    if (a->q_n == a->q_cap) {
        size_t cap = a->q_cap ? 2 * a->q_cap : 64;
        struct pending *q = realloc(a->q, cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        a->q = q;
        a->q_cap = cap;
    }
    bool lost = r && !r->audit_rid_node && r->audit_rid > a->lost_lo && r->audit_rid <= a->lost_hi;
    a->q[a->q_n++] = (struct pending){r, then, lost, !r};
    if (!a->flushing && a->jobs_n < JOBS_MAX)
        uv_idle_start(a->idle, noop_idle); /* the poll must not block: flush first */
    (void)s;
    return 1;
}

/* Writes what each device staged and did not write yet (no sync). @return 0,
 * or MF_EUNAVAIL with err naming the first device that failed. */
static int write_devices(struct mf_auditlog *a, char *err, size_t err_len)
{
    int out = 0;
    for (size_t i = 0; i < a->n; i++) {
        struct dev *d = &a->devs[i];
        char why[ERR_LEN] = "";
        if (!d->open || !mf_audit_file_write(&d->f, why, sizeof(why)))
            continue;
        MF_ERROR(LOG_MOD, "device %s cannot write: %s", d->name, why);
        if (!out)
            snprintf(err, err_len, "audit device %s cannot write", d->name);
        out = MF_EUNAVAIL;
    }
    return out;
}

int mf_auditlog_request(struct req *r, const char *op, const char *path,
                        const struct mf_authz_decision *dec, bool write_now, char *err,
                        size_t err_len)
{
    struct mf_auditlog *a = r->srv->auditlog;
    r->audit_op = op;
    if (path && !r->audit_path)
        r->audit_path = strdup(path);
    if (!a || a->n == 0)
        return 0;
    struct mf_audit_base b;
    struct mf_audit_record rec = {0};
    mf_audit_fields_base(r, &a->next_rid, &b, &rec);
    rec.decision.allowed = dec ? dec->allowed : true;
    rec.decision.policy = dec ? dec->policy : NULL;
    rec.decision.rule = dec ? dec->pattern : NULL;
    rec.result = rec.decision.allowed ? "ALLOWED" : "PERMISSION_DENIED";
    struct mf_audit_fields sec = {.n = 0};
    uint8_t *packed = NULL;
    mf_audit_fields_request(r->pb, &sec, &packed, &rec.lease_id);
    rec.secrets = sec.v;
    rec.secrets_n = sec.n;
    int rc = stage_all(a, &rec, err, err_len);
    free(packed);
    if (!rc && write_now)
        rc = write_devices(a, err, err_len);
    return rc ? rc : 1;
}

int mf_auditlog_response(struct req *r, int code, const void *resp_v, mf_auditlog_then then)
{
    struct mf_auditlog *a = r->srv->auditlog;
    if (!a || a->n == 0)
        return 0;
    const Mayfly__Api__Response *resp = resp_v;
    struct mf_audit_base b;
    struct mf_audit_record rec = {0};
    mf_audit_fields_base(r, &a->next_rid, &b, &rec);
    rec.decision.allowed = code != MF_EPERM;
    rec.result = code ? mf_err_name(code) : "OK";
    struct mf_audit_fields sec = {.n = 0};
    mf_audit_fields_response(resp, &sec, &rec.lease_id);
    rec.secrets = sec.v;
    rec.secrets_n = sec.n;
    char err[ERR_LEN] = "";
    bool staged = stage_all(a, &rec, err, sizeof(err)) == 0;
    if (wait_batch(r->srv, a, r, then) == 1) {
        if (!staged) /* fail closed: the answer is refused at the flush */
            a->q[a->q_n - 1].lost = true;
        return 1;
    }
    MF_ERROR(LOG_MOD, "record %s (%s, %s) of an answer that leaves now is NOT on disk: %s",
             b.rid, rec.operation, rec.result, err[0] ? err : "out of memory");
    return 0;
}

int mf_auditlog_hash(struct mf_server *s, const char *value, size_t len,
                     char out[MF_AUDIT_HASH_STR_BYTES])
{
    struct mf_auditlog *a = state(s);
    if (!a)
        return -ENOMEM;
    if (mf_barrier_sealed(s->barrier))
        return MF_ESEALED;
    if (!mf_audit_key_hash_allowed(&a->key, mf_now_mono_ms()))
        return MF_ERATELIMIT;
    int rc = mf_audit_key_load(s, &a->key);
    return rc ? rc : mf_audit_hash(&a->key.keys, value, len, out);
}

int mf_auditlog_chain_key_hex(struct mf_server *s, char out[2 * MF_AUDIT_KEY_BYTES + 1],
                              char key_id[MF_AUDIT_KEY_ID_LEN + 1])
{
    struct mf_auditlog *a = state(s);
    if (!a)
        return -ENOMEM;
    if (mf_barrier_sealed(s->barrier))
        return MF_ESEALED;
    int rc = mf_audit_key_load(s, &a->key);
    if (rc)
        return rc;
    mf_audit_key_hex(a->key.keys.chain_key, MF_AUDIT_KEY_BYTES, out);
    memcpy(key_id, a->key.keys.key_id, MF_AUDIT_KEY_ID_LEN + 1);
    return 0;
}
