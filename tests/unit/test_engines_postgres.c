/* Tests of the PostgreSQL engine (src/engines/postgres.c) against a real,
 * throwaway PostgreSQL with scram-sha-256 authentication (pg_harness.h): no
 * mock. Every check of "can log in" / "cannot log in" is a separate libpq
 * connection with the credential, and every check of the catalog is made by
 * a separate admin connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "engines/engine.h"
#include "engines/postgres.h"
#include "pg_harness.h"

static struct mf_pg_harness pg;
static const struct mf_engine_ops *ops;

static const char role_default[] =
    "{\"creation_statements\": [\"CREATE ROLE \\\"{{name}}\\\" WITH LOGIN PASSWORD "
    "'{{password}}' VALID UNTIL '{{expiration}}'\", \"GRANT SELECT ON ALL TABLES IN SCHEMA "
    "public TO \\\"{{name}}\\\"\"], \"default_ttl_ms\": 3600000, \"max_ttl_ms\": 86400000}";

static const char role_scram[] =
    "{\"creation_statements\": [\"CREATE ROLE \\\"{{name}}\\\" WITH LOGIN PASSWORD "
    "'{{password_scram}}' VALID UNTIL '{{expiration}}'\", \"GRANT SELECT ON ALL TABLES IN "
    "SCHEMA public TO \\\"{{name}}\\\"\"]}";

static uint64_t hour_from_now_ms(void) { return mf_now_wall_ms() + 3600 * 1000; }

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int group_setup(void **state)
{
    (void)state;
    mf_log_set_level(getenv("MF_TEST_VERBOSE") ? MF_LOG_DEBUG : MF_LOG_ERROR);
    if (mf_pg_harness_start(&pg, false) != 0)
        return -1;
    ops = mf_engine_find("postgres");
    return ops ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mf_pg_harness_destroy(&pg);
    return 0;
}

static struct mf_engine *open_admin(void)
{
    char cfg[512], err[MF_ENGINE_ERR_LEN] = "";
    mf_pg_harness_config(&pg, NULL, NULL, cfg, sizeof(cfg));
    struct mf_engine *e = NULL;
    int rc = ops->open(cfg, &e, err, sizeof(err));
    if (rc)
        fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    rc = ops->role_put(e, "ro", role_default, err, sizeof(err));
    if (rc)
        fprintf(stderr, "role_put: %s\n", err);
    assert_int_equal(rc, 0);
    return e;
}

static bool can_login(const char *user, const char *password)
{
    PGconn *c = mf_pg_harness_connect(&pg, user, password, NULL);
    bool ok = PQstatus(c) == CONNECTION_OK;
    PQfinish(c);
    return ok;
}

/* One value of a query run as the admin, into buf ("" for NULL, "<none>" when
 * there is no row). */
static void admin_value(const char *sql, char *buf, size_t len)
{
    PGconn *c = mf_pg_harness_connect(&pg, MF_PG_HARNESS_ADMIN, pg.admin_password, NULL);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    snprintf(buf, len, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "<none>");
    PQclear(r);
    PQfinish(c);
}

static long admin_count(const char *sql)
{
    char v[64];
    admin_value(sql, v, sizeof(v));
    return strtol(v, NULL, 10);
}

static long roles_with_prefix(void)
{
    return admin_count("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'mf\\_%'");
}

static void issue_ok(struct mf_engine *e, const char *role, uint64_t seq, uint64_t exp,
                     struct mf_engine_cred *c)
{
    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->issue(e, role, seq, exp, c, err, sizeof(err));
    if (rc)
        fprintf(stderr, "issue: %s\n", err);
    assert_int_equal(rc, 0);
}

static const char *field(const struct mf_engine_cred *c, const char *key)
{
    for (size_t i = 0; i < c->fields_len; i++)
        if (strcmp(c->fields[i].key, key) == 0)
            return c->fields[i].value;
    fail_msg("no field %s", key);
    return NULL;
}

/* Passwords are 32 characters of [A-Za-z0-9], and every character of the
 * alphabet turns up (no character is left out by a biased mapping);
 * expirations are UTC timestamptz literals. */
static void test_engines_postgres_password_and_expiration(void **state)
{
    (void)state;
    int seen[256] = {0};
    for (int i = 0; i < 200; i++) {
        char pw[MF_PG_PASSWORD_LEN + 1];
        assert_int_equal(mf_pg_password(pw, MF_PG_PASSWORD_LEN), 0);
        assert_int_equal(strlen(pw), 32);
        for (const char *p = pw; *p; p++) {
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                        (*p >= '0' && *p <= '9'));
            seen[(unsigned char)*p]++;
        }
    }
    int distinct = 0;
    for (int i = 0; i < 256; i++)
        distinct += seen[i] > 0;
    assert_int_equal(distinct, 62);
    char buf[48];
    assert_int_equal(mf_pg_expiration(UINT64_C(1700000000123), buf, sizeof(buf)), 0);
    assert_string_equal(buf, "2023-11-14 22:13:20.123+00");
    assert_int_not_equal(mf_pg_expiration(1, buf, 8), 0);
}

/* An issued credential logs in with its password and not with a wrong one
 * (scram, not trust); VALID UNTIL is the lease's expiry and renew moves it. */
static void test_engines_postgres_issue_login_renew(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "CREATE TABLE IF NOT EXISTS t1(x int)"), 0);
    struct mf_engine_cred c;
    uint64_t exp = UINT64_C(4102444800123); /* 2100-01-01 00:00:00.123 UTC */
    issue_ok(e, "ro", 101, exp, &c);
    char name[MF_ENGINE_NAME_MAX];
    mf_engine_name(101, name, sizeof(name));
    assert_string_equal(field(&c, "username"), name);
    const char *pw = field(&c, "password");
    assert_int_equal(strlen(pw), MF_PG_PASSWORD_LEN);
    assert_true(can_login(name, pw));
    char wrong[MF_PG_PASSWORD_LEN + 1];
    snprintf(wrong, sizeof(wrong), "%s", pw);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    assert_false(can_login(name, wrong));
    assert_false(can_login(name, ""));

    /* The grant from the second creation statement took effect. */
    PGconn *u = mf_pg_harness_connect(&pg, name, pw, NULL);
    PGresult *r = PQexec(u, "SELECT count(*) FROM t1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(u);

    char sql[256], v[64];
    snprintf(sql, sizeof(sql),
             "SELECT (extract(epoch FROM rolvaliduntil) * 1000)::bigint FROM pg_roles "
             "WHERE rolname = '%s'",
             name);
    admin_value(sql, v, sizeof(v));
    assert_int_equal(strtoull(v, NULL, 10), exp);

    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->renew(e, "ro", 101, exp + 3600000, err, sizeof(err)), 0);
    admin_value(sql, v, sizeof(v));
    assert_int_equal(strtoull(v, NULL, 10), exp + 3600000);
    /* Renewing what does not exist is NOT_FOUND; an unknown role too. */
    assert_int_equal(ops->renew(e, "ro", 999999, exp, err, sizeof(err)), MF_ENOTFOUND);
    assert_int_equal(ops->renew(e, "nope", 101, exp, err, sizeof(err)), MF_ENOTFOUND);
    /* Issuing twice for one lease does not silently make a second password. */
    struct mf_engine_cred c2;
    assert_int_equal(ops->issue(e, "ro", 101, exp, &c2, err, sizeof(err)), MF_EEXISTS);
    assert_null(strstr(err, pw));

    uint64_t default_ttl, max_ttl;
    assert_int_equal(ops->role_ttl(e, "ro", &default_ttl, &max_ttl), 0);
    assert_int_equal(default_ttl, 3600000);
    assert_int_equal(max_ttl, 86400000);
    assert_int_equal(ops->role_ttl(e, "nope", &default_ttl, &max_ttl), MF_ENOTFOUND);

    int res;
    uint64_t seq = 101;
    assert_int_equal(ops->revoke(e, &seq, 1, &res, err, sizeof(err)), 0);
    mf_engine_cred_free(&c);
    ops->close(e);
}

/* With {{password_scram}} the engine sends PostgreSQL a SCRAM verifier it
 * made itself: the stored secret is that verifier, and the clear-text
 * password logs in while a wrong one does not. */
static void test_engines_postgres_issue_scram_verifier(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->role_put(e, "fast", role_scram, err, sizeof(err)), 0);
    struct mf_engine_cred c;
    issue_ok(e, "fast", 150, hour_from_now_ms(), &c);
    const char *name = field(&c, "username"), *pw = field(&c, "password");
    assert_true(can_login(name, pw));
    char wrong[MF_PG_PASSWORD_LEN + 1];
    snprintf(wrong, sizeof(wrong), "%s", pw);
    wrong[5] = wrong[5] == 'x' ? 'y' : 'x';
    assert_false(can_login(name, wrong));
    char sql[160], v[200];
    snprintf(sql, sizeof(sql), "SELECT rolpassword FROM pg_authid WHERE rolname = '%s'", name);
    admin_value(sql, v, sizeof(v));
    assert_memory_equal(v, "SCRAM-SHA-256$4096:", 19);
    char verifier[MF_PG_SCRAM_LEN];
    assert_int_equal(mf_pg_scram_verifier(pw, verifier, sizeof(verifier)), 0);
    assert_int_equal(strlen(verifier), strlen(v));
    assert_string_not_equal(verifier, v); /* a fresh salt each time */
    uint64_t seq = 150;
    int res;
    assert_int_equal(ops->revoke(e, &seq, 1, &res, err, sizeof(err)), 0);
    mf_engine_cred_free(&c);
    ops->close(e);
}

/* Revoke drops the role, refuses new logins and terminates a session the
 * credential opened before; revoking again, or a SEQ never issued, succeeds. */
static void test_engines_postgres_revoke_terminates(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    struct mf_engine_cred c;
    issue_ok(e, "ro", 202, hour_from_now_ms(), &c);
    const char *name = field(&c, "username"), *pw = field(&c, "password");
    PGconn *s = mf_pg_harness_connect(&pg, name, pw, NULL);
    assert_int_equal(PQstatus(s), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'",
             name);
    assert_int_equal(admin_count(sql), 1); /* registered before the login returned */

    uint64_t seqs[] = {202, 203 /* never issued */};
    int res[2] = {-1, -1};
    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->revoke(e, seqs, 2, res, err, sizeof(err)), 0);
    assert_int_equal(res[0], 0);
    assert_int_equal(res[1], 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname = '%s'", name);
    assert_int_equal(admin_count(sql), 0);
    assert_false(can_login(name, pw));
    /* The old session is gone: the server closed it during revoke. */
    PGresult *r = PQexec(s, "SELECT 1");
    assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(s);
    assert_int_equal(
        admin_count("SELECT count(*) FROM pg_stat_activity WHERE usesysid IS NOT NULL AND "
                    "usesysid NOT IN (SELECT oid FROM pg_roles)"),
        0);
    /* Idempotent. */
    res[0] = res[1] = -1;
    assert_int_equal(ops->revoke(e, seqs, 2, res, err, sizeof(err)), 0);
    assert_int_equal(res[0], 0);
    assert_int_equal(res[1], 0);
    mf_engine_cred_free(&c);
    ops->close(e);
}

/* Make n roles as issue would (LOGIN, the role's grant, our comment) in one
 * admin transaction: issue makes 50-300 a second here. The grant is one
 * statement for all: GRANTs one role at a time in one transaction rewrite
 * t1's catalog row n times, which grows quadratically. */
static void make_roles(const uint64_t *seqs, size_t n)
{
    struct sbuf_simple {
        char *p;
        size_t len;
    } b = {malloc(n * 128 + 64), 0};
    assert_non_null(b.p);
    b.len += (size_t)sprintf(b.p + b.len, "BEGIN;");
    for (size_t i = 0; i < n; i++) {
        char name[MF_ENGINE_NAME_MAX];
        mf_engine_name(seqs[i], name, sizeof(name));
        b.len += (size_t)sprintf(b.p + b.len,
                                 "CREATE ROLE \"%s\" LOGIN; "
                                 "COMMENT ON ROLE \"%s\" IS 'mayfly role: ro';",
                                 name, name);
    }
    b.len += (size_t)sprintf(b.p + b.len, "GRANT SELECT ON t1 TO ");
    for (size_t i = 0; i < n; i++) {
        char name[MF_ENGINE_NAME_MAX];
        mf_engine_name(seqs[i], name, sizeof(name));
        b.len += (size_t)sprintf(b.p + b.len, "%s\"%s\"", i ? "," : "", name);
    }
    sprintf(b.p + b.len, ";COMMIT;");
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, b.p), 0);
    free(b.p);
}

/* 2,000 credentials, each with a privilege on one shared table, revoked in
 * one call; the issue and revoke rates are printed. */
static void test_engines_postgres_revoke_batch(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    enum { N = 2000, ISSUED = 60 };
    uint64_t *seqs = calloc(N + 1, sizeof(*seqs));
    int *res = calloc(N + 1, sizeof(*res));
    assert_non_null(seqs);
    assert_non_null(res);
    for (size_t i = 0; i < N; i++)
        seqs[i] = 10000 + i;
    uint64_t exp = hour_from_now_ms();
    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->role_put(e, "fast", role_scram, err, sizeof(err)), 0);
    double t0 = mono_s();
    for (size_t i = 0; i < ISSUED / 2; i++) {
        struct mf_engine_cred c;
        issue_ok(e, "ro", seqs[i], exp, &c);
        mf_engine_cred_free(&c);
    }
    double t1 = mono_s();
    for (size_t i = ISSUED / 2; i < ISSUED; i++) {
        struct mf_engine_cred c;
        issue_ok(e, "fast", seqs[i], exp, &c);
        mf_engine_cred_free(&c);
    }
    double t1b = mono_s();
    make_roles(seqs + ISSUED, N - ISSUED);
    assert_int_equal(roles_with_prefix(), N);
    seqs[N] = seqs[0]; /* a duplicate in the batch is fine */
    double t2 = mono_s();
    int rc = ops->revoke(e, seqs, N + 1, res, err, sizeof(err));
    double t3 = mono_s();
    if (rc)
        fprintf(stderr, "revoke: %s\n", err);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i <= N; i++)
        assert_int_equal(res[i], 0);
    assert_int_equal(roles_with_prefix(), 0);
    printf("# postgres (fsync off): issue one per call: {{password}} %.0f roles/s, "
           "{{password_scram}} %.0f roles/s; revoke %d (SELECT on one shared table) in one "
           "call: %.0f roles/s\n",
           (ISSUED / 2) / (t1 - t0), (ISSUED / 2) / (t1b - t1), N, N / (t3 - t2));
    free(seqs);
    free(res);
    ops->close(e);
}

/* A role that cannot be dropped (it holds a privilege in another database)
 * is reported on its own; the others in its batch are revoked, and it cannot
 * log in any more. Once an operator clears the grant, revoke completes. */
static void test_engines_postgres_revoke_split(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    enum { N = 9, BAD = 4 };
    uint64_t seqs[N];
    int res[N];
    struct mf_engine_cred creds[N];
    for (int i = 0; i < N; i++) {
        seqs[i] = 300 + (uint64_t)i;
        issue_ok(e, "ro", seqs[i], hour_from_now_ms(), &creds[i]);
    }
    const char *bad = field(&creds[BAD], "username");
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "CREATE DATABASE otherdb"), 0);
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE TABLE t(x int); GRANT SELECT ON t TO \"%s\"", bad);
    assert_int_equal(mf_pg_harness_exec(&pg, "otherdb", sql), 0);

    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->revoke(e, seqs, N, res, err, sizeof(err));
    assert_int_equal(rc, MF_EUNAVAIL);
    assert_non_null(strstr(err, bad));
    assert_non_null(strstr(err, "otherdb"));
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i], i == BAD ? MF_EUNAVAIL : 0);
    assert_int_equal(roles_with_prefix(), 1);
    snprintf(sql, sizeof(sql), "SELECT rolcanlogin::text FROM pg_roles WHERE rolname = '%s'",
             bad);
    char v[16];
    admin_value(sql, v, sizeof(v));
    assert_string_equal(v, "false");
    assert_false(can_login(bad, field(&creds[BAD], "password")));

    assert_int_equal(mf_pg_harness_exec(&pg, "otherdb", "DROP TABLE t"), 0);
    rc = ops->revoke(e, seqs, N, res, err, sizeof(err));
    assert_int_equal(rc, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i], 0);
    assert_int_equal(roles_with_prefix(), 0);
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "DROP DATABASE otherdb"), 0);
    for (int i = 0; i < N; i++)
        mf_engine_cred_free(&creds[i]);
    ops->close(e);
}

/* A role's own revocation templates are used for its credentials (found by
 * the role's comment), the default for the others in the same call; a
 * template that fails for one name leaves the others revoked. */
static void test_engines_postgres_revoke_custom(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    /* Fails for exactly the role whose name the marker table names. */
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "CREATE TABLE refuse(name text)"), 0);
    const char custom[] =
        "{\"creation_statements\": \"CREATE ROLE \\\"{{name}}\\\" LOGIN PASSWORD '{{password}}'\","
        " \"revocation_statements\": [\"SELECT 1/(1 - count(*))::int FROM refuse WHERE name = "
        "'{{name}}'\", \"REASSIGN OWNED BY \\\"{{name}}\\\" TO CURRENT_USER\", "
        "\"DROP ROLE \\\"{{name}}\\\"\"]}";
    char err[MF_ENGINE_ERR_LEN] = "";
    int rc = ops->role_put(e, "custom", custom, err, sizeof(err));
    if (rc)
        fprintf(stderr, "role_put: %s\n", err);
    assert_int_equal(rc, 0);
    enum { N = 6 };
    uint64_t seqs[N];
    int res[N];
    struct mf_engine_cred c;
    for (int i = 0; i < N; i++) {
        seqs[i] = 400 + (uint64_t)i;
        issue_ok(e, i % 2 ? "custom" : "ro", seqs[i], hour_from_now_ms(), &c);
        if (i == 3) {
            char sql[128];
            snprintf(sql, sizeof(sql), "INSERT INTO refuse VALUES ('%s')",
                     field(&c, "username"));
            assert_int_equal(mf_pg_harness_exec(&pg, NULL, sql), 0);
        }
        mf_engine_cred_free(&c);
    }
    rc = ops->revoke(e, seqs, N, res, err, sizeof(err));
    assert_int_equal(rc, MF_EUNAVAIL); /* revoke failures are all retryable */
    assert_non_null(strstr(err, "22012"));
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i], i == 3 ? MF_EUNAVAIL : 0);
    assert_int_equal(roles_with_prefix(), 1);
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "DELETE FROM refuse"), 0);
    assert_int_equal(ops->revoke(e, seqs, N, res, err, sizeof(err)), 0);
    assert_int_equal(roles_with_prefix(), 0);
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "DROP TABLE refuse"), 0);
    ops->close(e);
}

struct seen {
    uint64_t seqs[16];
    size_t n;
};

static void collect(void *arg, uint64_t seq)
{
    struct seen *s = arg;
    assert_true(s->n < 16);
    s->seqs[s->n++] = seq;
}

/* list() reports exactly our roles: not other roles, not a look-alike name
 * that is not a SEQ. */
static void test_engines_postgres_list(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    assert_int_equal(
        mf_pg_harness_exec(&pg, NULL, "CREATE ROLE app; CREATE ROLE mf_bogus; CREATE ROLE mfx"),
        0);
    const uint64_t want[] = {7, 500, UINT64_C(1) << 40};
    struct mf_engine_cred c;
    for (size_t i = 0; i < 3; i++) {
        issue_ok(e, "ro", want[i], hour_from_now_ms(), &c);
        mf_engine_cred_free(&c);
    }
    struct seen s = {0};
    char err[MF_ENGINE_ERR_LEN] = "";
    assert_int_equal(ops->list(e, collect, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s.seqs[i], want[i]); /* names sort like SEQs */
    int res[3];
    assert_int_equal(ops->revoke(e, want, 3, res, err, sizeof(err)), 0);
    s.n = 0;
    assert_int_equal(ops->list(e, collect, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "DROP ROLE app, mf_bogus, mfx"), 0);
    ops->close(e);
}

/* Bad configs and roles are refused with clear texts that never hold the
 * password: a wrong admin password, a password inside connection_url, an
 * unknown key; a template that fails at issue does not echo the statement. */
static void test_engines_postgres_errors(void **state)
{
    (void)state;
    char cfg[512], err[MF_ENGINE_ERR_LEN] = "";
    struct mf_engine *e = NULL;
    const char *wrong = "Wr0ngPassw0rdXyz";
    mf_pg_harness_config(&pg, NULL, wrong, cfg, sizeof(cfg));
    assert_int_equal(ops->open(cfg, &e, err, sizeof(err)), MF_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err, "password authentication failed"));
    assert_null(strstr(err, wrong));

    snprintf(cfg, sizeof(cfg),
             "{\"connection_url\": \"postgresql://mfadmin:%s@127.0.0.1:%d/postgres\", "
             "\"username\": \"mfadmin\", \"password\": \"%s\"}",
             pg.admin_password, pg.port, pg.admin_password);
    assert_int_equal(ops->open(cfg, &e, err, sizeof(err)), MF_EINVAL);
    assert_null(strstr(err, pg.admin_password));
    snprintf(cfg, sizeof(cfg),
             "{\"connection_url\": \"postgresql://127.0.0.1:%d/postgres?sslmode=disable\", "
             "\"username\": \"mfadmin\", \"password\": \"%s\", \"pasword\": 1}",
             pg.port, pg.admin_password);
    assert_int_equal(ops->open(cfg, &e, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "pasword"));
    /* A URL config works. */
    snprintf(cfg, sizeof(cfg),
             "{\"connection_url\": \"postgresql://127.0.0.1:%d/postgres?sslmode=disable\", "
             "\"username\": \"mfadmin\", \"password\": \"%s\", \"max_open_connections\": 2, "
             "\"statement_timeout_ms\": 10000}",
             pg.port, pg.admin_password);
    assert_int_equal(ops->open(cfg, &e, err, sizeof(err)), 0);

    assert_int_equal(ops->role_put(e, "r", "{\"creation_statements\": []}", err, sizeof(err)),
                     MF_EINVAL);
    assert_int_equal(ops->role_put(e, "r", "{\"creation_statements\": \"CREATE ROLE {{nam}}\"}",
                                   err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "{{nam}}"));
    assert_int_equal(ops->role_put(e, "r",
                                   "{\"creation_statements\": \"CREATE ROLE x\", "
                                   "\"revocation_statements\": \"DROP ROLE {{name}} {{password}}\"}",
                                   err, sizeof(err)),
                     MF_EINVAL);
    assert_int_equal(ops->role_put(e, "bad name", role_default, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(ops->role_put(e, "typo",
                                   "{\"creation_statements\": \"CREATE ROLE \\\"{{name}}\\\"\", "
                                   "\"default_ttl\": 5}",
                                   err, sizeof(err)),
                     MF_EINVAL);
    /* A syntax error in a statement holding the password. */
    assert_int_equal(ops->role_put(e, "broken",
                                   "{\"creation_statements\": \"CREATE ROLE \\\"{{name}}\\\" "
                                   "LOGIN PASSWORD '{{password}}' BOGUS\"}",
                                   err, sizeof(err)),
                     0);
    struct mf_engine_cred c;
    assert_int_equal(ops->issue(e, "broken", 600, hour_from_now_ms(), &c, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "42601"));
    assert_null(strstr(err, "PASSWORD"));
    assert_null(strstr(err, "BOGUS"));
    assert_int_equal(roles_with_prefix(), 0); /* the transaction rolled back */
    /* A server message that quotes the password (a failing row's DETAIL) is
     * scrubbed. */
    assert_int_equal(
        mf_pg_harness_exec(&pg, NULL, "CREATE TABLE pwcheck(p text CHECK (length(p) < 5))"), 0);
    assert_int_equal(ops->role_put(e, "leaky",
                                   "{\"creation_statements\": [\"CREATE ROLE \\\"{{name}}\\\" "
                                   "LOGIN PASSWORD '{{password}}'\", \"INSERT INTO pwcheck "
                                   "VALUES ('{{password}}')\"]}",
                                   err, sizeof(err)),
                     0);
    assert_int_equal(ops->issue(e, "leaky", 601, hour_from_now_ms(), &c, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "23514"));
    assert_non_null(strstr(err, "Failing row contains (********************************)"));
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "DROP TABLE pwcheck"), 0);
    assert_int_equal(roles_with_prefix(), 0);
    assert_int_equal(ops->issue(e, "nope", 600, hour_from_now_ms(), &c, err, sizeof(err)),
                     MF_ENOTFOUND);
    ops->close(e);
}

/* With PostgreSQL down every call is UNAVAILABLE (retryable), open still
 * succeeds, and once it is back the same engine works again without being
 * reopened, even though its old connection died meanwhile. */
static void test_engines_postgres_down_and_back(void **state)
{
    (void)state;
    struct mf_engine *e = open_admin();
    char err[MF_ENGINE_ERR_LEN] = "";
    struct seen s = {0};
    assert_int_equal(ops->list(e, collect, &s, err, sizeof(err)), 0);
    /* A restart behind its back: the next call must not fail. */
    assert_int_equal(mf_pg_harness_stop(&pg), 0);
    assert_int_equal(mf_pg_harness_restart(&pg), 0);
    assert_int_equal(ops->list(e, collect, &s, err, sizeof(err)), 0);

    assert_int_equal(mf_pg_harness_stop(&pg), 0);
    struct mf_engine_cred c;
    assert_int_equal(ops->issue(e, "ro", 700, hour_from_now_ms(), &c, err, sizeof(err)),
                     MF_EUNAVAIL);
    assert_null(strstr(err, pg.admin_password));
    uint64_t seqs[2] = {700, 701};
    int res[2] = {0, 0};
    assert_int_equal(ops->revoke(e, seqs, 2, res, err, sizeof(err)), MF_EUNAVAIL);
    assert_int_equal(res[0], MF_EUNAVAIL);
    assert_int_equal(res[1], MF_EUNAVAIL);
    assert_int_equal(ops->renew(e, "ro", 700, hour_from_now_ms(), err, sizeof(err)),
                     MF_EUNAVAIL);
    assert_int_equal(ops->list(e, collect, &s, err, sizeof(err)), MF_EUNAVAIL);
    char cfg[512];
    mf_pg_harness_config(&pg, NULL, NULL, cfg, sizeof(cfg));
    struct mf_engine *e2 = NULL;
    assert_int_equal(ops->open(cfg, &e2, err, sizeof(err)), 0); /* lazy when unreachable */

    assert_int_equal(mf_pg_harness_restart(&pg), 0);
    issue_ok(e, "ro", 700, hour_from_now_ms(), &c);
    assert_true(can_login(field(&c, "username"), field(&c, "password")));
    assert_int_equal(ops->revoke(e2, seqs, 2, res, err, sizeof(err)), 0);
    assert_false(can_login(field(&c, "username"), field(&c, "password")));
    mf_engine_cred_free(&c);
    ops->close(e2);
    ops->close(e);
}

/* rotate_root replaces the admin password: the old one is refused, the new
 * config opens and works, and the engine itself keeps working. */
static void test_engines_postgres_rotate_root(void **state)
{
    (void)state;
    assert_int_equal(
        mf_pg_harness_exec(&pg, NULL, "CREATE ROLE rotator SUPERUSER LOGIN PASSWORD 'start123'"),
        0);
    char cfg[512], err[MF_ENGINE_ERR_LEN] = "";
    mf_pg_harness_config(&pg, "rotator", "start123", cfg, sizeof(cfg));
    struct mf_engine *e = NULL;
    assert_int_equal(ops->open(cfg, &e, err, sizeof(err)), 0);
    char *next = NULL;
    int rc = mf_pg_rotate_root(e, &next, err, sizeof(err));
    if (rc)
        fprintf(stderr, "rotate: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(next);
    assert_null(strstr(next, "start123"));
    assert_null(strstr(next, "@@"));
    assert_false(can_login("rotator", "start123"));
    /* The new config holds a 32-character password that logs in. */
    const char *p = strstr(next, "\"password\": \"");
    assert_non_null(p);
    char newpw[MF_PG_PASSWORD_LEN + 1];
    snprintf(newpw, sizeof(newpw), "%s", p + strlen("\"password\": \""));
    assert_true(can_login("rotator", newpw));
    /* The same engine reconnects with the new password after a restart. */
    assert_int_equal(mf_pg_harness_stop(&pg), 0);
    assert_int_equal(mf_pg_harness_restart(&pg), 0);
    assert_int_equal(ops->role_put(e, "ro", role_default, err, sizeof(err)), 0);
    struct mf_engine_cred c;
    issue_ok(e, "ro", 800, hour_from_now_ms(), &c);
    mf_engine_cred_free(&c);
    ops->close(e);
    e = NULL;
    assert_int_equal(ops->open(next, &e, err, sizeof(err)), 0);
    assert_int_equal(ops->role_put(e, "ro", role_default, err, sizeof(err)), 0);
    uint64_t seq = 800;
    int res;
    assert_int_equal(ops->revoke(e, &seq, 1, &res, err, sizeof(err)), 0);
    ops->close(e);
    OPENSSL_cleanse(next, strlen(next));
    free(next);
    OPENSSL_cleanse(newpw, sizeof(newpw));
    assert_int_equal(mf_pg_harness_exec(&pg, NULL, "DROP ROLE rotator"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engines_postgres_password_and_expiration),
        cmocka_unit_test(test_engines_postgres_issue_login_renew),
        cmocka_unit_test(test_engines_postgres_issue_scram_verifier),
        cmocka_unit_test(test_engines_postgres_revoke_terminates),
        cmocka_unit_test(test_engines_postgres_revoke_batch),
        cmocka_unit_test(test_engines_postgres_revoke_split),
        cmocka_unit_test(test_engines_postgres_revoke_custom),
        cmocka_unit_test(test_engines_postgres_list),
        cmocka_unit_test(test_engines_postgres_errors),
        cmocka_unit_test(test_engines_postgres_down_and_back),
        cmocka_unit_test(test_engines_postgres_rotate_root),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
