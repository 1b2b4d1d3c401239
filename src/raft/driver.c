/* The ready/advance driver: one batch at a time through send, apply, persist,
 * send-after-durable and advance, in the order driver.h spells out. The node,
 * the simulator and the unit tests share it, so none of them restates it. */
#include "raft/driver.h"

#include <string.h>

#include "common/assert.h"

void mf_raft_driver_init(struct mf_raft_driver *d, struct mf_raft *r,
                         const struct mf_raft_driver_cbs *cb, unsigned applies_max)
{
    MF_ASSERT(r && cb && cb->send && cb->persist && cb->apply && applies_max >= 1);
    memset(d, 0, sizeof(*d));
    d->r = r;
    d->cb = *cb;
    d->applies_max = applies_max;
}

bool mf_raft_driver_busy(const struct mf_raft_driver *d)
{
    return d->busy;
}

static int latch(struct mf_raft_driver *d, int rc)
{
    if (rc && !d->err)
        d->err = rc;
    return d->err;
}

static int start_apply(struct mf_raft_driver *d)
{
    d->applies_inflight++;
    int rc = d->cb.apply(d->cb.ctx, &d->rd);
    if (rc)
        d->applies_inflight--; /* not started: no completion will come */
    return rc;
}

/* Persist before you speak: votes and acknowledgements promise what this
 * batch wrote, so they leave only once its write is durable. */
static void send_after(struct mf_raft_driver *d)
{
    MF_ASSERT(d->busy && d->durable == d->batch);
    if (d->rd.msgs_after_len)
        d->cb.send(d->cb.ctx, d->rd.msgs_after, d->rd.msgs_after_len);
}

/* The batch is durable: what waited for the write, then advance. */
static int finish(struct mf_raft_driver *d)
{
    d->durable = d->batch;
    send_after(d);
    if (d->rd.read_states_len && d->cb.read_states)
        d->cb.read_states(d->cb.ctx, d->rd.read_states, d->rd.read_states_len);
    /* A snapshot's bytes were written by this persist: its install (and what
     * the batch commits after it) may start only now. */
    int rc = 0;
    if (d->rd.snapshot)
        rc = start_apply(d);
    if (rc)
        return latch(d, rc);
    /* The core may go on: the log is durable; the state machine catches up
     * on its own and the caller holds answers until it has. */
    rc = mf_raft_advance(d->r, &d->rd);
    d->busy = false;
    return latch(d, rc);
}

int mf_raft_driver_pump(struct mf_raft_driver *d)
{
    if (d->err || d->busy || d->applies_inflight >= d->applies_max || !mf_raft_has_ready(d->r))
        return d->err;
    int rc = mf_raft_ready(d->r, &d->rd);
    if (rc)
        return latch(d, rc);
    d->busy = true;
    d->batch++;
    if (d->cb.begin)
        d->cb.begin(d->cb.ctx, &d->rd);
    if (d->rd.msgs_before_len)
        d->cb.send(d->cb.ctx, d->rd.msgs_before, d->rd.msgs_before_len);
    /* Committed entries are durable already (the core hands out only what
     * earlier batches persisted): their apply runs beside this write. */
    if (d->rd.committed_len && !d->rd.snapshot && (rc = start_apply(d)) != 0)
        return latch(d, rc);
    d->in_persist = true;
    d->persist_reported = false;
    rc = d->cb.persist(d->cb.ctx, &d->rd);
    d->in_persist = false;
    if (rc)
        return latch(d, rc);
    if (d->persist_reported)
        return mf_raft_driver_persisted(d, d->persist_rc);
    return 0;
}

int mf_raft_driver_persisted(struct mf_raft_driver *d, int rc)
{
    MF_ASSERT(d->busy && d->durable != d->batch);
    if (d->in_persist) {
        d->persist_reported = true;
        d->persist_rc = rc;
        return 0;
    }
    if (d->err)
        return d->err;
    if (rc)
        return latch(d, rc);
    return finish(d);
}

void mf_raft_driver_applied(struct mf_raft_driver *d)
{
    MF_ASSERT(d->applies_inflight > 0);
    d->applies_inflight--;
}
