/* Ask and reply: worker_call*, worker_reply*, worker_event_ref/unref,
 * worker_event_deadline (call.h, docs/semantics.md "Ask and reply").
 *
 * Synchronisation: the test's main thread is the caller; a call returns
 * only after its answer (or its end) has been handled on this thread, so
 * what a listener recorded before answering is visible after the call. */
#ifndef _GNU_SOURCE
#include "test_util.h"
#endif
#include <criterion/criterion.h>
#include <worker/worker.h>
#include <math.h>
#include <unistd.h>

static int idle_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return worker_wait_forever();
}

static worker_t *server(void)
{
    worker_t *w = worker_new(idle_task, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_start(w), WORKER_OK);
    return w;
}

static void server_end(worker_t *w)
{
    worker_stop(w);
    worker_join(w);
    worker_unref(w);
}

/* Replies with data + 1. */
static int add_one(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    return worker_reply(e, TU_PTR(TU_INT(worker_event_data(e)) + 1));
}

Test(call, reply_by_reference, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    cr_assert_not_null(worker_listen(w, "ADD", add_one, NULL, NULL));
    void *reply = NULL;
    cr_assert_eq(worker_call(w, "ADD", TU_PTR(41), TU_WAIT, &reply), WORKER_OK);
    cr_assert_eq(TU_INT(reply), 42);
    size_t size = 7;
    cr_assert_eq(worker_call_ex(w, "ADD", TU_PTR(1), NULL, -1, &reply, &size), WORKER_OK);
    cr_assert_eq(TU_INT(reply), 2);
    cr_assert_eq(size, 0);
    cr_assert_eq(worker_call(w, "ADD", TU_PTR(1), TU_WAIT, NULL), WORKER_OK);
    server_end(w);
}

static int fail_with_42(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    return worker_reply_error(e, 42);
}

Test(call, reply_error_is_the_callers_code, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    worker_listen(w, "Q", fail_with_42, NULL, NULL);
    void *reply = TU_PTR(5);
    cr_assert_eq(worker_call(w, "Q", NULL, TU_WAIT, &reply), 42);
    cr_assert_eq(TU_INT(reply), 5, "no reply written on an error");
    server_end(w);
}

Test(call, no_listener_is_noreply_at_once, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    double t0 = tu_now();
    cr_assert_eq(worker_call(w, "NOBODY", NULL, 60.0, NULL), WORKER_ENOREPLY);
    cr_assert_lt(tu_now() - t0, 30.0, "not at the timeout");
    server_end(w);
}

/* Keeps the request and tells main; main answers it from its own thread. */
static const worker_event_t *kept;
static int keep_it(const worker_event_t *e, void *userdata)
{
    kept = worker_event_ref(e);
    return tu_ack((worker_t *)userdata, 1);
}

static int answer_kept(void *arg, void **result)
{
    (void)result;
    cr_assert(tu_wait_ack(NULL) == WORKER_OK);
    int rc = worker_reply(kept, arg);
    int again = worker_reply(kept, arg);
    worker_event_unref(kept);
    return rc == WORKER_OK && again == WORKER_ESTATE ? 0 : 1;
}

Test(call, reply_later_from_another_thread, .timeout = 20)
{
    worker_t *main_w = tu_main();
    (void)main_w;
    /* The replier is a worker that waits for the server's ACK. */
    worker_t *replier = worker_new(answer_kept, TU_PTR(7), NULL);
    worker_t *w = server();
    worker_listen(w, "KEEP", keep_it, replier, NULL);
    cr_assert_eq(worker_start(replier), WORKER_OK);
    void *reply = NULL;
    cr_assert_eq(worker_call(w, "KEEP", NULL, TU_WAIT, &reply), WORKER_OK);
    cr_assert_eq(TU_INT(reply), 7);
    int err = -1;
    cr_assert_eq(worker_wait_thread(replier, &err, NULL), WORKER_OK);
    cr_assert_eq(err, 0, "second reply is WORKER_ESTATE");
    worker_unref(replier);
    server_end(w);
}

static int drop_later(const worker_event_t *e, void *userdata)
{
    kept = worker_event_ref(e);
    return tu_ack((worker_t *)userdata, 1);
}

static int unref_kept(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if (tu_wait_ack(NULL) != WORKER_OK)
        return 1;
    worker_event_unref(kept);
    return 0;
}

Test(call, released_unanswered_later_is_noreply, .timeout = 20)
{
    tu_main();
    worker_t *dropper = worker_new(unref_kept, NULL, NULL);
    worker_t *w = server();
    worker_listen(w, "KEEP", drop_later, dropper, NULL);
    cr_assert_eq(worker_start(dropper), WORKER_OK);
    cr_assert_eq(worker_call(w, "KEEP", NULL, 60.0, NULL), WORKER_ENOREPLY);
    worker_wait_thread(dropper, NULL, NULL);
    worker_unref(dropper);
    server_end(w);
}

static int keep_forever(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    kept = worker_event_ref(e);
    return 0;
}

static atomic_int released;
static void count_release(void *data)
{
    (void)data;
    atomic_fetch_add(&released, 1);
}

Test(call, handled_unanswered_is_timeout_and_late_reply_dropped, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    worker_listen(w, "KEEP", keep_forever, NULL, NULL);
    atomic_store(&released, 0);
    cr_assert_eq(worker_call(w, "KEEP", NULL, 0.2, NULL), WORKER_ETIMEDOUT);
    cr_assert_geq(worker_event_deadline(kept), 0.0);
    worker_fire_opts ro = { .release = count_release };
    cr_assert_eq(worker_reply_ex(kept, TU_PTR(1), &ro), WORKER_OK, "the first answer counts");
    worker_event_unref(kept);
    /* The late answer is released by this thread's loop. */
    for (int i = 0; i < 500 && atomic_load(&released) == 0; i++)
        worker_wait_timeout(0.01);
    cr_assert_eq(atomic_load(&released), 1);
    server_end(w);
}

static int reply_copy(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    char buf[100];
    memset(buf, 'x', sizeof buf);
    snprintf(buf, sizeof buf, "echo:%s", (const char *)worker_event_data(e));
    worker_fire_opts o = { .copy = buf, .copy_size = sizeof buf, .release = count_release };
    return worker_reply_ex(e, NULL, &o);
}

Test(call, copied_request_and_reply, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    worker_listen(w, "ECHO", reply_copy, NULL, NULL);
    atomic_store(&released, 0);
    char req[] = "hello";
    worker_fire_opts o = { .copy = req, .copy_size = sizeof req };
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(worker_call_ex(w, "ECHO", NULL, &o, TU_WAIT, &reply, &size), WORKER_OK);
    cr_assert_eq(size, 100);
    cr_assert_str_eq((const char *)reply, "echo:hello");
    cr_assert_eq(atomic_load(&released), 0, "valid until the next wait");
    worker_update();
    cr_assert_eq(atomic_load(&released), 1, "released once the caller is done");
    server_end(w);
}

Test(call, bad_input, .timeout = 20)
{
    worker_t *me = tu_main();
    cr_assert_eq(worker_call(NULL, "X", NULL, 1, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_call(me, NULL, NULL, 1, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_call(me, "", NULL, 1, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_call(me, "X", NULL, NAN, NULL), WORKER_EINVAL);
    worker_fire_opts bad = { .copy_size = 3 };
    cr_assert_eq(worker_call_ex(me, "X", NULL, &bad, 1, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_reply(NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_reply_error(NULL, 1), WORKER_EINVAL);
    cr_assert_lt(worker_event_deadline(NULL), 0.0);
    worker_event_unref(NULL);
    cr_assert_null(worker_event_ref(NULL));
    cr_assert_neq(worker_strerror(WORKER_ENOREPLY), NULL);
    cr_assert_str_eq(worker_err_name(WORKER_EEXPIRED), "WORKER_EEXPIRED");
}

/* A plain event is not a request; a reply error needs a code. */
static int reply_to_plain(const worker_event_t *e, void *userdata)
{
    int *out = userdata;
    out[0] = worker_reply(e, NULL);
    out[1] = worker_reply_error(e, 5);
    out[2] = worker_event_deadline(e) < 0;
    return 0;
}

static int reply_error_zero(const worker_event_t *e, void *userdata)
{
    int *out = userdata;
    out[3] = worker_reply_error(e, WORKER_OK);
    return worker_reply(e, NULL);
}

Test(call, reply_to_non_request_and_error_zero, .timeout = 20)
{
    worker_t *me = tu_main();
    int out[4] = { 0 };
    worker_listener_t *l = worker_on("PLAIN", reply_to_plain, out, NULL);
    worker_fire(me, "PLAIN", NULL);
    cr_assert_eq(tu_wait("PLAIN", NULL), WORKER_OK);
    cr_assert_eq(out[0], WORKER_EINVAL);
    cr_assert_eq(out[1], WORKER_EINVAL);
    cr_assert_eq(out[2], 1);
    worker_unlisten(me, l);
    l = worker_on("Z", reply_error_zero, out, NULL);
    cr_assert_eq(worker_call(me, "Z", NULL, TU_WAIT, NULL), WORKER_OK, "asking oneself works");
    cr_assert_eq(out[3], WORKER_EINVAL);
    worker_unlisten(me, l);
}

Test(call, refused_when_not_running, .timeout = 20)
{
    tu_main();
    worker_t *w = worker_new(idle_task, NULL, NULL);
    cr_assert_eq(worker_call(w, "X", NULL, 1, NULL), WORKER_EREJECTED);
    worker_unref(w);
}

static int deadline_seen(const worker_event_t *e, void *userdata)
{
    double *out = userdata;
    *out = worker_event_deadline(e);
    return worker_reply(e, NULL);
}

Test(call, deadline_travels, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    double left = 0;
    worker_listen(w, "D", deadline_seen, &left, NULL);
    cr_assert_eq(worker_call(w, "D", NULL, 10.0, NULL), WORKER_OK);
    cr_assert(left > 0.0 && left <= 10.0);
    cr_assert_eq(worker_call(w, "D", NULL, -1, NULL), WORKER_OK);
    cr_assert_lt(left, 0.0, "no timeout: no deadline");
    server_end(w);
}

/* ---- expiry ---- */

static sem_t go;
static int hold(const worker_event_t *e, void *userdata)
{
    (void)e;
    tu_ack((worker_t *)userdata, 1);
    sem_wait(&go); /* keeps the request queued behind this event */
    return 0;
}

/* A server busy in HOLD (until `go` is posted) that counts REQ in *seen. */
static worker_t *held_server(atomic_int *seen)
{
    worker_t *me = tu_main();
    worker_t *w = server();
    sem_init(&go, 0, 0);
    worker_listen(w, "HOLD", hold, me, NULL);
    worker_listen(w, "REQ", tu_count_listener, seen, NULL);
    worker_fire(w, "HOLD", NULL);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    return w;
}

/* Let the held server go; once it is idle, no REQ may have been shown. */
static void release_held_server(worker_t *w, atomic_int *seen)
{
    sem_post(&go);
    tu_sync_install(w);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(seen), 0, "an expired request is not delivered");
    sem_destroy(&go);
    server_end(w);
}

Test(call, queued_past_deadline_expires_undelivered, .timeout = 20)
{
    atomic_int seen = 0;
    worker_t *w = held_server(&seen);
    cr_assert_eq(worker_call(w, "REQ", NULL, 0.1, NULL), WORKER_EEXPIRED);
    release_held_server(w, &seen);
}

/* ---- async ---- */

typedef struct cb_out {
    int calls, rc;
    void *reply;
    size_t size;
    char copy[16];
} cb_out;

static void on_reply(int rc, void *reply, size_t size, void *userdata)
{
    cb_out *o = userdata;
    o->calls++;
    o->rc = rc;
    o->reply = reply;
    o->size = size;
    if (size && size <= sizeof o->copy)
        memcpy(o->copy, reply, size);
    worker_fire(tu_main(), "CB", NULL);
}

Test(call, async_runs_fn_once_on_the_caller, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    worker_listen(w, "ADD", add_one, NULL, NULL);
    cb_out o = { 0 };
    cr_assert_eq(worker_call_async(w, "ADD", TU_PTR(9), NULL, TU_WAIT, on_reply, &o), WORKER_OK);
    cr_assert_eq(o.calls, 0, "returns at once");
    cr_assert_eq(tu_wait("CB", NULL), WORKER_OK);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.rc, WORKER_OK);
    cr_assert_eq(TU_INT(o.reply), 10);
    /* No timeout armed after the answer: nothing more comes. */
    cr_assert_eq(worker_wait_event("CB", 0.3, NULL, NULL), WORKER_ETIMEDOUT);
    cr_assert_eq(o.calls, 1);
    server_end(w);
}

Test(call, async_timeout_and_noreply, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    worker_listen(w, "KEEP", keep_forever, NULL, NULL);
    cb_out o = { 0 };
    cr_assert_eq(worker_call_async(w, "KEEP", NULL, NULL, 0.2, on_reply, &o), WORKER_OK);
    cr_assert_eq(tu_wait("CB", NULL), WORKER_OK);
    cr_assert_eq(o.rc, WORKER_ETIMEDOUT);
    worker_event_unref(kept); /* released unanswered after the timeout: nothing more */
    cr_assert_eq(worker_wait_event("CB", 0.3, NULL, NULL), WORKER_ETIMEDOUT);
    cr_assert_eq(o.calls, 1);
    cb_out n = { 0 };
    cr_assert_eq(worker_call_async(w, "NOBODY", NULL, NULL, -1, on_reply, &n), WORKER_OK);
    cr_assert_eq(tu_wait("CB", NULL), WORKER_OK);
    cr_assert_eq(n.rc, WORKER_ENOREPLY);
    cr_assert_eq(n.calls, 1);
    server_end(w);
}

Test(call, async_copied_reply_and_errors, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    worker_listen(w, "ECHO", reply_copy, NULL, NULL);
    atomic_store(&released, 0);
    cb_out o = { 0 };
    char req[] = "hi";
    worker_fire_opts fo = { .copy = req, .copy_size = sizeof req };
    cr_assert_eq(worker_call_async(w, "ECHO", NULL, &fo, TU_WAIT, on_reply, &o), WORKER_OK);
    cr_assert_eq(tu_wait("CB", NULL), WORKER_OK);
    cr_assert_eq(o.size, 100);
    /* Released once fn has returned and the replier's fire has let go of
     * it too: the last of the two may be the replier's thread, a moment
     * after fn returned (seen under ASan), so wait for it (bounded). */
    for (int i = 0; i < 500 && atomic_load(&released) == 0; i++)
        worker_wait_timeout(0.01);
    cr_assert_eq(atomic_load(&released), 1, "released after fn returned");
    cr_assert_eq(worker_call_async(w, "ECHO", NULL, NULL, 1, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_call_async(w, "ECHO", NULL, NULL, NAN, on_reply, &o), WORKER_EINVAL);
    worker_t *idle = worker_new(idle_task, NULL, NULL);
    cb_out r = { 0 };
    cr_assert_eq(worker_call_async(idle, "X", NULL, NULL, 0.1, on_reply, &r), WORKER_EREJECTED);
    cr_assert_eq(worker_wait_event("CB", 0.3, NULL, NULL), WORKER_ETIMEDOUT);
    cr_assert_eq(r.calls, 0, "fn never runs after a fire error");
    worker_unref(idle);
    server_end(w);
}

/* An async call pending when its caller ends: fn runs once with
 * WORKER_EXIT (a timeout was given: the caller's timer tells it). */
static int ask_then_end(void *arg, void **result)
{
    (void)result;
    cb_out *o = arg;
    worker_t *server_w = o->reply;
    o->reply = NULL;
    int rc = worker_call_async(server_w, "KEEP", NULL, NULL, 60.0, on_reply, o);
    return rc == WORKER_OK ? 0 : rc; /* ends at once, the call pending */
}

Test(call, async_pending_when_the_caller_ends_gets_exit, .timeout = 20)
{
    worker_t *me = tu_main();
    worker_t *w = server();
    worker_listen(w, "KEEP", keep_forever, NULL, NULL);
    cb_out o = { .reply = w };
    worker_t *asker = worker_new(ask_then_end, &o, NULL);
    cr_assert_eq(worker_start(asker), WORKER_OK);
    int err = -1;
    cr_assert_eq(worker_wait_thread(asker, &err, NULL), WORKER_OK);
    cr_assert_eq(err, 0);
    /* fn ran on the asker's thread before its end was reported. */
    cr_assert_eq(o.calls, 1, "fn ran as the caller ended");
    cr_assert_eq(o.rc, WORKER_EXIT);
    /* The request is answered after the caller is gone: released quietly. */
    tu_sync_install(w);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(worker_reply(kept, TU_PTR(1)), WORKER_OK);
    worker_event_unref(kept);
    worker_unref(asker);
    server_end(w);
    (void)me;
}

/* ---- worker_call_then: the callback runs where the answer is made ---- */

typedef struct then_out {
    atomic_int calls;
    int rc;
    intptr_t reply;
    size_t size;
    char copy[16];
    pthread_t thread;
    sem_t done;
} then_out;

static void on_then(int rc, void *reply, size_t size, void *userdata)
{
    then_out *o = userdata;
    o->rc = rc;
    o->reply = (intptr_t)reply;
    o->size = size;
    if (size && size <= sizeof o->copy)
        memcpy(o->copy, reply, size);
    o->thread = pthread_self();
    atomic_fetch_add(&o->calls, 1);
    sem_post(&o->done);
}

static bool then_done(then_out *o)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)TU_WAIT;
    while (sem_timedwait(&o->done, &ts) != 0)
        if (errno != EINTR)
            return false;
    return true;
}

/* Records the thread it runs on, then replies with data + 1. */
static pthread_t listener_thread;
static int add_one_noting(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    listener_thread = pthread_self();
    return worker_reply(e, TU_PTR(TU_INT(worker_event_data(e)) + 1));
}

Test(call, then_runs_fn_on_the_replying_thread, .timeout = 20)
{
    tu_main();
    worker_t *w = server();
    worker_listen(w, "ADD", add_one_noting, NULL, NULL);
    static then_out o;
    sem_init(&o.done, 0, 0);
    cr_assert_eq(worker_call_then(w, "ADD", TU_PTR(41), NULL, -1, on_then, &o), WORKER_OK);
    cr_assert(then_done(&o), "fn never ran");
    cr_assert_eq(o.rc, WORKER_OK);
    cr_assert_eq(o.reply, 42);
    cr_assert(pthread_equal(o.thread, listener_thread), "fn ran where the reply was made");
    cr_assert(!pthread_equal(o.thread, pthread_self()));
    server_end(w);
    cr_assert_eq(atomic_load(&o.calls), 1, "exactly once");
    sem_destroy(&o.done);
}

/* A thread the library did not start (no loop of its own) may call it. */
static void *call_from_plain_thread(void *arg)
{
    then_out *o = arg;
    static const char ping[] = "ping";
    worker_fire_opts fo = { .copy = ping, .copy_size = sizeof ping };
    intptr_t rc = worker_call_then(o->reply ? (worker_t *)o->reply : NULL, "ECHO", NULL, &fo, 5,
        on_then, o);
    return (void *)rc;
}

static int echo_copy(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_reply_ex(e, NULL, &fo);
}

Test(call, then_from_a_plain_thread_with_a_copied_reply, .timeout = 20)
{
    worker_t *w = server();
    worker_listen(w, "ECHO", echo_copy, NULL, NULL);
    static then_out o;
    sem_init(&o.done, 0, 0);
    o.reply = (intptr_t)w; /* the target, for the thread */
    pthread_t th;
    void *rc;
    pthread_create(&th, NULL, call_from_plain_thread, &o);
    pthread_join(th, &rc);
    cr_assert_eq((intptr_t)rc, WORKER_OK);
    cr_assert(then_done(&o));
    cr_assert_eq(o.rc, WORKER_OK);
    cr_assert_eq(o.size, 5);
    cr_assert_str_eq(o.copy, "ping");
    server_end(w);
    sem_destroy(&o.done);
}

Test(call, then_unanswered_is_noreply_and_errors_never_run_fn, .timeout = 20)
{
    tu_main();
    worker_t *w = server(); /* no listener: released unanswered at once */
    static then_out o;
    sem_init(&o.done, 0, 0);
    cr_assert_eq(worker_call_then(w, "NOBODY", NULL, NULL, -1, on_then, &o), WORKER_OK);
    cr_assert(then_done(&o));
    cr_assert_eq(o.rc, WORKER_ENOREPLY);
    cr_assert_eq(worker_call_then(w, "X", NULL, NULL, -1, NULL, &o), WORKER_EINVAL);
    cr_assert_eq(worker_call_then(NULL, "X", NULL, NULL, -1, on_then, &o), WORKER_EINVAL);
    cr_assert_eq(worker_call_then(w, "X", NULL, NULL, NAN, on_then, &o), WORKER_EINVAL);
    server_end(w);
    cr_assert_eq(worker_call_then(w, "X", NULL, NULL, -1, on_then, &o), WORKER_EREJECTED);
    cr_assert_eq(atomic_load(&o.calls), 1, "fn ran only for the call that was fired");
    sem_destroy(&o.done);
}

Test(call, then_taken_past_its_timeout_expires_undelivered, .timeout = 20)
{
    atomic_int seen = 0;
    worker_t *w = held_server(&seen);
    static then_out o;
    sem_init(&o.done, 0, 0);
    cr_assert_eq(worker_call_then(w, "REQ", NULL, NULL, 0.05, on_then, &o), WORKER_OK);
    /* The request waits behind HOLD past its timeout; no timer answers it. */
    usleep(150 * 1000);
    cr_assert_eq(atomic_load(&o.calls), 0, "no timer: nothing happens until it is taken");
    sem_post(&go);
    cr_assert(then_done(&o));
    cr_assert_eq(o.rc, WORKER_EEXPIRED);
    release_held_server(w, &seen); /* its post finds HOLD gone: harmless */
    sem_destroy(&o.done);
}
