/* tree_events: a parent / child / grandchild tree, bubble and broadcast.
 *
 * A worker started from another worker's thread gets that worker as its
 * parent. worker_bubble(name, data) fires on the parent and on up the tree
 * (not on the sender itself); worker_broadcast(name, data) fires on every
 * child and on down. All receivers share one event object.
 *
 *            parent          <- HELLO_UP reaches child, then parent
 *              |                (bubbled by the grandchild)
 *            child
 *              |             -> HELLO_DOWN reaches child and grandchild
 *          grandchild           (broadcast by the parent)
 *
 * Every worker reports "<who> got <event>" to main, which checks that
 * exactly the right workers got each event. Stopping the parent stops the
 * whole subtree: a parent stops its children and waits for the non-daemon
 * ones before it ends itself.
 *
 * Run: ./tree_events [--auto]        (never reads input; exit 0 on success) */
#include <stdio.h>
#include <string.h>

#include <worker/worker.h>

static worker_t *main_w; /* the main thread's root worker */

/* Each listener reports to main with a copied string "<who> got <event>". */
static int report(const worker_event_t *e, void *userdata)
{
    char line[64];
    snprintf(line, sizeof line, "%s got %s", worker_name(worker_current()), worker_event_name(e));
    (void)userdata;
    worker_fire_opts o = { .copy = line, .copy_size = strlen(line) + 1 };
    return worker_fire_ex(main_w, "GOT", NULL, &o);
}

static void listen_both(void)
{
    /* worker_on: a listener on the current worker (transient). */
    worker_on("HELLO_UP", report, NULL, NULL);
    worker_on("HELLO_DOWN", report, NULL, NULL);
}

/* The grandchild: on GO_UP it bubbles HELLO_UP to its ancestors. */
static int on_go_up(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return worker_bubble("HELLO_UP", NULL);
}

static int grandchild_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    listen_both();
    worker_on("GO_UP", on_go_up, NULL, NULL);
    worker_fire(main_w, "READY", NULL); /* every listener is in place now */
    return worker_wait_forever();
}

static int child_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    listen_both();
    /* Started from this worker's thread: its parent is this worker. */
    worker_t *g = worker_spawn(grandchild_task, NULL, &(worker_opts) { .name = "grandchild" });
    worker_unref(g); /* the tree keeps it; we need no handle */
    return worker_wait_forever();
}

/* The parent: on GO_DOWN it broadcasts HELLO_DOWN to its descendants. */
static int on_go_down(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return worker_broadcast("HELLO_DOWN", NULL);
}

static int parent_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    listen_both();
    worker_on("GO_DOWN", on_go_down, NULL, NULL);
    worker_unref(worker_spawn(child_task, NULL, &(worker_opts) { .name = "child" }));
    return worker_wait_forever();
}

/* Collect `n` GOT reports; true when they are exactly `a` and `b` (in
 * either order: the two receivers run on different threads). */
static bool got_exactly(const char *a, const char *b)
{
    bool seen_a = false, seen_b = false;
    for (int i = 0; i < 2; i++) {
        void *line = NULL; /* the copy stays valid until our next wait */
        if (worker_wait_event("GOT", 5.0, NULL, &line) != WORKER_OK)
            return false;
        printf("  %s\n", (const char *)line);
        seen_a |= strcmp(line, a) == 0;
        seen_b |= strcmp(line, b) == 0;
    }
    return seen_a && seen_b;
}

int main(void)
{
    main_w = worker_current();
    worker_t *parent = worker_spawn(parent_task, NULL, &(worker_opts) { .name = "parent" });
    /* Each worker adds its listeners before it starts its own child, so
     * when the grandchild says READY the whole tree listens. */
    if (worker_wait_event("READY", 5.0, NULL, NULL) != WORKER_OK)
        return 1;
    printf("tree: parent -> child -> grandchild (parent has %zu child)\n",
        worker_children_count(parent));

    /* Main holds only the parent's handle: it reaches the grandchild by
     * firing GO_UP with broadcast (only the grandchild listens for it). */
    worker_fire_ex(parent, "GO_UP", NULL, &(worker_fire_opts) { .broadcast = true });
    printf("grandchild bubbles HELLO_UP:\n");
    bool ok = got_exactly("child got HELLO_UP", "parent got HELLO_UP");

    worker_fire(parent, "GO_DOWN", NULL);
    printf("parent broadcasts HELLO_DOWN:\n");
    ok = ok && got_exactly("child got HELLO_DOWN", "grandchild got HELLO_DOWN");

    /* Nothing else arrives: neither sender got its own event. */
    ok = ok && worker_wait_event("GOT", 0.2, NULL, NULL) == WORKER_ETIMEDOUT;

    /* Stop the root of the tree: it stops and joins its subtree first. */
    worker_stop(parent);
    worker_wait_thread(parent, NULL, NULL);
    printf("parent ended with its subtree; children running: %zu\n", worker_children_count(parent));
    ok = ok && worker_children_count(parent) == 0;
    worker_unref(parent);
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
