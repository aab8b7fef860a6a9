/* Signals as events (signal.c): worker_signal and its fork handlers. */
#ifndef WK_SIGNAL_H
#define WK_SIGNAL_H

void wk_signal_atfork_prepare(void);
void wk_signal_atfork_parent(void);
/* The child has no signal thread: the routes are dropped, each routed
 * signal gets back the disposition it had before worker_signal and is
 * unblocked in the forking thread. */
void wk_signal_atfork_child(void);

#endif
