/* increaser: the original project's interactive example, in C.
 *
 * A worker counts up, printing the count every 0.1 s. Commands on stdin
 * control it: start, stop, pause, resume, set N, quit. The count lives in
 * the worker: SET_VALUE (fired by "set N") is handled by a listener on the
 * worker's own thread, so no lock is needed. Sleeping with worker_sleep()
 * runs the worker's event loop: that is where SET_VALUE, PAUSE_THREAD,
 * RESUME_THREAD and STOP_THREAD are handled (pause holds the task inside
 * worker_sleep until resume; stop makes worker_sleep return WORKER_EXIT).
 *
 * With --auto it plays a script instead of reading stdin and checks each
 * step through events the worker fires at main (TICK with the count it
 * printed, PAUSED when it handled a pause).
 *
 * Run: ./increaser           (type commands)
 *      ./increaser --auto    (scripted; exit 0 when it behaved) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <worker/worker.h>

struct increaser {
    intptr_t count; /* only touched on the increaser's thread */
    worker_t *report; /* gets TICK events (--auto), or NULL */
};

static int on_set_value(const worker_event_t *e, void *userdata)
{
    struct increaser *inc = userdata;
    inc->count = (intptr_t)worker_event_data(e);
    return 0;
}

/* Library events reach user listeners too: tell main a pause took hold. */
static int on_pause(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct increaser *inc = userdata;
    return inc->report ? worker_fire(inc->report, "PAUSED", NULL) : 0;
}

static int increaser_task(void *arg, void **result)
{
    (void)result;
    struct increaser *inc = arg;
    inc->count = 1; /* a fresh start counts from 1, like the original */
    for (;;) {
        printf("count: %ld\n", (long)inc->count);
        fflush(stdout);
        if (inc->report)
            worker_fire(inc->report, "TICK", (void *)inc->count);
        inc->count++;
        int rc = worker_sleep(0.1); /* the event loop runs here */
        if (rc != WORKER_OK)
            return rc; /* WORKER_EXIT: we were stopped */
    }
}

/* One command; returns 1 on "quit", -1 for an unknown command. */
static int command(worker_t *w, const char *line)
{
    if (strcmp(line, "start") == 0)
        printf("start: %s\n", worker_err_name(worker_start(w)));
    else if (strcmp(line, "stop") == 0) {
        worker_stop(w);
        worker_wait_thread(w, NULL, NULL); /* until it has ended */
    } else if (strcmp(line, "pause") == 0)
        worker_pause(w);
    else if (strcmp(line, "resume") == 0)
        worker_resume(w);
    else if (strncmp(line, "set ", 4) == 0)
        worker_fire(w, "SET_VALUE", (void *)(intptr_t)atol(line + 4));
    else if (strcmp(line, "quit") == 0 || strcmp(line, "exit") == 0) {
        worker_stop(w);
        worker_wait_thread(w, NULL, NULL);
        return 1;
    } else
        return -1;
    return 0;
}

/* --auto: wait (running main's loop) for a TICK whose count is `want`. */
static bool tick_is(const worker_event_t *e, void *want)
{
    return strcmp(worker_event_name(e), "TICK") == 0 && worker_event_data(e) == want;
}

static bool expect_tick(intptr_t want)
{
    int rc = worker_wait_until(tick_is, (void *)want, 5.0, NULL);
    if (rc != WORKER_OK)
        fprintf(stderr, "auto: no TICK %ld (%s)\n", (long)want, worker_err_name(rc));
    return rc == WORKER_OK;
}

static int run_script(worker_t *w)
{
    bool ok = true;
    command(w, "start");
    ok = ok && expect_tick(1) && expect_tick(2) && expect_tick(3);
    command(w, "set 100");
    ok = ok && expect_tick(100) && expect_tick(101);
    command(w, "pause");
    /* PAUSED comes after every TICK sent before the pause; then silence. */
    ok = ok && worker_wait_event("PAUSED", 5.0, w, NULL) == WORKER_OK;
    ok = ok && worker_wait_event("TICK", 0.3, w, NULL) == WORKER_ETIMEDOUT;
    command(w, "resume");
    ok = ok && worker_wait_event("TICK", 5.0, w, NULL) == WORKER_OK;
    command(w, "stop");
    ok = ok && !worker_is_running(w);
    command(w, "start"); /* restarted: counts from 1 again */
    ok = ok && expect_tick(1);
    ok = ok && command(w, "quit") == 1 && !worker_is_running(w);
    printf("auto: %s\n", ok ? "all steps behaved" : "FAILED");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    bool automatic = argc > 1 && strcmp(argv[1], "--auto") == 0;
    struct increaser inc = { .report = automatic ? worker_current() : NULL };
    /* Permanent listeners added before start survive restarts. */
    worker_t *w = worker_new(increaser_task, &inc, &(worker_opts) { .name = "increaser" });
    if (!w || !worker_listen(w, "SET_VALUE", on_set_value, &inc, NULL)
        || !worker_listen(w, WORKER_EV_PAUSE_THREAD, on_pause, &inc, NULL))
        return 1;

    int status = 0;
    if (automatic)
        status = run_script(w);
    else {
        char line[128];
        printf("commands: start stop pause resume 'set N' quit\n");
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\r\n")] = '\0';
            int rc = command(w, line);
            if (rc == 1)
                break;
            if (rc < 0)
                printf("unknown command: %s\n", line);
        }
        command(w, "quit"); /* also on end of input */
    }
    worker_unref(w);
    return status;
}
