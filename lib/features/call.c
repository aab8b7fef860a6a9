/* Ask and reply: requests, their answers, and the calls that wait for them.
 *
 * A request is a user event (WK_FORM_CALL) whose `link` is a wk_request:
 * the ask's state, kept outside the event's cache line.
 *
 * Invariants:
 * - `refs` counts the request's holders: the request event (dropped by
 *   `dropped`, when the event's last holder lets it go), the caller (until
 *   it is done: its wait returned, or its callback ran) and an answer
 *   notice in flight (until the notice ran on the caller, or could not be
 *   queued). The last one frees the request, its copy and its notice.
 * - `answered` is set once, by exchange: the first reply, reply error, or
 *   the event's release without an answer (ENOREPLY / EEXPIRED) wins.
 *   Only the winner writes `answer_rc` and `answer` and queues the notice
 *   taken in advance at the call (so answering needs no memory); the
 *   mailbox orders those writes before the caller reads them.
 * - `state` moves once out of QUEUED: to SHOWN when a receiver takes the
 *   event before its deadline, to EXPIRED when a receiver takes it after,
 *   or when the caller's timeout comes first. An EXPIRED request is never
 *   shown to a listener.
 * - Caller thread only: `frame`, `given_up`, `arrived`, `userdata`,
 *   `timer`. The notice runs there too, so whether the caller still wants
 *   the answer needs no lock: a late answer is released there.
 * - Immutable after the fire: `deadline_ns`, `caller`, `data`, `release`,
 *   and whether the call is async (`fn` set). A worker_call_then request
 *   (`answer_inline`) has no notice, timer or frame: its `fn` and
 *   `userdata` are immutable too, and `fn` runs on the thread whose answer
 *   (or release) wins `answered`, which then drops the caller's reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <worker/call.h>

#include "wk_sched.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_pool.h"
#include "wk_probe.h"
#include "wk_timers.h"

enum req_state { REQ_QUEUED, REQ_SHOWN, REQ_EXPIRED };

typedef struct wk_request {
    wk_link link; /* first: the event reaches the request through it */
    _Atomic uint32_t refs;
    _Atomic int state; /* enum req_state */
    _Atomic bool answered;
    _Atomic bool caller_done; /* the caller's reference was dropped (once) */
    uint64_t deadline_ns; /* WK_NO_DEADLINE: none */
    worker_t *caller; /* holds a reference */
    int answer_rc;
    worker_event_t *answer; /* the reply's payload, one reference; or NULL */
    worker_event_t *notice; /* taken in advance; NULL once queued */
    void *notice_node;
    /* caller thread only */
    wk_frame *frame;
    bool given_up;
    bool arrived;
    worker_reply_fn fn;
    void *userdata;
    worker_timer_t *timer;
    bool answer_inline; /* worker_call_then: fn runs where the answer is made */
    /* the request's data */
    void *data;
    wk_release_fn release;
    _Alignas(16) unsigned char copy[];
} wk_request;

static void request_free(wk_request *r)
{
    if (r->notice)
        wk_event_discard(r->notice);
    wk_pool_free(WK_POOL_QNODE, r->notice_node);
    if (r->answer)
        wk_event_unref(r->answer);
    worker_unref(r->caller);
    free(r);
}

static void request_unref(wk_request *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        request_free(r);
}

/* The caller is done with `r`: its reference goes, once. */
static void caller_release(wk_request *r)
{
    if (!atomic_exchange_explicit(&r->caller_done, true, memory_order_acq_rel))
        request_unref(r);
}

/* ---- the answer ---- */

static void answer_arrived(worker_t *owner, worker_event_t *e);

static bool never_shown(worker_t *owner, worker_event_t *e)
{
    (void)owner;
    (void)e;
    return false;
}

static int push_notice(wk_request *r, wk_thread *t)
{
    worker_event_t *n = r->notice;
    void *node = r->notice_node;
    r->notice = NULL;
    r->notice_node = NULL;
    int rc = wk_traced(n) ? wk_push_traced_node(r->caller, n, 0, node, t)
                          : wk_mailbox_push_node(&r->caller->mb, n, node, t);
    if (rc != WORKER_OK)
        wk_event_discard(n); /* the mailbox freed the node */
    return rc;
}

/* Answer `r` with `rc` and `payload` (one reference, given away). false:
 * answered already (payload released). */
static bool answer(wk_request *r, int rc, worker_event_t *payload)
{
    if (atomic_exchange_explicit(&r->answered, true, memory_order_acq_rel)) {
        if (payload)
            wk_event_unref(payload);
        return false;
    }
    if (r->answer_inline) {
        r->fn(rc, payload ? worker_event_data(payload) : NULL, worker_event_size(payload),
            r->userdata);
        if (payload)
            wk_event_unref(payload);
        caller_release(r);
        return true;
    }
    r->answer_rc = rc;
    r->answer = payload;
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed); /* the notice's */
    wk_thread *t = wk_thread_get();
    int pushed = t ? push_notice(r, t) : WORKER_ENOMEM;
    if (pushed != WORKER_OK) {
        /* Refused: the caller has closed for good. An async caller never
         * touches `r` again then (its timer was dropped with it), so its
         * reference goes here; a sync caller drops its own as it returns. */
        if (pushed == WORKER_EREJECTED && r->fn)
            caller_release(r);
        request_unref(r); /* the notice's */
    }
    return true;
}

/* An async call's answer, on the caller: the callback, once. */
static void async_answered(wk_request *r)
{
    r->given_up = true;
    if (r->timer) {
        worker_timer_cancel(r->timer); /* on this thread: it has not run */
        worker_timer_free(r->timer);
        r->timer = NULL;
    }
    void *reply = r->answer ? worker_event_data(r->answer) : NULL;
    r->fn(r->answer_rc, reply, worker_event_size(r->answer), r->userdata);
    caller_release(r);
}

/* On the caller: hand the answer to whoever still waits for it. */
static void answer_arrived(worker_t *owner, worker_event_t *e)
{
    (void)owner;
    wk_request *r = wk_event_call_arg(e);
    if (!r->given_up) {
        r->arrived = true;
        if (r->frame)
            r->frame->done = true;
        else if (r->fn)
            async_answered(r);
    }
    request_unref(r); /* the notice's */
}

/* ---- the request event ---- */

/* The event's last holder let it go: unanswered, that ends the call. */
static void request_dropped(wk_link *link)
{
    wk_request *r = (wk_request *)link;
    if (r->release)
        r->release(r->data);
    int state = atomic_load_explicit(&r->state, memory_order_acquire);
    answer(r, state == REQ_EXPIRED ? WORKER_EEXPIRED : WORKER_ENOREPLY, NULL);
    request_unref(r);
}

static bool leave_queued(wk_request *r, int to)
{
    int expected = REQ_QUEUED;
    return atomic_compare_exchange_strong(&r->state, &expected, to);
}

/* As the receiver takes the request: shown unless its deadline passed. */
static bool request_show(worker_t *owner, worker_event_t *e)
{
    wk_request *r = (wk_request *)e->body.call.link;
    bool late = r->deadline_ns != WK_NO_DEADLINE && wk_now_ns() >= r->deadline_ns;
    if (leave_queued(r, late ? REQ_EXPIRED : REQ_SHOWN) ? !late
                                                        : atomic_load(&r->state) == REQ_SHOWN)
        return true;
    atomic_fetch_add_explicit(&owner->stats.expired, 1, memory_order_relaxed);
    wk_probe_request_expired(
        (uint32_t)owner->id, wk_event_serial(e), e->sender ? (uint32_t)e->sender->id : 0, e->atom);
    return false;
}

static wk_request *request_of(const worker_event_t *e)
{
    if (!e || e->form != WK_FORM_CALL || e->body.call.show != request_show)
        return NULL;
    return (wk_request *)e->body.call.link;
}

/* ---- making and firing a request ---- */

static int check_call(worker_t *w, const char *name, const worker_fire_opts *opts, double timeout)
{
    if (!w || !name || !*name || isnan(timeout) || (opts && isnan(opts->wait)))
        return WORKER_EINVAL;
    if (opts && opts->copy_size && !opts->copy)
        return WORKER_EINVAL;
    return wk_init();
}

static wk_request *request_new(
    worker_t *caller, void *data, const worker_fire_opts *opts, double timeout)
{
    size_t copy_size = opts->copy ? opts->copy_size : 0;
    wk_request *r = calloc(1, sizeof *r + copy_size);
    if (!r)
        return NULL;
    r->notice = wk_event_new_call(wk_atoms.execute, WK_EV_LINK, NULL, answer_arrived, r, NULL);
    r->notice_node = wk_pool_alloc(WK_POOL_QNODE);
    if (!r->notice || !r->notice_node) {
        request_free(r); /* caller NULL: worker_unref(NULL) is a no-op */
        return NULL;
    }
    r->notice->body.call.show = never_shown;
    r->link.dropped = request_dropped;
    r->link.copy_size = copy_size;
    atomic_init(&r->refs, 2); /* the event's and the caller's */
    if (!wk_deadline_after(timeout, &r->deadline_ns))
        r->deadline_ns = WK_NO_DEADLINE;
    r->caller = worker_ref(caller);
    r->data = data;
    if (copy_size) {
        memcpy(r->copy, opts->copy, copy_size);
        r->data = r->copy;
    }
    r->release = opts->release;
    return r;
}

/* Fire `r` as `name` at `w`. On error nothing was queued and the
 * request's release has not run (the caller keeps its data); the caller
 * frees `r`. */
static int request_fire(worker_t *w, const char *name, wk_request *r, const worker_fire_opts *opts,
    worker_t *me, wk_thread *t)
{
    const wk_atom *atom = wk_atom_cached(&t->fired_name, name);
    worker_t *sender = opts->target ? opts->target : me;
    worker_event_t *e
        = atom ? wk_event_new_call(atom, WK_EV_USER, r->data, NULL, NULL, sender) : NULL;
    if (!e)
        return WORKER_ENOMEM;
    e->body.call.show = request_show;
    e->body.call.link = &r->link;
    void *origin = opts->copy ? (void *)opts->copy : r->data;
    wk_room rw;
    bool waits = opts->wait != 0 && wk_room_begin(&rw, opts->wait) == WORKER_OK;
    return wk_deliver_waiting(w, e, opts->bubble, opts->broadcast, origin, waits ? &rw : NULL, t);
}

/* The caller's context, with the library set up. */
static int caller_context(wk_thread **t, worker_t **me)
{
    *t = wk_thread_get();
    *me = *t ? wk_current(*t) : NULL;
    return *me ? WORKER_OK : WORKER_ENOMEM;
}

/* The caller's timeout came first: a request still queued expires. */
static int timed_out(wk_request *r)
{
    return leave_queued(r, REQ_EXPIRED) ? WORKER_EEXPIRED : WORKER_ETIMEDOUT;
}

/* After the wait: the answer (kept valid until the next wait) or why not. */
static int take_answer(wk_request *r, int rc, wk_thread *t, void **reply, size_t *reply_size)
{
    if (!r->arrived)
        return rc == WORKER_ETIMEDOUT ? timed_out(r) : rc;
    if (r->answer_rc != WORKER_OK)
        return r->answer_rc;
    worker_event_t *payload = r->answer;
    r->answer = NULL;
    if (reply)
        *reply = payload ? worker_event_data(payload) : NULL;
    if (reply_size)
        *reply_size = worker_event_size(payload);
    if (payload) {
        wk_drop_last_returned(t);
        t->last_returned = payload;
    }
    return WORKER_OK;
}

/* What both calls do first: check, find the caller, make the request
 * (`*opts` NULL becomes the defaults). */
static int request_begin(worker_t *w, const char *name, void *data, const worker_fire_opts **opts,
    double timeout, wk_thread **t, worker_t **me, wk_request **r)
{
    static const worker_fire_opts defaults;
    int rc = check_call(w, name, *opts, timeout);
    if (rc == WORKER_OK)
        rc = caller_context(t, me);
    if (rc != WORKER_OK)
        return rc;
    if (!*opts)
        *opts = &defaults;
    *r = request_new(*me, data, *opts, timeout);
    return *r ? WORKER_OK : WORKER_ENOMEM;
}

int worker_call_ex(worker_t *w, const char *name, void *data, const worker_fire_opts *opts,
    double timeout, void **reply, size_t *reply_size)
{
    wk_thread *t;
    worker_t *me;
    wk_request *r;
    if (wk_in_pooled(wk_thread_peek()))
        return WORKER_EWOULDBLOCK;
    int rc = request_begin(w, name, data, &opts, timeout, &t, &me, &r);
    if (rc != WORKER_OK)
        return rc;
    rc = request_fire(w, name, r, opts, me, t);
    if (rc != WORKER_OK) {
        request_free(r); /* nothing else held it */
        return rc;
    }
    wk_frame f = { .kind = WK_WAIT_NOTICE };
    r->frame = &f;
    rc = wk_loop_wait(me, t, &f, r->deadline_ns);
    r->frame = NULL;
    r->given_up = true;
    rc = take_answer(r, rc, t, reply, reply_size);
    caller_release(r);
    return rc;
}

int worker_call(worker_t *w, const char *name, void *data, double timeout, void **reply)
{
    return worker_call_ex(w, name, data, NULL, timeout, reply, NULL);
}

/* An async call that ends without an answer: fn with `code`, once. */
static void async_give_up(wk_request *r, int code)
{
    if (r->given_up)
        return;
    r->given_up = true;
    worker_timer_free(r->timer);
    r->timer = NULL;
    r->fn(code, NULL, 0, r->userdata);
    caller_release(r);
}

/* An async call's timeout, on the caller (a timer): fn with the reason. */
static void async_timeout(void *arg)
{
    wk_request *r = arg;
    if (!r->given_up)
        async_give_up(r, timed_out(r));
}

/* The caller ends first (its timers are dropped): fn learns it, once. */
static void async_caller_ends(void *arg)
{
    async_give_up(arg, WORKER_EXIT);
}

/* What both async calls do first: request_begin, and the callback. */
static int async_begin(worker_t *w, const char *name, void *data, const worker_fire_opts **opts,
    double timeout, worker_reply_fn fn, void *userdata, wk_thread **t, worker_t **me,
    wk_request **r)
{
    int rc = fn ? request_begin(w, name, data, opts, timeout, t, me, r) : WORKER_EINVAL;
    if (rc == WORKER_OK) {
        (*r)->fn = fn;
        (*r)->userdata = userdata;
    }
    return rc;
}

/* Fire an async request, held meanwhile (its answer may come, and drop
 * the other references, before the fire returns). On error nothing was
 * queued: the caller frees `r`. */
static int async_fire(
    worker_t *w, const char *name, wk_request *r, const worker_fire_opts *opts, worker_t *me,
    wk_thread *t)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    int rc = request_fire(w, name, r, opts, me, t);
    if (rc == WORKER_OK)
        request_unref(r);
    return rc;
}

int worker_call_async(worker_t *w, const char *name, void *data, const worker_fire_opts *opts,
    double timeout, worker_reply_fn fn, void *userdata)
{
    wk_thread *t;
    worker_t *me;
    wk_request *r;
    int rc = async_begin(w, name, data, &opts, timeout, fn, userdata, &t, &me, &r);
    if (rc != WORKER_OK)
        return rc;
    /* Armed before the fire: an answer may run on this thread's next turn. */
    if (timeout >= 0
        && wk_later_or_drop(me, async_timeout, async_caller_ends, r, timeout, &r->timer)
            != WORKER_OK) {
        request_free(r);
        return WORKER_ENOMEM;
    }
    rc = async_fire(w, name, r, opts, me, t);
    if (rc != WORKER_OK) {
        if (r->timer) {
            worker_timer_cancel(r->timer); /* not run: this thread has not turned */
            worker_timer_free(r->timer);
        }
        request_free(r);
    }
    return rc;
}

int worker_call_then(worker_t *w, const char *name, void *data, const worker_fire_opts *opts,
    double timeout, worker_reply_fn fn, void *userdata)
{
    wk_thread *t;
    worker_t *me;
    wk_request *r;
    int rc = async_begin(w, name, data, &opts, timeout, fn, userdata, &t, &me, &r);
    if (rc != WORKER_OK)
        return rc;
    r->answer_inline = true;
    rc = async_fire(w, name, r, opts, me, t);
    if (rc != WORKER_OK)
        request_free(r);
    return rc;
}

/* ---- answering ---- */

int worker_reply_ex(const worker_event_t *e, void *reply, const worker_fire_opts *opts)
{
    wk_request *r = request_of(e);
    int rc = !r || (opts && opts->copy_size && !opts->copy) ? WORKER_EINVAL : wk_init();
    worker_event_t *payload = NULL;
    if (rc == WORKER_OK && (reply || (opts && (opts->copy || opts->release)))) {
        payload = opts ? wk_event_new_untraced(e->atom, WK_EV_LIBRARY, reply, opts->copy,
                      opts->copy_size, opts->release, NULL)
                       : wk_event_new_untraced(e->atom, WK_EV_LIBRARY, reply, NULL, 0, NULL, NULL);
        if (!payload)
            rc = WORKER_ENOMEM;
    }
    if (rc != WORKER_OK) {
        if (opts && opts->release)
            opts->release(opts->copy ? (void *)opts->copy : reply);
        return rc;
    }
    return answer(r, WORKER_OK, payload) ? WORKER_OK : WORKER_ESTATE;
}

int worker_reply(const worker_event_t *e, void *reply)
{
    return worker_reply_ex(e, reply, NULL);
}

int worker_reply_error(const worker_event_t *e, int err)
{
    wk_request *r = request_of(e);
    if (!r || err == WORKER_OK)
        return WORKER_EINVAL;
    return answer(r, err, NULL) ? WORKER_OK : WORKER_ESTATE;
}

/* ---- events kept beyond their listener ---- */

const worker_event_t *worker_event_ref(const worker_event_t *e)
{
    if (e)
        wk_event_ref((worker_event_t *)e);
    return e;
}

void worker_event_unref(const worker_event_t *e)
{
    if (e)
        wk_event_unref((worker_event_t *)e);
}

bool worker_event_is_request(const worker_event_t *e)
{
    return request_of(e) != NULL;
}

double worker_event_deadline(const worker_event_t *e)
{
    wk_request *r = request_of(e);
    if (!r || r->deadline_ns == WK_NO_DEADLINE)
        return -1.0;
    uint64_t now = wk_now_ns();
    return now >= r->deadline_ns ? 0.0 : (double)(r->deadline_ns - now) / 1e9;
}
