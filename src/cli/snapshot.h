/* `mayfly operator snapshot save FILE` and `... restore FILE`: the two CLI
 * commands that take more than one request (chunks of a backup file).
 * Private to src/cli; commands.c runs them as local commands.
 *
 * save: asks the leader for a new backup, then each next chunk by handle and
 * offset, into FILE.tmp (0600), checks the length and the plain SHA-256 the
 * last chunk names (of every byte before the 64-byte trailer), fsyncs, renames to FILE and prints {"index", "term",
 * "bytes", "sha256"}. A progress bar goes to stderr only when stderr is a
 * terminal. On any failure FILE.tmp is removed and FILE untouched.
 *
 * restore: sends FILE in order in chunks of MF_CLI_SNAPSHOT_RESTORE_CHUNK
 * bytes (an uninitialised cluster has no token, and a node takes requests of
 * at most client_preauth_frame_max_bytes, 64 KiB by default, before one) and
 * prints the {"index", "term"} the leader answers once it checked the file;
 * then `mayfly operator unseal` with the backup's shares on that leader.
 *
 * Both return an exit code (MF_CLI_EXIT_*). */
#ifndef MF_CLI_SNAPSHOT_H
#define MF_CLI_SNAPSHOT_H

#include <stdio.h>

#include "cli/cli.h"

#define MF_CLI_SNAPSHOT_RESTORE_CHUNK (60u * 1024u)

int mf_cli_snapshot_save(const struct mf_cli_args *a, FILE *out, FILE *errout);
int mf_cli_snapshot_restore(const struct mf_cli_args *a, FILE *out, FILE *errout);

#endif
