/* Fuzz target: the node's config file (mf_config_load, then the cross-field
 * checks of mf_config_validate), read from a memfd through its /proc path
 * (the loader takes a path; no file on disk). */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/log.h"
#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        mf_log_set_level(MF_LOG_OFF);
        fd = memfd_create("fuzz_config", 0);
        MF_ASSERT(fd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    MF_ASSERT(ftruncate(fd, 0) == 0);
    MF_ASSERT(pwrite(fd, data, size, 0) == (ssize_t)size);

    struct mf_config cfg;
    char err[MF_CONFIG_ERR_LEN];
    MF_ASSERT(mf_config_defaults(&cfg) == 0);
    if (mf_config_load(&cfg, path, err, sizeof(err)) == 0)
        mf_config_validate(&cfg, err, sizeof(err));
    mf_config_free(&cfg);
    return 0;
}
