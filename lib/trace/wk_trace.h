/* The library's trace recorder (format: wk_trace_format.h).
 *
 * Hooks test `wk_tracing()`, one relaxed load of a flag that is almost
 * always false. Once an event exists, the hooks about it test its `traced`
 * byte instead (set only for events made while tracing), which is in memory
 * the path touches anyway: with tracing off an event pays one flag load at
 * its creation (the fire path) and one byte test where it is delivered. */
#ifndef WK_TRACE_H
#define WK_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "wk_atom.h"
#include "wk_thread.h"
#include "wk_trace_format.h"

/* Global: tracing is process-wide (one file for every thread). */
extern _Atomic int wk_trace_on;

#ifdef WORKER_TRACE_HOOKS_OUT
/* Only to measure what the hooks cost (benchmark P8): every hook compiles
 * to nothing. worker_trace_start() still opens a file, which stays empty. */
static inline bool wk_tracing(void)
{
    return false;
}
#define wk_traced(e) false
#else
/* The event was made while tracing (it carries a serial). */
#define wk_traced(e) (__builtin_expect((e)->traced != 0, 0))
static inline bool wk_tracing(void)
{
    return __builtin_expect(atomic_load_explicit(&wk_trace_on, memory_order_relaxed), 0);
}
#endif

/* 1 in this many events is traced in the current trace (>= 1). */
extern _Atomic uint32_t wk_trace_sample_every;
/* Changes at every worker_trace_start: restarts every thread's countdown. */
extern _Atomic uint32_t wk_trace_generation;

struct wk_thread;

/* Should the calling thread's next event be traced? False at once when
 * tracing is off (one flag test); while tracing, a per-thread countdown:
 * true for a thread's first event in a trace and then for one in
 * wk_trace_sample_every (the traced event's allocation restarts the
 * countdown). */
static inline bool wk_trace_sample_now(wk_thread *t)
{
    if (!wk_tracing())
        return false;
    if (!t
        || t->trace_generation != atomic_load_explicit(&wk_trace_generation, memory_order_relaxed))
        return true; /* this thread's first event in this trace */
    return t->trace_skip-- == 0;
}

/* What one traced event stands for in the mailbox depth counts. */
static inline uint64_t wk_trace_weight(void)
{
    return atomic_load_explicit(&wk_trace_sample_every, memory_order_relaxed);
}

/* Append one record to the calling thread's buffer. */
void wk_trace_emit(uint32_t worker, uint16_t kind, uint16_t flags, uint64_t a, uint64_t b);

/* String ids below this have a byte in wk_trace_name_written. */
#define WK_TRACE_NAME_BITMAP (1u << 20)
/* wk_trace_name_written[id] == wk_trace_name_mark: the id's NAME record is
 * in this trace already (the mark changes at every start). */
extern _Atomic uint8_t wk_trace_name_written[WK_TRACE_NAME_BITMAP];
extern _Atomic uint8_t wk_trace_name_mark;

uint32_t wk_trace_atom_slow(const wk_atom *atom);

/* The string id of an atom, writing its NAME record the first time in this
 * trace (the common case, a name already written, is inline). */
static inline uint32_t wk_trace_atom(const wk_atom *atom)
{
    if (atom && atom->id < WK_TRACE_NAME_BITMAP
        && atomic_load_explicit(&wk_trace_name_written[atom->id], memory_order_relaxed)
            == atomic_load_explicit(&wk_trace_name_mark, memory_order_relaxed))
        return atom->id;
    return wk_trace_atom_slow(atom);
}

/* The string id of any string (interned as an atom). 0 if out of memory. */
uint32_t wk_trace_string(const char *s);

/* Which trace is being recorded (changes at every worker_trace_start). */
uint64_t wk_trace_session(void);

/* Write every buffer's published, unwritten records to the trace file now
 * (the periodic flusher, flusher.c). Nothing when no trace records. */
void wk_trace_flush_published(void);

/* The periodic flusher (flusher.c): on while a trace records; it writes
 * what every buffer holds once a second. */
void wk_flusher_tracing(bool on);

/* fork() (called by the worker layer's handlers, in that order). In the
 * child tracing is off: the file is closed without its end, the buffers of
 * the threads that do not exist there are forgotten, the flusher is gone. */
void wk_trace_atfork_prepare(void);
void wk_trace_atfork_parent(void);
void wk_trace_atfork_child(void);
void wk_flusher_atfork_prepare(void);
void wk_flusher_atfork_parent(void);
void wk_flusher_atfork_child(void);

/* A message id for a message that leaves the process (remote.c): never 0,
 * unique across processes in practice (a random 64-bit start per process,
 * then consecutive). The child of a fork() draws a start of its own. */
uint64_t wk_trace_remote_id(void);
void wk_trace_remote_atfork_child(void);

/* A serial unique within the trace (events, timers, defers). */
uint64_t wk_trace_serial(void);

/* A 32-bit pair packed into a record field. */
static inline uint64_t wk_trace_pair(uint32_t low, uint32_t high)
{
    return (uint64_t)low | ((uint64_t)high << 32);
}

#endif
