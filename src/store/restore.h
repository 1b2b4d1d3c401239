/* Restoring a backup through Raft: the apply side (commands RestoreChunk and
 * RestoreCommit, proto/command.proto). Internal to the state machine (fsm.c
 * dispatches to it); see src/store/README.md "Backups".
 *
 * Only an uninitialised cluster takes a restore: both commands are refused
 * (MF_EEXISTS, a rule error) once META "keyring" exists.
 *
 * RestoreChunk puts its piece into META "restore/<offset, u64 BE>" (at most
 * MF_RESTORE_CHUNK_MAX bytes), so that a state snapshot taken between pieces
 * carries them to a lagging node. RestoreCommit reads the pieces in order
 * (they must cover [0, length) exactly), checks their SHA-256 and the
 * snapshot header, writes the LMDB data part to DIR/state/restore-in.mdb,
 * opens it read-only, and in the batch's transaction replaces every database
 * with the snapshot's (META's "alarm/" records and "cluster_version" stay the
 * live cluster's; the pieces go; META "now" becomes the later of the two; META "id_base" becomes
 * the backup's index so ids the leader derives from new indexes never reuse
 * one in the backup). The file is removed before it returns. Deterministic:
 * every node computes the same state from the same pieces. A piece missing,
 * a wrong length or checksum or a foreign database: MF_ECORRUPT as a rule
 * error (MF_EINVAL result code), the state unchanged.
 */
#ifndef MF_STORE_RESTORE_H
#define MF_STORE_RESTORE_H

#include "store/apply.h"

#define MF_RESTORE_CHUNK_MAX (512u * 1024u)
#define MF_RESTORE_KEY_PREFIX "restore/"

int mf_restore_apply_chunk(struct mf_apply *a, const Mayfly__Cmd__RestoreChunk *m,
                           Mayfly__Cmd__Result *r);
int mf_restore_apply_commit(struct mf_apply *a, const Mayfly__Cmd__RestoreCommit *m,
                            Mayfly__Cmd__Result *r);

#endif
