/* Internals shared by the server's files (server.c: lifecycle and state
 * machine; api.c: client connections, dispatch and forwarding; ops.c: the
 * operations). Not a public header. */
#ifndef MF_SERVER_SRV_INT_H
#define MF_SERVER_SRV_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "mayfly.pb-c.h"
#include "net/conn.h"
#include "server/node.h"
#include "server/server.h"
#include "engines/engine.h"
#include "store/barrier.h"
#include "store/fsm.h"
#include "store/seal.h"

#define MF_SRV_CONN_INFLIGHT_MAX 1024   /* requests in flight per client connection */
#define MF_SRV_FORWARD_TIMEOUT_MS 10000 /* a forwarded request with no answer */
#define MF_SRV_LIST_LIMIT_DEFAULT 100
#define MF_SRV_LIST_LIMIT_MAX 10000
#define MF_SRV_TOKEN_PREFIX "mf."
#define MF_SRV_TOKEN_TTL_DEFAULT_MS (UINT64_C(768) * 3600 * 1000)
#define MF_SRV_LEASE_ERROR_PATH "sys/lease-error" /* AAD path of a lease's last_error */
#define MF_SRV_REVOKED_RETENTION_MS (UINT64_C(24) * 3600 * 1000)

/* Application tags on the peer transport (node.h: >= 16). */
enum {
    MF_SRV_TAG_FWD_REQ = 16,  /* [fwd id: 8 BE][Request] follower -> leader */
    MF_SRV_TAG_FWD_RESP = 17, /* [fwd id: 8 BE][Response] leader -> follower */
};

#define MF_METRICS_BUCKETS 10

/* Figures for /metrics, copied to the HTTP thread under a lock. */
struct mf_metrics_snapshot {
    int role;
    bool sealed;
    bool failed;
    uint64_t term, commit, applied, leader;
    uint64_t expired, revoked, retries, irrevocable, reconciled, engine_calls;
    uint64_t batches, entries_persisted, entries_applied;
    uint64_t lateness_buckets[MF_METRICS_BUCKETS];
    uint64_t lateness_count, lateness_sum_ms, lateness_max_ms;
    uint64_t leases[MF_LEASE_STATES]; /* replicated state: leases by state */
};

struct mf_metrics;
struct mount;

/* The KV version of sys/crl/<mount> last copied to the HTTP table (crl.c). */
#define MF_SRV_CRL_MOUNTS_MAX 64
struct mf_crl_seen {
    char mount[65]; /* MF_LEASE_MOUNT_MAX + 1 */
    uint64_t version;
};

/* A pki mount's CRL publishing, on the leader (crl.c). */
struct mf_crl_state {
    bool inflight;          /* signing or storing one now */
    bool dirty;             /* something was revoked meanwhile: publish again */
    uint64_t refresh_at_ms; /* publish again by then (half the CRL's validity) */
};
struct mf_mjob;
typedef void (*mf_mjob_done_cb)(struct mf_server *s, struct mf_mjob *j, void *arg);

struct client_conn {
    struct mf_server *srv;
    struct mf_conn *conn;     /* NULL once closed */
    unsigned refs;            /* the connection itself + requests in flight */
    unsigned inflight;
    bool paused;
};

/* One request being served, from a client connection or forwarded by a peer. */
struct req {
    struct mf_server *srv;
    Mayfly__Api__Request *pb;
    struct client_conn *cc;   /* client origin */
    uint64_t peer;            /* peer origin (forwarded): node id, fwd id */
    uint64_t fwd_id;
    uint8_t token_hash[32];
    bool has_token;
    /* For a proposal: what the answer needs beyond the fsm's Result. */
    uint64_t seq;
    uint64_t write_id;
    uint8_t rid_suffix;       /* appended to the request id of a chained command */
    uint64_t expire_at_ms;    /* creds issue: the lease's expiry */
    uint64_t count_acc;       /* revoke-prefix: leases moved by earlier commands */
    char *secret_plain;       /* wiped and freed with the request */
    void *op_state;           /* an operation's own state (init: the shares) */
    void (*op_state_free)(void *op_state);
    struct req *next_fwd;     /* forwarded-out list (follower side) */
    /* The server's own requests (scheduler): told the outcome, no answer. */
    void (*internal_done)(struct mf_server *s, int rc, void *arg);
    void *internal_arg;
    uint64_t fwd_deadline_ms;
};

struct mf_server {
    uv_loop_t *loop;
    const struct mf_config *cfg;
    bool dev;
    mf_server_ready_cb ready_cb;
    bool ready_sent;
    SSL_CTX *peer_server_ctx;
    SSL_CTX *peer_client_ctx;
    SSL_CTX *client_ctx;
    struct mf_fsm *fsm;
    pthread_rwlock_t state_lock; /* readers vs a snapshot install (writer thread) */
    struct mf_node *node;
    struct mf_barrier *barrier;
    struct mf_seal *seal;
    struct mf_listener *listener;
    uv_timer_t housekeeping;
    bool housekeeping_started;
    char client_addr[64];
    enum mf_raft_role role;
    uint64_t leader;
    uint64_t last_now_ms;     /* leader: the greatest now proposed */
    uint64_t applied_now_ms;  /* written by the writer thread (atomic) */
    uint64_t next_fwd_id;
    struct req *fwd_head;     /* requests forwarded to the leader, oldest first */
    struct req *fwd_tail;
    /* Revocation scheduler (scheduler.c). */
    uv_timer_t sched_timer;
    bool sched_started;
    bool sched_expire_inflight;
    bool sched_revoked_inflight;
    struct revoked_ctx *sched_revoked_pending; /* LeaseRevoked proposals in flight */
    uint64_t sched_armed_at_ms;   /* expire_at the timer aims at (0: idle) */
    uint64_t sched_next_tidy_ms;
    uint64_t sched_expired;       /* leases proposed for expiry */
    uint64_t sched_revoked;       /* leases proposed as revoked */
    uint64_t sched_retries;       /* failed engine revocations (retried) */
    uint64_t sched_irrevocable;   /* leases this leader gave up on */
    uint64_t sched_reconciled;    /* orphan objects the reconciler revoked */
    uint64_t sched_engine_calls;  /* leases sent to an engine's revoke (repeats included) */
    unsigned handles_open;        /* handles inside this struct still closing */
    struct mf_metrics *metrics;   /* NULL when disabled */
    struct mount *mounts;         /* engines opened on this leader (mounts.c) */
    struct mount *dead_mounts;    /* replaced, closing after their queued calls */
    struct mf_metrics_snapshot mstats; /* loop thread's copy */
    struct mf_crl_seen crl_seen[MF_SRV_CRL_MOUNTS_MAX]; /* crl.c, loop thread */
    size_t crl_seen_len;
    uint64_t crl_checked_index;
    bool mounts_opened;           /* this leader opened every recorded mount */
    bool dev_init_started;
    char *dev_root_token;
    int failed;
};

/* server.c */
uint64_t mf_srv_leader_now(struct mf_server *s);
bool mf_srv_initialized(struct mf_server *s);
int mf_srv_keyring_blob(struct mf_server *s, uint8_t **blob, size_t *len);
void mf_srv_try_auto_unseal(struct mf_server *s);
/* Read transactions on the state: every loop-thread read goes through these
 * (a snapshot install must not swap the file under an open reader). */
int mf_srv_read_begin(struct mf_server *s, MDB_txn **txn);
void mf_srv_read_end(struct mf_server *s, MDB_txn *txn);

/* api.c */
int mf_api_listen(struct mf_server *s);
void mf_api_close(struct mf_server *s);
void mf_api_reply(struct req *r, Mayfly__Api__Response *resp);
void mf_api_reply_error(struct req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mf_api_peer_message(struct mf_server *s, uint64_t from, uint8_t tag, const uint8_t *data,
                         size_t len);
void mf_api_expire_forwards(struct mf_server *s);
void mf_api_fail_forwards(struct mf_server *s, int code);
/* Follower: send r to the leader; the answer is relayed when it comes. */
int mf_api_forward(struct mf_server *s, struct req *r);
void mf_req_free(struct req *r);
/* A request of the server's own (scheduler, dev init, cleanups): no client to
 * answer; `done` (may be NULL) is told the outcome. NULL if out of memory. */
struct req *mf_req_internal(struct mf_server *s, void (*done)(struct mf_server *, int, void *));

/* scheduler.c */
void mf_sched_init(struct mf_server *s);
void mf_sched_role_changed(struct mf_server *s);
/* A command applied with this expire_at (lease grant/renew): maybe earlier. */
void mf_sched_applied(struct mf_server *s, uint64_t expire_at_ms);
void mf_sched_close(struct mf_server *s);
/* Close callback for handles embedded in struct mf_server: frees it after the last. */
void mf_srv_handle_closed(uv_handle_t *h);

/* mounts.c: engine mounts (configs in the reserved KV "sys/engines/") */
#define MF_SRV_RESERVED_PREFIX "sys/"
int mf_mounts_get(struct mf_server *s, const char *name, struct mount **out);
/* The open mount `name` or NULL (never opens one). */
struct mount *mf_mounts_find(struct mf_server *s, const char *name);
/* Opens every mount recorded under sys/engines/ (a new leader: so each one's
 * reconciler and CRL publishing run without waiting for a client). */
void mf_mounts_open_all(struct mf_server *s);
struct mf_crl_state *mf_mount_crl(struct mount *m);
bool mf_mounts_role_ttl(struct mount *m, const char *role, uint64_t *def_ms, uint64_t *max_ms);
const char *mf_mount_name(const struct mount *m);
int mf_mounts_role_put(struct mount *m, const char *role, const char *role_json,
                       mf_mjob_done_cb done, void *arg);
int mf_mounts_probe(struct mf_server *s, const char *type, const char *config,
                    mf_mjob_done_cb done, void *arg);
struct mf_engine *mf_mjob_engine(const struct mf_mjob *j);
int mf_mounts_issue(struct mount *m, const char *role, uint64_t seq, uint64_t expire_at_ms,
                    mf_mjob_done_cb done, void *arg);
int mf_mounts_revoke(struct mount *m, const uint64_t *seqs, size_t n, mf_mjob_done_cb done,
                     void *arg);
int mf_mounts_list(struct mount *m, mf_mjob_done_cb done, void *arg);
int mf_mounts_rotate_root(struct mount *m, mf_mjob_done_cb done, void *arg);
int mf_mounts_crl(struct mount *m, uint64_t now_ms, mf_mjob_done_cb done, void *arg);
const char *mf_mjob_text(const struct mf_mjob *j);
const char *mf_mount_type(const struct mount *m);
int mf_mjob_rc(const struct mf_mjob *j);
const char *mf_mjob_err(const struct mf_mjob *j);
const struct mf_engine_cred *mf_mjob_cred(const struct mf_mjob *j);
const uint64_t *mf_mjob_seqs(const struct mf_mjob *j, size_t *n);
const int *mf_mjob_results(const struct mf_mjob *j);
struct mount *mf_mounts_first(struct mf_server *s);
struct mount *mf_mounts_next(struct mount *m);
bool *mf_mount_revoke_inflight(struct mount *m);
uint64_t *mf_mount_revoke_backoff(struct mount *m);
uint64_t *mf_mount_next_revoke(struct mount *m);
uint64_t *mf_mount_next_reconcile(struct mount *m);
void mf_mounts_record_changed(struct mf_server *s, const char *path);
void mf_mounts_close_all(struct mf_server *s);
void mf_mounts_drop_all(struct mf_server *s);
/* Reads and decrypts a record of the reserved KV (a JSON object, new ref). */
struct json_t;
int mf_ops_read_record(struct mf_server *s, const char *path, struct json_t **out);

/* crl.c: the pki CRL on plain HTTP from every node */
#define MF_SRV_CRL_PREFIX "sys/crl/"
/* Leader: sign m's CRL (pki mounts only) and store it at sys/crl/<mount>. */
void mf_crl_publish(struct mf_server *s, struct mount *m);
/* Leader, each scheduler pass: publish what is due (open, or half-expired). */
void mf_crl_tick(struct mf_server *s, uint64_t now_ms);
/* Every node, loop thread: copy changed sys/crl/ records to the HTTP table. */
void mf_crl_refresh(struct mf_server *s);
/* An internal put of reserved record `path` (a JSON object), done(rc) after. */
int mf_ops_propose_record_internal(struct mf_server *s, const char *path, struct json_t *obj,
                                   void (*done)(struct mf_server *, int, void *), void *arg);

/* metrics.c */
/* Loop thread: serve `pem` (and its DER) at /v1/<mount>/crl[/pem]. */
void mf_metrics_set_crl(struct mf_server *s, const char *mount, const char *pem,
                        const unsigned char *der, size_t der_len);
int mf_metrics_start(struct mf_server *s);
void mf_metrics_stop(struct mf_server *s);
/* Loop thread: copy the current figures for the HTTP thread. */
void mf_metrics_publish(struct mf_server *s);
/* Loop thread: one lease revoked `late_ms` after its expire_at. */
void mf_metrics_lateness(struct mf_server *s, uint64_t late_ms);
const char *mf_metrics_addr(const struct mf_server *s);

/* ops.c */
void mf_ops_dispatch(struct req *r);
/* Propose a Command built by an op; answers r when applied. `finish` turns
 * the fsm's Result into the Response (NULL: an empty answer). */
typedef void (*mf_ops_finish_cb)(struct req *r, const void *result,
                                 Mayfly__Api__Response *resp);
void mf_ops_propose(struct req *r, void *cmd, mf_ops_finish_cb finish);
/* Dev mode: initialise with the key file and create the root token. */
void mf_ops_dev_init(struct mf_server *s);

#endif
