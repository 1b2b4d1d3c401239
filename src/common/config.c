/* Node configuration loading (jansson), with strict checking of every key. */
#include "common/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

enum field_kind { F_STR, F_U32, F_U64 };

struct field {
    const char *key;
    enum field_kind kind;
    size_t offset;
    uint64_t min, max; /* for numbers */
};

#define FSTR(name) {#name, F_STR, offsetof(struct mf_config, name), 0, 0}
#define FU32(name, lo, hi) {#name, F_U32, offsetof(struct mf_config, name), lo, hi}
#define FU64(name, lo, hi) {#name, F_U64, offsetof(struct mf_config, name), lo, hi}

static const struct field fields[] = {
    FU64(node_id, 1, UINT64_MAX),
    FSTR(data_dir),
    FSTR(listen),
    FSTR(peer_listen),
    FSTR(metrics_listen),
    FSTR(metrics_tls_cert_file),
    FSTR(metrics_tls_key_file),
    FSTR(zone),
    FSTR(tls_ca_file),
    FSTR(tls_cert_file),
    FSTR(tls_key_file),
    FSTR(auto_unseal_key_file),
    FSTR(log_level),
    FSTR(log_format),
    FU32(tick_ms, 1, 10000),
    FU32(heartbeat_ticks, 1, 1000),
    FU32(election_ticks, 2, 10000),
    FU32(max_clock_skew_ms, 0, 60000),
    FU64(default_lease_ttl_ms, 1000, UINT64_C(315360000000)),
    FU64(max_lease_ttl_ms, 1000, UINT64_C(315360000000)),
    FU64(max_token_ttl_ms, 1000, UINT64_C(315360000000)),
    FU32(rate_limit_per_token, 0, 1000000),
    FU32(rate_limit_burst, 0, 10000000),
    FU64(snapshot_entries, 100, UINT64_MAX),
    FU64(revoke_deadline_ms, 1000, UINT64_C(31536000000)),
    FU64(reconcile_interval_ms, 1000, UINT64_C(86400000)),
    FU32(client_conns_max, 1, 1000000),
    FU32(client_conns_per_addr, 1, 1000000),
    FU32(client_handshakes_per_s, 1, 1000000),
    FU32(client_handshake_timeout_ms, 100, 600000),
    FU32(client_first_request_timeout_ms, 100, 600000),
    FU32(client_idle_timeout_ms, 100, 86400000),
    FU32(client_preauth_frame_max_bytes, 1024, 4u << 20),
    FU32(client_preauth_bytes_per_s, 65536, 0xffffffffu),
    FU64(client_frame_budget_bytes, 4u << 20, UINT64_C(1) << 40),
    FU32(peer_conns_max, 4, 65536),
    FU32(peer_conns_per_addr, 2, 65536),
    FU32(peer_handshakes_per_s, 1, 1000000),
    FU32(peer_handshake_timeout_ms, 100, 600000),
    FU64(state_map_size_mb, 16, UINT64_C(1) << 24),
    FU64(log_map_size_mb, 16, UINT64_C(1) << 24),
    FU32(storage_quota_enabled, 0, 1),
    FU64(state_quota_mb, 0, UINT64_C(1) << 24),
    FU64(log_quota_mb, 0, UINT64_C(1) << 24),
    FU64(snapshots_quota_mb, 0, UINT64_C(1) << 26),
    FU64(storage_free_floor_mb, 0, UINT64_C(1) << 24),
    FU64(storage_reserve_mb, 0, UINT64_C(1) << 20),
    FU64(key_rotation_uses, 1, UINT64_C(1) << 31),
    FU32(key_rotation_max_age_h, 0, 24u * 365 * 10),
};

int mf_config_set_str(char **field, const char *value)
{
    char *copy = NULL;
    if (value) {
        copy = strdup(value);
        if (!copy)
            return -ENOMEM;
    }
    free(*field);
    *field = copy;
    return 0;
}

int mf_config_defaults(struct mf_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->tick_ms = 10;
    cfg->heartbeat_ticks = 5;
    cfg->election_ticks = 15;
    cfg->max_clock_skew_ms = 500;
    cfg->default_lease_ttl_ms = UINT64_C(3600000);
    cfg->max_lease_ttl_ms = UINT64_C(768) * 3600000;
    cfg->max_token_ttl_ms = UINT64_C(768) * 3600000;
    cfg->snapshot_entries = 100000; /* etcd's default: a snapshot copies the whole state */
    cfg->revoke_deadline_ms = UINT64_C(86400000);
    cfg->reconcile_interval_ms = 30000;
    cfg->client_conns_max = 1024;
    cfg->client_conns_per_addr = 64;
    cfg->client_handshakes_per_s = 100;
    cfg->client_handshake_timeout_ms = 5000;
    cfg->client_first_request_timeout_ms = 10000;
    cfg->client_idle_timeout_ms = 300000;
    cfg->client_preauth_frame_max_bytes = 65536;
    cfg->client_preauth_bytes_per_s = 4u << 20;
    cfg->client_frame_budget_bytes = UINT64_C(256) << 20;
    cfg->peer_conns_max = 64;
    cfg->peer_conns_per_addr = 32;
    cfg->peer_handshakes_per_s = 20;
    cfg->peer_handshake_timeout_ms = 3000;
    cfg->state_map_size_mb = 8192;
    cfg->log_map_size_mb = 8192;
    cfg->storage_quota_enabled = 1;
    cfg->key_rotation_uses = UINT64_C(1) << 31; /* MF_BARRIER_ROTATE_USES */
    cfg->key_rotation_max_age_h = 720;          /* 30 days */
    if (mf_config_set_str(&cfg->listen, "127.0.0.1:8270") ||
        mf_config_set_str(&cfg->peer_listen, "127.0.0.1:8271") ||
        mf_config_set_str(&cfg->metrics_listen, "127.0.0.1:8272") ||
        mf_config_set_str(&cfg->log_level, "info") ||
        mf_config_set_str(&cfg->log_format, "text")) {
        mf_config_free(cfg);
        return MF_EINTERNAL;
    }
    return 0;
}

static int set_field(struct mf_config *cfg, const struct field *f, json_t *v, const char *path,
                     char *err, size_t err_len)
{
    char *base = (char *)cfg + f->offset;
    if (f->kind == F_STR) {
        if (!json_is_string(v))
            return mf_err_set(err, err_len, MF_ECONFIG, "%s: key '%s' must be a string", path,
                              f->key);
        return mf_config_set_str((char **)base, json_string_value(v));
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "%s: key '%s' must be a non-negative integer", path, f->key);
    uint64_t n = (uint64_t)json_integer_value(v);
    if (n < f->min || n > f->max)
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "%s: key '%s' is %llu, outside %llu..%llu", path, f->key,
                          (unsigned long long)n, (unsigned long long)f->min,
                          (unsigned long long)f->max);
    if (f->kind == F_U32)
        *(uint32_t *)base = (uint32_t)n;
    else
        *(uint64_t *)base = n;
    return 0;
}

static int load_peer(struct mf_config_peer *p, json_t *obj, size_t i, const char *path,
                     char *err, size_t err_len)
{
    if (!json_is_object(obj))
        return mf_err_set(err, err_len, MF_ECONFIG, "%s: peers[%zu] must be an object", path, i);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "id") == 0 && json_is_integer(v) && json_integer_value(v) > 0) {
            p->id = (uint64_t)json_integer_value(v);
        } else if (strcmp(key, "addr") == 0 && json_is_string(v)) {
            if (mf_config_set_str(&p->addr, json_string_value(v)))
                return -ENOMEM;
        } else if (strcmp(key, "api_addr") == 0 && json_is_string(v)) {
            if (mf_config_set_str(&p->api_addr, json_string_value(v)))
                return -ENOMEM;
        } else if (strcmp(key, "zone") == 0 && json_is_string(v)) {
            if (mf_config_set_str(&p->zone, json_string_value(v)))
                return -ENOMEM;
        } else if (strcmp(key, "learner") == 0 && json_is_boolean(v)) {
            p->learner = json_is_true(v);
        } else if (strcmp(key, "id") == 0 || strcmp(key, "addr") == 0 ||
                   strcmp(key, "api_addr") == 0 || strcmp(key, "zone") == 0 ||
                   strcmp(key, "learner") == 0) {
            return mf_err_set(err, err_len, MF_ECONFIG, "%s: peers[%zu].%s has the wrong type",
                              path, i, key);
        } else {
            return mf_err_set(err, err_len, MF_ECONFIG, "%s: unknown key 'peers[%zu].%s'", path,
                              i, key);
        }
    }
    if (p->id == 0 || !p->addr)
        return mf_err_set(err, err_len, MF_ECONFIG, "%s: peers[%zu] needs 'id' and 'addr'", path,
                          i);
    return 0;
}

static int load_peers(struct mf_config *cfg, json_t *arr, const char *path, char *err,
                      size_t err_len)
{
    if (!json_is_array(arr))
        return mf_err_set(err, err_len, MF_ECONFIG, "%s: key 'peers' must be an array", path);
    if (json_array_size(arr) > MF_CONFIG_PEERS_MAX)
        return mf_err_set(err, err_len, MF_ECONFIG, "%s: at most %d peers", path,
                          MF_CONFIG_PEERS_MAX);
    for (size_t i = 0; i < cfg->peers_len; i++) {
        free(cfg->peers[i].addr);
        free(cfg->peers[i].api_addr);
        free(cfg->peers[i].zone);
    }
    memset(cfg->peers, 0, sizeof(cfg->peers));
    cfg->peers_len = 0;
    size_t i;
    json_t *obj;
    json_array_foreach(arr, i, obj) {
        cfg->peers_len = i + 1; /* so mf_config_free releases partial entries */
        int rc = load_peer(&cfg->peers[i], obj, i, path, err, err_len);
        if (rc)
            return rc;
    }
    return 0;
}

static const struct field *find_field(const char *key)
{
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

int mf_config_load(struct mf_config *cfg, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        return mf_err_set(err, err_len, -e, "%s: cannot open: %s", path, strerror(e));
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!root)
        return mf_err_set(err, err_len, MF_ECONFIG, "%s: line %d column %d: invalid JSON: %s",
                          path, jerr.line, jerr.column, jerr.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = mf_err_set(err, err_len, MF_ECONFIG, "%s: the top level must be a JSON object",
                        path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        const struct field *fd = find_field(key);
        if (fd)
            rc = set_field(cfg, fd, v, path, err, err_len);
        else if (strcmp(key, "peers") == 0)
            rc = load_peers(cfg, v, path, err, err_len);
        else
            rc = mf_err_set(err, err_len, MF_ECONFIG, "%s: unknown key '%s'", path, key);
        if (rc)
            goto out;
    }
out:
    json_decref(root);
    return rc;
}

int mf_config_validate(const struct mf_config *cfg, char *err, size_t err_len)
{
    if (cfg->node_id == 0)
        return mf_err_set(err, err_len, MF_ECONFIG, "config: 'node_id' is required");
    if (!cfg->data_dir || !*cfg->data_dir)
        return mf_err_set(err, err_len, MF_ECONFIG, "config: 'data_dir' is required");
    if (cfg->election_ticks <= cfg->heartbeat_ticks)
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "config: 'election_ticks' (%u) must exceed 'heartbeat_ticks' (%u)",
                          cfg->election_ticks, cfg->heartbeat_ticks);
    if (!cfg->metrics_tls_cert_file != !cfg->metrics_tls_key_file)
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "config: 'metrics_tls_cert_file' and 'metrics_tls_key_file' go together");
    if (cfg->default_lease_ttl_ms > cfg->max_lease_ttl_ms)
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "config: 'default_lease_ttl_ms' exceeds 'max_lease_ttl_ms'");
    if (cfg->state_quota_mb > cfg->state_map_size_mb)
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "config: 'state_quota_mb' (%llu) exceeds 'state_map_size_mb' (%llu)",
                          (unsigned long long)cfg->state_quota_mb,
                          (unsigned long long)cfg->state_map_size_mb);
    if (cfg->log_quota_mb > cfg->log_map_size_mb)
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "config: 'log_quota_mb' (%llu) exceeds 'log_map_size_mb' (%llu)",
                          (unsigned long long)cfg->log_quota_mb,
                          (unsigned long long)cfg->log_map_size_mb);
    for (size_t i = 0; i < cfg->peers_len; i++)
        for (size_t j = i + 1; j < cfg->peers_len; j++)
            if (cfg->peers[i].id == cfg->peers[j].id)
                return mf_err_set(err, err_len, MF_ECONFIG, "config: peer id %llu appears twice",
                                  (unsigned long long)cfg->peers[i].id);
    return 0;
}

void mf_config_free(struct mf_config *cfg)
{
    char **strs[] = {&cfg->data_dir,         &cfg->listen,
                     &cfg->peer_listen,      &cfg->metrics_listen,
                     &cfg->metrics_tls_cert_file, &cfg->metrics_tls_key_file,
                     &cfg->zone,             &cfg->tls_ca_file,
                     &cfg->tls_cert_file,    &cfg->tls_key_file,
                     &cfg->auto_unseal_key_file, &cfg->log_level,
                     &cfg->log_format};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    for (size_t i = 0; i < cfg->peers_len; i++) {
        free(cfg->peers[i].addr);
        free(cfg->peers[i].api_addr);
        free(cfg->peers[i].zone);
    }
    cfg->peers_len = 0;
}

int mf_duration_parse_ms(const char *s, uint64_t *out_ms)
{
    if (!s || !*s)
        return MF_EINVAL;
    uint64_t total = 0;
    const char *p = s;
    bool bare = true;
    while (*p) {
        if (*p < '0' || *p > '9')
            return MF_EINVAL;
        uint64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n > UINT64_MAX / 10 - 10)
                return MF_EINVAL;
            n = n * 10 + (uint64_t)(*p++ - '0');
        }
        uint64_t unit_ms;
        if (*p == '\0') {
            if (!bare)
                return MF_EINVAL; /* "1h30" is ambiguous */
            unit_ms = 1000;
        } else if (strncmp(p, "ms", 2) == 0) {
            unit_ms = 1, p += 2;
        } else if (*p == 's') {
            unit_ms = 1000, p++;
        } else if (*p == 'm') {
            unit_ms = 60000, p++;
        } else if (*p == 'h') {
            unit_ms = 3600000, p++;
        } else if (*p == 'd') {
            unit_ms = 86400000, p++;
        } else {
            return MF_EINVAL;
        }
        bare = false;
        if (n > (UINT64_MAX - total) / unit_ms)
            return MF_EINVAL;
        total += n * unit_ms;
    }
    *out_ms = total;
    return 0;
}
