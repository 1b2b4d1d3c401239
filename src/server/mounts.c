/* Engine mounts on the leader (mounts.h): configs and roles read from the
 * reserved records, engine calls queued per mount and run one at a time on
 * libuv's thread pool (an engine instance is used by one thread at a time). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/mounts.h"
#include "server/proposer.h"
#include "server/records.h"
#include "store/kv.h"
#include "store/leases.h"
#include "engines/pki.h"
#include "engines/postgres.h"

#define LOG_MOD "engines"
#define MOUNT_ROLES_MAX 256

struct role_limits {
    char name[128];
    uint64_t default_ttl_ms;
    uint64_t max_ttl_ms;
};

struct mf_mount {
    struct mf_mount *next;
    struct mf_server *srv;
    char name[MF_LEASE_MOUNT_MAX + 1];
    const struct mf_engine_ops *ops;
    struct mf_engine *eng;      /* opened on a worker; NULL until then */
    int open_rc;                /* last open failure, 0 if fine */
    struct role_limits roles[MOUNT_ROLES_MAX];
    size_t roles_len;
    struct mf_mjob *head, *tail;
    bool running;
    bool closing;               /* server stopping: free when the running call ends */
    bool probe;                 /* a throwaway instance for enable: freed after its job */
    uint64_t gen;               /* this opening of the mount (mf_mount_gen) */
};

struct mf_mounts {
    struct mf_mount *live;         /* engines opened on this leader */
    struct mf_mount *dead;         /* replaced, closing after their queued calls */
    uint64_t next_gen;
};

/* ---- config records ---- */

static void config_path(const char *mount, char *buf, size_t len)
{
    snprintf(buf, len, "sys/engines/%s", mount);
}

static void parse_role_limits(struct role_limits *rl, const char *role, const char *role_json)
{
    memset(rl, 0, sizeof(*rl));
    snprintf(rl->name, sizeof(rl->name), "%s", role);
    json_error_t je;
    json_t *o = json_loads(role_json, 0, &je);
    json_t *d = json_object_get(o, "default_ttl_ms"), *m = json_object_get(o, "max_ttl_ms");
    if (json_is_integer(d) && json_integer_value(d) > 0)
        rl->default_ttl_ms = (uint64_t)json_integer_value(d);
    if (json_is_integer(m) && json_integer_value(m) > 0)
        rl->max_ttl_ms = (uint64_t)json_integer_value(m);
    json_decref(o);
}

/* ---- jobs ---- */

enum mjob_kind {
    MJOB_OPEN, MJOB_ROLE_PUT, MJOB_ISSUE, MJOB_REVOKE, MJOB_LIST, MJOB_CLOSE,
    MJOB_ROTATE_ROOT, /* postgres: new admin password; text = the new config */
    MJOB_CRL,         /* pki: text = the signed CRL */
};

struct mf_mjob {
    struct mf_mjob *next;
    struct mf_mount *m;
    enum mjob_kind kind;
    uv_work_t work;
    int rc;
    char err[MF_ENGINE_ERR_LEN];
    /* arguments */
    char *config_json;          /* OPEN (wiped after) */
    char **role_names, **role_jsons;
    size_t roles_len;           /* OPEN, ROLE_PUT */
    char role[128];             /* ISSUE */
    uint64_t seq, expire_at_ms; /* ISSUE */
    uint64_t *seqs;             /* REVOKE, LIST (out) */
    int *results;
    size_t n, cap;
    struct mf_engine_cred cred; /* ISSUE (out) */
    struct mf_engine *to_close; /* CLOSE */
    char *text;                 /* ROTATE_ROOT, CRL (out; wiped) */
    uint64_t now_ms;            /* CRL */
    mf_mjob_done_cb done;
    void *arg;
};

static void job_free(struct mf_mjob *j)
{
    if (j->config_json) {
        OPENSSL_cleanse(j->config_json, strlen(j->config_json));
        free(j->config_json);
    }
    for (size_t i = 0; i < j->roles_len; i++) {
        free(j->role_names[i]);
        free(j->role_jsons[i]);
    }
    free(j->role_names);
    free(j->role_jsons);
    free(j->seqs);
    free(j->results);
    mf_engine_cred_free(&j->cred);
    if (j->text) {
        OPENSSL_cleanse(j->text, strlen(j->text));
        free(j->text);
    }
    free(j);
}

static void list_cb(void *arg, uint64_t seq)
{
    struct mf_mjob *j = arg;
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 256;
        uint64_t *ns = realloc(j->seqs, cap * sizeof(*ns));
        if (!ns)
            return;
        j->seqs = ns;
        j->cap = cap;
    }
    j->seqs[j->n++] = seq;
}

/* Worker thread: the only place an engine is called. */
static void job_work(uv_work_t *w)
{
    struct mf_mjob *j = w->data;
    struct mf_mount *m = j->m;
    char *err = j->err;
    size_t el = sizeof(j->err);
    if (j->kind != MJOB_OPEN && j->kind != MJOB_CLOSE && !m->eng) {
        j->rc = m->open_rc ? m->open_rc : MF_EUNAVAIL;
        snprintf(err, el, "engine at '%s' is not open", m->name);
        return;
    }
    switch (j->kind) {
    case MJOB_OPEN:
        j->rc = m->ops->open(j->config_json, &m->eng, err, el);
        m->open_rc = j->rc;
        for (size_t i = 0; !j->rc && i < j->roles_len; i++)
            j->rc = m->ops->role_put(m->eng, j->role_names[i], j->role_jsons[i], err, el);
        break;
    case MJOB_ROLE_PUT:
        j->rc = m->ops->role_put(m->eng, j->role_names[0], j->role_jsons[0], err, el);
        break;
    case MJOB_ISSUE:
        j->rc = m->ops->issue(m->eng, j->role, j->seq, j->expire_at_ms, &j->cred, err, el);
        break;
    case MJOB_REVOKE:
        j->rc = m->ops->revoke(m->eng, j->seqs, j->n, j->results, err, el);
        break;
    case MJOB_LIST:
        j->rc = m->ops->list(m->eng, list_cb, j, err, el);
        break;
    case MJOB_CLOSE:
        if (j->to_close)
            m->ops->close(j->to_close);
        break;
    case MJOB_ROTATE_ROOT:
        if (strcmp(m->ops->type, "postgres") != 0) {
            j->rc = MF_EINVAL;
            snprintf(err, el, "rotate-root applies to postgres engines");
            break;
        }
        j->rc = mf_pg_rotate_root(m->eng, &j->text, err, el);
        break;
    case MJOB_CRL:
        if (strcmp(m->ops->type, "pki") != 0) {
            j->rc = MF_EINVAL;
            snprintf(err, el, "a CRL comes from a pki engine");
            break;
        }
        j->rc = mf_pki_crl_pem(m->eng, j->now_ms, j->now_ms, &j->text);
        if (j->rc)
            snprintf(err, el, "cannot sign the CRL: %s", mf_strerror(j->rc));
        break;
    }
}

static void job_start_next(struct mf_mount *m);

/* A pki engine keeps its revoked set in memory: rebuild it from the
 * replicated leases of this mount (revoking or revoked), so a new leader's
 * CRL lists what earlier leaders revoked. O(leases of the mount), at open. */
static void import_revoked(struct mf_mount *m)
{
    struct mf_server *s = m->srv;
    char prefix[MF_LEASE_PREFIX_MAX + 2], after[MF_LEASE_ID_MAX] = "";
    snprintf(prefix, sizeof(prefix), "%s/", m->name);
    const int states[] = {MAYFLY__CMD__LEASE_STATE__LEASE_REVOKING,
                          MAYFLY__CMD__LEASE_STATE__LEASE_REVOKED};
    for (size_t k = 0; k < 2; k++) {
        after[0] = '\0';
        for (;;) {
            MDB_txn *txn;
            if (mf_srv_read_begin(s, &txn))
                return;
            struct mf_lease_item *items = NULL;
            size_t n = 0;
            int more = 0;
            int rc = mf_lease_list(txn, mf_fsm_state(s->fsm), prefix, states[k],
                                   after[0] ? after : NULL, 10000, &items, &n, &more);
            mf_srv_read_end(s, txn);
            if (rc)
                return;
            for (size_t i = 0; i < n; i++)
                mf_pki_revoked_add(m->eng, items[i].seq,
                                   items[i].rec->revoked_ms ? items[i].rec->revoked_ms
                                                            : mf_now_wall_ms(),
                                   items[i].rec->expire_at_ms);
            if (n)
                snprintf(after, sizeof(after), "%s", items[n - 1].id);
            mf_lease_list_free(items, n);
            if (!more || !n)
                break;
        }
    }
}

static void unlink_dead(struct mf_server *s, struct mf_mount *m)
{
    for (struct mf_mount **pp = &s->mounts->dead; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            return;
        }
}

static void job_after(uv_work_t *w, int status)
{
    struct mf_mjob *j = w->data;
    struct mf_mount *m = j->m;
    (void)status;
    m->running = false;
    if (m->closing) { /* the server is gone: close quietly */
        if (m->eng)
            m->ops->close(m->eng);
        job_free(j);
        free(m);
        return;
    }
    if (j->kind == MJOB_CLOSE) {
        unlink_dead(m->srv, m);
        job_free(j);
        free(m);
        return;
    }
    if (j->kind == MJOB_OPEN && !j->rc && !m->probe && strcmp(m->ops->type, "pki") == 0)
        import_revoked(m); /* the engine is idle: no call runs until the next is started */
    if (j->kind == MJOB_OPEN && j->rc) {
        MF_WARN(LOG_MOD, "cannot open engine '%s': %s", m->name, j->err);
        if (m->eng) {
            m->ops->close(m->eng); /* opened but a role failed: start clean next time */
            m->eng = NULL;
        }
    }
    if (j->done)
        j->done(m->srv, j, j->arg);
    job_free(j);
    if (m->probe) {
        if (m->eng)
            m->ops->close(m->eng);
        free(m);
        return;
    }
    job_start_next(m);
}

static void job_start_next(struct mf_mount *m)
{
    while (!m->running && m->head) {
        struct mf_mjob *j = m->head;
        m->head = j->next;
        if (!m->head)
            m->tail = NULL;
        if (!mf_proposer_leading(m->srv->prop) && j->kind != MJOB_CLOSE) {
            /* A deposed leader starts no engine call. */
            j->rc = MF_ENOTLEADER;
            snprintf(j->err, sizeof(j->err), "not the leader any more");
            if (j->done)
                j->done(m->srv, j, j->arg);
            job_free(j);
            continue;
        }
        m->running = true;
        j->work.data = j;
        uv_queue_work(m->srv->loop, &j->work, job_work, job_after);
    }
    if (m->probe && !m->running && !m->head)
        free(m); /* its only job was refused */
}

static struct mf_mjob *job_new(struct mf_mount *m, enum mjob_kind kind, mf_mjob_done_cb done,
                               void *arg)
{
    struct mf_mjob *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->m = m;
    j->kind = kind;
    j->done = done;
    j->arg = arg;
    return j;
}

static void job_submit(struct mf_mjob *j)
{
    struct mf_mount *m = j->m;
    if (m->tail)
        m->tail->next = j;
    else
        m->head = j;
    m->tail = j;
    job_start_next(m);
}

/* ---- mounts ---- */

int mf_mounts_init(struct mf_server *s)
{
    s->mounts = calloc(1, sizeof(*s->mounts));
    return s->mounts ? 0 : -ENOMEM;
}

/* The open mount `name` (NULL: the first one), or NULL. */
struct mf_mount *mf_mounts_find(struct mf_server *s, const char *name)
{
    for (struct mf_mount *m = s->mounts ? s->mounts->live : NULL; m; m = m->next)
        if (!name || strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

/* Role records of a mount, decrypted (names and JSON texts, malloc'd). */
static int load_roles(struct mf_server *s, struct mf_mount *m, struct mf_mjob *j)
{
    char prefix[MF_KV_PATH_MAX];
    snprintf(prefix, sizeof(prefix), "sys/engines/%s/roles/", m->name);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    rc = mf_kv_list(txn, mf_fsm_state(s->fsm), prefix, NULL, MOUNT_ROLES_MAX, &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return rc;
    j->role_names = calloc(n ? n : 1, sizeof(char *));
    j->role_jsons = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n && j->role_names && j->role_jsons; i++) {
        json_t *rec = NULL;
        if (mf_records_read(s, paths[i], &rec))
            continue;
        const char *text = json_string_value(json_object_get(rec, "role"));
        if (text) {
            const char *name = paths[i] + strlen(prefix);
            j->role_names[j->roles_len] = strdup(name);
            j->role_jsons[j->roles_len] = strdup(text);
            j->roles_len++;
            if (m->roles_len < MOUNT_ROLES_MAX)
                parse_role_limits(&m->roles[m->roles_len++], name, text);
        }
        json_decref(rec);
    }
    mf_kv_list_free(paths, n);
    return 0;
}

/* The mount, opened (or being opened) on the leader. NOT_FOUND if no engine
 * is mounted there. */
int mf_mounts_get(struct mf_server *s, const char *name, struct mf_mount **out)
{
    if (!s->mounts)
        return MF_ECLOSED; /* the server is stopping */
    struct mf_mount *m = mf_mounts_find(s, name);
    if (m) {
        *out = m;
        return 0;
    }
    char path[MF_KV_PATH_MAX];
    config_path(name, path, sizeof(path));
    json_t *rec = NULL;
    int rc = mf_records_read(s, path, &rec);
    if (rc)
        return rc == MF_ENOTFOUND ? MF_ENOTFOUND : rc;
    const char *type = json_string_value(json_object_get(rec, "type"));
    const char *config = json_string_value(json_object_get(rec, "config"));
    const struct mf_engine_ops *ops = type ? mf_engine_find(type) : NULL;
    if (!ops || !config) {
        json_decref(rec);
        return MF_ECORRUPT;
    }
    m = calloc(1, sizeof(*m));
    struct mf_mjob *j = m ? job_new(m, MJOB_OPEN, NULL, NULL) : NULL;
    if (!m || !j) {
        free(m);
        json_decref(rec);
        return -ENOMEM;
    }
    m->srv = s;
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->ops = ops;
    j->config_json = strdup(config);
    json_decref(rec); /* jansson does not wipe; the record lived only briefly */
    load_roles(s, m, j);
    m->gen = ++s->mounts->next_gen;
    m->next = s->mounts->live;
    s->mounts->live = m;
    job_submit(j);
    *out = m;
    return 0;
}

/* Forget a mount (its config changed): close its engine after queued calls. */
static void drop_mount(struct mf_server *s, const char *name)
{
    for (struct mf_mount **pp = &s->mounts->live; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) != 0)
            continue;
        struct mf_mount *m = *pp;
        *pp = m->next;
        /* The mount struct is freed once its queue drains: hand it to a close job. */
        struct mf_mjob *j = job_new(m, MJOB_CLOSE, NULL, NULL);
        if (j) {
            j->to_close = m->eng;
            m->eng = NULL;
            m->next = s->mounts->dead;
            s->mounts->dead = m;
            job_submit(j);
        }
        return;
    }
}

/* Leadership lost: every mount closes after its queued calls (which are
 * refused: not the leader), and is reopened lazily if we lead again. */
void mf_mounts_drop_all(struct mf_server *s)
{
    while (s->mounts && s->mounts->live)
        drop_mount(s, s->mounts->live->name);
}

bool mf_mounts_role_ttl(struct mf_mount *m, const char *role, uint64_t *def_ms, uint64_t *max_ms)
{
    for (size_t i = 0; i < m->roles_len; i++) {
        if (strcmp(m->roles[i].name, role) == 0) {
            *def_ms = m->roles[i].default_ttl_ms;
            *max_ms = m->roles[i].max_ttl_ms;
            return true;
        }
    }
    return false;
}

const char *mf_mount_name(const struct mf_mount *m)
{
    return m->name;
}

int mf_mounts_role_put(struct mf_mount *m, const char *role, const char *role_json,
                       mf_mjob_done_cb done, void *arg)
{
    struct mf_mjob *j = job_new(m, MJOB_ROLE_PUT, done, arg);
    if (!j)
        return -ENOMEM;
    j->role_names = calloc(1, sizeof(char *));
    j->role_jsons = calloc(1, sizeof(char *));
    if (!j->role_names || !j->role_jsons || !(j->role_names[0] = strdup(role)) ||
        !(j->role_jsons[0] = strdup(role_json))) {
        j->roles_len = 1;
        job_free(j);
        return -ENOMEM;
    }
    j->roles_len = 1;
    job_submit(j);
    return 0;
}

/* Opens a throwaway instance of `type` with `config` on a worker (enable:
 * check the config works, and let pki generate its CA); `done` gets the job,
 * whose engine it may use on the loop (mf_mjob_engine) before it is closed. */
int mf_mounts_probe(struct mf_server *s, const char *type, const char *config,
                    mf_mjob_done_cb done, void *arg)
{
    const struct mf_engine_ops *ops = mf_engine_find(type);
    if (!ops)
        return MF_EINVAL;
    struct mf_mount *m = calloc(1, sizeof(*m));
    struct mf_mjob *j = m ? job_new(m, MJOB_OPEN, done, arg) : NULL;
    if (!m || !j || !(j->config_json = strdup(config))) {
        free(m);
        if (j)
            job_free(j);
        return -ENOMEM;
    }
    m->srv = s;
    m->ops = ops;
    snprintf(m->name, sizeof(m->name), "(probe)");
    m->probe = true;
    job_submit(j);
    return 0;
}

struct mf_engine *mf_mjob_engine(const struct mf_mjob *j)
{
    return j->m->eng;
}

int mf_mounts_issue(struct mf_mount *m, const char *role, uint64_t seq, uint64_t expire_at_ms,
                    mf_mjob_done_cb done, void *arg)
{
    struct mf_mjob *j = job_new(m, MJOB_ISSUE, done, arg);
    if (!j)
        return -ENOMEM;
    snprintf(j->role, sizeof(j->role), "%s", role);
    j->seq = seq;
    j->expire_at_ms = expire_at_ms;
    job_submit(j);
    return 0;
}

int mf_mounts_revoke(struct mf_mount *m, const uint64_t *seqs, size_t n, mf_mjob_done_cb done,
                     void *arg)
{
    struct mf_mjob *j = job_new(m, MJOB_REVOKE, done, arg);
    if (!j)
        return -ENOMEM;
    j->seqs = malloc(n * sizeof(*seqs));
    j->results = calloc(n, sizeof(int));
    if (!j->seqs || !j->results) {
        job_free(j);
        return -ENOMEM;
    }
    memcpy(j->seqs, seqs, n * sizeof(*seqs));
    j->n = n;
    job_submit(j);
    return 0;
}

int mf_mounts_rotate_root(struct mf_mount *m, mf_mjob_done_cb done, void *arg)
{
    struct mf_mjob *j = job_new(m, MJOB_ROTATE_ROOT, done, arg);
    if (!j)
        return -ENOMEM;
    job_submit(j);
    return 0;
}

int mf_mounts_crl(struct mf_mount *m, uint64_t now_ms, mf_mjob_done_cb done, void *arg)
{
    struct mf_mjob *j = job_new(m, MJOB_CRL, done, arg);
    if (!j)
        return -ENOMEM;
    j->now_ms = now_ms;
    job_submit(j);
    return 0;
}

const char *mf_mjob_text(const struct mf_mjob *j) { return j->text; }
const char *mf_mount_type(const struct mf_mount *m) { return m->ops->type; }

int mf_mounts_list(struct mf_mount *m, mf_mjob_done_cb done, void *arg)
{
    struct mf_mjob *j = job_new(m, MJOB_LIST, done, arg);
    if (!j)
        return -ENOMEM;
    job_submit(j);
    return 0;
}

/* Accessors for job results (the job is freed after `done` returns). */
int mf_mjob_rc(const struct mf_mjob *j) { return j->rc; }
const char *mf_mjob_err(const struct mf_mjob *j) { return j->err; }
const struct mf_engine_cred *mf_mjob_cred(const struct mf_mjob *j) { return &j->cred; }
const uint64_t *mf_mjob_seqs(const struct mf_mjob *j, size_t *n) { *n = j->n; return j->seqs; }
const int *mf_mjob_results(const struct mf_mjob *j) { return j->results; }

struct mf_mount *mf_mounts_first(struct mf_server *s) { return mf_mounts_find(s, NULL); }
struct mf_mount *mf_mounts_next(struct mf_mount *m) { return m->next; }
uint64_t mf_mount_gen(const struct mf_mount *m) { return m->gen; }

void mf_mounts_open_all(struct mf_server *s)
{
    MDB_txn *txn;
    if (mf_srv_read_begin(s, &txn))
        return;
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    int rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_MOUNTS_ENGINES_PREFIX, NULL, MF_SRV_LIST_LIMIT_MAX,
                        &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *rest = paths[i] + strlen(MF_MOUNTS_ENGINES_PREFIX);
        struct mf_mount *m;
        if (!strstr(rest, "/roles/") && mf_mounts_get(s, rest, &m) != 0)
            MF_WARN(LOG_MOD, "cannot open the engine at '%s'", rest);
    }
    mf_kv_list_free(paths, n);
}

/* Applied: a record under sys/engines/ changed; bring the open mount in line. */
void mf_mounts_record_changed(struct mf_server *s, const char *path)
{
    const char *rest = path + strlen(MF_MOUNTS_ENGINES_PREFIX);
    const char *roles = strstr(rest, "/roles/");
    char mount[MF_LEASE_MOUNT_MAX + 1];
    size_t mlen = roles ? (size_t)(roles - rest) : strlen(rest);
    if (mlen >= sizeof(mount))
        return;
    memcpy(mount, rest, mlen);
    mount[mlen] = '\0';
    struct mf_mount *m = mf_mounts_find(s, mount);
    if (!roles) {
        /* A new or changed config: (re)open now, so the mount's reconciler
         * and CRL start without waiting for a client. */
        if (m)
            drop_mount(s, mount);
        if (mf_proposer_leading(s->prop) && mf_mounts_get(s, mount, &m) != 0)
            MF_WARN(LOG_MOD, "cannot open the engine at '%s'", mount);
        return;
    }
    if (!m)
        return;
    const char *role = roles + strlen("/roles/");
    json_t *rec = NULL;
    if (mf_records_read(s, path, &rec))
        return;
    const char *text = json_string_value(json_object_get(rec, "role"));
    if (text && mf_mounts_role_put(m, role, text, NULL, NULL) == 0) {
        size_t i = 0;
        while (i < m->roles_len && strcmp(m->roles[i].name, role) != 0)
            i++;
        if (i < MOUNT_ROLES_MAX) {
            parse_role_limits(&m->roles[i], role, text);
            if (i == m->roles_len)
                m->roles_len++;
        }
    }
    json_decref(rec);
}

static void free_mount_list(struct mf_mount *m)
{
    while (m) {
        struct mf_mount *next = m->next;
        while (m->head) { /* queued calls never start: tell their owners now */
            struct mf_mjob *j = m->head;
            m->head = j->next;
            j->rc = MF_ECLOSED;
            snprintf(j->err, sizeof(j->err), "server stopping");
            if (j->done)
                j->done(m->srv, j, j->arg);
            job_free(j);
        }
        m->tail = NULL;
        if (m->running) {
            m->closing = true; /* job_after frees it */
        } else {
            if (m->eng)
                m->ops->close(m->eng);
            free(m);
        }
        m = next;
    }
}

/* At stop: queued calls fail now; a call already running finishes on its
 * worker and its mount is freed then, without touching the server. */
void mf_mounts_close_all(struct mf_server *s)
{
    if (!s->mounts)
        return;
    free_mount_list(s->mounts->live);
    free_mount_list(s->mounts->dead);
    free(s->mounts);
    s->mounts = NULL;
}
