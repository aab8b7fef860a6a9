/* Stop and pause: the public calls that send STOP_THREAD, PAUSE_THREAD and
 * RESUME_THREAD, and what a worker does when it handles them.
 *
 * Invariants:
 * - The actions run on the worker's owner thread, after the event's
 *   listeners (the loop runs an atom's action), and touch only owner-only
 *   fields (exiting, paused, ending).
 * - An ending worker ignores them: its end sequence is already running.
 * - Any event with those names acts, whoever fired it (worker_stop, a
 *   parent that ends, or a user's worker_fire of "STOP_THREAD").
 */
#include "wk_control.h"

#include "wk_current.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_probe.h"
#include "wk_tree.h"

static uint32_t sender_id(const worker_event_t *e)
{
    return e->sender ? (uint32_t)e->sender->id : 0;
}

void wk_control_stop(worker_t *w, wk_thread *t)
{
    if (w->is_root)
        wk_tree_stop_children(w, t); /* a root worker only stops its children */
    else
        w->exiting = true;
}

static void on_stop(worker_t *w, worker_event_t *e)
{
    if (w->ending)
        return;
    wk_probe_control((uint32_t)w->id, WK_TR_STOP, sender_id(e));
    wk_control_stop(w, wk_thread_peek());
}

/* A nested loop until RESUME_THREAD (or a stop). */
static void on_pause(worker_t *w, worker_event_t *e)
{
    if (w->ending || w->paused)
        return;
    wk_probe_control((uint32_t)w->id, WK_TR_PAUSE, sender_id(e));
    w->paused = true;
    if (w->pooled)
        return; /* no task to hold: it goes on handling events (on_resume) */
    wk_frame until_resumed = { .kind = WK_WAIT_EVENT, .atom = wk_atoms.resume };
    wk_loop_wait(w, wk_thread_peek(), &until_resumed, WK_NO_DEADLINE);
    w->paused = false;
    wk_probe_control((uint32_t)w->id, WK_TR_RESUME,
        until_resumed.matched ? sender_id(until_resumed.matched) : 0);
}

/* A thread worker's pause ends in on_pause's own loop; a pooled worker,
 * which may not wait there, ends its pause here. */
static void on_resume(worker_t *w, worker_event_t *e)
{
    if (!w->pooled || !w->paused || w->ending)
        return;
    w->paused = false;
    wk_probe_control((uint32_t)w->id, WK_TR_RESUME, sender_id(e));
}

void wk_control_install(void)
{
    wk_atom_set_action(wk_atoms.stop, on_stop);
    wk_atom_set_action(wk_atoms.pause, on_pause);
    wk_atom_set_action(wk_atoms.resume, on_resume);
}

int worker_stop(worker_t *w)
{
    if (!w)
        return WORKER_EINVAL;
    wk_thread *t = wk_thread_get();
    if (!t)
        return WORKER_ENOMEM;
    if (!wk_mailbox_is_open(&w->mb))
        return WORKER_OK;
    int rc = wk_send_library(w, wk_atoms.stop, NULL, NULL, 0, wk_current(t), t);
    return rc == WORKER_EREJECTED ? WORKER_OK : rc;
}

static int send_control(worker_t *w, const wk_atom *const *atom)
{
    if (!w)
        return WORKER_EINVAL;
    if (wk_init() != WORKER_OK)
        return WORKER_ENOMEM;
    wk_thread *t = wk_thread_get();
    if (!t)
        return WORKER_ENOMEM;
    if (!wk_mailbox_is_open(&w->mb)) /* also a held mailbox (hold.c): not running */
        return WORKER_EREJECTED;
    return wk_send_library(w, *atom, NULL, NULL, 0, wk_current(t), t);
}

int worker_pause(worker_t *w)
{
    return send_control(w, &wk_atoms.pause);
}

int worker_resume(worker_t *w)
{
    return send_control(w, &wk_atoms.resume);
}
