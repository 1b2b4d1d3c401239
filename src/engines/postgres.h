/* The PostgreSQL dynamic-user engine: mf_engine_postgres_ops (type
 * "postgres", see engine.h for the contract) plus what only this engine has.
 *
 * Config JSON (open):
 *   "connection_url"        libpq URI or key=value string WITHOUT a password
 *                           (e.g. "postgresql://db1:5432/postgres?sslmode=require"),
 *   or "host", "port", "dbname";
 *   "username", "password"  the admin credential (required; the password lives
 *                           only here so rotate_root can replace it);
 *   "max_open_connections"  1..64, default 1 (an instance is used by one thread
 *                           at a time, so it holds at most one connection);
 *   "connect_timeout_s"     default 5;
 *   "statement_timeout_ms"  default 30000 (set per session);
 *   "terminate_timeout_ms"  how long revoke waits for terminated sessions to
 *                           exit, default 5000.
 * Unknown keys are refused (MF_EINVAL): a typo must not be ignored.
 *
 * Role JSON (role_put): "creation_statements" (required, array of strings or
 * one string), "revocation_statements", "renew_statements" (optional),
 * "default_ttl_ms", "max_ttl_ms". Templates use {{name}} {{password}}
 * {{expiration}}, substituted as they are (the operator writes the quotes),
 * and {{password_scram}} (the password's SCRAM-SHA-256 verifier, made here:
 * `PASSWORD '{{password_scram}}'` logs in with the same password and keeps
 * the clear text off the server and out of its statement log);
 * see README.md, "## PostgreSQL", for the defaults and the revocation
 * algorithm.
 *
 * The admin role needs to create and drop roles, terminate their sessions and
 * DROP OWNED BY them: a superuser, or on PostgreSQL 16+ a CREATEROLE role
 * with pg_signal_backend.
 */
#ifndef MF_ENGINES_POSTGRES_H
#define MF_ENGINES_POSTGRES_H

#include <stddef.h>

#include "engines/engine.h"

/* Errors beyond engine.h's: issue gives MF_EEXISTS when the role for that
 * SEQ already exists (an earlier attempt for the lease made it: revoke it
 * first; a second password is never handed out for one lease). revoke
 * reports every per-SEQ failure as MF_EUNAVAIL (or -ENOMEM): revocation is
 * retried until the scheduler's deadline whatever the cause; err keeps the
 * SQLSTATE. Roles whose credential was issued before their mayfly role got
 * revocation_statements, or whose mayfly role is gone from this engine, are
 * revoked with the default algorithm. */

/* Generated passwords: this many characters of [A-Za-z0-9] (about 190 bits). */
#define MF_PG_PASSWORD_LEN 32

extern const struct mf_engine_ops mf_engine_postgres_ops;

/* Change the admin user's password to a new random one (ALTER ROLE
 * CURRENT_USER, sent as a SCRAM verifier so the clear text never reaches the
 * server) and hand back the engine's config JSON with the new password, so
 * that only mayfly knows it. The engine keeps working with the new password.
 *
 * @param[out] new_config_json malloc'd by the engine; the caller stores it
 *             (encrypted) and must OPENSSL_cleanse + free it.
 * Errors: MF_EUNAVAIL (database unreachable or failing: the password is
 * unchanged), MF_EINVAL (refused, e.g. no privilege), -ENOMEM.
 * Crash window: once this returns 0 the old password no longer works; a
 * caller that loses new_config_json before storing it has lost the admin
 * credential (as with Vault's rotate-root). */
int mf_pg_rotate_root(struct mf_engine *e, char **new_config_json, char *err, size_t err_len);

/* Generate a password of len characters [A-Za-z0-9] from the CSPRNG with
 * rejection sampling (no modulo bias), NUL-terminated into buf (len + 1
 * bytes). Returns 0 or MF_ECRYPTO. */
int mf_pg_password(char *buf, size_t len);

/* Bytes for a SCRAM-SHA-256 verifier with NUL (it is 133). */
#define MF_PG_SCRAM_LEN 160

/* The SCRAM-SHA-256 verifier PostgreSQL stores for password (4096
 * iterations, a random 16-byte salt): what {{password_scram}} becomes. A
 * CREATE/ALTER ROLE ... PASSWORD given a verifier stores it as is, so the
 * clear text never reaches the server (or its statement log). Returns 0, MF_ECRYPTO, or MF_EINVAL (buf too
 * small). */
int mf_pg_scram_verifier(const char *password, char *buf, size_t len);

/* Format expire_at_ms as a timestamptz literal in UTC,
 * "YYYY-MM-DD HH:MM:SS.mmm+00". Returns 0 or MF_EINVAL (buffer too small). */
int mf_pg_expiration(uint64_t expire_at_ms, char *buf, size_t len);

/* Substitute a template's placeholders as issue, renew and revoke do (the
 * same code): {{name}} {{password}} {{password_scram}} {{expiration}}; a NULL
 * value is a placeholder not allowed in that kind of template. A seam for
 * the fuzz target (tests/fuzz/fuzz_pg_template.c): role_put's check must
 * accept only templates that then render with real values. On success *out
 * is malloc'd (free() after OPENSSL_cleanse: it may hold the password).
 * Errors: MF_EINVAL (message in err: unknown, unterminated or not allowed
 * placeholder), -ENOMEM. */
int mf_pg_render(const char *tmpl, const char *name, const char *password,
                 const char *password_scram, const char *expiration, char **out, char *err,
                 size_t err_len);

#endif
