/* fork() (fork.c): the generation of the process the library runs in. */
#ifndef WK_FORK_H
#define WK_FORK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "wk_worker.h"

/* Bumped in every fork() child. */
extern _Atomic uint32_t wk_fork_generation;

/* `w` belongs to this process: it was started (or made) here, or it runs
 * on the thread that forked. False for the other workers of a parent
 * process, seen from its child. */
static inline bool wk_worker_here(const worker_t *w)
{
    return atomic_load_explicit(&w->fork_gen, memory_order_relaxed)
        == atomic_load_explicit(&wk_fork_generation, memory_order_relaxed);
}

/* Mark `w` as this process's (its start, or a root made here). */
static inline void wk_worker_claim(worker_t *w)
{
    atomic_store_explicit(&w->fork_gen,
        atomic_load_explicit(&wk_fork_generation, memory_order_relaxed), memory_order_relaxed);
}

#endif
