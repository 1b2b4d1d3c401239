/* The state database: one LMDB environment (DIR/state/data.mdb) holding every
 * piece of replicated state the state machine keeps, in named databases, plus
 * the index of the last applied Raft entry, written in the same transaction as
 * the commands it covers (so a restart knows exactly where to resume).
 *
 * The environment is opened with MDB_NOMETASYNC (one flush per commit,
 * crash-consistent, may lose the last commit, which the Raft log replays) and
 * MDB_NOTLS (read transactions may move between threads). Never MDB_NOSYNC.
 *
 * Threads: one writer thread runs every write transaction (the fsm); any
 * thread may run read transactions (mf_state_read_begin/end).
 *
 * Errors: LMDB codes are translated at this boundary (mf_state_err):
 * MDB_MAP_FULL -> MF_EMAPFULL, MDB_NOTFOUND -> MF_ENOTFOUND, ENOMEM -> -ENOMEM,
 * ENOSPC -> MF_ENOSPACE, EIO -> -EIO (a short write on a full filesystem or a
 * failing disk: the node tells them apart, common/fsstat.h), anything else ->
 * MF_ESTORAGE (logged with LMDB's text). All of these abort an apply batch.
 */
#ifndef MF_STORE_STATE_H
#define MF_STORE_STATE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "command.pb-c.h"

/* The named databases. Key and value layouts (integers big-endian):
 *  META        "applied" -> u64, "live" -> u64 (live leases), "idem_count" -> u64,
 *              "keyring" -> opaque blob
 *  LEASES      SEQ(8) -> LeaseRecord
 *  EXPIRY      expire_at_ms(8) | SEQ(8) -> "" (issuing and active leases only)
 *  PREFIX      "MOUNT/NAME/" -> SEQ(8)       (DUPSORT|DUPFIXED; until tidy)
 *  REVOKING    SEQ(8) -> ""                  (the revoking set)
 *  REVOKED     revoked_ms(8) | SEQ(8) -> ""  (tidy order)
 *  OWNER       token hash(32) -> SEQ(8)      (DUPSORT|DUPFIXED; leases a token owns)
 *  LEASE_KV    SEQ(8) -> KV key              (DUPSORT; KV paths bound to a lease)
 *  QUOTA       "q" | prefix -> max(8) | count(8)
 *  KV_META     KV key -> KvMeta
 *  KV_VER      KV key | version(8) -> KvVersion
 *  TOKENS      hash(32) -> TokenRecord
 *  TOKEN_ACC   accessor -> hash(32)
 *  TOKEN_CHILD parent hash(32) -> child hash(32) (DUPSORT|DUPFIXED)
 *  POLICIES    name -> body
 *  IDEM        request id -> IdemRecord
 *  IDEM_EXP    expire_at_ms(8) | request id -> ""
 *  IDEM_CALLER caller(32) -> u64 entries; caller(32) | expire_at_ms(8) | request id -> ""
 *  KEYUSE      key term(4) -> u64 encryptions
 *  TOKEN_EXP   expire_at_ms(8) | token hash(32) -> "" (tokens with a TTL)
 */
enum mf_state_db {
    MF_DB_META = 0,
    MF_DB_LEASES,
    MF_DB_EXPIRY,
    MF_DB_PREFIX,
    MF_DB_REVOKING,
    MF_DB_REVOKED,
    MF_DB_OWNER,
    MF_DB_LEASE_KV,
    MF_DB_QUOTA,
    MF_DB_KV_META,
    MF_DB_KV_VER,
    MF_DB_TOKENS,
    MF_DB_TOKEN_ACC,
    MF_DB_TOKEN_CHILD,
    MF_DB_POLICIES,
    MF_DB_IDEM,
    MF_DB_IDEM_EXP,
    MF_DB_KEYUSE,
    MF_DB_TOKEN_EXP,
    MF_DB_IDEM_CALLER,
    MF_DB_COUNT
};

#define MF_STATE_MAP_SIZE_DEFAULT ((size_t)8 << 30) /* 8 GiB, sparse */
#define MF_STATE_READERS_DEFAULT 126

struct mf_state_opts {
    size_t map_size_bytes; /* 0: MF_STATE_MAP_SIZE_DEFAULT */
    unsigned readers_max;  /* 0: MF_STATE_READERS_DEFAULT */
};

/* Exposed so the store's own modules (fsm, leases, kv, ...) can use the
 * handles; other modules use only the functions. */
struct mf_state {
    MDB_env *env;
    MDB_dbi dbi[MF_DB_COUNT];
    char *dir;      /* DIR/state */
    size_t map_size;
    unsigned readers_max;
    dev_t dev; /* DIR/state, for the one-open-per-process check */
    ino_t ino;
};

/* Open (creating if needed) DIR/state/. `opts` may be NULL. On success *out is
 * a handle the caller frees with mf_state_close. Errors: MF_EINVAL, -errno
 * (cannot create the directory), MF_ESTORAGE, MF_ECORRUPT (not our database),
 * MF_EEXISTS (already open in this process: LMDB forbids a second open). */
int mf_state_open(const char *dir, const struct mf_state_opts *opts, struct mf_state **out);
/* Close; no transaction may be open. NULL is a no-op. */
void mf_state_close(struct mf_state *st);

/* Close and reopen the environment in place (snapshot install). No
 * transaction may be open. */
int mf_state_reopen(struct mf_state *st);

/* Grow the map to map_size_bytes (after MF_EMAPFULL). No transaction may be
 * open in this process. Errors: MF_EINVAL (smaller than now), MF_ESTORAGE. */
int mf_state_set_map_size(struct mf_state *st, size_t map_size_bytes);

/* Used pages and map size of the state database (store/usage.h). Any
 * thread; not while mf_state_reopen or mf_state_set_map_size runs. */
struct mf_lmdb_usage;
int mf_state_usage(struct mf_state *st, struct mf_lmdb_usage *out);

/* Start a read transaction (any thread). End it with mf_state_read_end. */
int mf_state_read_begin(struct mf_state *st, MDB_txn **txn);
void mf_state_read_end(MDB_txn *txn);

/* Index of the last applied entry (0 for a fresh store). */
int mf_state_applied(struct mf_state *st, uint64_t *index);

/* Leases in each state, indexed by Mayfly__Cmd__LeaseState (1 issuing ..
 * 5 irrevocable; [0] unused). Revoked ones count until tidy drops them. */
#define MF_LEASE_STATES 6
int mf_state_lease_counts(MDB_txn *txn, struct mf_state *st, uint64_t counts[MF_LEASE_STATES]);
/* META key of state s's count ("leases/1" .. "leases/5"), into buf[16]. */
void mf_state_lease_count_key(int s, char buf[16]);

/* Number of live (not revoked) leases. */
int mf_state_live_leases(MDB_txn *txn, struct mf_state *st, uint64_t *count);

/* Encryptions counted for barrier key `term` (0 if none). */
int mf_state_key_uses(MDB_txn *txn, struct mf_state *st, uint32_t term, uint64_t *count);

/* The keyring blob last put (KeyringPut). *data points into the map: valid
 * until the transaction ends. MF_ENOTFOUND if none. */
int mf_state_keyring(MDB_txn *txn, struct mf_state *st, const uint8_t **data, size_t *len);

/* SHA-256 over every record of every database in a fixed order (database
 * name, key, value, with lengths). With skip_applied the log-position records
 * (META "applied" and "now": how far and up to what time the log was applied)
 * are left out, to compare state that must not depend on how many entries
 * were applied, e.g. before and after a refused command. */
int mf_state_digest(struct mf_state *st, int skip_applied, uint8_t out[32]);

/* Name of a database (for messages and the digest). */
const char *mf_state_db_name(enum mf_state_db db);

/* Translate an LMDB return code (see above). 0 stays 0. */
int mf_state_err(int mdb_rc, const char *what);

/* Big-endian helpers for keys. */
static inline void mf_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t mf_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Internal to the store: meta u64 values. */
int mf_state_meta_get_u64(MDB_txn *txn, struct mf_state *st, const char *name, uint64_t *v);
int mf_state_meta_put_u64(MDB_txn *txn, struct mf_state *st, const char *name, uint64_t v);

/* Internal to the store: pack a protobuf message straight into LMDB
 * (MDB_RESERVE). `flags` may add MDB_APPEND (retried without it when the key
 * is not last). */
int mf_state_put_msg(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key,
                     const ProtobufCMessage *msg, unsigned flags);

#endif
