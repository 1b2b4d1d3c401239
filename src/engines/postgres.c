/* The PostgreSQL engine: dynamic database users whose life is a lease.
 *
 * issue creates a role named after the lease SEQ (mf_engine_name) from the
 * operator's creation templates in one transaction, with VALID UNTIL as a
 * backstop and a COMMENT naming the mayfly role (so revoke, which is given
 * only SEQs, finds the role's revocation templates again, even on another
 * node after a failover). revoke works in batches, a few round trips for up
 * to MF_ENGINE_REVOKE_BATCH_MAX roles:
 *   0. look the names up in pg_roles (a missing role is already revoked);
 *   1. one transaction: ALTER ROLE ... NOLOGIN for all, committed, so no new
 *      session can start;
 *   2. terminate their sessions (by role oid) and wait until they are gone:
 *      pg_terminate_backend is not transactional, so it comes after the
 *      commit, never before;
 *   3. one transaction: DROP OWNED BY + DROP ROLE IF EXISTS (or the role's
 *      revocation templates);
 *   4. a last sweep for sessions of the dropped oids.
 * A batch transaction that fails is split in two until the bad role is
 * alone, so one role that cannot be dropped never holds back the others.
 *
 * One connection per engine (an instance is used by one thread at a time),
 * opened lazily and reopened after a failure. Error texts are built from the
 * server's SQLSTATE, primary message and detail (never the statement, which
 * may hold a password) and scrubbed of the passwords we know.
 */
#include "engines/postgres.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"

#define LOG_MOD "pg"
#define PG_ROLE_NAME_MAX 64            /* bytes of a mayfly role name */
#define PG_ROLES_MAX 1024              /* roles per engine */
#define PG_TEMPLATE_BYTES_MAX 65536    /* one role's joined statements */
#define PG_CONNECT_TIMEOUT_S 5
#define PG_STATEMENT_TIMEOUT_MS 30000
#define PG_TERMINATE_TIMEOUT_MS 5000
#define PG_COMMENT_PREFIX "mayfly role: "

static const char default_renew[] = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';";

struct pg_role {
    char name[PG_ROLE_NAME_MAX + 1];
    char *creation;   /* statements joined, each ended by ';' */
    char *revocation; /* NULL: the default algorithm */
    char *renew;      /* NULL: default_renew */
    uint64_t default_ttl_ms;
    uint64_t max_ttl_ms;
};

struct mf_engine {
    json_t *config;      /* the config without "password" (for rotate_root) */
    char *url;           /* connection_url, or NULL */
    char *host, *port, *dbname;
    char *username;
    char *password;      /* admin password: wiped on change and close */
    int max_open_connections;
    int connect_timeout_s;
    int statement_timeout_ms;
    int terminate_timeout_ms;
    PGconn *conn;
    struct pg_role *roles;
    size_t roles_len;
};

/* ---------------------------------------------------------------- helpers */

/* A growing string; wiped on free when it may hold a password. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_grow(struct sbuf *b, size_t add)
{
    if (b->oom || b->len + add + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + add + 1)
        cap *= 2;
    char *p = malloc(cap);
    if (!p) {
        b->oom = true;
        return;
    }
    if (b->p) {
        memcpy(p, b->p, b->len + 1);
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    b->p = p;
    b->cap = cap;
}

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_add(struct sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static void sb_free(struct sbuf *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Overwrite every occurrence of secret in s with '*'. */
static void scrub(char *s, const char *secret)
{
    if (!s || !secret || !*secret)
        return;
    size_t n = strlen(secret);
    for (char *p = strstr(s, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

static int set_err(struct mf_engine *e, const char *extra_secret, char *err, size_t err_len,
                   int code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Every error text an engine call hands out goes through here. */
static int set_err(struct mf_engine *e, const char *extra_secret, char *err, size_t err_len,
                   int code, const char *fmt, ...)
{
    if (err && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
        if (e)
            scrub(err, e->password);
        scrub(err, extra_secret);
    }
    return code;
}

int mf_pg_password(char *buf, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    /* 248 = 4 * 62: bytes at or above it are rejected, so every character is
     * equally likely. */
    unsigned char r[64];
    size_t got = 0;
    while (got < len) {
        if (mf_rand_bytes(r, sizeof(r)) != 0) {
            OPENSSL_cleanse(r, sizeof(r));
            OPENSSL_cleanse(buf, got);
            return MF_ECRYPTO;
        }
        for (size_t i = 0; i < sizeof(r) && got < len; i++)
            if (r[i] < 248)
                buf[got++] = alphabet[r[i] % 62];
    }
    OPENSSL_cleanse(r, sizeof(r));
    buf[len] = 0;
    return 0;
}

int mf_pg_scram_verifier(const char *password, char *buf, size_t len)
{
    /* RFC 5802 / 7677 as PostgreSQL stores it: SCRAM-SHA-256$<iterations>:
     * <salt>$<StoredKey>:<ServerKey>, base64. SASLprep is the identity for
     * our [A-Za-z0-9] passwords. */
    unsigned char salt[16], salted[32], client_key[32], stored_key[32], server_key[32];
    unsigned int mlen = 0;
    int rc = MF_ECRYPTO;
    if (mf_rand_bytes(salt, sizeof(salt)) != 0 ||
        PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt), 4096,
                          EVP_sha256(), sizeof(salted), salted) != 1 ||
        !HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Client Key", 10,
              client_key, &mlen) ||
        !SHA256(client_key, sizeof(client_key), stored_key) ||
        !HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Server Key", 10,
              server_key, &mlen))
        goto done;
    char b_salt[32], b_stored[48], b_server[48];
    EVP_EncodeBlock((unsigned char *)b_salt, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *)b_stored, stored_key, sizeof(stored_key));
    EVP_EncodeBlock((unsigned char *)b_server, server_key, sizeof(server_key));
    int n = snprintf(buf, len, "SCRAM-SHA-256$4096:%s$%s:%s", b_salt, b_stored, b_server);
    rc = n < 0 || (size_t)n >= len ? MF_EINVAL : 0;
done:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(server_key, sizeof(server_key));
    return rc;
}

int mf_pg_expiration(uint64_t expire_at_ms, char *buf, size_t len)
{
    time_t s = (time_t)(expire_at_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm))
        return MF_EINVAL;
    int n = snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%03u+00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(expire_at_ms % 1000));
    return n < 0 || (size_t)n >= len ? MF_EINVAL : 0;
}

/* The values of a template's placeholders; NULL = not allowed in this kind
 * of template. */
struct vars {
    const char *name;
    const char *password;
    const char *password_scram;
    const char *expiration;
};

/* Substitute {{name}} {{password}} {{password_scram}} {{expiration}} in
 * tmpl, as they are (they come from safe alphabets: the SCRAM verifier is
 * base64 with '$' and ':'). Appends to out; MF_EINVAL names the bad
 * placeholder. */
static int subst(const char *tmpl, const struct vars *v, struct sbuf *out, char *bad,
                 size_t bad_len)
{
    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            sb_add(out, p);
            return 0;
        }
        sb_addn(out, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            snprintf(bad, bad_len, "unterminated \"{{\"");
            return MF_EINVAL;
        }
        size_t klen = (size_t)(close - open - 2);
        const char *val = NULL;
        if (klen == 4 && memcmp(open + 2, "name", 4) == 0)
            val = v->name;
        else if (klen == 8 && memcmp(open + 2, "password", 8) == 0)
            val = v->password;
        else if (klen == 14 && memcmp(open + 2, "password_scram", 14) == 0)
            val = v->password_scram;
        else if (klen == 10 && memcmp(open + 2, "expiration", 10) == 0)
            val = v->expiration;
        else {
            snprintf(bad, bad_len, "unknown placeholder {{%.*s}}", (int)(klen > 32 ? 32 : klen),
                     open + 2);
            return MF_EINVAL;
        }
        if (!val) {
            snprintf(bad, bad_len, "placeholder {{%.*s}} is not available here", (int)klen,
                     open + 2);
            return MF_EINVAL;
        }
        sb_add(out, val);
        p = close + 2;
    }
}

int mf_pg_render(const char *tmpl, const char *name, const char *password,
                 const char *password_scram, const char *expiration, char **out, char *err,
                 size_t err_len)
{
    struct sbuf b = {0};
    struct vars v = {name, password, password_scram, expiration};
    char bad[96];
    *out = NULL;
    int rc = subst(tmpl, &v, &b, bad, sizeof(bad));
    if (rc == 0 && b.oom)
        rc = -ENOMEM;
    if (rc) {
        sb_free(&b);
        return rc == -ENOMEM ? rc : mf_err_set(err, err_len, rc, "%s", bad);
    }
    *out = b.p ? b.p : strdup("");
    return *out ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------- connection */

static void notice_ignore(void *arg, const char *message)
{
    /* Notices (e.g. pg_terminate_backend's WARNING for a pid that just
     * exited) would go to stderr by default; they are expected and never
     * worth a log line. */
    (void)arg;
    (void)message;
}

static void conn_drop(struct mf_engine *e)
{
    if (e->conn) {
        PQfinish(e->conn);
        e->conn = NULL;
    }
}

/* One line of libpq's connection error, scrubbed. */
static void conn_error_text(struct mf_engine *e, PGconn *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s", c ? PQerrorMessage(c) : "out of memory");
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = 0;
    scrub(buf, e->password);
}

/* Open the connection. Unreachable or refusing for now (starting up, too many
 * clients) -> MF_EUNAVAIL; the server checked our password and said no (bad
 * password, unknown database, no LOGIN) -> MF_EINVAL: retrying will not help
 * until an operator fixes the config. */
static int conn_open(struct mf_engine *e, char *err, size_t err_len)
{
    MF_ASSERT(e->conn == NULL);
    char connect_timeout[16], options[64];
    snprintf(connect_timeout, sizeof(connect_timeout), "%d", e->connect_timeout_s);
    snprintf(options, sizeof(options), "-c statement_timeout=%d", e->statement_timeout_ms);
    const char *k[16], *v[16];
    int n = 0;
    if (e->url) {
        k[n] = "dbname"; /* expanded: later keywords override the URL's */
        v[n++] = e->url;
    }
    if (e->host) {
        k[n] = "host";
        v[n++] = e->host;
    }
    if (e->port) {
        k[n] = "port";
        v[n++] = e->port;
    }
    if (e->dbname) {
        k[n] = "dbname";
        v[n++] = e->dbname;
    }
    k[n] = "user";
    v[n++] = e->username;
    k[n] = "password";
    v[n++] = e->password;
    k[n] = "connect_timeout";
    v[n++] = connect_timeout;
    k[n] = "options";
    v[n++] = options;
    k[n] = "application_name";
    v[n++] = "mayfly";
    /* A peer that vanishes without a FIN must not hang a call forever. */
    k[n] = "keepalives";
    v[n++] = "1";
    k[n] = "keepalives_idle";
    v[n++] = "10";
    k[n] = "keepalives_interval";
    v[n++] = "5";
    k[n] = "keepalives_count";
    v[n++] = "3";
    k[n] = NULL;
    v[n] = NULL;
    MF_ASSERT(n < 16);
    PGconn *c = PQconnectdbParams(k, v, e->url ? 1 : 0);
    if (!c)
        return set_err(e, NULL, err, err_len, -ENOMEM, "postgres: out of memory connecting");
    if (PQstatus(c) != CONNECTION_OK) {
        char text[MF_ENGINE_ERR_LEN];
        conn_error_text(e, c, text, sizeof(text));
        int code = MF_EUNAVAIL;
        if (PQconnectionUsedPassword(c) && !strstr(text, "too many") &&
            !strstr(text, "starting up") && !strstr(text, "shutting down"))
            code = MF_EINVAL;
        PQfinish(c);
        MF_WARN(LOG_MOD, "connect as %s failed: %s", e->username, text);
        return set_err(e, NULL, err, err_len, code, "postgres: connect as %s: %s", e->username,
                       text);
    }
    PQsetNoticeProcessor(c, notice_ignore, NULL);
    e->conn = c;
    return 0;
}

/* A usable, idle connection: the old one if it still looks alive, else a new
 * one. A server that restarted or terminated us left a FATAL message or EOF
 * on the socket, which we notice here instead of failing the next call. */
static int conn_ensure(struct mf_engine *e, char *err, size_t err_len)
{
    if (e->conn) {
        bool ok = PQstatus(e->conn) == CONNECTION_OK &&
                  PQtransactionStatus(e->conn) == PQTRANS_IDLE;
        if (ok) {
            /* We never LISTEN, so an idle connection has nothing to say; if
             * its socket is readable, the server sent a FATAL and/or closed
             * it (libpq would only notice at the next query). */
            struct pollfd p = {.fd = PQsocket(e->conn), .events = POLLIN};
            ok = p.fd >= 0 && poll(&p, 1, 0) == 0;
        }
        if (!ok)
            conn_drop(e);
    }
    return e->conn ? 0 : conn_open(e, err, err_len);
}

/* The code for a SQLSTATE: a statement or template the server refuses as
 * written -> MF_EINVAL; everything else (resources, locks, timeouts,
 * dependencies an operator may clear, server trouble) -> MF_EUNAVAIL, retried. */
static int sqlstate_code(const char *st)
{
    if (!st || strlen(st) != 5)
        return MF_EUNAVAIL;
    if (strncmp(st, "42", 2) == 0 || strncmp(st, "22", 2) == 0 || strncmp(st, "0A", 2) == 0 ||
        strncmp(st, "23", 2) == 0 || strncmp(st, "28", 2) == 0)
        return MF_EINVAL;
    return MF_EUNAVAIL;
}

struct pg_failure {
    int code;
    char sqlstate[6];
    char text[MF_ENGINE_ERR_LEN];
};

/* Run sql (several statements allowed when nparams is 0). On success returns
 * 0 and, if out, the result (caller PQclear's it). On failure fills f (text
 * scrubbed of e->password and secret), leaves the session idle (ROLLBACK or a
 * dropped connection) and returns f->code. */
static int run(struct mf_engine *e, const char *sql, int nparams, const char *const *params,
               PGresult **out, const char *secret, struct pg_failure *f)
{
    MF_ASSERT(e->conn);
    if (out)
        *out = NULL;
    memset(f, 0, sizeof(*f));
    PGresult *r = nparams ? PQexecParams(e->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                          : PQexec(e->conn, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    if (PQstatus(e->conn) != CONNECTION_OK) {
        conn_error_text(e, e->conn, f->text, sizeof(f->text));
        f->code = MF_EUNAVAIL;
        conn_drop(e);
    } else {
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
        if (state)
            snprintf(f->sqlstate, sizeof(f->sqlstate), "%s", state);
        if (primary)
            snprintf(f->text, sizeof(f->text), "SQLSTATE %s: %s%s%s%s", state ? state : "?",
                     primary, detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
        else
            conn_error_text(e, e->conn, f->text, sizeof(f->text));
        for (char *p = f->text; *p; p++)
            if (*p == '\n')
                *p = ' ';
        f->code = sqlstate_code(state);
        if (PQtransactionStatus(e->conn) != PQTRANS_IDLE) {
            PGresult *rb = PQexec(e->conn, "ROLLBACK");
            if (PQresultStatus(rb) != PGRES_COMMAND_OK)
                conn_drop(e);
            PQclear(rb);
        }
    }
    scrub(f->text, e->password);
    scrub(f->text, secret);
    PQclear(r);
    return f->code;
}

/* ------------------------------------------------------------------ config */

static int json_str(json_t *o, const char *key, char **out, bool required, char *err,
                    size_t err_len)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return mf_err_set(err, err_len, MF_EINVAL, "postgres config: \"%s\" is required",
                              key);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "postgres config: \"%s\" must be a non-empty string", key);
    *out = strdup(json_string_value(v));
    return *out ? 0 : -ENOMEM;
}

static int json_int(json_t *o, const char *key, int *out, int min, int max, char *err,
                    size_t err_len)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "postgres config: \"%s\" must be an integer in %d..%d", key, min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

/* Wipe a jansson string's bytes before it is freed (jansson does not). */
static void json_wipe(json_t *v)
{
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

static void engine_free(struct mf_engine *e)
{
    if (!e)
        return;
    conn_drop(e);
    for (size_t i = 0; i < e->roles_len; i++) {
        free(e->roles[i].creation);
        free(e->roles[i].revocation);
        free(e->roles[i].renew);
    }
    free(e->roles);
    json_decref(e->config);
    free(e->url);
    free(e->host);
    free(e->port);
    free(e->dbname);
    free(e->username);
    wipe_free(e->password);
    free(e);
}

static int pg_open(const char *config_json, struct mf_engine **out, char *err, size_t err_len)
{
    static const char *known[] = {"connection_url",       "host",
                                  "port",                 "dbname",
                                  "username",             "password",
                                  "max_open_connections", "connect_timeout_s",
                                  "statement_timeout_ms", "terminate_timeout_ms"};
    *out = NULL;
    json_error_t jerr;
    json_t *cfg = json_loads(config_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!cfg || !json_is_object(cfg)) {
        /* jerr.text quotes at most a token; the password may be that token,
         * so only the position is reported. */
        json_decref(cfg);
        return mf_err_set(err, err_len, MF_EINVAL,
                          "postgres config: not a JSON object (line %d, column %d)", jerr.line,
                          jerr.column);
    }
    int rc = 0;
    struct mf_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        rc = -ENOMEM;
        goto fail;
    }
    e->max_open_connections = 1;
    e->connect_timeout_s = PG_CONNECT_TIMEOUT_S;
    e->statement_timeout_ms = PG_STATEMENT_TIMEOUT_MS;
    e->terminate_timeout_ms = PG_TERMINATE_TIMEOUT_MS;
    const char *key;
    json_t *val;
    json_object_foreach(cfg, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "postgres config: unknown key \"%.64s\"",
                            key);
            goto fail;
        }
    }
    json_t *port = json_object_get(cfg, "port");
    if (port && json_is_integer(port)) {
        char p[24];
        snprintf(p, sizeof(p), "%lld", (long long)json_integer_value(port));
        e->port = strdup(p);
        if (!e->port) {
            rc = -ENOMEM;
            goto fail;
        }
    } else if ((rc = json_str(cfg, "port", &e->port, false, err, err_len)) != 0)
        goto fail;
    if ((rc = json_str(cfg, "connection_url", &e->url, false, err, err_len)) != 0 ||
        (rc = json_str(cfg, "host", &e->host, false, err, err_len)) != 0 ||
        (rc = json_str(cfg, "dbname", &e->dbname, false, err, err_len)) != 0 ||
        (rc = json_str(cfg, "username", &e->username, true, err, err_len)) != 0 ||
        (rc = json_str(cfg, "password", &e->password, true, err, err_len)) != 0 ||
        (rc = json_int(cfg, "max_open_connections", &e->max_open_connections, 1, 64, err,
                       err_len)) != 0 ||
        (rc = json_int(cfg, "connect_timeout_s", &e->connect_timeout_s, 1, 600, err, err_len)) !=
            0 ||
        (rc = json_int(cfg, "statement_timeout_ms", &e->statement_timeout_ms, 0, 3600000, err,
                       err_len)) != 0 ||
        (rc = json_int(cfg, "terminate_timeout_ms", &e->terminate_timeout_ms, 0, 600000, err,
                       err_len)) != 0)
        goto fail;
    if (e->url && (e->host || e->port || e->dbname)) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "postgres config: give \"connection_url\" or host/port/dbname, not both");
        goto fail;
    }
    if (!e->url && !e->host) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "postgres config: \"connection_url\" or \"host\" is required");
        goto fail;
    }
    if (e->url) {
        /* The password lives only in "password" (one place to rotate and
         * to scrub); libpq's parse message may quote the URL, so it is not
         * passed on. */
        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(e->url, &perr);
        if (!opts) {
            PQfreemem(perr);
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "postgres config: \"connection_url\" is not a valid libpq URI or "
                            "connection string");
            goto fail;
        }
        bool has_pw = false;
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
                has_pw = true;
        PQconninfoFree(opts);
        if (has_pw) {
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "postgres config: \"connection_url\" must not contain a password; "
                            "put it in \"password\"");
            goto fail;
        }
    }
    json_wipe(json_object_get(cfg, "password"));
    json_object_del(cfg, "password");
    e->config = cfg;
    cfg = NULL;
    /* Connect now so a mount with a wrong password fails at once. A database
     * that is only unreachable does not fail open: calls retry the
     * connection and return MF_EUNAVAIL until it is back. */
    rc = conn_open(e, err, err_len);
    if (rc == MF_EUNAVAIL)
        rc = 0;
    if (rc)
        goto fail;
    *out = e;
    return 0;
fail:
    if (cfg) {
        json_wipe(json_object_get(cfg, "password"));
        json_decref(cfg);
    }
    engine_free(e);
    return rc;
}

static void pg_close(struct mf_engine *e) { engine_free(e); }

/* ------------------------------------------------------------------- roles */

static struct pg_role *role_find(struct mf_engine *e, const char *name)
{
    for (size_t i = 0; i < e->roles_len; i++)
        if (strcmp(e->roles[i].name, name) == 0)
            return &e->roles[i];
    return NULL;
}

/* A template from JSON: one string or an array of strings, joined with ';'
 * after each. Checked by substituting sample values. */
static int role_template(json_t *v, const char *what, bool allow_password, bool allow_expiration,
                         char **out, char *err, size_t err_len)
{
    struct sbuf b = {0};
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!(json_is_array(v) || json_is_string(v)) || n == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "postgres role: \"%s\" must be a string or a non-empty array of strings",
                          what);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(s) || json_string_length(s) == 0) {
            sb_free(&b);
            return mf_err_set(err, err_len, MF_EINVAL,
                              "postgres role: \"%s\" must hold non-empty strings", what);
        }
        sb_add(&b, json_string_value(s));
        sb_add(&b, ";");
    }
    if (b.oom) {
        sb_free(&b);
        return -ENOMEM;
    }
    if (b.len > PG_TEMPLATE_BYTES_MAX) {
        sb_free(&b);
        return mf_err_set(err, err_len, MF_EINVAL, "postgres role: \"%s\" is longer than %d bytes",
                          what, PG_TEMPLATE_BYTES_MAX);
    }
    struct sbuf probe = {0};
    char bad[96];
    struct vars probe_vars = {"mf_x", allow_password ? "x" : NULL, allow_password ? "x" : NULL,
                              allow_expiration ? "x" : NULL};
    int rc = subst(b.p, &probe_vars, &probe, bad, sizeof(bad));
    sb_free(&probe);
    if (rc == 0 && !strstr(b.p, "{{name}}"))
        rc = mf_err_set(bad, sizeof(bad), MF_EINVAL, "{{name}} is missing");
    if (rc) {
        sb_free(&b);
        return mf_err_set(err, err_len, MF_EINVAL, "postgres role: \"%s\": %s", what, bad);
    }
    *out = b.p;
    return 0;
}

static int json_u64(json_t *o, const char *key, uint64_t *out, char *err, size_t err_len)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "postgres role: \"%s\" must be a non-negative integer", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int pg_role_put(struct mf_engine *e, const char *role, const char *role_json, char *err,
                       size_t err_len)
{
    static const char *known[] = {"creation_statements", "revocation_statements",
                                  "renew_statements", "default_ttl_ms", "max_ttl_ms"};
    size_t rlen = role ? strlen(role) : 0;
    if (rlen == 0 || rlen > PG_ROLE_NAME_MAX ||
        strspn(role, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != rlen)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "postgres role: the name must be 1-%d characters of [A-Za-z0-9_.-]",
                          PG_ROLE_NAME_MAX);
    json_error_t jerr;
    json_t *o = json_loads(role_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return mf_err_set(err, err_len, MF_EINVAL, "postgres role %s: not a JSON object (%s)",
                          role, jerr.text);
    }
    struct pg_role r = {0};
    snprintf(r.name, sizeof(r.name), "%s", role);
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "postgres role %s: unknown key \"%.64s\"",
                            role, key);
            goto done;
        }
    }
    json_t *v = json_object_get(o, "creation_statements");
    if (!v) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "postgres role %s: \"creation_statements\" is required", role);
        goto done;
    }
    if ((rc = role_template(v, "creation_statements", true, true, &r.creation, err, err_len)))
        goto done;
    if ((v = json_object_get(o, "revocation_statements")) &&
        (rc = role_template(v, "revocation_statements", false, false, &r.revocation, err,
                            err_len)))
        goto done;
    if ((v = json_object_get(o, "renew_statements")) &&
        (rc = role_template(v, "renew_statements", false, true, &r.renew, err, err_len)))
        goto done;
    if ((rc = json_u64(o, "default_ttl_ms", &r.default_ttl_ms, err, err_len)) ||
        (rc = json_u64(o, "max_ttl_ms", &r.max_ttl_ms, err, err_len)))
        goto done;
    if (r.max_ttl_ms && r.default_ttl_ms > r.max_ttl_ms) {
        rc = mf_err_set(err, err_len, MF_EINVAL,
                        "postgres role %s: default_ttl_ms is above max_ttl_ms", role);
        goto done;
    }
    struct pg_role *old = role_find(e, role);
    if (!old) {
        if (e->roles_len >= PG_ROLES_MAX) {
            rc = mf_err_set(err, err_len, MF_EINVAL, "postgres: more than %d roles",
                            PG_ROLES_MAX);
            goto done;
        }
        struct pg_role *grown = realloc(e->roles, (e->roles_len + 1) * sizeof(*grown));
        if (!grown) {
            rc = -ENOMEM;
            goto done;
        }
        e->roles = grown;
        old = &e->roles[e->roles_len++];
    } else {
        free(old->creation);
        free(old->revocation);
        free(old->renew);
    }
    *old = r;
    memset(&r, 0, sizeof(r));
done:
    free(r.creation);
    free(r.revocation);
    free(r.renew);
    json_decref(o);
    return rc;
}

static int pg_role_ttl(struct mf_engine *e, const char *role, uint64_t *default_ttl_ms,
                       uint64_t *max_ttl_ms)
{
    struct pg_role *r = role_find(e, role);
    if (!r)
        return MF_ENOTFOUND;
    *default_ttl_ms = r->default_ttl_ms;
    *max_ttl_ms = r->max_ttl_ms;
    return 0;
}

/* --------------------------------------------------------- issue and renew */

static int pg_issue(struct mf_engine *e, const char *role, uint64_t seq, uint64_t expire_at_ms,
                    struct mf_engine_cred *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    struct pg_role *r = role_find(e, role);
    if (!r)
        return set_err(e, NULL, err, err_len, MF_ENOTFOUND, "postgres: no role \"%s\"", role);
    if (expire_at_ms == 0)
        return set_err(e, NULL, err, err_len, MF_EINVAL, "postgres: expire_at_ms is 0");
    char name[MF_ENGINE_NAME_MAX], exp[48], pw[MF_PG_PASSWORD_LEN + 1];
    mf_engine_name(seq, name, sizeof(name));
    if (mf_pg_expiration(expire_at_ms, exp, sizeof(exp)))
        return set_err(e, NULL, err, err_len, MF_EINVAL, "postgres: bad expire_at_ms");
    if (mf_pg_password(pw, MF_PG_PASSWORD_LEN))
        return set_err(e, NULL, err, err_len, MF_ECRYPTO, "postgres: CSPRNG failed");
    char scram[MF_PG_SCRAM_LEN];
    scram[0] = 0;
    if (strstr(r->creation, "{{password_scram}}") &&
        mf_pg_scram_verifier(pw, scram, sizeof(scram))) {
        OPENSSL_cleanse(pw, sizeof(pw));
        return set_err(e, NULL, err, err_len, MF_ECRYPTO, "postgres: cannot hash the password");
    }
    struct sbuf sql = {0};
    char bad[96];
    sb_add(&sql, "BEGIN;");
    struct vars v = {name, pw, scram, exp};
    int rc = subst(r->creation, &v, &sql, bad, sizeof(bad));
    MF_ASSERT(rc == 0); /* checked by role_put */
    /* The backstop and the role's name, whatever the templates say. */
    sb_add(&sql, "ALTER ROLE \"");
    sb_add(&sql, name);
    sb_add(&sql, "\" VALID UNTIL '");
    sb_add(&sql, exp);
    sb_add(&sql, "';COMMENT ON ROLE \"");
    sb_add(&sql, name);
    sb_add(&sql, "\" IS '" PG_COMMENT_PREFIX);
    sb_add(&sql, r->name);
    sb_add(&sql, "';COMMIT;");
    if (sql.oom) {
        rc = -ENOMEM;
        goto done;
    }
    if ((rc = conn_ensure(e, err, err_len)) != 0)
        goto done;
    struct pg_failure f;
    if ((rc = run(e, sql.p, 0, NULL, NULL, pw, &f)) != 0) {
        if (strcmp(f.sqlstate, "42710") == 0)
            rc = set_err(e, pw, err, err_len, MF_EEXISTS,
                         "postgres: role %s already exists (an earlier attempt for this lease "
                         "made it; revoke it first)",
                         name);
        else
            rc = set_err(e, pw, err, err_len, rc, "postgres: issue %s (role %s): %s", name,
                         r->name, f.text);
        goto done;
    }
    out->fields[0].key = strdup("username");
    out->fields[0].value = strdup(name);
    out->fields[1].key = strdup("password");
    out->fields[1].value = strdup(pw);
    out->fields_len = 2;
    if (!out->fields[0].key || !out->fields[0].value || !out->fields[1].key ||
        !out->fields[1].value) {
        mf_engine_cred_free(out);
        /* The role exists; the caller's revoke-by-name removes it. */
        rc = set_err(e, NULL, err, err_len, -ENOMEM, "postgres: out of memory");
    }
done:
    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(scram, sizeof(scram));
    sb_free(&sql);
    return rc;
}

static int pg_renew(struct mf_engine *e, const char *role, uint64_t seq, uint64_t expire_at_ms,
                    char *err, size_t err_len)
{
    struct pg_role *r = role_find(e, role);
    if (!r)
        return set_err(e, NULL, err, err_len, MF_ENOTFOUND, "postgres: no role \"%s\"", role);
    char name[MF_ENGINE_NAME_MAX], exp[48], bad[96];
    mf_engine_name(seq, name, sizeof(name));
    if (expire_at_ms == 0 || mf_pg_expiration(expire_at_ms, exp, sizeof(exp)))
        return set_err(e, NULL, err, err_len, MF_EINVAL, "postgres: bad expire_at_ms");
    struct sbuf sql = {0};
    sb_add(&sql, "BEGIN;");
    struct vars vars = {name, NULL, NULL, exp};
    int rc = subst(r->renew ? r->renew : default_renew, &vars, &sql, bad, sizeof(bad));
    MF_ASSERT(rc == 0);
    sb_add(&sql, "COMMIT;");
    if (sql.oom) {
        rc = -ENOMEM;
        goto done;
    }
    if ((rc = conn_ensure(e, err, err_len)) != 0)
        goto done;
    struct pg_failure f;
    if ((rc = run(e, sql.p, 0, NULL, NULL, NULL, &f)) != 0) {
        if (strcmp(f.sqlstate, "42704") == 0)
            rc = set_err(e, NULL, err, err_len, MF_ENOTFOUND, "postgres: renew %s: no such role",
                         name);
        else
            rc = set_err(e, NULL, err, err_len, rc, "postgres: renew %s: %s", name, f.text);
    }
done:
    sb_free(&sql);
    return rc;
}

/* ------------------------------------------------------------------ revoke */

enum item_state {
    ITEM_PENDING = 0, /* still to do */
    ITEM_DONE,        /* rc is final */
};

struct item {
    uint64_t seq;
    char name[MF_ENGINE_NAME_MAX];
    char oid[16];           /* pg_roles.oid, "" if missing */
    struct pg_role *role;   /* from the role's COMMENT; NULL = default revocation */
    enum item_state state;
    int rc;
    size_t pos;             /* index in the caller's arrays */
};

struct revoke_ctx {
    struct mf_engine *e;
    char *err;
    size_t err_len;
    int first_rc;
};

/* Every revoke failure is MF_EUNAVAIL (but out of memory): revocation is
 * retried until its deadline whatever the cause (a template an operator
 * fixes, a grant an operator removes), and the role is already NOLOGIN when
 * a drop fails. The text keeps the SQLSTATE. */
static void item_fail(struct revoke_ctx *x, struct item *it, int rc, const char *text)
{
    if (rc != -ENOMEM)
        rc = MF_EUNAVAIL;
    it->state = ITEM_DONE;
    it->rc = rc;
    if (x->first_rc == 0) {
        x->first_rc = rc;
        set_err(x->e, NULL, x->err, x->err_len, rc, "postgres: revoke %s: %s", it->name, text);
    }
}

typedef int (*build_cb)(struct sbuf *sql, struct item **items, size_t n, void *arg);

static int build_nologin(struct sbuf *sql, struct item **items, size_t n, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        sb_add(sql, "ALTER ROLE \"");
        sb_add(sql, items[i]->name);
        sb_add(sql, "\" NOLOGIN;");
    }
    return 0;
}

static void add_name_list(struct sbuf *sql, struct item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sb_add(sql, i ? ",\"" : "\"");
        sb_add(sql, items[i]->name);
        sb_add(sql, "\"");
    }
}

/* Objects on which the batch's roles hold privileges, as REVOKE targets
 * ("TABLE public.t", "SCHEMA s", ...): one string each in a PGresult. */
struct acl_targets {
    PGresult *r;
};

static int build_drop(struct sbuf *sql, struct item **items, size_t n, void *arg)
{
    /* First one REVOKE per object FROM all the roles at once: DROP OWNED
     * BY revokes role after role, rewriting a shared object's catalog row
     * once per role in one transaction, which grows quadratically (2,000
     * roles with SELECT on one table: 6 s instead of 0.1 s). Then DROP
     * OWNED BY for what is left (privileges on other kinds of objects,
     * shared objects, objects they own in this database) and DROP ROLE;
     * objects in other databases make DROP ROLE fail (2BP01), which the
     * split isolates. */
    struct acl_targets *t = arg;
    for (int i = 0; t && t->r && i < PQntuples(t->r); i++) {
        sb_add(sql, "REVOKE ALL ON ");
        sb_add(sql, PQgetvalue(t->r, i, 0));
        sb_add(sql, " FROM ");
        add_name_list(sql, items, n);
        sb_add(sql, ";");
    }
    sb_add(sql, "DROP OWNED BY ");
    add_name_list(sql, items, n);
    sb_add(sql, ";DROP ROLE IF EXISTS ");
    add_name_list(sql, items, n);
    sb_add(sql, ";");
    return 0;
}

static int build_custom(struct sbuf *sql, struct item **items, size_t n, void *arg)
{
    (void)arg;
    char bad[96];
    for (size_t i = 0; i < n; i++) {
        MF_ASSERT(items[i]->role && items[i]->role->revocation);
        struct vars v = {items[i]->name, NULL, NULL, NULL};
        int rc = subst(items[i]->role->revocation, &v, sql, bad, sizeof(bad));
        MF_ASSERT(rc == 0);
    }
    return 0;
}

/* Run build(items) in one transaction; if it fails, split in halves until the
 * failing role is alone. A single role whose statement says it does not exist
 * (42704, dropped meanwhile) succeeded. A lost connection or a timeout fails
 * the whole batch: no split would help. Marks failed items DONE. */
static void batch(struct revoke_ctx *x, struct item **items, size_t n, build_cb build, void *arg)
{
    if (n == 0)
        return;
    struct mf_engine *e = x->e;
    if (!e->conn) {
        for (size_t i = 0; i < n; i++)
            item_fail(x, items[i], MF_EUNAVAIL, "no connection to the database");
        return;
    }
    struct sbuf sql = {0};
    sb_add(&sql, "BEGIN;");
    build(&sql, items, n, arg);
    sb_add(&sql, "COMMIT;");
    struct pg_failure f;
    int rc = sql.oom ? -ENOMEM : run(e, sql.p, 0, NULL, NULL, NULL, &f);
    if (sql.oom)
        snprintf(f.text, sizeof(f.text), "out of memory");
    sb_free(&sql);
    if (rc == 0)
        return;
    bool whole = rc == -ENOMEM || !e->conn || strcmp(f.sqlstate, "57014") == 0 ||
                 strncmp(f.sqlstate, "08", 2) == 0 || strncmp(f.sqlstate, "53", 2) == 0;
    if (whole || n == 1) {
        if (n == 1 && strcmp(f.sqlstate, "42704") == 0)
            return; /* gone already */
        for (size_t i = 0; i < n; i++)
            item_fail(x, items[i], rc, f.text);
        return;
    }
    batch(x, items, n / 2, build, arg);
    batch(x, items + n / 2, n - n / 2, build, arg);
}

/* PostgreSQL array literal of the items' names or oids: "{a,b,c}". */
static void array_literal(struct sbuf *b, struct item **items, size_t n, bool oids)
{
    sb_add(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_add(b, ",");
        sb_add(b, oids ? items[i]->oid : items[i]->name);
    }
    sb_add(b, "}");
}

/* Terminate every session of the items' roles (by oid, so a role dropped
 * meanwhile still matches) and wait until they are gone. With fail set, an
 * item whose sessions outlive terminate_timeout_ms fails with MF_EUNAVAIL. */
static int terminate(struct revoke_ctx *x, struct item **items, size_t n, bool fail)
{
    struct mf_engine *e = x->e;
    if (n == 0)
        return 0;
    if (!e->conn) {
        if (fail)
            for (size_t i = 0; i < n; i++)
                item_fail(x, items[i], MF_EUNAVAIL, "no connection to the database");
        return MF_EUNAVAIL;
    }
    struct sbuf arr = {0};
    array_literal(&arr, items, n, true);
    if (arr.oom) {
        sb_free(&arr);
        return -ENOMEM;
    }
    char timeout[24];
    snprintf(timeout, sizeof(timeout), "%d", e->terminate_timeout_ms);
    const char *params[2] = {arr.p, timeout};
    struct pg_failure f;
    PGresult *r = NULL;
    /* Signal all first, then wait: pg_terminate_backend(pid, timeout) polls
     * every 100 ms, so waiting on each in turn before the others were
     * signalled would cost 100 ms per session. */
    int rc = run(e,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE usesysid = ANY($1::oid[]) AND pid <> pg_backend_pid()",
                 1, params, &r, NULL, &f);
    int sessions = r ? PQntuples(r) : 0;
    PQclear(r);
    r = NULL;
    if (rc == 0 && sessions > 0)
        rc = run(e,
                 "SELECT usesysid FROM pg_stat_activity WHERE usesysid = ANY($1::oid[]) "
                 "AND pid <> pg_backend_pid() AND NOT pg_terminate_backend(pid, $2::bigint)",
                 2, params, &r, NULL, &f);
    int left = r ? PQntuples(r) : 0;
    PQclear(r);
    r = NULL;
    /* false also means "exited between the scan and the call": look again. */
    if (rc == 0 && left > 0)
        rc = run(e,
                 "SELECT DISTINCT usesysid FROM pg_stat_activity "
                 "WHERE usesysid = ANY($1::oid[]) AND pid <> pg_backend_pid()",
                 1, params, &r, NULL, &f);
    if (rc == 0 && r && fail) {
        for (int i = 0; i < PQntuples(r); i++)
            for (size_t j = 0; j < n; j++)
                if (strcmp(PQgetvalue(r, i, 0), items[j]->oid) == 0)
                    item_fail(x, items[j], MF_EUNAVAIL,
                              "sessions still alive after pg_terminate_backend");
    }
    if (rc == 0 && r && !fail && PQntuples(r) > 0)
        MF_WARN(LOG_MOD, "%d dropped roles still have sessions after terminate", PQntuples(r));
    PQclear(r);
    sb_free(&arr);
    if (rc && fail)
        for (size_t i = 0; i < n; i++)
            item_fail(x, items[i], rc, f.text);
    return rc;
}

/* The objects of this database (and shared ones) on which the roles hold
 * privileges, as REVOKE targets, for the kinds REVOKE ALL handles the same
 * way; NULL when there are none, too many, or the lookup fails (DROP OWNED
 * BY then does it all, only slower). */
static PGresult *acl_lookup(struct revoke_ctx *x, struct item **items, size_t n)
{
    struct mf_engine *e = x->e;
    if (n == 0 || !e->conn)
        return NULL;
    struct sbuf arr = {0};
    array_literal(&arr, items, n, true);
    if (arr.oom) {
        sb_free(&arr);
        return NULL;
    }
    const char *params[1] = {arr.p};
    PGresult *r = NULL;
    struct pg_failure f;
    int rc = run(e,
                 "SELECT DISTINCT CASE d.classid "
                 "WHEN 'pg_class'::regclass THEN 'TABLE ' || d.objid::regclass::text "
                 "WHEN 'pg_namespace'::regclass THEN 'SCHEMA ' || d.objid::regnamespace::text "
                 "WHEN 'pg_proc'::regclass THEN 'ROUTINE ' || d.objid::regprocedure::text "
                 "END FROM pg_shdepend d "
                 "WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = ANY($1::oid[]) "
                 "AND d.deptype = 'a' AND d.classid IN ('pg_class'::regclass, "
                 "'pg_namespace'::regclass, 'pg_proc'::regclass) "
                 "AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                 "LIMIT 1001",
                 1, params, &r, NULL, &f);
    sb_free(&arr);
    if (rc) {
        MF_WARN(LOG_MOD, "revoke: privilege lookup failed (DROP OWNED will do it): %s", f.text);
        return NULL;
    }
    if (PQntuples(r) == 0 || PQntuples(r) > 1000) {
        PQclear(r);
        return NULL;
    }
    return r;
}

static int cmp_item_seq(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Items still pending, as pointers. */
static size_t pending(struct item *items, size_t n, struct item **out, bool custom)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].state == ITEM_PENDING &&
            (custom == (items[i].role && items[i].role->revocation)))
            out[k++] = &items[i];
    return k;
}

static void revoke_chunk(struct revoke_ctx *x, const uint64_t *seqs, size_t n, int *results)
{
    struct mf_engine *e = x->e;
    struct item *items = calloc(n, sizeof(*items));
    struct item **ptrs = calloc(n, sizeof(*ptrs));
    struct sbuf arr = {0};
    PGresult *res = NULL;
    if (!items || !ptrs) {
        for (size_t i = 0; i < n; i++)
            results[i] = -ENOMEM;
        if (x->first_rc == 0)
            x->first_rc = set_err(e, NULL, x->err, x->err_len, -ENOMEM, "postgres: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].seq = seqs[i];
        items[i].pos = i;
        mf_engine_name(seqs[i], items[i].name, sizeof(items[i].name));
    }
    /* Sorted and without duplicates: a SEQ given twice is revoked once. */
    qsort(items, n, sizeof(*items), cmp_item_seq);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || items[m - 1].seq != items[i].seq)
            items[m++] = items[i];
    for (size_t i = 0; i < m; i++)
        ptrs[i] = &items[i];

    /* 0. Which exist, their oids and mayfly roles. */
    int rc = conn_ensure(e, x->err, x->err_len);
    if (rc) {
        for (size_t i = 0; i < m; i++)
            items[i].rc = rc, items[i].state = ITEM_DONE;
        if (x->first_rc == 0)
            x->first_rc = rc;
        goto results;
    }
    array_literal(&arr, ptrs, m, false);
    const char *params[1] = {arr.p};
    struct pg_failure f;
    rc = arr.oom ? -ENOMEM
                 : run(e,
                       "SELECT rolname, oid, shobj_description(oid, 'pg_authid') FROM pg_roles "
                       "WHERE rolname = ANY($1::text[])",
                       1, params, &res, NULL, &f);
    if (rc) {
        for (size_t i = 0; i < m; i++)
            item_fail(x, &items[i], rc, arr.oom ? "out of memory" : f.text);
        goto results;
    }
    for (size_t i = 0; i < m; i++)
        items[i].state = ITEM_DONE; /* missing: already revoked, rc 0 */
    size_t existed = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        struct item key = {0};
        if (mf_engine_name_parse(PQgetvalue(res, i, 0), &key.seq))
            continue;
        struct item *it = bsearch(&key, items, m, sizeof(*items), cmp_item_seq);
        if (!it)
            continue;
        it->state = ITEM_PENDING;
        existed++;
        snprintf(it->oid, sizeof(it->oid), "%s", PQgetvalue(res, i, 1));
        const char *c = PQgetisnull(res, i, 2) ? "" : PQgetvalue(res, i, 2);
        if (strncmp(c, PG_COMMENT_PREFIX, strlen(PG_COMMENT_PREFIX)) == 0)
            it->role = role_find(e, c + strlen(PG_COMMENT_PREFIX));
    }

    uint64_t t0 = mf_now_mono_ms(), t1, t2, t3;
    /* 1. No new sessions: NOLOGIN, committed. */
    size_t k = pending(items, m, ptrs, false);
    k += pending(items, m, ptrs + k, true);
    batch(x, ptrs, k, build_nologin, NULL);
    t1 = mf_now_mono_ms();
    /* 2. End the sessions that started before. */
    k = pending(items, m, ptrs, false);
    k += pending(items, m, ptrs + k, true);
    terminate(x, ptrs, k, true);
    t2 = mf_now_mono_ms();
    /* 3. Drop: the default for roles without revocation templates, then each
     * role's templates, batched per mayfly role. */
    size_t dropped = 0;
    k = pending(items, m, ptrs, false);
    struct acl_targets acl = {acl_lookup(x, ptrs, k)};
    batch(x, ptrs, k, build_drop, &acl);
    PQclear(acl.r);
    for (size_t i = 0; i < k; i++)
        if (ptrs[i]->state == ITEM_PENDING)
            ptrs[dropped++] = ptrs[i];
    for (size_t r = 0; r < e->roles_len; r++) {
        size_t c = 0;
        struct item **group = ptrs + dropped;
        for (size_t i = 0; i < m; i++)
            if (items[i].state == ITEM_PENDING && items[i].role == &e->roles[r] &&
                e->roles[r].revocation)
                group[c++] = &items[i];
        batch(x, group, c, build_custom, NULL);
        for (size_t i = 0; i < c; i++)
            if (group[i]->state == ITEM_PENDING)
                ptrs[dropped++] = group[i];
    }
    t3 = mf_now_mono_ms();
    /* 4. A login that passed its LOGIN check just before step 1 committed may
     * have registered after step 2 looked: sweep the dropped oids once more. */
    terminate(x, ptrs, dropped, false);
    for (size_t i = 0; i < dropped; i++)
        ptrs[i]->state = ITEM_DONE;
    MF_DEBUG(LOG_MOD,
             "revoke %zu (%zu existed): nologin %" PRIu64 " ms, terminate %" PRIu64
             " ms, drop %" PRIu64 " ms, sweep %" PRIu64 " ms",
             m, existed, t1 - t0, t2 - t1, t3 - t2, mf_now_mono_ms() - t3);

results:
    /* Map back to the caller's order (duplicates share their result). */
    for (size_t i = 0; i < n; i++) {
        struct item key = {.seq = seqs[i]};
        struct item *it = bsearch(&key, items, m, sizeof(*items), cmp_item_seq);
        MF_ASSERT(it);
        results[i] = it->rc;
    }
done:
    PQclear(res);
    sb_free(&arr);
    free(ptrs);
    free(items);
}

static int pg_revoke(struct mf_engine *e, const uint64_t *seqs, size_t n, int *results, char *err,
                     size_t err_len)
{
    struct revoke_ctx x = {.e = e, .err = err, .err_len = err_len};
    if (err && err_len)
        err[0] = 0;
    /* More than one batch's worth is done one batch at a time (the bound on
     * statement size and transaction length). */
    for (size_t off = 0; off < n; off += MF_ENGINE_REVOKE_BATCH_MAX) {
        size_t c = n - off < MF_ENGINE_REVOKE_BATCH_MAX ? n - off : MF_ENGINE_REVOKE_BATCH_MAX;
        revoke_chunk(&x, seqs + off, c, results + off);
    }
    return x.first_rc;
}

/* -------------------------------------------------------------------- list */

static int pg_list(struct mf_engine *e, void (*cb)(void *arg, uint64_t seq), void *arg, char *err,
                   size_t err_len)
{
    int rc = conn_ensure(e, err, err_len);
    if (rc)
        return rc;
    PGresult *r = NULL;
    struct pg_failure f;
    rc = run(e, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'mf\\_%' ORDER BY rolname", 0,
             NULL, &r, NULL, &f);
    if (rc)
        return set_err(e, NULL, err, err_len, rc, "postgres: list roles: %s", f.text);
    for (int i = 0; i < PQntuples(r); i++) {
        uint64_t seq;
        if (mf_engine_name_parse(PQgetvalue(r, i, 0), &seq) == 0)
            cb(arg, seq);
    }
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------- rotate root */

int mf_pg_rotate_root(struct mf_engine *e, char **new_config_json, char *err, size_t err_len)
{
    static const char marker[] = "@@mayfly-new-password@@";
    *new_config_json = NULL;
    char pw[MF_PG_PASSWORD_LEN + 1];
    if (mf_pg_password(pw, MF_PG_PASSWORD_LEN))
        return set_err(e, NULL, err, err_len, MF_ECRYPTO, "postgres: CSPRNG failed");
    int rc = 0;
    char *verifier = NULL, *dump = NULL;
    struct sbuf sql = {0}, out = {0};
    /* The new config first, so nothing can fail after the ALTER commits.
     * jansson holds only a marker, replaced in the dumped text (the
     * password's alphabet needs no JSON escaping). */
    json_t *copy = json_deep_copy(e->config);
    if (!copy || json_object_set_new(copy, "password", json_string(marker))) {
        json_decref(copy);
        rc = -ENOMEM;
        goto done;
    }
    dump = json_dumps(copy, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(copy);
    char *at = dump ? strstr(dump, marker) : NULL;
    if (!at) {
        rc = -ENOMEM;
        goto done;
    }
    sb_addn(&out, dump, (size_t)(at - dump));
    sb_add(&out, pw);
    sb_add(&out, at + strlen(marker));
    sb_add(&out, "\n");
    if (out.oom) {
        rc = -ENOMEM;
        goto done;
    }
    if ((rc = conn_ensure(e, err, err_len)) != 0)
        goto done;
    verifier = PQencryptPasswordConn(e->conn, pw, e->username, "scram-sha-256");
    if (!verifier) {
        rc = set_err(e, pw, err, err_len, MF_EUNAVAIL, "postgres: rotate root: cannot hash the "
                                                        "new password");
        goto done;
    }
    sb_add(&sql, "ALTER ROLE CURRENT_USER WITH PASSWORD '");
    sb_add(&sql, verifier);
    sb_add(&sql, "'");
    struct pg_failure f;
    if (sql.oom)
        rc = -ENOMEM;
    else if ((rc = run(e, sql.p, 0, NULL, NULL, pw, &f)) != 0) {
        scrub(f.text, verifier);
        rc = set_err(e, pw, err, err_len, rc, "postgres: rotate root for %s: %s", e->username,
                     f.text);
        goto done;
    }
    char *keep = strdup(pw);
    if (!keep) {
        /* Committed: the caller gets the config, but this engine has lost its
         * own copy; it reconnects only once reopened with the new config. */
        rc = 0;
    } else {
        wipe_free(e->password);
        e->password = keep;
    }
    *new_config_json = out.p;
    memset(&out, 0, sizeof(out));
    MF_INFO(LOG_MOD, "rotated the admin password of %s", e->username);
done:
    OPENSSL_cleanse(pw, sizeof(pw));
    if (verifier) {
        OPENSSL_cleanse(verifier, strlen(verifier));
        PQfreemem(verifier);
    }
    free(dump);
    sb_free(&sql);
    sb_free(&out);
    return rc;
}

const struct mf_engine_ops mf_engine_postgres_ops = {
    .type = "postgres",
    .open = pg_open,
    .close = pg_close,
    .role_put = pg_role_put,
    .role_ttl = pg_role_ttl,
    .issue = pg_issue,
    .renew = pg_renew,
    .revoke = pg_revoke,
    .list = pg_list,
};
