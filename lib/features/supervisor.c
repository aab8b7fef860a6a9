/* Supervisors: a worker whose task starts its children and restarts them
 * by their restart type with its strategy (docs/supervision.md).
 *
 * The supervisor is an event-driven state machine on its own thread: its
 * children's CHILD_THREAD_START / CHILD_THREAD_END (it is their parent),
 * requests from other threads (add, remove: calls), and its restart timers
 * move each child through its phases; step() then makes the next move.
 * Children are started one at a time in order (the next once the previous
 * one's CHILD_THREAD_START has come) and stopped one at a time, last
 * started first (the next once the previous one's CHILD_THREAD_END has
 * come).
 *
 * Invariants:
 * - Everything in wk_sup but the `kids` array is touched on the
 *   supervisor's thread only (its task, listeners and timers). The array
 *   (and each kid's name and worker) is changed on that thread under
 *   self->lock, and read under that lock by worker_supervisor_child from
 *   any thread. No other worker's lock is taken while it is held.
 * - A kid's worker is made with the supervisor as parent, so its end
 *   always comes as CHILD_THREAD_END, after every event it fired at the
 *   supervisor. Its hold mode (hold.c) is set before each start and before
 *   the supervisor stops it: kept mail for a restart that will be made,
 *   closed mail otherwise; a kid whose end kept the mail and that is not
 *   restarted after all is released (wk_worker_release_held), so every
 *   event its mailbox accepted is handled exactly once.
 * - At most one kid is being started (`starting`) and one being stopped
 *   (`stopping`) at a time; stops go before starts.
 * - Requests (supervisor_calls.c) are handled here, in mailbox order with
 *   the children's notices; `delivered` is set on each one seen.
 * - The kids hold references to their workers, and the workers to their
 *   parent (the supervisor): the task forgets every kid before it returns,
 *   which breaks that cycle.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <worker/worker.h>

#include "wk_sched.h"
#include "wk_current.h"
#include "wk_hold.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_probe.h"
#include "wk_supervisor.h"
#include "wk_worker.h"

enum kid_phase {
    K_IDLE, /* not running, not to be started (a TRANSIENT that ended well) */
    K_QUEUED, /* to be started (by step) */
    K_RUNNING, /* started */
    K_PENDING_STOP, /* to be stopped, in turn */
    K_STOPPING, /* told to stop; its end is awaited */
    K_DOWN, /* ended; restarted after its backoff or with its group */
};

typedef struct wk_sup_kid kid;

struct wk_sup_kid {
    wk_sup *sup;
    char *name;
    worker_t *w; /* holds a reference */
    int restart; /* enum worker_restart */
    int phase;
    bool in_group; /* restarted together with others (ONE_FOR_ALL, REST_FOR_ONE) */
    bool removing;
    const worker_event_t *remove_req; /* answered at its end */
    worker_timer_t *timer; /* its restart after a backoff */
    double delay; /* its last backoff */
    uint64_t last_restart_ns;
    uint64_t restarts; /* restarts made (for traces) */
    bool started; /* has run: its next start is a restart */
    int reason; /* the err that makes its next restart (for traces) */
};

struct wk_sup {
    worker_t *self; /* the supervisor (the state lives as long as it) */
    int strategy;
    int intensity;
    uint64_t period_ns;
    double backoff, backoff_max;
    kid **kids; /* in start order; see the invariants */
    size_t count, cap;
    uint64_t *history; /* times of the restarts within the period, oldest first */
    size_t history_count, history_cap;
    kid *starting, *stopping;
    worker_timer_t *group_timer;
    double group_delay;
    bool running, shutting, done;
    int end_err;
    /* worker_supervisor returns once the first children's runs have begun
     * (or the supervisor gave up): `ready`, under ready_lock. */
    pthread_mutex_t ready_lock;
    pthread_cond_t ready_cond;
    bool ready;
};

static void mark_ready(wk_sup *s)
{
    pthread_mutex_lock(&s->ready_lock);
    s->ready = true;
    pthread_cond_broadcast(&s->ready_cond);
    pthread_mutex_unlock(&s->ready_lock);
}

static void sup_free(void *ext);

wk_sup *wk_sup_of(worker_t *w)
{
    return w && !w->is_root && w->ext_free == sup_free ? w->ext : NULL;
}

/* ---- kids ---- */

static int base_hold(const kid *k)
{
    return k->restart == WORKER_RESTART_PERMANENT ? WK_HOLD_ALWAYS
        : k->restart == WORKER_RESTART_TRANSIENT  ? WK_HOLD_ON_ERROR
                                                  : WK_HOLD_NEVER;
}

static void cancel_timer(worker_timer_t **t)
{
    if (*t) {
        worker_timer_cancel(*t);
        worker_timer_free(*t);
        *t = NULL;
    }
}

void wk_sup_kid_free(kid *k)
{
    if (!k)
        return;
    cancel_timer(&k->timer);
    worker_unref(k->w);
    free(k->name);
    free(k);
}

static int check_spec(const worker_child_spec *spec)
{
    if (!spec || !spec->name || !*spec->name)
        return WORKER_EINVAL;
    if (spec->restart < WORKER_RESTART_PERMANENT || spec->restart > WORKER_RESTART_TEMPORARY)
        return WORKER_EINVAL;
    if (spec->opts && spec->opts->pooled && spec->task)
        return WORKER_EINVAL; /* a pooled child has no task */
    return WORKER_OK;
}

/* A kid with its worker (made, not started), child of `self`. */
int wk_sup_kid_new(worker_t *self, const worker_child_spec *spec, kid **out)
{
    *out = NULL;
    int rc = check_spec(spec);
    if (rc != WORKER_OK)
        return rc;
    worker_opts o = spec->opts ? *spec->opts : (worker_opts) { 0 };
    o.name = spec->name;
    o.parent = self;
    o.no_parent = false;
    kid *k = calloc(1, sizeof *k);
    if (!k || !(k->name = strdup(spec->name))) {
        free(k);
        return WORKER_ENOMEM;
    }
    k->w = worker_new(spec->task, spec->arg, &o);
    if (!k->w) {
        wk_sup_kid_free(k);
        return spec->opts ? WORKER_EINVAL : WORKER_ENOMEM; /* bad opts, or memory */
    }
    k->restart = spec->restart;
    k->phase = K_QUEUED;
    wk_worker_set_hold(k->w, base_hold(k));
    *out = k;
    return WORKER_OK;
}

static kid *find_name(wk_sup *s, const char *name)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->kids[i]->name, name) == 0)
            return s->kids[i];
    return NULL;
}

static kid *find_worker(wk_sup *s, const worker_t *w)
{
    for (size_t i = 0; w && i < s->count; i++)
        if (s->kids[i]->w == w)
            return s->kids[i];
    return NULL;
}

static size_t index_of(wk_sup *s, const kid *k)
{
    size_t i = 0;
    while (i < s->count && s->kids[i] != k)
        i++;
    return i;
}

/* Append under self->lock; false without memory. */
static bool kids_append(wk_sup *s, kid *k)
{
    bool ok = true;
    pthread_mutex_lock(&s->self->lock);
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4;
        kid **grown = realloc(s->kids, cap * sizeof *grown);
        if (grown) {
            s->kids = grown;
            s->cap = cap;
        } else {
            ok = false;
        }
    }
    if (ok) {
        k->sup = s;
        s->kids[s->count++] = k;
    }
    pthread_mutex_unlock(&s->self->lock);
    return ok;
}

/* Take the kid out of the table and free it (supervisor's thread). */
static void forget(wk_sup *s, kid *k)
{
    pthread_mutex_lock(&s->self->lock);
    size_t i = index_of(s, k);
    if (i < s->count) {
        memmove(&s->kids[i], &s->kids[i + 1], (s->count - i - 1) * sizeof *s->kids);
        s->count--;
    }
    pthread_mutex_unlock(&s->self->lock);
    if (s->starting == k)
        s->starting = NULL;
    if (s->stopping == k)
        s->stopping = NULL;
    wk_worker_release_held(k->w);
    wk_worker_set_hold(k->w, WK_HOLD_NEVER);
    if (k->remove_req) {
        worker_reply(k->remove_req, NULL);
        worker_event_unref(k->remove_req);
        k->remove_req = NULL;
    }
    wk_sup_kid_free(k);
}

/* ---- restarts ---- */

/* One more restart within the period, or false: the intensity is spent. */
static bool intensity_allows(wk_sup *s)
{
    uint64_t now = wk_now_ns();
    size_t keep = 0;
    for (size_t i = 0; i < s->history_count; i++)
        if (now - s->history[i] < s->period_ns)
            s->history[keep++] = s->history[i];
    s->history_count = keep;
    if (s->history_count >= (size_t)s->intensity)
        return false;
    if (s->history_count == s->history_cap) {
        size_t cap = s->history_cap * 2;
        uint64_t *grown = realloc(s->history, cap * sizeof *grown);
        if (!grown) { /* out of memory: forget the oldest restart instead */
            memmove(s->history, s->history + 1, --s->history_count * sizeof *s->history);
        } else {
            s->history = grown;
            s->history_cap = cap;
        }
    }
    s->history[s->history_count++] = now;
    return true;
}

/* The backoff before k's next restart: the first delay, doubled per
 * restart up to the maximum, back to the first after a quiet period. */
static double next_delay(wk_sup *s, kid *k)
{
    if (s->backoff <= 0)
        return 0;
    uint64_t now = wk_now_ns();
    if (k->delay <= 0 || now - k->last_restart_ns >= s->period_ns)
        k->delay = s->backoff;
    else
        k->delay = k->delay * 2 < s->backoff_max ? k->delay * 2 : s->backoff_max;
    return k->delay;
}

static void step(wk_sup *s);

static void restart_due(void *arg)
{
    kid *k = arg;
    worker_timer_free(k->timer);
    k->timer = NULL;
    if (k->phase == K_DOWN && !k->in_group)
        k->phase = K_QUEUED;
    step(k->sup);
}

static void schedule(wk_sup *s, kid *k, double delay)
{
    k->phase = K_DOWN;
    if (delay <= 0 || worker_later(s->self, restart_due, k, delay, &k->timer) != WORKER_OK)
        k->phase = K_QUEUED;
}

/* Stop every kid and end with `err` once they have ended. */
static void shut_down(wk_sup *s, int err)
{
    if (s->shutting)
        return;
    s->shutting = true;
    s->end_err = err;
    cancel_timer(&s->group_timer);
    for (size_t i = 0; i < s->count; i++) {
        kid *k = s->kids[i];
        cancel_timer(&k->timer);
        k->in_group = false;
        switch (k->phase) {
        case K_RUNNING:
            k->phase = K_PENDING_STOP;
            /* fall through */
        case K_PENDING_STOP:
        case K_STOPPING:
            wk_worker_set_hold(k->w, WK_HOLD_NEVER);
            break;
        default: /* not running: what it held is delivered now */
            wk_worker_release_held(k->w);
            k->phase = K_IDLE;
            break;
        }
    }
}

/* k ended by itself (not stopped by its supervisor) with `err`. */
static void kid_failed(wk_sup *s, kid *k, int err)
{
    bool again = k->restart == WORKER_RESTART_PERMANENT
        || (k->restart == WORKER_RESTART_TRANSIENT && err != WORKER_OK);
    if (!again) {
        wk_worker_release_held(k->w); /* its mode kept nothing; to be sure */
        if (k->restart == WORKER_RESTART_TEMPORARY)
            forget(s, k);
        else
            k->phase = K_IDLE;
        return;
    }
    if (!intensity_allows(s)) {
        shut_down(s, WORKER_EINTENSITY);
        return;
    }
    k->reason = err;
    double delay = next_delay(s, k);
    if (s->strategy == WORKER_ONE_FOR_ONE) {
        schedule(s, k, delay);
        return;
    }
    size_t from = s->strategy == WORKER_ONE_FOR_ALL ? 0 : index_of(s, k);
    k->in_group = true;
    for (size_t i = from; i < s->count; i++) {
        kid *j = s->kids[i];
        if (j == k || j->removing)
            continue;
        j->reason = err; /* the failure its group restart answers */
        switch (j->phase) {
        case K_RUNNING:
            j->phase = K_PENDING_STOP;
            j->in_group = true;
            wk_worker_set_hold(
                j->w, j->restart == WORKER_RESTART_TEMPORARY ? WK_HOLD_NEVER : WK_HOLD_ALWAYS);
            break;
        case K_QUEUED:
        case K_DOWN:
            cancel_timer(&j->timer);
            j->phase = K_DOWN;
            j->in_group = true;
            break;
        case K_PENDING_STOP:
        case K_STOPPING:
            j->in_group = true;
            break;
        default:
            break;
        }
    }
    if (delay > s->group_delay)
        s->group_delay = delay;
}

static void kid_ended(wk_sup *s, kid *k, int err)
{
    if (s->starting == k)
        s->starting = NULL;
    if (s->stopping == k)
        s->stopping = NULL;
    int was = k->phase;
    k->phase = K_DOWN;
    if (k->removing) {
        forget(s, k); /* answers the remove */
    } else if (s->shutting) {
        wk_worker_release_held(k->w);
        k->phase = K_IDLE;
    } else if (k->in_group) {
        /* stopped (or ended meanwhile) for its group's restart */
    } else if (was == K_RUNNING) {
        kid_failed(s, k, err);
    }
}

static void group_due(void *arg)
{
    wk_sup *s = arg;
    worker_timer_free(s->group_timer);
    s->group_timer = NULL;
    s->group_delay = 0;
    step(s);
}

/* A group whose members have all ended: start them again in order (after
 * the group's backoff). False while it waits. */
static bool group_restart(wk_sup *s)
{
    bool any = false;
    for (size_t i = 0; i < s->count; i++) {
        kid *k = s->kids[i];
        if (!k->in_group)
            continue;
        if (k->phase == K_PENDING_STOP || k->phase == K_STOPPING)
            return true; /* not yet */
        any = true;
    }
    if (!any)
        return true;
    if (s->group_timer)
        return false;
    if (s->group_delay > 0
        && worker_later(s->self, group_due, s, s->group_delay, &s->group_timer) == WORKER_OK)
        return false;
    s->group_delay = 0;
    for (size_t i = 0; i < s->count;) {
        kid *k = s->kids[i];
        if (!k->in_group) {
            i++;
            continue;
        }
        k->in_group = false;
        if (k->restart == WORKER_RESTART_TEMPORARY) {
            forget(s, k);
            continue;
        }
        k->phase = K_QUEUED;
        i++;
    }
    return true;
}

/* Start k (its first run or a restart). False when the start failed. */
static bool start_kid(wk_sup *s, kid *k)
{
    wk_worker_set_hold(k->w, base_hold(k));
    k->phase = K_RUNNING;
    k->last_restart_ns = wk_now_ns();
    if (k->started)
        wk_probe_child_restart((uint32_t)k->w->id, (uint32_t)s->self->id, (uint32_t)++k->restarts,
            k->reason, s->strategy != WORKER_ONE_FOR_ONE);
    k->started = true;
    int rc = wk_worker_restart(k->w);
    if (rc == WORKER_OK || rc == WORKER_EAGAIN) { /* EAGAIN: it ran and failed here */
        s->starting = k;
        return true;
    }
    kid_failed(s, k, rc);
    return false;
}

/* The next move: a stop, else (when all is stopped) the end or a group's
 * restart, else a start. */
static void step(wk_sup *s)
{
    for (;;) {
        if (s->stopping || s->starting || s->done)
            return;
        for (size_t i = s->count; i-- > 0;) {
            kid *k = s->kids[i];
            if (k->phase == K_PENDING_STOP) {
                k->phase = K_STOPPING;
                s->stopping = k;
                worker_stop(k->w);
                return;
            }
        }
        if (s->shutting) {
            s->done = true;
            mark_ready(s);
            /* An event for the task's wait to test (step may run in a
             * timer, which no wait sees). */
            worker_fire(s->self, WK_SUP_REQUEST, NULL);
            return;
        }
        if (!group_restart(s))
            return;
        kid *next = NULL;
        for (size_t i = 0; i < s->count && !next; i++)
            if (s->kids[i]->phase == K_QUEUED)
                next = s->kids[i];
        if (!next) {
            mark_ready(s); /* every child queued so far has begun its run */
            return;
        }
        if (start_kid(s, next))
            return;
    }
}

/* ---- the supervisor's listeners ---- */

static int on_child_start(const worker_event_t *e, void *userdata)
{
    wk_sup *s = userdata;
    kid *k = find_worker(s, worker_event_target(e));
    if (k && s->starting == k) {
        s->starting = NULL;
        step(s);
    }
    return 0;
}

static int on_child_end(const worker_event_t *e, void *userdata)
{
    wk_sup *s = userdata;
    const worker_down_t *down = worker_event_data(e);
    kid *k = down ? find_worker(s, down->worker) : NULL;
    if (k) {
        kid_ended(s, k, down->err);
        step(s);
    }
    return 0;
}

static void serve_remove(wk_sup *s, const worker_event_t *e, const char *name)
{
    kid *k = find_name(s, name);
    if (!k || k->removing) {
        worker_reply_error(e, WORKER_EINVAL);
        return;
    }
    switch (k->phase) {
    case K_RUNNING:
        k->phase = K_PENDING_STOP;
        /* fall through */
    case K_PENDING_STOP:
    case K_STOPPING:
        k->removing = true;
        k->remove_req = worker_event_ref(e);
        wk_worker_set_hold(k->w, WK_HOLD_NEVER);
        step(s);
        break;
    default: /* not running: forgotten now (what it held is delivered) */
        forget(s, k);
        worker_reply(e, NULL);
        step(s);
        break;
    }
}

static int on_request(const worker_event_t *e, void *userdata)
{
    wk_sup *s = userdata;
    wk_sup_request *r = worker_event_data(e);
    if (!r)
        return 0;
    atomic_store(&r->delivered, true);
    if (!s->running || s->shutting) {
        worker_reply_error(e, WORKER_EREJECTED);
    } else if (r->remove) {
        serve_remove(s, e, r->name);
    } else if (find_name(s, r->add->name)) {
        worker_reply_error(e, WORKER_EINVAL);
    } else if (!kids_append(s, r->add)) {
        worker_reply_error(e, WORKER_ENOMEM);
    } else {
        r->add = NULL; /* the supervisor's now */
        step(s);
        worker_reply(e, NULL);
    }
    return 0;
}

/* ---- the task ---- */

static bool sup_done(const worker_event_t *e, void *userdata)
{
    (void)e;
    return ((wk_sup *)userdata)->done;
}

/* ms, capped at UINT32_MAX (for the trace). */
static uint32_t ms_of(double seconds)
{
    double ms = seconds * 1e3 + 0.5;
    return ms >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static int sup_task(void *arg, void **result)
{
    (void)result;
    wk_sup *s = arg;
    s->running = true;
    s->shutting = s->done = false;
    s->end_err = WORKER_OK;
    s->history_count = 0;
    wk_probe_supervisor_started((uint32_t)s->self->id, s->strategy, s->intensity,
        ms_of((double)s->period_ns / 1e9), ms_of(s->backoff));
    step(s);
    int rc = s->done ? WORKER_OK : worker_wait_until(sup_done, s, -1.0, NULL);
    if (rc != WORKER_OK) {
        shut_down(s, rc);
        step(s);
    }
    if (!s->done) { /* its own waits, which a stop does not end */
        wk_thread *t = wk_thread_get();
        wk_frame f = { .kind = WK_WAIT_COND, .cond = sup_done, .userdata = s, .ignore_exit = true };
        wk_loop_wait(s->self, t, &f, WK_NO_DEADLINE);
    }
    s->running = false;
    while (s->count)
        forget(s, s->kids[s->count - 1]);
    mark_ready(s);
    return s->end_err;
}

static void sup_free(void *ext)
{
    wk_sup *s = ext;
    for (size_t i = 0; i < s->count; i++)
        wk_sup_kid_free(s->kids[i]);
    free(s->kids);
    free(s->history);
    pthread_mutex_destroy(&s->ready_lock);
    pthread_cond_destroy(&s->ready_cond);
    free(s);
}

static bool finite_nonneg(double x)
{
    return isfinite(x) && x >= 0;
}

static wk_sup *sup_new(const worker_sup_opts *o)
{
    if (o->strategy < WORKER_ONE_FOR_ONE || o->strategy > WORKER_REST_FOR_ONE || o->intensity < 0
        || !finite_nonneg(o->period) || !finite_nonneg(o->backoff)
        || !finite_nonneg(o->backoff_max))
        return NULL;
    wk_sup *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->strategy = o->strategy;
    s->intensity = o->intensity ? o->intensity : 3;
    double period = o->period > 0 ? o->period : 5.0;
    s->period_ns = period >= 1e9 ? UINT64_MAX / 2 : (uint64_t)(period * 1e9);
    s->backoff = o->backoff;
    s->backoff_max = o->backoff_max > 0 ? o->backoff_max : 10 * o->backoff;
    if (s->backoff_max < s->backoff)
        s->backoff_max = s->backoff;
    pthread_mutex_init(&s->ready_lock, NULL);
    pthread_cond_init(&s->ready_cond, NULL);
    s->history_cap = 8;
    s->history = calloc(s->history_cap, sizeof *s->history);
    if (!s->history) {
        free(s);
        return NULL;
    }
    return s;
}

worker_t *worker_supervisor(
    const worker_child_spec *children, size_t n, const worker_sup_opts *opts)
{
    static const worker_sup_opts defaults;
    if (!opts)
        opts = &defaults;
    if (n && !children)
        return NULL;
    if (wk_in_pooled(wk_thread_peek()))
        return NULL; /* it waits for the children's first runs */
    for (size_t i = 0; i < n; i++) {
        if (check_spec(&children[i]) != WORKER_OK)
            return NULL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(children[i].name, children[j].name) == 0)
                return NULL; /* duplicate name */
    }
    wk_sup *s = sup_new(opts);
    if (!s)
        return NULL;
    worker_opts wo = { .name = opts->name };
    worker_t *w = worker_new(sup_task, s, &wo);
    if (!w) {
        sup_free(s);
        return NULL;
    }
    s->self = w;
    w->ext = s;
    w->ext_free = sup_free;
    bool ok = worker_listen(w, WORKER_EV_CHILD_THREAD_START, on_child_start, s, NULL)
        && worker_listen(w, WORKER_EV_CHILD_THREAD_END, on_child_end, s, NULL)
        && worker_listen(w, WK_SUP_REQUEST, on_request, s, NULL);
    for (size_t i = 0; ok && i < n; i++) {
        kid *k = NULL;
        ok = wk_sup_kid_new(w, &children[i], &k) == WORKER_OK && kids_append(s, k);
        if (!ok)
            wk_sup_kid_free(k);
    }
    if (!ok || worker_start(w) != WORKER_OK) {
        /* Never started: its kids hold it (their parent), so let them go
         * first. */
        while (s->count)
            wk_sup_kid_free(s->kids[--s->count]);
        worker_unref(w);
        return NULL;
    }
    /* Like OTP's start_link: back once the children are started. */
    pthread_mutex_lock(&s->ready_lock);
    while (!s->ready)
        pthread_cond_wait(&s->ready_cond, &s->ready_lock);
    pthread_mutex_unlock(&s->ready_lock);
    return w;
}

worker_t *wk_sup_find(wk_sup *s, const char *name)
{
    pthread_mutex_lock(&s->self->lock);
    kid *k = find_name(s, name);
    worker_t *w = k ? k->w : NULL;
    pthread_mutex_unlock(&s->self->lock);
    return w;
}

worker_t *wk_sup_self(const wk_sup *s)
{
    return s->self;
}
