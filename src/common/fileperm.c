/* Start-time checks of secret-holding files (fileperm.h). */
#include "common/fileperm.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

int mf_fileperm_check(const char *what, const char *path, bool dir, char *err, size_t err_len)
{
    struct stat st;
    if (!path || !*path)
        return 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return mf_err_set(err, err_len, MF_ECONFIG, "%s %s: %s", what, path, strerror(errno));
    }
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return mf_err_set(err, err_len, MF_ECONFIG, "%s %s: not a %s", what, path,
                          dir ? "directory" : "regular file");
    if (st.st_uid != geteuid())
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "%s %s: owned by uid %u, not by this process's user (uid %u); "
                          "chown it to the user mayflyd runs as",
                          what, path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return mf_err_set(err, err_len, MF_ECONFIG,
                          "%s %s: mode %04o lets group or others in; chmod %s %s", what, path,
                          (unsigned)(st.st_mode & 07777), dir ? "700" : "600", path);
    return 0;
}
