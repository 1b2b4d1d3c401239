/* The barrier's keys across the cluster (../shared/CLI.md "operator rotate",
 * "operator key-status", "operator rekey"; store/README.md "Keyring").
 *
 * rotate (sudo on sys/rotate; leader, a follower forwards): the leader makes
 * a rotated keyring (mf_barrier_rotate_export) and proposes it as
 * KeyringChange (op 46, feature level 2: refused while a member runs a
 * build that would store it without loading it); the fsm stores it only if
 * mf_barrier_blob_may_replace allows; applying it loads it on every
 * unsealed node, this leader included
 * (mf_op_keys_applied), before the entries after it are served. Answers
 * {term}. One rotation or rekey in flight at a time: another is UNAVAILABLE
 * "a key change is in flight; retry". The leader also rotates by itself
 * (mf_op_keys_tick) once the active term's replicated use count (KEYUSE)
 * reaches cfg key_rotation_uses, or its key is older than
 * key_rotation_max_age_h hours (0: never by age).
 *
 * key-status (read on sys/key-status; any node, linearizable unless stale):
 * {term, install_ms, encryptions}: the active term, when its key was made,
 * and the replicated use count of that term.
 *
 * rekey (no token: shares and a nonce, like generate-root; leader): -init
 * -shares N -threshold T starts an attempt (share_collect.h, 10 minutes,
 * ended by a term or leader change) and answers {nonce, expire_at_ms,
 * threshold}; each -nonce NONCE SHARE (an old share) answers {progress,
 * threshold} until the old threshold reconstructed the root key; then the
 * leader makes N new shares of threshold T of a new root key, proposes
 * KeyringChange (the same keys under the new root key, generation + 1, and
 * the new root key wrapped under the old one), and once applied answers
 * {shares, threshold: T} once. Unsealed nodes switch to the new root key on
 * apply (mf_barrier_rekey_load); sealed nodes only store the blob, so the old
 * shares no longer open it. -cancel ends the attempt. Key-file seals have
 * nothing to rekey (INVALID_ARGUMENT). The attempt's shares and root keys
 * are wiped when it ends; the new shares are wiped once answered.
 *
 * A node whose keyring cannot follow a change (a snapshot brought a rekeyed
 * keyring it has no wrapped key for, or a load failed) seals itself and says
 * why in its log: it is unsealed again with the current shares.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_KEYS_H
#define MF_SERVER_OP_KEYS_H

#include "server/handler.h"

struct mf_raft_entry;

#define MF_KEYS_REKEY_ATTEMPT_MS (10 * 60 * 1000) /* a rekey attempt lives 10 minutes */
#define MF_KEYS_CHECK_MS 1000                     /* how often the leader checks key use */
#define MF_KEYS_RETRY_MS 60000 /* after an automatic rotation failed (a member not upgraded) */

void mf_op_rotate(struct req *r);     /* leader */
void mf_op_key_status(struct req *r); /* read */
void mf_op_rekey(struct req *r);      /* leader, no token */

/* Every applied entry, in order (server.c sm_applied): loads a stored
 * KeyringPut or KeyringChange into an unsealed barrier; after a gap in the
 * indexes (a snapshot was installed) reloads the stored keyring. */
void mf_op_keys_applied(struct mf_server *s, const struct mf_raft_entry *e, const Result *res);

/* The housekeeping timer (server.c): automatic rotation on the leader. */
void mf_op_keys_tick(struct mf_server *s);

/* Wipe the rekey attempt and free the state (after the node stopped). */
void mf_op_keys_free(struct mf_server *s);

#endif
