/* Message ids for messages that cross processes (REMOTE_SEND and
 * REMOTE_RECEIVE records).
 *
 * Invariants: `start` is drawn once per process (and again in the child of
 * a fork, which would otherwise repeat its parent's ids) from the kernel's
 * random source; ids are start + 1, start + 2, ... skipping 0. Two processes
 * repeat an id only if their ranges of used ids overlap, which for random
 * 64-bit starts does not happen in practice. Global state: one counter per
 * process, which is what the uniqueness needs. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "wk_os.h"
#include "wk_trace.h"

static _Atomic uint64_t start; /* 0: not drawn yet */
static _Atomic uint64_t sent;

/* A random start; the clock and pid when the kernel has no randomness. */
static uint64_t draw_start(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = wk_now_ns() * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid() << 32;
    return v ? v : 1;
}

uint64_t wk_trace_remote_id(void)
{
    uint64_t s = atomic_load_explicit(&start, memory_order_relaxed);
    if (!s) {
        uint64_t drawn = draw_start(), expected = 0;
        s = atomic_compare_exchange_strong(&start, &expected, drawn) ? drawn : expected;
    }
    uint64_t id;
    do
        id = s + atomic_fetch_add_explicit(&sent, 1, memory_order_relaxed) + 1;
    while (id == 0);
    return id;
}

void wk_trace_remote_atfork_child(void)
{
    atomic_store(&start, 0);
    atomic_store(&sent, 0);
}
