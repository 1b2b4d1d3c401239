/* Node configuration: one JSON file per node (jansson), flags override it.
 *
 * mf_config_defaults() fills every field with its default; mf_config_load()
 * then overlays a file. Unknown keys, wrong types and out-of-range values are
 * errors: a typo in a config must never be silently ignored. Errors are written
 * to the caller's buffer as "FILE: problem" so the user sees which file and
 * which key.
 *
 * Ownership: strings inside struct mf_config are owned by the struct and freed
 * by mf_config_free(). The struct itself is caller memory.
 */
#ifndef MF_COMMON_CONFIG_H
#define MF_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MF_CONFIG_PEERS_MAX 16
#define MF_CONFIG_ERR_LEN 512

struct mf_config_peer {
    uint64_t id;
    char *addr;      /* host:port of its peer listener */
    char *api_addr;  /* host:port of its client listener (for status), may be NULL */
    char *zone;      /* may be NULL */
    bool learner;
};

struct mf_config {
    uint64_t node_id;               /* >= 1 */
    char *data_dir;
    char *listen;                   /* client API, default 127.0.0.1:8270 */
    char *peer_listen;              /* peers, default 127.0.0.1:8271 */
    char *metrics_listen;           /* default 127.0.0.1:8272 */
    char *metrics_tls_cert_file;    /* both set: the metrics listener speaks HTTPS */
    char *metrics_tls_key_file;
    char *zone;
    char *tls_ca_file;              /* cluster CA (verifies peers and clients) */
    char *tls_cert_file;            /* this node's certificate */
    char *tls_key_file;
    char *auto_unseal_key_file;     /* dev and tests only */
    char *log_level;                /* debug|info|warn|error */
    char *log_format;               /* text (default) | json: one JSON object a line */
    uint32_t tick_ms;               /* one Raft tick, default 10 */
    uint32_t heartbeat_ticks;       /* default 5 (50 ms) */
    uint32_t election_ticks;        /* minimum election timeout, default 15 (150 ms) */
    uint32_t max_clock_skew_ms;     /* default 500 */
    uint64_t default_lease_ttl_ms;  /* default 1 h */
    uint64_t max_lease_ttl_ms;      /* default 768 h, like Vault */
    uint64_t max_token_ttl_ms;      /* no token lives (or renews) longer; 768 h, like Vault */
    uint32_t rate_limit_per_token;  /* requests a second per token and node, 0 = off (default) */
    uint32_t rate_limit_burst;      /* bucket size, 0 = rate_limit_per_token */
    uint64_t snapshot_entries;      /* take a snapshot every N applied entries (100,000) */
    uint64_t reconcile_interval_ms; /* engine reconciler period on the leader (30 s) */
    uint64_t revoke_deadline_ms;    /* keep retrying an engine revocation this long
                                       after expire_at, then mark it irrevocable (24 h) */
    /* Connection limits (README "Limits"); every one has a default. */
    uint32_t client_conns_max;              /* client connections at once (1024) */
    uint32_t client_conns_per_addr;         /* from one IP address (64) */
    uint32_t client_handshakes_per_s;       /* TLS handshakes a second (100) */
    uint32_t client_handshake_timeout_ms;   /* TCP accept to TLS session (5 s) */
    uint32_t client_first_request_timeout_ms; /* accept to first request (10 s) */
    uint32_t client_idle_timeout_ms;        /* no request or answer (5 min) */
    uint32_t client_preauth_frame_max_bytes; /* request size until a token verified (64 KiB) */
    uint32_t client_preauth_bytes_per_s;    /* request bytes a second, all connections
                                               without a verified token (4 MiB) */
    uint64_t client_frame_budget_bytes;     /* partial requests, all connections (256 MiB) */
    uint32_t peer_conns_max;                /* inbound peer connections (64) */
    uint32_t peer_conns_per_addr;           /* from one IP address (32) */
    uint32_t peer_handshakes_per_s;         /* TLS handshakes a second (20) */
    uint32_t peer_handshake_timeout_ms;     /* connect + TLS (3 s) */
    /* Storage (README "Storage pressure"; issue 15). Sizes in MiB. A 0 in a
     * derived limit means "derive it" (see each key); src/server/storage.h
     * computes the effective limits. */
    uint64_t state_map_size_mb;      /* LMDB map of the state database (8192, sparse) */
    uint64_t log_map_size_mb;        /* LMDB map of the Raft log (8192, sparse) */
    uint32_t storage_quota_enabled;  /* 1: the replicated storage alarm is on (default) */
    uint64_t state_quota_mb;         /* used pages of the state; 0: 3/4 of state_map_size_mb */
    uint64_t log_quota_mb;           /* used pages of the log; 0: 3/4 of log_map_size_mb */
    uint64_t snapshots_quota_mb;     /* snapshot files kept; 0: 2 x the state quota */
    uint64_t storage_free_floor_mb;  /* free space on data_dir's filesystem below which the
                                        alarm rises; 0: 1/20 of the filesystem, 4 MiB..2 GiB */
    uint64_t storage_reserve_mb;     /* preallocated room for non-growing commands
                                        (revocations, deletes); 0: from the live lease count */
    /* Barrier key rotation (README "Configuration"): the leader rotates once
     * the active term's replicated use count reaches key_rotation_uses (at
     * most and by default 2^31, store/barrier.h) or its key is older than
     * key_rotation_max_age_h hours (720; 0: never by age). */
    uint64_t key_rotation_uses;
    uint32_t key_rotation_max_age_h;
    size_t peers_len;
    struct mf_config_peer peers[MF_CONFIG_PEERS_MAX];
};

/* Fill cfg with defaults. Never fails except on out-of-memory (MF_EINTERNAL
 * after freeing what it made). */
int mf_config_defaults(struct mf_config *cfg);

/* Overlay the JSON file at path onto cfg (which must hold defaults or an
 * earlier load). On error returns MF_ECONFIG (or -errno for I/O), leaves a
 * message "PATH: ..." in err, and cfg is still safe to mf_config_free. */
int mf_config_load(struct mf_config *cfg, const char *path, char *err, size_t err_len);

/* Check cross-field rules (node id set, data dir set, ttls ordered, ...).
 * Returns 0 or MF_ECONFIG with a message. */
int mf_config_validate(const struct mf_config *cfg, char *err, size_t err_len);

/* Replace a string field (strdup); returns 0 or -ENOMEM. */
int mf_config_set_str(char **field, const char *value);

void mf_config_free(struct mf_config *cfg);

/* Parse a duration as the CLI writes them: "500ms", "2s", "90m", "1h30m",
 * "1h30m15s", or bare seconds "30". Returns 0 and *out_ms, or MF_EINVAL. */
int mf_duration_parse_ms(const char *s, uint64_t *out_ms);

#endif
