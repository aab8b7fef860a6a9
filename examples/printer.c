/* printer: pyThreadWorker's shortcuts example ("Shortcut functions for the
 * current thread").
 *
 * pyThreadWorker's printer worker registers a listener for "PRINT" with the
 * listen shortcut (on its own thread, without naming the worker) and then
 * runs its event loop with wait_forever. The main thread fires "PRINT"
 * with "foo" and then "bar", then stops and joins the printer.
 *
 * In C: worker_on() is the listen shortcut (it always makes a transient
 * listener, like pyThreadWorker's shortcut with permanent=False, so a restarted
 * worker does not get it twice), worker_fire() sends, worker_stop() +
 * worker_join() end it. Events from one sender arrive in the order they
 * were fired, so the output is always "foo" then "bar"; the events fired
 * before the listener exists are not lost: they wait in the mailbox until
 * the loop runs.
 *
 * Run: ./printer [--auto]           (no input is ever read) */
#include <stdio.h>
#include <string.h>

#include <worker/worker.h>

/* What the printer printed, kept to check the order at the end. Only the
 * printer's thread writes it; main reads it after the join. */
static char printed[64];

/* The listener: runs on the printer's thread, inside its event loop. */
static int on_print(const worker_event_t *e, void *userdata)
{
    const char *text = worker_event_data(e);
    (void)userdata;
    printf("%s\n", text);
    strncat(printed, text, sizeof printed - strlen(printed) - 2);
    strcat(printed, " ");
    return 0; /* non-zero would be a listener error (LISTENER_ERROR) */
}

static int printer_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* this function runs in a new thread; the listener is registered on
     * the printer worker, the current one */
    if (worker_on("PRINT", on_print, NULL, NULL) == NULL)
        return WORKER_ENOMEM;
    return worker_wait_forever(); /* the printer's event loop */
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;

    worker_t *printer = worker_spawn(printer_task, NULL, &(worker_opts) { .name = "printer" });
    if (printer == NULL) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }

    /* The data pointer is passed as is: string literals live forever, so
     * nothing needs copying or releasing here. */
    int rc1 = worker_fire(printer, "PRINT", "foo");
    int rc2 = worker_fire(printer, "PRINT", "bar");
    int rc3 = worker_stop(printer);
    int rc4 = worker_join(printer);
    if (rc1 || rc2 || rc3 || rc4) {
        fprintf(stderr, "fire/stop/join failed: %s %s %s %s\n", worker_err_name(rc1),
            worker_err_name(rc2), worker_err_name(rc3), worker_err_name(rc4));
        return 1;
    }
    worker_unref(printer);

    if (strcmp(printed, "foo bar ") != 0) {
        fprintf(stderr, "unexpected output order: '%s'\n", printed);
        return 1;
    }
    return 0;
}
