/* Whole writes to a file descriptor: write(2) may write less than asked
 * (signals, pipes, a full pipe buffer), so every writer of a file loops. */
#ifndef MF_COMMON_FDIO_H
#define MF_COMMON_FDIO_H

#include <stddef.h>

/* Write all n bytes of buf to fd, retrying after EINTR and short writes.
 * @return 0, or -errno of the failed write (bytes before it were written). */
int mf_write_all(int fd, const void *buf, size_t n);

#endif
