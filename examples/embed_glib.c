/* embed_glib: a worker inside a GLib main loop, as a GSource.
 *
 * The source watches worker_fd() (g_source_add_unix_fd). Its prepare()
 * gives GLib worker_next_timeout() as the poll timeout, its check() says
 * "ready" when the fd is readable or a worker timer is due, and its
 * dispatch() calls worker_update(), which handles what is queued and
 * returns at once.
 *
 * A producer worker fires N "TICK" events at the main thread, and a timer
 * (worker_later) runs on it; when both are done the main loop quits and the
 * exit status is 0.
 *
 * Built only when GLib is found (pkg-config glib-2.0, package
 * libglib2.0-dev).
 * Needs pkg-config: glib-2.0
 *
 * Run: ./embed_glib [--auto]      (no input is ever read) */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

#include <worker/worker.h>

#define TICKS 100000L

typedef struct {
    GSource source;
    gpointer tag; /* from g_source_add_unix_fd */
} WorkerSource;

/* Seconds -> whole milliseconds, rounded up (no libm needed), at most a
 * day: so that the loop does not wake just before a timer is due. */
static long ms_rounded_up(double seconds)
{
    if (seconds > 86400.0)
        return 86400L * 1000L;
    double ms = seconds * 1000.0;
    long whole = (long)ms;
    return whole + (ms > (double)whole);
}

static gboolean worker_prepare(GSource *source, gint *timeout_ms)
{
    (void)source;
    double next = worker_next_timeout();
    *timeout_ms = next < 0 ? -1 : (gint)ms_rounded_up(next);
    return next == 0.0;
}

static gboolean worker_check(GSource *source)
{
    WorkerSource *ws = (WorkerSource *)source;
    return (g_source_query_unix_fd(source, ws->tag) & G_IO_IN) || worker_next_timeout() == 0.0;
}

static gboolean worker_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    (void)source;
    worker_update();
    return callback ? callback(user_data) : G_SOURCE_CONTINUE;
}

static GSourceFuncs worker_source_funcs = {
    .prepare = worker_prepare,
    .check = worker_check,
    .dispatch = worker_dispatch,
};

/* A GSource that drives the calling thread's root worker; NULL if it has
 * no fd (a worker the library runs). */
static GSource *worker_source_new(void)
{
    int fd = worker_fd();
    if (fd < 0)
        return NULL;
    GSource *source = g_source_new(&worker_source_funcs, sizeof(WorkerSource));
    ((WorkerSource *)source)->tag = g_source_add_unix_fd(source, fd, G_IO_IN);
    return source;
}

struct host {
    GMainLoop *loop;
    long ticks;
    gboolean timer_ran;
};

static int on_tick(const worker_event_t *e, void *userdata)
{
    (void)e;
    ((struct host *)userdata)->ticks++;
    return 0;
}

static void on_worker_timer(void *arg)
{
    ((struct host *)arg)->timer_ran = TRUE;
}

/* Called after every update. */
static gboolean after_update(gpointer user_data)
{
    struct host *h = user_data;
    if (h->ticks == TICKS && h->timer_ran)
        g_main_loop_quit(h->loop);
    return G_SOURCE_CONTINUE;
}

static int producer(void *arg, void **result)
{
    (void)result;
    worker_t *main_root = arg;
    for (long i = 0; i < TICKS; i++) {
        int rc = worker_fire(main_root, "TICK", (void *)(intptr_t)i);
        if (rc != WORKER_OK)
            return rc;
    }
    return WORKER_OK;
}

int main(int argc, char **argv)
{
    (void)argc; /* --auto changes nothing: this example never reads input */
    (void)argv;
    struct host h = { .loop = g_main_loop_new(NULL, FALSE), .ticks = 0, .timer_ran = FALSE };
    worker_t *me = worker_current();
    GSource *source = worker_source_new();
    if (!me || !source) {
        fprintf(stderr, "embed_glib: no worker fd on this thread\n");
        return 1;
    }
    worker_listen(me, "TICK", on_tick, &h, NULL);
    worker_later(NULL, on_worker_timer, &h, 0.05, NULL);
    g_source_set_callback(source, after_update, &h, NULL);
    g_source_attach(source, NULL);

    worker_t *w = worker_spawn(producer, me, &(worker_opts) { .name = "producer" });
    if (!w) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }
    g_main_loop_run(h.loop);
    printf("embed_glib: %ld ticks arrived, the timer ran\n", h.ticks);

    int rc = worker_join(w);
    worker_unref(w);
    g_source_destroy(source);
    g_source_unref(source);
    g_main_loop_unref(h.loop);
    return rc == WORKER_OK && h.ticks == TICKS ? 0 : 1;
}
