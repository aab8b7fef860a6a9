/* Async tasks: a future is a handle on a parent-less, quiet, daemon worker;
 * getting its result is worker_wait_thread(), which runs the caller's loop.
 * The future holds one reference to its worker; nothing else is shared. */
#include <stdlib.h>

#include <math.h>

#include "wk_sched.h"
#include "wk_os.h"
#include "wk_watch.h"
#include "wk_worker.h"

struct worker_future {
    worker_t *worker;
};

worker_future_t *worker_async(worker_task_fn fn, void *arg)
{
    if (!fn)
        return NULL;
    worker_future_t *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    worker_opts opts
        = { .name = "async", .no_parent = true, .daemon = WORKER_DAEMON_YES, .quiet = true };
    f->worker = worker_new(fn, arg, &opts);
    if (f->worker)
        f->worker->is_future = true;
    if (!f->worker || worker_start(f->worker) != WORKER_OK) {
        worker_unref(f->worker);
        free(f);
        return NULL;
    }
    return f;
}

int worker_future_get(worker_future_t *f, void **result)
{
    return worker_future_wait(f, -1, result);
}

int worker_future_wait(worker_future_t *f, double timeout, void **result)
{
    uint64_t deadline;
    if (!f || isnan(timeout))
        return WORKER_EINVAL;
    if (!wk_deadline_after(timeout, &deadline))
        deadline = WK_NO_DEADLINE;
    int err = 0;
    void *ret = NULL;
    int rc = wk_wait_thread_until(f->worker, &err, &ret, deadline);
    if (rc != WORKER_OK)
        return rc;
    if (result)
        *result = ret;
    return err;
}

worker_t *worker_future_worker(worker_future_t *f)
{
    return f ? f->worker : NULL;
}

void worker_future_free(worker_future_t *f)
{
    if (!f)
        return;
    worker_unref(f->worker);
    free(f);
}

int worker_await(worker_task_fn fn, void *arg, void **result)
{
    if (wk_in_pooled(wk_thread_peek()))
        return WORKER_EWOULDBLOCK; /* before its task starts */
    worker_future_t *f = worker_async(fn, arg);
    if (!f)
        return fn ? WORKER_ENOMEM : WORKER_EINVAL;
    int rc = worker_future_get(f, result);
    if (rc == WORKER_EXIT && worker_is_running(f->worker))
        worker_stop(f->worker); /* the caller was stopped: so is its task */
    worker_future_free(f);
    return rc;
}
