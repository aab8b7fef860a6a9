/* channel_printers: a channel broadcasting to three printer workers.
 *
 * A channel is a set of subscribed workers. worker_channel_pub() builds ONE
 * event and queues it on every subscriber's mailbox (no copy per
 * subscriber) and returns how many took it. Each printer handles it in its
 * own listener, on its own thread. With worker_channel_pub_ex() the payload
 * can be copied into the event, and `release` is called once, after the
 * last printer has handled it.
 *
 * Lifetimes: the channel is ours (worker_channel_free). It does not keep
 * the printers alive: a printer that is freed leaves the channel by itself.
 *
 * Run: ./channel_printers [--auto]   (never reads input; exit 0 on success) */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <worker/worker.h>

#define PRINTERS 3

struct printer {
    int id;
    worker_t *main; /* told PRINTED after each line, so main can check */
    int printed; /* only touched on the printer's thread */
};

/* Runs on the printer's own thread. */
static int on_print(const worker_event_t *e, void *userdata)
{
    struct printer *p = userdata;
    printf("[printer %d] %s\n", p->id, (const char *)worker_event_data(e));
    p->printed++;
    return worker_fire(p->main, "PRINTED", (void *)(intptr_t)p->id);
}

static atomic_int releases;

/* Called once per publish, when no printer holds the event any more. */
static void on_release(void *data)
{
    (void)data;
    atomic_fetch_add(&releases, 1);
}

/* Run main's loop until `n` PRINTED events have arrived. */
static bool wait_printed(int n)
{
    for (int i = 0; i < n; i++)
        if (worker_wait_event("PRINTED", 5.0, NULL, NULL) != WORKER_OK)
            return false;
    return true;
}

int main(void)
{
    struct printer printers[PRINTERS];
    worker_t *w[PRINTERS];
    worker_channel_t *ch = worker_channel_new();
    if (!ch)
        return 1;

    for (int i = 0; i < PRINTERS; i++) {
        printers[i] = (struct printer) { .id = i + 1, .main = worker_current() };
        /* A NULL task waits forever: a worker that only reacts to events. */
        w[i] = worker_new(NULL, NULL, NULL);
        worker_listen(w[i], "PRINT", on_print, &printers[i], NULL);
        worker_start(w[i]);
        worker_channel_sub(ch, w[i]);
    }
    printf("main: %zu subscribers\n", worker_channel_count(ch));

    /* Plain publish: the data pointer is shared as is (a string literal
     * lives forever). */
    int n1 = worker_channel_pub(ch, "PRINT", "hello, printers");
    bool ok = n1 == PRINTERS && wait_printed(n1);

    /* Copied payload: the event owns a copy, so `line` may change at once. */
    char line[64];
    snprintf(line, sizeof line, "a copied line, number %d", 2);
    worker_fire_opts o = { .copy = line, .copy_size = strlen(line) + 1, .release = on_release };
    int n2 = worker_channel_pub_ex(ch, "PRINT", NULL, &o);
    memset(line, 0, sizeof line);
    ok = ok && n2 == PRINTERS && wait_printed(n2);

    /* Printer 3 leaves; the next publish reaches two. */
    worker_channel_unsub(ch, w[2]);
    int n3 = worker_channel_pub(ch, "PRINT", "only two of us now");
    ok = ok && n3 == PRINTERS - 1 && wait_printed(n3);
    printf("main: publishes reached %d, %d and %d printers\n", n1, n2, n3);

    /* A stopped printer stays subscribed but is skipped. */
    worker_stop(w[1]);
    worker_join(w[1]);
    int n4 = worker_channel_pub(ch, "PRINT", "printer 2 is stopped");
    ok = ok && n4 == 1 && wait_printed(n4);

    /* Freeing a worker takes it out of every channel: stop, join (after
     * which the run holds no reference), unref. */
    size_t before = worker_channel_count(ch);
    for (int i = 0; i < PRINTERS; i++) {
        worker_stop(w[i]);
        worker_join(w[i]);
    }
    /* The last PRINTED event this thread waited for holds its sender until
     * the next wait or update: let it go before counting. */
    worker_update();
    for (int i = 0; i < PRINTERS; i++)
        worker_unref(w[i]);
    size_t after = worker_channel_count(ch);
    printf("main: subscribers before the unrefs: %zu, after: %zu\n", before, after);
    worker_channel_free(ch);

    /* The release ran once for the one pub_ex, after every printer had
     * handled it. The printers' counts are read after their join. */
    ok = ok && atomic_load(&releases) == 1 && before == 2 && after == 0 && printers[0].printed == 4
        && printers[1].printed == 3 && printers[2].printed == 2;
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
