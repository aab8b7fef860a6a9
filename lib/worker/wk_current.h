/* The calling thread's worker (current.c): its stack of workers, and the
 * root worker of a thread the library did not start. */
#ifndef WK_CURRENT_H
#define WK_CURRENT_H

#include "wk_worker.h"

worker_t *wk_current(wk_thread *t); /* the top of t's stack; makes a root */
bool wk_on_stack(wk_thread *t, const worker_t *w);
/* The main thread's root worker, NULL until the main thread made it. */
worker_t *wk_main_root(void);
/* After t's stack changed: on the main thread, publish its new top (the
 * worker worker_is_main names). */
void wk_stack_changed(wk_thread *t);
/* Thread exit (the worker layer's exit hook): end the thread's root worker
 * and release what its last wait returned. */
void wk_current_thread_exit(wk_thread *t);

#endif
