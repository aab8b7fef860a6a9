/* The public face of listeners: argument checks on top of listeners.c. */
#include "wk_init.h"
#include "wk_worker.h"

worker_listener_t *worker_listen(worker_t *w, const char *name, worker_listener_fn fn,
    void *userdata, const worker_listen_opts *opts)
{
    if (!w || !name || !*name || !fn || wk_init() != WORKER_OK)
        return NULL;
    const wk_atom *atom = wk_atom_intern(name);
    if (!atom)
        return NULL;
    uint64_t target_id = opts && opts->target ? opts->target->id : 0;
    return wk_listeners_add(&w->listeners, atom, fn, userdata, opts, target_id);
}

int worker_unlisten(worker_t *w, worker_listener_t *l)
{
    if (!w || !l)
        return WORKER_EINVAL;
    return wk_listeners_remove(&w->listeners, l);
}

int worker_unlisten_fn(worker_t *w, worker_listener_fn fn, void *userdata)
{
    if (!w || !fn)
        return WORKER_EINVAL;
    return wk_listeners_remove_fn(&w->listeners, fn, userdata) ? WORKER_OK : WORKER_EINVAL;
}

worker_listener_t *worker_on(
    const char *name, worker_listener_fn fn, void *userdata, const worker_listen_opts *opts)
{
    worker_listen_opts transient = { 0 };
    if (opts)
        transient = *opts;
    transient.transient = true;
    return worker_listen(worker_current(), name, fn, userdata, &transient);
}
