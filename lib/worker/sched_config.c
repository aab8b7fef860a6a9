/* How many scheduler threads run pooled workers (worker_scheduler_threads).
 *
 * Global state (the reason: the scheduler is the process's, like the
 * intern table): `configured` is 0 until set once; `wk_sched_lock_config`
 * freezes it when the scheduler starts. Both are atomics; the compare and
 * exchange makes "set twice" and "set after start" exact without a lock.
 */
#include <stdatomic.h>

#include <worker/error.h>
#include <worker/lifecycle.h>

#include "wk_sched.h"

enum { CONFIG_FROZEN_BIT = 1 << 30, MAX_THREADS = 1024 };

/* n + 1 once set (so 0 stays "unset"), with CONFIG_FROZEN_BIT once the
 * scheduler started. */
static _Atomic int configured;

int worker_scheduler_threads(int n)
{
    if (n < 0 || n > MAX_THREADS)
        return WORKER_EINVAL;
    int expected = 0;
    if (atomic_compare_exchange_strong(&configured, &expected, n + 1))
        return WORKER_OK;
    return WORKER_ESTATE;
}

int wk_sched_freeze_config(void)
{
    int seen = atomic_fetch_or(&configured, CONFIG_FROZEN_BIT);
    int n = (seen & ~CONFIG_FROZEN_BIT) - 1;
    return n; /* -1: never set */
}
