/* The replicated state machine: applies committed Raft entries (Command
 * protobufs, proto/command.proto) to the state database, in log order, many
 * per write transaction (group commit). The applied index is written in the
 * same transaction as the commands, so after a crash the node resumes at
 * mf_fsm_applied() + 1 (MDB_NOMETASYNC may lose the last commit: the Raft log
 * replays it).
 *
 * Deterministic: applying the same entries gives the same state and results
 * on every node, whatever the batch boundaries. No clock, no randomness, no
 * env.h call on this path: time is the command's now_ms (taken as
 * max(now_ms, the greatest now applied so far), so state time never goes
 * backwards across leaders).
 *
 * Results: each applied command gets a Result (code 0 or an MF_E* rule error
 * with a message: a refused command changes nothing but the applied index).
 * A command whose request id was seen within MF_IDEM_TTL_MS gets the first
 * result again (duplicate = true) and is not applied. A corrupted command
 * gets MF_EINVAL; a command of an op this build does not know (features.h)
 * stops the batch with MF_ECORRUPT and mf_fsm_stop_reason().
 *
 * Threads: the apply calls run on one thread (the node's writer thread);
 * reads go through mf_fsm_state() and read transactions from any thread.
 */
#ifndef MF_STORE_FSM_H
#define MF_STORE_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"
#include "store/state.h"

#define MF_FSM_COMMAND_MAX (4 * 1024 * 1024) /* bytes in one command */

struct mf_fsm;

/* Open the state database under DIR (DIR/state/). `opts` may be NULL. The
 * caller frees *out with mf_fsm_close. Errors: those of mf_state_open. */
int mf_fsm_open(const char *dir, const struct mf_state_opts *opts, struct mf_fsm **out);
void mf_fsm_close(struct mf_fsm *fsm);

/* After a failed apply (a full map or filesystem): close and reopen the
 * state environment, growing its map to map_size_bytes if that is larger,
 * and re-read the applied index and time. A failed write transaction never
 * committed, and a failed commit leaves the previous meta page the newest
 * valid one, so the state reopens at its last successful batch
 * (mf_fsm_applied()); the caller applies the entries after it again. No
 * transaction may be open in the process (the caller holds the state's
 * lock as a writer); the writer thread only. Errors: those of
 * mf_state_open and mf_fsm_reload; on error the fsm may not be used but to
 * reopen again or close. */
int mf_fsm_reopen(struct mf_fsm *fsm, size_t map_size_bytes);

/* The state handle, for read transactions and the read APIs (leases.h,
 * kv.h, tokens.h, policies.h). Owned by the fsm. */
struct mf_state *mf_fsm_state(struct mf_fsm *fsm);

/* Index of the last applied entry, as the writer thread sees it (other
 * threads read mf_state_applied() in a read transaction). */
uint64_t mf_fsm_applied(const struct mf_fsm *fsm);

/* The greatest applied index known to be on disk. A commit flushes its data
 * pages once and writes its meta page unsynced (MDB_NOMETASYNC), so the
 * previous commit's meta is durable once the next commit returns: this is the
 * index of the commit before the last one (or of the last one after
 * mf_fsm_sync, at open, and after a snapshot install). The Raft log may be
 * compacted only up to this index. */
uint64_t mf_fsm_durable_applied(const struct mf_fsm *fsm);

/* Force everything applied onto disk (one more flush); then
 * mf_fsm_durable_applied() == mf_fsm_applied(). Writer thread. Errors:
 * MF_ESTORAGE. */
int mf_fsm_sync(struct mf_fsm *fsm);

/* Re-read what is cached from the database (after a snapshot install). */
int mf_fsm_reload(struct mf_fsm *fsm);

/* One committed entry. data == NULL (len 0) marks an entry with no command
 * (a Raft no-op or configuration change): it only advances the applied
 * index. data is the caller's, read during the call only. */
struct mf_fsm_entry {
    uint64_t index;
    const uint8_t *data;
    size_t len;
};

/* Apply entries in order in one write transaction. Entries at or below the
 * applied index are skipped (replay after restart); the first new one must
 * be applied + 1 and the rest consecutive (asserted).
 * results: NULL, or an array of n pointers that receives each entry's Result
 * (NULL for skipped entries and entries with no command); the caller frees
 * each with mf_fsm_result_free.
 * Returns 0, or a storage failure (MF_EMAPFULL: the map or disk is full,
 * MF_ESTORAGE, MF_ECORRUPT, -ENOMEM) after which nothing of the batch was
 * applied and no result is handed out: the caller may retry (e.g. after
 * growing the map) or stop the node. */
int mf_fsm_apply_batch(struct mf_fsm *fsm, const struct mf_fsm_entry *entries, size_t n,
                       Mayfly__Cmd__Result **results);

/* One entry (a batch of one). result may be NULL. */
int mf_fsm_apply(struct mf_fsm *fsm, uint64_t index, const uint8_t *data, size_t len,
                 Mayfly__Cmd__Result **result);

void mf_fsm_result_free(Mayfly__Cmd__Result *r);

/* Why this build must stop (features.h), or NULL: set when an apply or a
 * reload returned MF_ECORRUPT because an entry holds a command this build
 * does not know ("entry N holds command type OP, unknown to this build ...")
 * or the state is at a cluster version above the build's level. The node
 * must not go on (nor be restarted with this build). */
const char *mf_fsm_stop_reason(const struct mf_fsm *fsm);

/* Greatest command time applied so far (0 for a fresh store). */
uint64_t mf_fsm_now(const struct mf_fsm *fsm);

#endif
