/* An in-memory implementation of the log-storage interface (storage.h) for
 * unit tests and the simulator. It does no I/O: "durable" means "saved here",
 * so a simulated crash keeps exactly what save/compact/install_snapshot
 * stored. Single-threaded.
 *
 * Ownership: the handle is allocated by mf_raft_memstorage_init and freed by
 * mf_raft_memstorage_close; it copies every entry's bytes on save. Pointers
 * returned by entries() stay valid until the next save/compact/install.
 * Errors: -ENOMEM, and the storage.h codes (MF_ECOMPACTED,
 * MF_EUNAVAILABLE_ENTRY, MF_EINVAL for a save that leaves a gap).
 */
#ifndef MF_RAFT_MEMSTORAGE_H
#define MF_RAFT_MEMSTORAGE_H

#include "raft/storage.h"

struct mf_raft_memstorage;

int mf_raft_memstorage_init(struct mf_raft_memstorage **out);
void mf_raft_memstorage_close(struct mf_raft_memstorage *m);
/* Fill *out with the interface bound to m. */
void mf_raft_memstorage_iface(struct mf_raft_memstorage *m, struct mf_raft_storage *out);

#endif
