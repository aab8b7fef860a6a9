/* Ask and reply: a request event that expects one answer.
 *
 * The caller fires a request at a worker and runs its own loop until the
 * first answer (or a timeout, a refusal, the request's release without an
 * answer, its expiry, or its own stop). A listener answers with
 * worker_reply*, there or later (any thread) on an event kept with
 * worker_event_ref. docs/semantics.md "Ask and reply" has every rule. */
#ifndef WORKER_CALL_H
#define WORKER_CALL_H

#include <stddef.h>

#include <worker/event.h>
#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fire `name` at `w` as a request (data by reference) and run the calling
 * thread's loop until the answer. WORKER_OK with *reply (may be NULL) set
 * to the reply; the code given to worker_reply_error; WORKER_ETIMEDOUT
 * (handled but not answered in `timeout` seconds; negative: no timeout);
 * WORKER_EEXPIRED (still queued at the timeout: never delivered);
 * WORKER_ENOREPLY (released unanswered, reported at once);
 * WORKER_EREJECTED / WORKER_EFULL (not queued); WORKER_EXIT (the caller was
 * stopped); WORKER_EINVAL (NULL w, empty name, NaN timeout);
 * WORKER_ENOMEM. */
WORKER_API int worker_call(worker_t *w, const char *name, void *data, double timeout, void **reply);

/* worker_call with fire options (copy, release, bubble, broadcast, target)
 * and the reply's size: *reply_size (may be NULL) is the size of a copied
 * reply, 0 for a reply by reference. A copied reply stays valid until the
 * caller's next wait or update. */
WORKER_API int worker_call_ex(worker_t *w, const char *name, void *data,
    const worker_fire_opts *opts, double timeout, void **reply, size_t *reply_size);

typedef void (*worker_reply_fn)(int rc, void *reply, size_t reply_size, void *userdata);

/* Fire the request and return at once: WORKER_OK, then fn(rc, reply,
 * reply_size, userdata) runs exactly once on the calling worker's loop with
 * the codes of worker_call (the reply is valid until fn returns); or the
 * fire's error (WORKER_EINVAL also for a NULL fn), and fn never runs. */
WORKER_API int worker_call_async(worker_t *w, const char *name, void *data,
    const worker_fire_opts *opts, double timeout, worker_reply_fn fn, void *userdata);

/* Fire the request and return at once, like worker_call_async, but fn
 * runs at once on the thread that answers: the one that replies
 * (worker_reply*), or lets the request go unanswered (WORKER_ENOREPLY), or
 * takes it after `timeout` (WORKER_EEXPIRED: never shown to a listener;
 * negative: no expiry). There is no timer: once taken, the request waits
 * for its answer or its release, however long. So the caller needs no
 * loop, and any thread may call it (a transport's receiving thread); fn
 * must be safe on any thread, short, and must not wait. The reply is
 * valid until fn returns. On error (the fire's, WORKER_EINVAL also for a
 * NULL fn) fn never runs. */
WORKER_API int worker_call_then(worker_t *w, const char *name, void *data,
    const worker_fire_opts *opts, double timeout, worker_reply_fn fn, void *userdata);

/* Answer a request with `reply` (by reference). Any thread. The first
 * answer counts; later ones: WORKER_ESTATE. Not a request (or NULL):
 * WORKER_EINVAL. */
WORKER_API int worker_reply(const worker_event_t *e, void *reply);

/* worker_reply with options: `.copy`/`.copy_size` copy the reply (then
 * `reply` is ignored), `.release` runs once, when the caller is done with
 * the reply or never got it (also when this call returns an error). Other
 * fields are ignored. */
WORKER_API int worker_reply_ex(const worker_event_t *e, void *reply, const worker_fire_opts *opts);

/* Answer a request with an error: `err` (non-zero, else WORKER_EINVAL)
 * becomes the caller's return code. */
WORKER_API int worker_reply_error(const worker_event_t *e, int err);

/* Keep an event (any event) beyond its listener: its data stays valid and
 * a request stays answerable until worker_event_unref. Returns `e`. */
WORKER_API const worker_event_t *worker_event_ref(const worker_event_t *e);

/* Drop a reference taken with worker_event_ref (NULL: nothing). A request
 * whose last reference goes unanswered ends its call with WORKER_ENOREPLY. */
WORKER_API void worker_event_unref(const worker_event_t *e);

/* Seconds left for a request's reply (its caller's timeout); < 0 when the
 * event is not a request or its call has no timeout. 0 once it passed. */
WORKER_API double worker_event_deadline(const worker_event_t *e);

/* True when `e` is a request (made by worker_call*), answerable with
 * worker_reply*; false for other events and NULL. Lets a listener that
 * forwards events elsewhere (a proxy of a remote worker) tell a call from
 * a fire. */
WORKER_API bool worker_event_is_request(const worker_event_t *e);

#ifdef __cplusplus
}
#endif
#endif
