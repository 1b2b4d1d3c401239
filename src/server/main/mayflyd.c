/* mayflyd: the server program (../shared/CLI.md, "mayflyd").
 *
 *   mayflyd --config FILE [--node-id N] [--data-dir D] [--listen A]
 *           [--peer-listen A] [--log-level L]
 *   mayflyd --dev [--dev-listen A]
 *   (either may add --debug-core: core dumps stay possible, for debugging)
 *
 * Prints "mayflyd: ready" once it serves (tests wait for that line). Dev mode
 * makes a temporary directory with a CA, a node certificate and a key file,
 * starts a single-node cluster, initialises it, prints the three export lines
 * and the root token, and removes the directory on SIGINT/SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "common/config.h"
#include "common/err.h"
#include "common/fileperm.h"
#include "common/log.h"
#include "common/secmem.h"
#include "net/devpki.h"
#include "server/server.h"
#include "store/seal.h"

struct flags {
    const char *config;
    const char *node_id;
    const char *data_dir;
    const char *listen;
    const char *peer_listen;
    const char *log_level;
    const char *dev_listen;
    const char *gen_certs;
    const char *nodes;
    const char *hosts;
    const char *metrics_listen;
    int dev;
    int debug_core;
};

static char dev_dir[64];
static struct mf_server *server;
static uv_signal_t sigint_h, sigterm_h, sighup_h;

static void usage(FILE *out)
{
    fprintf(out, "usage: mayflyd --config FILE [--node-id N] [--data-dir DIR] [--listen ADDR]\n"
                 "                [--peer-listen ADDR] [--log-level debug|info|warn|error]\n"
                 "                [--metrics-listen ADDR]\n"
                 "       mayflyd --dev [--dev-listen ADDR]\n"
                 "       mayflyd --gen-certs DIR [--nodes N] [--hosts \"1=NAME,IP;2=...\"]\n"
                 "                (test and local clusters; production: deploy/certs.sh)\n"
                 "  --debug-core  leave core dumps and ptrace on (a core file holds keys and\n"
                 "                tokens: debugging only; off by default)\n");
}

static int parse_flags(int argc, char **argv, struct flags *f)
{
    memset(f, 0, sizeof(*f));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--dev") == 0) {
            f->dev = 1;
            continue;
        }
        if (strcmp(a, "--debug-core") == 0) {
            f->debug_core = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--version") == 0) {
            printf("mayflyd 0.1.0\n");
            exit(0);
        }
        if (strcmp(a, "--config") == 0) dst = &f->config;
        else if (strcmp(a, "--node-id") == 0) dst = &f->node_id;
        else if (strcmp(a, "--data-dir") == 0) dst = &f->data_dir;
        else if (strcmp(a, "--listen") == 0) dst = &f->listen;
        else if (strcmp(a, "--peer-listen") == 0) dst = &f->peer_listen;
        else if (strcmp(a, "--log-level") == 0) dst = &f->log_level;
        else if (strcmp(a, "--dev-listen") == 0) dst = &f->dev_listen;
        else if (strcmp(a, "--gen-certs") == 0) dst = &f->gen_certs;
        else if (strcmp(a, "--nodes") == 0) dst = &f->nodes;
        else if (strcmp(a, "--hosts") == 0) dst = &f->hosts;
        else if (strcmp(a, "--metrics-listen") == 0) dst = &f->metrics_listen;
        if (!dst) {
            fprintf(stderr, "mayflyd: unknown flag '%s'\n", a);
            usage(stderr);
            return MF_EINVAL;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mayflyd: %s needs a value\n", a);
            return MF_EINVAL;
        }
        *dst = argv[++i];
    }
    if (!f->dev && !f->config && !f->gen_certs) {
        usage(stderr);
        return MF_EINVAL;
    }
    return 0;
}

static int apply_overrides(struct mf_config *cfg, const struct flags *f)
{
    if (f->node_id) {
        char *end;
        unsigned long long v = strtoull(f->node_id, &end, 10);
        if (*end || v == 0) {
            fprintf(stderr, "mayflyd: --node-id must be a positive number\n");
            return MF_EINVAL;
        }
        cfg->node_id = v;
    }
    if ((f->data_dir && mf_config_set_str(&cfg->data_dir, f->data_dir)) ||
        (f->listen && mf_config_set_str(&cfg->listen, f->listen)) ||
        (f->peer_listen && mf_config_set_str(&cfg->peer_listen, f->peer_listen)) ||
        (f->log_level && mf_config_set_str(&cfg->log_level, f->log_level)) ||
        (f->metrics_listen && mf_config_set_str(&cfg->metrics_listen, f->metrics_listen)))
        return -ENOMEM;
    return 0;
}

/* Dev mode: a temporary directory with certificates and a key file. */
static int dev_setup(struct mf_config *cfg, const struct flags *f)
{
    strcpy(dev_dir, "/tmp/mayfly-dev-XXXXXX");
    if (!mkdtemp(dev_dir)) {
        fprintf(stderr, "mayflyd: cannot make a temporary directory: %s\n", strerror(errno));
        return -errno;
    }
    int rc = mf_devpki_make_dir(dev_dir, 1);
    if (rc) {
        fprintf(stderr, "mayflyd: cannot make dev certificates: %s\n", mf_strerror(rc));
        return rc;
    }
    char path[128], err[MF_SEAL_ERR_LEN] = "";
    snprintf(path, sizeof(path), "%s/unseal.key", dev_dir);
    rc = mf_seal_keyfile_create(path, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "mayflyd: %s\n", err);
        return rc;
    }
    char data[128], ca[128], cert[128], key[128];
    snprintf(data, sizeof(data), "%s/data", dev_dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dev_dir);
    snprintf(cert, sizeof(cert), "%s/node-1.pem", dev_dir);
    snprintf(key, sizeof(key), "%s/node-1-key.pem", dev_dir);
    if (mkdir(data, 0700) != 0)
        return -errno;
    cfg->node_id = 1;
    if (mf_config_set_str(&cfg->data_dir, data) || mf_config_set_str(&cfg->tls_ca_file, ca) ||
        mf_config_set_str(&cfg->tls_cert_file, cert) ||
        mf_config_set_str(&cfg->tls_key_file, key) ||
        mf_config_set_str(&cfg->auto_unseal_key_file, path) ||
        mf_config_set_str(&cfg->listen, f->dev_listen ? f->dev_listen : "127.0.0.1:8270") ||
        mf_config_set_str(&cfg->peer_listen, "127.0.0.1:0") ||
        mf_config_set_str(&cfg->metrics_listen, "127.0.0.1:0"))
        return -ENOMEM;
    return 0;
}

static void dev_cleanup(void)
{
    if (!dev_dir[0])
        return;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dev_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "mayflyd: could not remove %s\n", dev_dir);
    dev_dir[0] = '\0';
}

static void on_ready(struct mf_server *s, const char *root_token)
{
    printf("mayflyd: listening on %s (clients), %s (peers), %s (metrics)\n",
           mf_server_client_addr(s), mf_server_peer_addr(s), mf_server_metrics_addr(s));
    if (root_token) {
        printf("mayflyd: dev mode: a single-node cluster in %s, initialised and unsealed.\n"
               "mayflyd: everything is lost when it stops. Paste into a shell:\n\n",
               dev_dir);
        printf("export MAYFLY_ADDR='%s'\n", mf_server_client_addr(s));
        printf("export MAYFLY_CACERT='%s/ca.pem'\n", dev_dir);
        printf("export MAYFLY_TOKEN='%s'\n\n", root_token);
    }
    printf("mayflyd: ready\n");
    fflush(stdout);
}

/* SIGHUP: reopen the audit files (logrotate's `create` mode). */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)h, (void)signum;
    if (server)
        mf_server_reopen_logs(server);
}

static void on_signal(uv_signal_t *h, int signum)
{
    fprintf(stderr, "mayflyd: signal %d, stopping\n", signum);
    mf_server_stop(server);
    server = NULL;
    uv_signal_stop(&sigint_h);
    uv_signal_stop(&sigterm_h);
    uv_signal_stop(&sighup_h);
    uv_close((uv_handle_t *)&sighup_h, NULL);
    uv_close((uv_handle_t *)&sigint_h, NULL);
    uv_close((uv_handle_t *)&sigterm_h, NULL);
    (void)h;
}

/* A CA, node certificates 1..N and a client certificate for local clusters
 * and tests (production brings its own PKI). --hosts adds each node's DNS
 * names and IPs (devpki.h), so the certificates serve nodes on other hosts
 * or in network namespaces (deploy/zones.sh). */
static int gen_certs(const struct flags *f)
{
    int nodes = f->nodes ? atoi(f->nodes) : 3;
    if (nodes < 1 || nodes > 16) {
        fprintf(stderr, "mayflyd: --nodes must be 1..16\n");
        return 1;
    }
    struct mf_devpki_hosts hosts;
    char err[256] = "";
    if (f->hosts && mf_devpki_hosts_parse(f->hosts, (uint64_t)nodes, &hosts, err, sizeof(err))) {
        fprintf(stderr, "mayflyd: %s\n", err[0] ? err : "--hosts: out of memory");
        return 1;
    }
    if (mkdir(f->gen_certs, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "mayflyd: cannot make %s: %s\n", f->gen_certs, strerror(errno));
        if (f->hosts)
            mf_devpki_hosts_free(&hosts);
        return 1;
    }
    int rc = mf_devpki_make_dir_hosts(f->gen_certs, nodes, f->hosts ? &hosts : NULL);
    if (f->hosts)
        mf_devpki_hosts_free(&hosts);
    if (rc) {
        fprintf(stderr, "mayflyd: cannot make certificates in %s: %s\n", f->gen_certs,
                mf_strerror(rc));
        return 1;
    }
    printf("mayflyd: wrote ca.pem, node-1..%d.pem and client.pem in %s\n", nodes, f->gen_certs);
    return 0;
}

/* Secrets live in this process's memory (the root key, the keyring, tokens
 * and values in flight): no core file may hold them, and no other user may
 * read them through /proc or ptrace. Before anything secret is loaded. */
static void no_core_dumps(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        fprintf(stderr, "mayflyd: warning: cannot disable core dumps: %s\n", strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        fprintf(stderr, "mayflyd: warning: cannot mark the process undumpable: %s\n",
                strerror(errno));
}

/* --debug-core: the secure defaults undone for a debugging session only. */
static void allow_core_dumps(void)
{
    struct rlimit cur;
    if (getrlimit(RLIMIT_CORE, &cur) == 0 && cur.rlim_cur != cur.rlim_max) {
        cur.rlim_cur = cur.rlim_max; /* as far as the hard limit lets anyone */
        (void)setrlimit(RLIMIT_CORE, &cur);
    }
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
        fprintf(stderr, "mayflyd: warning: cannot mark the process dumpable: %s\n",
                strerror(errno));
    fprintf(stderr, "mayflyd: warning: --debug-core: core dumps and ptrace are allowed; "
                    "a core file holds keys, tokens and values\n");
}

/* Keys, shares and the dev root token go to OpenSSL's secure heap (locked,
 * out of dumps), and everything jansson frees is wiped (KV values). */
static void secure_memory(void)
{
    int rc = mf_secmem_init(MF_SECMEM_HEAP_BYTES);
    if (rc == 1)
        fprintf(stderr, "mayflyd: warning: the secure heap could not be locked in memory "
                        "(raise RLIMIT_MEMLOCK, ulimit -l, to at least %u KiB)\n",
                MF_SECMEM_HEAP_BYTES / 1024);
    else if (rc)
        fprintf(stderr, "mayflyd: warning: no secure heap; keys use locked pages of their own\n");
    mf_secmem_json_wipe();
}

/* The data directory and key files: ours alone, or no start (fileperm.h). */
static int check_secret_files(const struct mf_config *cfg)
{
    char err[MF_CONFIG_ERR_LEN] = "";
    int rc = mf_fileperm_check("data_dir", cfg->data_dir, true, err, sizeof(err));
    if (!rc)
        rc = mf_fileperm_check("tls_key_file", cfg->tls_key_file, false, err, sizeof(err));
    if (!rc)
        rc = mf_fileperm_check("metrics_tls_key_file", cfg->metrics_tls_key_file, false, err,
                               sizeof(err));
    if (!rc)
        rc = mf_fileperm_check("auto_unseal_key_file", cfg->auto_unseal_key_file, false, err,
                               sizeof(err));
    if (rc)
        fprintf(stderr, "mayflyd: refusing to start: %s\n", err);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct flags f;
    if (parse_flags(argc, argv, &f)) /* reads flags only: nothing secret yet */
        return 1;
    if (f.debug_core)
        allow_core_dumps();
    else
        no_core_dumps();
    secure_memory();
    if (f.gen_certs)
        return gen_certs(&f);
    struct mf_config cfg;
    if (mf_config_defaults(&cfg))
        return 1;
    char err[MF_CONFIG_ERR_LEN] = "";
    int rc = 0;
    if (f.config && (rc = mf_config_load(&cfg, f.config, err, sizeof(err)))) {
        fprintf(stderr, "mayflyd: %s\n", err);
        goto out;
    }
    if (f.dev && (rc = dev_setup(&cfg, &f)))
        goto out;
    if ((rc = apply_overrides(&cfg, &f)))
        goto out;
    if ((rc = mf_config_validate(&cfg, err, sizeof(err)))) {
        fprintf(stderr, "mayflyd: %s\n", err);
        goto out;
    }
    if ((rc = check_secret_files(&cfg)))
        goto out;
    enum mf_log_level level;
    if (mf_log_level_parse(cfg.log_level, &level)) {
        fprintf(stderr, "mayflyd: log_level '%s' is not debug, info, warn or error\n",
                cfg.log_level);
        rc = MF_ECONFIG;
        goto out;
    }
    mf_log_set_level(level);
    if (mf_log_set_format(cfg.log_format)) {
        fprintf(stderr, "mayflyd: log_format '%s' is not text or json\n", cfg.log_format);
        rc = MF_ECONFIG;
        goto out;
    }

    uv_loop_t *loop = uv_default_loop();
    struct mf_server_opts so = {.cfg = &cfg, .dev = f.dev != 0, .ready_cb = on_ready,
                                .config_path = f.config};
    rc = mf_server_start(loop, &so, &server);
    if (rc) {
        fprintf(stderr, "mayflyd: cannot start: %s\n", mf_strerror(rc));
        goto out;
    }
    uv_signal_init(loop, &sigint_h);
    uv_signal_init(loop, &sigterm_h);
    uv_signal_start(&sigint_h, on_signal, SIGINT);
    uv_signal_start(&sigterm_h, on_signal, SIGTERM);
    uv_signal_init(loop, &sighup_h);
    uv_signal_start(&sighup_h, on_sighup, SIGHUP);
    uv_run(loop, UV_RUN_DEFAULT);
    /* The loop stops early only when the node must not go on (server.c). */
    if (server && mf_server_failed(server)) {
        fprintf(stderr, "mayflyd: stopped: see the error above\n");
        rc = mf_server_failed(server);
    }
    uv_loop_close(loop);
out:
    mf_config_free(&cfg);
    dev_cleanup();
    return rc ? 1 : 0;
}
