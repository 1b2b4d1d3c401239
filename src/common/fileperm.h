/* Start-time checks of the files that hold secrets: the data directory (the
 * keyring, tokens, sealed values) and the key files (TLS private keys, the
 * auto-unseal key). A node refuses to start when another user could read or
 * replace them, rather than serve secrets from there.
 *
 * Rule: owned by this process's effective user, and no group or other
 * permission bit (a directory 0700, a file 0600 or 0400). */
#ifndef MF_COMMON_FILEPERM_H
#define MF_COMMON_FILEPERM_H

#include <stdbool.h>
#include <stddef.h>

/* Check path (a directory when dir, else a regular file). A path that does
 * not exist passes (whoever opens it reports that; a missing data directory
 * is created 0700). Returns 0, or MF_ECONFIG with a message naming the file,
 * its mode or owner, and the fix in err ("data_dir /x: mode 0755 lets group
 * or others in; chmod 700 /x"). what names the setting ("data_dir"). */
int mf_fileperm_check(const char *what, const char *path, bool dir, char *err, size_t err_len);

#endif
