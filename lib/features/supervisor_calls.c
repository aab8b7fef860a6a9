/* Supervisors (supervisor.c): the calls other threads make on one: add,
 * remove and child lookup.
 *
 * Invariants:
 * - add and remove are requests handled on the supervisor's thread (a
 *   worker_call of WK_SUP_REQUEST), so they take their turn with its
 *   children's notices and never race its state machine.
 * - A request holds two references: the caller's and its event's (dropped
 *   by the event's release, also when the supervisor ends without handling
 *   it). The supervisor sets `delivered` when it sees it; a request that
 *   was never queued has no event, and the caller drops both references.
 * - The child a request adds (its worker made, not started) is the
 *   request's until the supervisor takes it; the request frees what it
 *   still holds.
 */
#include <stdlib.h>
#include <string.h>

#include <worker/worker.h>

#include "wk_sched.h"
#include "wk_supervisor.h"

/* ---- requests from other threads ---- */

static void request_unref(void *p)
{
    wk_sup_request *r = p;
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    wk_sup_kid_free(r->add);
    free(r->name);
    free(r);
}

/* Send the request and wait for the answer; takes `r`. */
static int request(wk_sup *s, wk_sup_request *r)
{
    if (worker_current() == wk_sup_self(s)) { /* the answer would wait for itself */
        atomic_store(&r->refs, 1);
        request_unref(r);
        return WORKER_EDEADLK;
    }
    atomic_init(&r->refs, 2); /* the caller's and the event's */
    worker_fire_opts fo = { .release = request_unref };
    int rc = worker_call_ex(wk_sup_self(s), WK_SUP_REQUEST, r, &fo, -1.0, NULL, NULL);
    /* EWOULDBLOCK: a pooled caller, refused before anything was fired. */
    bool refused = rc == WORKER_EREJECTED || rc == WORKER_EFULL || rc == WORKER_ENOMEM
        || rc == WORKER_EINVAL || rc == WORKER_EWOULDBLOCK;
    if (refused && !atomic_load(&r->delivered))
        request_unref(r); /* never queued: the event's reference is ours too */
    request_unref(r);
    return rc;
}

int worker_supervisor_add(worker_t *sup, const worker_child_spec *spec)
{
    wk_sup *s = wk_sup_of(sup);
    if (!s)
        return WORKER_EINVAL;
    if (wk_in_pooled(wk_thread_peek()))
        return WORKER_EWOULDBLOCK; /* it waits for the supervisor's answer */
    wk_sup_request *r = calloc(1, sizeof *r);
    if (!r)
        return WORKER_ENOMEM;
    int rc = wk_sup_kid_new(sup, spec, &r->add);
    if (rc != WORKER_OK) {
        free(r);
        return rc;
    }
    return request(s, r);
}

int worker_supervisor_remove(worker_t *sup, const char *name)
{
    wk_sup *s = wk_sup_of(sup);
    if (!s || !name)
        return WORKER_EINVAL;
    if (wk_in_pooled(wk_thread_peek()))
        return WORKER_EWOULDBLOCK; /* it waits for the supervisor's answer */
    wk_sup_request *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return WORKER_ENOMEM;
    }
    r->remove = true;
    return request(s, r);
}

worker_t *worker_supervisor_child(worker_t *sup, const char *name)
{
    wk_sup *s = wk_sup_of(sup);
    if (!s || !name)
        return NULL;
    return wk_sup_find(s, name);
}
