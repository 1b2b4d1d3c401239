/* The ready/advance driver: production's order of work, stated once.
 *
 * The node (src/node/node.c), the simulator (tests/sim/raft_sim.c) and the
 * unit-test harness (tests/unit/test_raft_harness.h) all run a core's ready
 * batches through this one state machine, so what the simulator checks is the
 * order that ships. It is pure like the core: no I/O, no threads, no clock;
 * the caller supplies the work as callbacks and reports completions.
 *
 * One batch at a time (group commit: what the core produces while a batch is
 * being written waits for the next one). For each batch:
 *
 *   rd = mf_raft_ready()
 *   cb.begin(rd)                  soft state, counters (optional)
 *   cb.send(rd.msgs_before)       leader replication may leave before its write
 *   cb.apply(rd)                  if it has committed entries and no snapshot:
 *                                 they are durable already (the core hands out
 *                                 only what earlier batches persisted), so the
 *                                 apply runs beside the write
 *   cb.persist(rd)                snapshot chunks, snapshot, hard state, entries
 *   ... mf_raft_driver_persisted(d, 0) once that write is durable:
 *   cb.send(rd.msgs_after)        votes and acknowledgements (asserted: never
 *                                 before the batch's persist completed)
 *   cb.read_states(rd)            confirmed reads (serve once applied >= index)
 *   cb.apply(rd)                  if it installs a snapshot: the snapshot's
 *                                 bytes are on disk only now
 *   mf_raft_advance()             the batch is durable; its apply may still run
 *
 * Applies complete in the order they were started, each with one
 * mf_raft_driver_applied(); at most applies_max may be in flight, so the log
 * does not run ahead of the state machine without bound (backpressure). The
 * apply callback must copy what it keeps: rd is released by advance, which
 * may come before the apply finishes.
 *
 * Completions may be reported from inside the callback that started the work
 * (a synchronous driver, as the unit tests use): the driver finishes the batch
 * when the callback returns. The driver never calls mf_raft_driver_pump
 * itself: the caller pumps after a completion (and after tick, step, propose)
 * so it can do its own work in between.
 *
 * Errors: any error from the core or a callback is latched: the call returns
 * it, every later pump, persisted and applied returns it, and the caller must
 * stop the node (the core's rule). A failed write is reported as
 * mf_raft_driver_persisted(d, rc) with rc < 0.
 */
#ifndef MF_RAFT_DRIVER_H
#define MF_RAFT_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core.h"

/* The caller's side of the work. ctx is passed to every callback. rd and the
 * messages are the core's, valid only during the call (advance releases them). */
struct mf_raft_driver_cbs {
    void *ctx;
    /* Optional: a new batch, before anything of it is sent. */
    void (*begin)(void *ctx, const struct mf_raft_ready *rd);
    void (*send)(void *ctx, const struct mf_raft_msg *msgs, size_t len);
    /* Start writing rd; report with mf_raft_driver_persisted (which may be
     * called during this call). rd stays valid until that report. A nonzero
     * return means the write was not started (latched). */
    int (*persist)(void *ctx, const struct mf_raft_ready *rd);
    /* Start applying rd->snapshot (if set: install first) and rd->committed;
     * copy what is needed: rd may be released before the apply ends. Report
     * with mf_raft_driver_applied (possibly during this call). Nonzero: not
     * started (latched). */
    int (*apply)(void *ctx, const struct mf_raft_ready *rd);
    /* Optional: confirmed reads of a durable batch. */
    void (*read_states)(void *ctx, const struct mf_raft_read_state *rs, size_t len);
};

/* Caller-owned (embed it); no resources, nothing to close. */
struct mf_raft_driver {
    struct mf_raft *r;
    struct mf_raft_driver_cbs cb;
    unsigned applies_max;
    unsigned applies_inflight;
    bool busy;             /* a batch is between ready and advance */
    bool in_persist;       /* inside cb.persist */
    bool persist_reported; /* persisted() came during cb.persist */
    int persist_rc;
    uint64_t batch;        /* sequence number of the current batch */
    uint64_t durable;      /* the last batch whose persist completed */
    int err;               /* latched error */
    struct mf_raft_ready rd;
};

/* Sets up d for core r (borrowed; outlives d). applies_max >= 1. */
void mf_raft_driver_init(struct mf_raft_driver *d, struct mf_raft *r,
                         const struct mf_raft_driver_cbs *cb, unsigned applies_max);
/* Starts the next batch if none is in flight, fewer than applies_max applies
 * are, and the core has one; a synchronous persist finishes it here. Returns
 * 0 (also when there was nothing to do) or the latched error. */
int mf_raft_driver_pump(struct mf_raft_driver *d);
/* The current batch's write finished with rc (0: durable). Finishes the batch
 * (msgs_after, read states, a snapshot's apply, advance) unless rc < 0.
 * Returns 0 or the latched error. */
int mf_raft_driver_persisted(struct mf_raft_driver *d, int rc);
/* The oldest apply in flight finished (its errors are the caller's). */
void mf_raft_driver_applied(struct mf_raft_driver *d);

/* A batch is in flight (between ready and advance). */
bool mf_raft_driver_busy(const struct mf_raft_driver *d);

#endif
