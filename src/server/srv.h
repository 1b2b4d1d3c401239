/* The server's base: the handles every concern of mayflyd shares, and the
 * one way to read the replicated state from the loop thread.
 *
 * This is the bottom of the server's one-way stack (README.md, "The server's
 * layers"): every other file of src/server may include it; it includes none
 * of them. Each concern keeps its own state behind its own pointer here
 * (api, proposer, mounts, scheduler, crl, metrics) and is the only file that
 * looks inside it.
 *
 * Threads: the loop thread, except where a field says otherwise. */
#ifndef MF_SERVER_SRV_H
#define MF_SERVER_SRV_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "node/node.h"
#include "store/barrier.h"
#include "store/fsm.h"
#include "store/seal.h"

#define MF_SRV_LIST_LIMIT_DEFAULT 100
#define MF_SRV_LIST_LIMIT_MAX 10000
/* Records only the server writes (engine configs, CRLs) live in the KV under
 * this prefix; clients can neither read nor write it. */
#define MF_SRV_RESERVED_PREFIX "sys/"
#define MF_SRV_LEASE_ERROR_PATH "sys/lease-error" /* AAD path of a lease's last_error */

struct mf_api;
struct mf_proposer;
struct mf_mounts;
struct mf_sched;
struct mf_crl;
struct mf_metrics;
struct mf_authz;
struct mf_auditlog;

struct mf_server {
    uv_loop_t *loop;
    const struct mf_config *cfg;
    bool dev;
    /* server.h mf_server_ready_cb (not included: server.h sits on top) */
    void (*ready_cb)(struct mf_server *s, const char *root_token);
    bool ready_sent;
    SSL_CTX *peer_server_ctx;
    SSL_CTX *peer_client_ctx;
    SSL_CTX *client_ctx;
    struct mf_fsm *fsm;
    pthread_rwlock_t state_lock; /* readers vs a snapshot install (writer thread) */
    struct mf_node *node;
    struct mf_barrier *barrier;
    struct mf_seal *seal;
    enum mf_raft_role role;      /* as of the last ready batch */
    uint64_t leader;
    uint64_t last_leader;        /* the last nonzero leader (a storage-blocked node reports to it) */
    int failed;                  /* nonzero once a fatal storage error stopped the node */
    unsigned handles_open;       /* uv handles of any concern still closing */
    uv_timer_t housekeeping;     /* server.c: forwards, metrics, CRL copies */
    bool housekeeping_started;
    unsigned housekeeping_ticks;
    bool policies_stale;         /* a snapshot was installed (writer thread, atomic) */
    bool dev_init_started;
    char *dev_root_token;        /* dev mode: wiped at stop */
    /* Each concern's own state (NULL until started, or when disabled). */
    struct mf_api *api;
    struct mf_proposer *prop;
    struct mf_mounts *mounts;
    struct mf_sched *sched;
    struct mf_crl *crl;
    struct mf_metrics *metrics;
    struct mf_authz *authz;
    struct mf_auditlog *auditlog;
    struct mf_ratelimit *ratelimit; /* NULL: no request-rate limit */
    struct mf_quota_rates *quota_rates; /* op_quota.c: grant-rate buckets */
    struct mf_root_attempt *root_attempt; /* op_root.c: generate-root, leader only */
    struct mf_storage *storage;  /* storage.c: the storage quota's measurements */
    struct mf_cluster_version *cluster_version; /* cluster_version.c: feature reports */
    struct mf_reqstats *reqstats; /* reqstats.c: requests by op and code (api.c counts) */
    uint64_t elections_started;   /* server.c: this node became a candidate */
    uint64_t leader_changes;      /* server.c: the leader it knows changed to another node */
    struct mf_members *members;  /* op_members.c: catch-up of learners, registry reloads */
    struct mf_keys *keys;        /* op_keys.c: rotation in flight, the rekey attempt */
};

/* Read transactions on the state: every loop-thread read goes through these
 * (a snapshot install must not swap the file under an open reader).
 * @return 0, or a storage error (nothing to end then). */
int mf_srv_read_begin(struct mf_server *s, MDB_txn **txn);
void mf_srv_read_end(struct mf_server *s, MDB_txn *txn);

/* A copy of the sealed keyring (malloc'd; the caller frees).
 * @return 0; MF_ENOTFOUND before init; storage errors. */
int mf_srv_keyring_blob(struct mf_server *s, uint8_t **blob, size_t *len);
bool mf_srv_initialized(struct mf_server *s);
/* Unseals from the configured key file, if any and if initialised. */
void mf_srv_try_auto_unseal(struct mf_server *s);

/* Is `path` under the reserved prefix? */
bool mf_srv_reserved_path(const char *path);

/* A uv handle that lives inside a concern's state is closed with this as its
 * close callback and `data` = the server, after handles_open++: the server is
 * freed after the last one closed. */
void mf_srv_handle_closed(uv_handle_t *h);
/* The same, for a close callback that frees the handle's own memory first. */
void mf_srv_handle_released(struct mf_server *s);

#endif
