/* The writer thread: runs LMDB write work off the loop, in order. */
#include "node/writer.h"

#include <errno.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"

static void deliver_done(struct mf_writer *w)
{
    pthread_mutex_lock(&w->lock);
    struct mf_writer_job *job = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (job) {
        struct mf_writer_job *next = job->next;
        job->next = NULL;
        job->done(job);
        job = next;
    }
}

static void on_async(uv_async_t *h)
{
    deliver_done(h->data);
}

static void *writer_main(void *arg)
{
    struct mf_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->todo_head && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        if (!w->todo_head && w->stopping)
            break;
        struct mf_writer_job *job = w->todo_head;
        w->todo_head = job->next;
        if (!w->todo_head)
            w->todo_tail = NULL;
        job->next = NULL;
        pthread_mutex_unlock(&w->lock);

        job->work(job);

        pthread_mutex_lock(&w->lock);
        w->queued--;
        if (w->done_tail)
            w->done_tail->next = job;
        else
            w->done_head = job;
        w->done_tail = job;
        uv_async_send(&w->async);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int mf_writer_start(struct mf_writer *w, uv_loop_t *loop)
{
    memset(w, 0, sizeof(*w));
    w->loop = loop;
    int rc = uv_async_init(loop, &w->async, on_async);
    if (rc)
        return rc;
    w->async.data = w;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc) {
        uv_close((uv_handle_t *)&w->async, NULL);
        return -rc;
    }
    w->started = true;
    return 0;
}

int mf_writer_submit(struct mf_writer *w, struct mf_writer_job *job)
{
    MF_ASSERT(job->work && job->done);
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    if (w->stopping)
        rc = MF_ECLOSED;
    else if (w->queued >= MF_WRITER_JOBS_MAX)
        rc = -ENOBUFS;
    if (!rc) {
        job->next = NULL;
        if (w->todo_tail)
            w->todo_tail->next = job;
        else
            w->todo_head = job;
        w->todo_tail = job;
        w->queued++;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void mf_writer_stop(struct mf_writer *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    deliver_done(w);
    uv_close((uv_handle_t *)&w->async, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    w->started = false;
}
