/* The writer thread: the one thread that runs LMDB write transactions.
 *
 * LMDB binds a write transaction to the thread that began it, and a synced
 * commit blocks for an fsync: both belong off the libuv loop. The loop submits
 * jobs; the writer runs each job's `work` on its own thread, in submission
 * order, then the loop runs the job's `done` (through a uv_async_t), also in
 * order. The queue is bounded: submit fails with -ENOBUFS past jobs_max, which
 * the node driver never reaches (it keeps one Raft batch in flight) but other
 * writers (snapshots, tidy) might.
 *
 * Ownership: jobs are the caller's memory and must live until `done` runs.
 * Threads: mf_writer_submit only from the loop thread.
 */
#ifndef MF_NODE_WRITER_H
#define MF_NODE_WRITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define MF_WRITER_JOBS_MAX 64

struct mf_writer_job;
typedef void (*mf_writer_work_cb)(struct mf_writer_job *job); /* writer thread */
typedef void (*mf_writer_done_cb)(struct mf_writer_job *job); /* loop thread */

struct mf_writer_job {
    mf_writer_work_cb work;
    mf_writer_done_cb done;
    void *data;
    struct mf_writer_job *next; /* private */
};

struct mf_writer {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct mf_writer_job *todo_head, *todo_tail; /* waiting for the thread */
    struct mf_writer_job *done_head, *done_tail; /* waiting for the loop */
    size_t queued;
    bool stopping;
    bool started;
};

/* Start the thread. Returns 0 or -errno. */
int mf_writer_start(struct mf_writer *w, uv_loop_t *loop);
/* Queue a job. Returns 0, -ENOBUFS if full, MF_ECLOSED if stopping. */
int mf_writer_submit(struct mf_writer *w, struct mf_writer_job *job);
/* Let queued jobs finish, stop the thread, close the async handle (the loop
 * must run once more to finish closing it). Jobs done but not yet delivered
 * get their `done` callbacks before this returns. */
void mf_writer_stop(struct mf_writer *w);

#endif
