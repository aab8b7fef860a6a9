/* An outside program: spawns a printer worker, fires PRINT twice, stops it.
 * Built by tools/run against the install tree (find_package and pkg-config). */
#include <stdio.h>
#include <worker/worker.h>

static int printed; /* written by the worker; read by main after the join */

static int on_print(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    printf("consumer: %s\n", (const char *)worker_event_data(e));
    printed++;
    return 0;
}

static int printer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if (!worker_on("PRINT", on_print, NULL, NULL))
        return WORKER_EINVAL;
    return worker_wait_forever(); /* WORKER_EXIT once stopped */
}

static int check(const char *what, int rc)
{
    if (rc != WORKER_OK)
        fprintf(stderr, "consumer: %s: %s\n", what, worker_strerror(rc));
    return rc != WORKER_OK;
}

int main(void)
{
    worker_t *w = worker_spawn(printer, NULL, &(worker_opts) { .name = "printer" });
    if (!w) {
        fprintf(stderr, "consumer: worker_spawn failed\n");
        return 1;
    }
    int bad = check("fire", worker_fire(w, "PRINT", "hello"));
    bad |= check("fire", worker_fire(w, "PRINT", "world"));
    bad |= check("stop", worker_stop(w));
    bad |= check("join", worker_join(w));
    worker_unref(w);
    if (printed != 2) {
        fprintf(stderr, "consumer: expected 2 PRINT events, got %d\n", printed);
        bad = 1;
    }
    printf("consumer: %s\n", bad ? "FAILED" : "ok");
    return bad;
}
