/* defer_later: a Defer resolved from another worker while the main thread
 * keeps serving `later` calls posted to it during worker_defer_get().
 *
 * worker_defer_get() does not block the thread dead: it runs the caller's
 * event loop until the defer is settled. So work posted to the main thread
 * with worker_later(main, fn, arg, delay, NULL) still runs, on the main
 * thread, while main waits. Here a "downloader" worker reports its
 * progress by posting calls to main (as a GUI thread would be updated),
 * then resolves the defer with its result. Main also keeps a heartbeat: a
 * timer on itself that re-arms itself every 0.02 s while it waits.
 * (pyThreadWorker's "resolve after get, enter event loop".)
 *
 * Lifetimes: the defer is ours (worker_defer_new / worker_defer_free, once
 * no get runs on it); a timer handle is only made when asked for (NULL
 * here), so there is nothing to free for these calls.
 *
 * Run: ./defer_later [--auto]        (never reads input; exit 0 on success) */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <worker/worker.h>

static pthread_t main_thread;
static int progress_calls; /* main thread only */
static int progress_on_main; /* calls that really ran on the main thread */
static int heartbeats; /* main thread only */
static bool waiting = true; /* main thread only */

/* Posted by the downloader; runs on the main thread. */
static void show_progress(void *arg)
{
    int percent = (int)(intptr_t)arg;
    progress_calls++;
    progress_on_main += pthread_equal(pthread_self(), main_thread);
    printf("main thread: download %d%%\n", percent);
}

/* Main's own heartbeat: re-arms itself while main waits. */
static void heartbeat(void *arg)
{
    (void)arg;
    heartbeats++;
    if (waiting)
        worker_later(NULL, heartbeat, NULL, 0.02, NULL);
}

struct download {
    worker_t *main;
    worker_defer_t *done;
};

/* Posted by main to itself: runs inside main's get, so the download (and
 * its resolve) surely starts after main began to wait. */
static void start_download(void *arg)
{
    worker_fire(arg, "START", NULL);
}

static int downloader(void *arg, void **result)
{
    (void)result;
    struct download *d = arg;
    int rc = worker_wait_event("START", 5.0, NULL, NULL);
    if (rc != WORKER_OK)
        return rc;
    for (int part = 1; part <= 4; part++) {
        worker_sleep(0.03); /* "downloading" one part */
        /* fn runs on d->main's thread, not here; delay 0: as soon as its
         * loop turns. */
        worker_later(d->main, show_progress, (void *)(intptr_t)(part * 25), 0, NULL);
    }
    static const char body[] = "<html>the page</html>";
    return worker_defer_resolve(d->done, (void *)body); /* first settle wins */
}

int main(void)
{
    main_thread = pthread_self();
    struct download d = { .main = worker_current(), .done = worker_defer_new() };
    if (!d.done)
        return 1;
    worker_later(NULL, heartbeat, NULL, 0.02, NULL);
    worker_t *w = worker_spawn(downloader, &d, &(worker_opts) { .name = "downloader" });
    worker_later(NULL, start_download, w, 0, NULL);

    printf("main thread: waiting for the download (the loop keeps running)\n");
    void *page = NULL;
    int rc = worker_defer_get(d.done, &page); /* runs main's loop */
    waiting = false;
    printf("main thread: got \"%s\" (%s) after %d progress calls and %d heartbeats\n",
        rc == 0 ? (const char *)page : "?", worker_err_name(rc), progress_calls, heartbeats);

    /* Settling again is ignored; get gives the same answer again. */
    worker_defer_reject(d.done, 1);
    void *again = NULL;
    int rc2 = worker_defer_get(d.done, &again);

    worker_wait_thread(w, NULL, NULL);
    worker_unref(w);
    worker_defer_free(d.done);

    /* The four progress calls were posted before the resolve (whose
     * DEFER_FULFILL message follows them from the same sender), so each ran
     * on main before get returned; so did the heartbeat, at least once in
     * the ~0.12 s of downloading. */
    bool ok = rc == 0 && rc2 == 0 && again == page && progress_calls == 4 && progress_on_main == 4
        && heartbeats >= 1;
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
