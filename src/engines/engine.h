/* Secrets engines: the one interface the server and the revocation scheduler
 * use to make and destroy credentials in external systems (PostgreSQL roles,
 * X.509 certificates). See ../shared/DESIGN.md ("Data flow": a dynamic
 * credential takes two commands) and issue 6.
 *
 * Life of a dynamic credential:
 *   1. the leader commits a lease in state `issuing` (SEQ known);
 *   2. engine->issue(role, seq, expire_at) creates the credential under a name
 *      DERIVED FROM SEQ (mf_engine_name), so a crash between "created" and
 *      "committed" never leaks it: revoke-by-name finds it;
 *   3. the leader commits the lease `active` with the credential (encrypted by
 *      the server, never by the engine);
 *   4. at expiry the scheduler commits `revoking`, then calls
 *      engine->revoke(seqs) until it succeeds, then commits `revoked`.
 * revoke is idempotent: revoking what does not exist (never created, already
 * dropped) succeeds. list() lets a reconciler find objects with mayfly's
 * prefix whose lease is revoked or unknown (a paused, deposed leader may
 * create one after its lease was revoked).
 *
 * Threads: every call may block (network, database): the server runs them on
 * a worker thread, never on the loop. One engine instance is used by one
 * thread at a time (the server serialises calls per mount) unless its type
 * says otherwise.
 *
 * Secrets: credentials and configs handed in or out are plaintext in memory
 * only; the caller encrypts before anything is stored. Engines never log a
 * password, a private key or a connection string with a password; error texts
 * they return (err) must not contain secrets either.
 *
 * Errors: 0 or a negative code; MF_EINVAL bad config/role/argument (not
 * retried), MF_EUNAVAIL target unreachable or failing (retried with backoff),
 * MF_ENOTFOUND unknown role, -ENOMEM.
 */
#ifndef MF_ENGINES_ENGINE_H
#define MF_ENGINES_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#define MF_ENGINE_NAME_PREFIX "mf_"   /* every object an engine creates starts so */
#define MF_ENGINE_NAME_MAX 64         /* bytes with NUL; PostgreSQL's limit is 63 */
#define MF_ENGINE_FIELDS_MAX 8
#define MF_ENGINE_ERR_LEN 256
#define MF_ENGINE_REVOKE_BATCH_MAX 2000 /* seqs in one revoke call */

/* One credential field handed to the client ("username", "password",
 * "certificate", "private_key", ...). Strings are malloc'd by the engine and
 * released with mf_engine_cred_free (which wipes them). */
struct mf_engine_field {
    char *key;
    char *value;
};

struct mf_engine_cred {
    size_t fields_len;
    struct mf_engine_field fields[MF_ENGINE_FIELDS_MAX];
};

void mf_engine_cred_free(struct mf_engine_cred *c);

/* The object name for lease SEQ: "mf_" + SEQ as in lease ids
 * (mf_seq_format: 13 characters of Crockford's base32, lower case), e.g.
 * "mf_0000000000004". Pure; buf must hold MF_ENGINE_NAME_MAX bytes. */
void mf_engine_name(uint64_t seq, char *buf, size_t len);
/* The inverse: 0 and *seq if name is an engine name, MF_EINVAL otherwise. */
int mf_engine_name_parse(const char *name, uint64_t *seq);

struct mf_engine;

struct mf_engine_ops {
    const char *type; /* "postgres", "pki" */
    /* Create an engine from its JSON config text (connection, CA, ...). */
    int (*open)(const char *config_json, struct mf_engine **out, char *err, size_t err_len);
    void (*close)(struct mf_engine *e);
    /* Add or replace a role from its JSON text (templates, TTLs, names). */
    int (*role_put)(struct mf_engine *e, const char *role, const char *role_json, char *err,
                    size_t err_len);
    /* Role limits: the lease TTL is capped by these (0 = none). */
    int (*role_ttl)(struct mf_engine *e, const char *role, uint64_t *default_ttl_ms,
                    uint64_t *max_ttl_ms);
    /* Create the credential for lease `seq`, valid until expire_at_ms (a
     * backstop in the target where it has one, e.g. VALID UNTIL). */
    int (*issue)(struct mf_engine *e, const char *role, uint64_t seq, uint64_t expire_at_ms,
                 struct mf_engine_cred *out, char *err, size_t err_len);
    /* Extend the credential's backstop to expire_at_ms. */
    int (*renew)(struct mf_engine *e, const char *role, uint64_t seq, uint64_t expire_at_ms,
                 char *err, size_t err_len);
    /* Revoke credentials by SEQ, as many per round trip as the target allows.
     * results[i] gets 0 or the error of seqs[i]; the return value is 0 if
     * every one succeeded, else the first error. Idempotent. */
    int (*revoke)(struct mf_engine *e, const uint64_t *seqs, size_t n, int *results, char *err,
                  size_t err_len);
    /* Every object of ours in the target (names with MF_ENGINE_NAME_PREFIX):
     * calls cb for each SEQ. For the reconciler. */
    int (*list)(struct mf_engine *e, void (*cb)(void *arg, uint64_t seq), void *arg, char *err,
                size_t err_len);
};

/* The engine types compiled in ("postgres", "pki") or registered; NULL if
 * unknown. */
const struct mf_engine_ops *mf_engine_find(const char *type);
/* Adds an engine type (the server's unit tests register a fake one). Call
 * before the server starts, from one thread; `ops` must outlive the process.
 * @return 0; MF_EEXISTS (the type is taken); MF_ETOOLARGE (table full). */
int mf_engine_register(const struct mf_engine_ops *ops);

#endif
