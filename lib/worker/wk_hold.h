/* Held mailboxes (hold.c): a supervised worker keeps admitting events
 * between its end and its restart. Lock rules: wk_worker.h. */
#ifndef WK_HOLD_H
#define WK_HOLD_H

#include "wk_worker.h"

/* Whether the end with `err` that is beginning keeps the mailbox; records
 * it in w->held. Caller holds w->lock (the end sequence). */
bool wk_hold_decide(worker_t *w, int err);

/* The end sequence of a run that holds its mailbox (now WK_MB_HELD):
 * deliver every event accepted before that, and no later one (those wait
 * for the next run). Owner thread. */
void wk_hold_drain(worker_t *w, wk_thread *t);

/* Set what w's next ends do (enum wk_hold). Any thread; takes w->lock. */
void wk_worker_set_hold(worker_t *w, int mode);

/* worker_start for the supervisor: also starts a worker whose mailbox is
 * held (the next run handles what waits in it). */
int wk_worker_restart(worker_t *w);

/* The supervisor gives up on a held worker (it will not restart it): the
 * events waiting in its mailbox are delivered now, on the calling thread,
 * to w's listeners (with w as the current worker, as its end sequence
 * would have), and its mailbox closes for good. Waits for w's last run to
 * finish first. Nothing when w is not held. Never from w's own run. */
void wk_worker_release_held(worker_t *w);

#endif
