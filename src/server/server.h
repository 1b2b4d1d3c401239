/* mayflyd's server: the node driver, the state machine, the seal and the
 * client API on one libuv loop.
 *
 * mf_server_start opens the state database and the Raft log under data_dir,
 * starts the node (peers over mutual TLS) and the client listener (TLS), and
 * unseals from the auto-unseal key file if one is configured. The loop then
 * runs until mf_server_stop.
 *
 * Ownership: the server borrows the loop and the config; it owns everything
 * else. Threads: loop thread only (the node's writer thread applies commands
 * through callbacks documented in node.h).
 */
#ifndef MF_SERVER_SERVER_H
#define MF_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"

struct mf_server;

/* Called on the loop once, when the server is ready to serve (listening, and
 * for dev mode also initialised and unsealed). `root_token` is set only by a
 * dev-mode start (it is the new root token, to print). */
typedef void (*mf_server_ready_cb)(struct mf_server *s, const char *root_token);

struct mf_server_opts {
    const struct mf_config *cfg;
    bool dev;                       /* initialise with the key file, make a root token */
    mf_server_ready_cb ready_cb;
    const char *config_path;        /* the config file (NULL: none), re-read for map sizes */
    bool join;                      /* mayflyd --join (node.h "Runtime membership") */
};

/* @return 0; MF_ECONFIG with a message logged; storage, TLS, listen errors. */
int mf_server_start(uv_loop_t *loop, const struct mf_server_opts *opts, struct mf_server **out);

/* Stops serving and frees the server; run the loop afterwards to close
 * handles. */
void mf_server_stop(struct mf_server *s);

/* The bound client address ("ip:port") and peer address. */
const char *mf_server_client_addr(const struct mf_server *s);
const char *mf_server_peer_addr(const struct mf_server *s);
/* The bound /metrics and /health address ("" when disabled). */
const char *mf_server_metrics_addr(const struct mf_server *s);

/* SIGHUP: reopen the audit files (logrotate's `create` mode; auditlog.h). */
void mf_server_reopen_logs(struct mf_server *s);

/* Nonzero once a fatal error stopped the node. */
int mf_server_failed(const struct mf_server *s);

#endif
