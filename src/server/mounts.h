/* Engine mounts on the leader: configs, roles, and engine calls on worker
 * threads (src/engines/ behind one interface).
 *
 * A mount's config and roles are reserved records (records.h):
 *   sys/engines/<mount>               {"type": T, "config": JSON text}
 *   sys/engines/<mount>/roles/<role>  {"role": JSON text}
 * Only the leader opens engines, lazily, from those records; a call is
 * started only while this node leads (a deposed leader starts no engine
 * call: queued calls fail with MF_ENOTLEADER). Calls on one mount run one at
 * a time, in submission order, on libuv's thread pool.
 *
 * Ownership: mounts and jobs belong to this module. A job is valid only
 * during its done callback; copy what you need. `done` is called on the
 * loop thread, exactly once per accepted call (also with MF_ECLOSED when the
 * server stops, and MF_ENOTLEADER after a leadership loss).
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_MOUNTS_H
#define MF_SERVER_MOUNTS_H

#include <stdbool.h>
#include <stdint.h>

#include "engines/engine.h"
#include "server/srv.h"

#define MF_MOUNTS_ENGINES_PREFIX "sys/engines/"

struct mf_mount;
struct mf_mjob;
typedef void (*mf_mjob_done_cb)(struct mf_server *s, struct mf_mjob *j, void *arg);

/* @return 0 or -ENOMEM. mf_mounts_close_all frees. */
int mf_mounts_init(struct mf_server *s);
/* At stop: queued calls fail now (MF_ECLOSED); a running call finishes on its
 * worker and its mount is freed then, without touching the server. */
void mf_mounts_close_all(struct mf_server *s);
/* Leadership lost: every mount closes after its queued calls. */
void mf_mounts_drop_all(struct mf_server *s);

/* The mount `name`, opened (or being opened) on this leader.
 * @return 0; MF_ENOTFOUND if no engine is mounted there; MF_ECLOSED (the
 *   server is stopping); MF_ECORRUPT;
 *   -ENOMEM; the errors of mf_records_read. */
int mf_mounts_get(struct mf_server *s, const char *name, struct mf_mount **out);
/* The open mount `name`, or NULL (never opens one). */
struct mf_mount *mf_mounts_find(struct mf_server *s, const char *name);
/* Opens every mount recorded under sys/engines/ (a new leader: so each one's
 * reconciler and CRL publishing run without waiting for a client). */
void mf_mounts_open_all(struct mf_server *s);
/* Applied: a record under sys/engines/ changed; bring the open mount in line. */
void mf_mounts_record_changed(struct mf_server *s, const char *path);
/* The open mounts, in no particular order. */
struct mf_mount *mf_mounts_first(struct mf_server *s);
struct mf_mount *mf_mounts_next(struct mf_mount *m);

const char *mf_mount_name(const struct mf_mount *m);
const char *mf_mount_type(const struct mf_mount *m);
/* Which opening of the mount this is: a reopened mount (new config, new
 * leader) has a new gen, so per-mount state kept elsewhere (revocation
 * backoff, CRL publishing) starts afresh with it. */
uint64_t mf_mount_gen(const struct mf_mount *m);
/* A role's TTL limits (0: none). false if the mount has no such role. */
bool mf_mounts_role_ttl(struct mf_mount *m, const char *role, uint64_t *def_ms, uint64_t *max_ms);

/* Engine calls. Each returns 0 (done follows) or -ENOMEM / MF_EINVAL
 * without calling done. */
int mf_mounts_probe(struct mf_server *s, const char *type, const char *config,
                    mf_mjob_done_cb done, void *arg);
int mf_mounts_role_put(struct mf_mount *m, const char *role, const char *role_json,
                       mf_mjob_done_cb done, void *arg);
int mf_mounts_issue(struct mf_mount *m, const char *role, uint64_t seq, uint64_t expire_at_ms,
                    mf_mjob_done_cb done, void *arg);
/* done may be NULL (fire and forget: the reconciler). */
int mf_mounts_revoke(struct mf_mount *m, const uint64_t *seqs, size_t n, mf_mjob_done_cb done,
                     void *arg);
int mf_mounts_list(struct mf_mount *m, mf_mjob_done_cb done, void *arg);
int mf_mounts_rotate_root(struct mf_mount *m, mf_mjob_done_cb done, void *arg);
int mf_mounts_crl(struct mf_mount *m, uint64_t now_ms, mf_mjob_done_cb done, void *arg);

/* A job's results, during its done callback. */
int mf_mjob_rc(const struct mf_mjob *j);
const char *mf_mjob_err(const struct mf_mjob *j);
const char *mf_mjob_text(const struct mf_mjob *j);          /* rotate-root config, CRL PEM */
struct mf_engine *mf_mjob_engine(const struct mf_mjob *j);  /* probe: the instance */
const struct mf_engine_cred *mf_mjob_cred(const struct mf_mjob *j);
const uint64_t *mf_mjob_seqs(const struct mf_mjob *j, size_t *n); /* list */
const int *mf_mjob_results(const struct mf_mjob *j);        /* revoke: one per seq */

#endif
