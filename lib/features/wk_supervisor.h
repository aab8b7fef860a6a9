/* Supervisors: what supervisor.c (the state machine) and
 * supervisor_calls.c (the calls of other threads) share. */
#ifndef WK_SUPERVISOR_H
#define WK_SUPERVISOR_H

#include <stdatomic.h>
#include <stdbool.h>

#include <worker/worker.h>

/* The request event's name (a worker_call on the supervisor). */
#define WK_SUP_REQUEST "worker.supervisor.request"

typedef struct wk_sup wk_sup;
typedef struct wk_sup_kid wk_sup_kid;

/* An add or a remove, the data of a WK_SUP_REQUEST call. */
typedef struct wk_sup_request {
    _Atomic int refs;
    atomic_bool delivered; /* the supervisor saw it */
    bool remove;
    wk_sup_kid *add; /* the child to add (taken by the supervisor) */
    char *name; /* the child to remove */
} wk_sup_request;

/* The supervisor state of `w`; NULL when w is not a supervisor. */
wk_sup *wk_sup_of(worker_t *w);
worker_t *wk_sup_self(const wk_sup *s);
/* A child for supervisor `self` (its worker made, not started). */
int wk_sup_kid_new(worker_t *self, const worker_child_spec *spec, wk_sup_kid **out);
void wk_sup_kid_free(wk_sup_kid *k); /* NULL: nothing */
/* The child named `name` (borrowed), or NULL. Any thread. */
worker_t *wk_sup_find(wk_sup *s, const char *name);

#endif
