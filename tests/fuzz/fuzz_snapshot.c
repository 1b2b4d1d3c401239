/* Fuzz target: a snapshot file as a node checks it before LMDB ever opens it
 * (mf_snapshot_verify: magic, version, header length, data length against the
 * file size, SHA-256 of the data). Read from a memfd through its /proc path.
 * A file that verifies must carry the header's index. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/log.h"
#include "store/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        mf_log_set_level(MF_LOG_OFF);
        fd = memfd_create("fuzz_snapshot", 0);
        MF_ASSERT(fd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    MF_ASSERT(ftruncate(fd, 0) == 0);
    MF_ASSERT(pwrite(fd, data, size, 0) == (ssize_t)size);

    uint64_t index = 0;
    char err[256];
    if (mf_snapshot_verify(path, &index, err, sizeof(err)) == 0) {
        MF_ASSERT(size >= MF_SNAPSHOT_HEADER_LEN && memcmp(data, MF_SNAPSHOT_MAGIC, 8) == 0);
        MF_ASSERT(index == mf_be64_get(data + 16));
    }
    return 0;
}
