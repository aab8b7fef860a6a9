/* worker-trace: shared declarations of the trace reader, the model built
 * from it and the three outputs (stats, perfetto, view).
 *
 * Flow: wt_load() reads and validates the whole file into a wt_trace
 * (records sorted by time, names resolved); wt_model_build() turns the
 * records into workers, listener slices, messages, waits, pauses, marks and
 * mailbox depth samples; each output reads only the model. Single-threaded. */
#ifndef WT_H
#define WT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wk_trace_format.h"

/* Exit statuses of the program. */
#define WT_EXIT_OK 0
#define WT_EXIT_USAGE 1 /* bad command line, output not writable, out of memory */
#define WT_EXIT_INPUT 2 /* the trace file is unreadable, truncated or invalid */

/* --- util.c ------------------------------------------------------------------ */

void *wt_xmalloc(size_t n); /* exits WT_EXIT_USAGE when out of memory */
void *wt_xcalloc(size_t n, size_t size);
void *wt_xrealloc(void *p, size_t n, size_t size);
char *wt_xstrdup(const char *s);
/* Grow *items (of `size` bytes each) so index `need` fits; *cap updated. */
void wt_grow(void **items, size_t *cap, size_t need, size_t size);
#define WT_PUSH(arr, n, cap)                                                                       \
    (wt_grow((void **)&(arr), &(cap), (n) + 1, sizeof *(arr)), &(arr)[(n)++])

/* qsort that accepts an empty (NULL) array. */
void wt_sort(void *items, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* Open-addressing map from a pair of 64-bit keys to a 64-bit value. */
typedef struct wt_map {
    uint64_t *k1, *k2, *val;
    unsigned char *used;
    size_t cap, count;
} wt_map;
void wt_map_init(wt_map *m);
void wt_map_free(wt_map *m);
/* Pointer to the value of (k1, k2), or NULL. Valid until the next put. */
uint64_t *wt_map_get(const wt_map *m, uint64_t k1, uint64_t k2);
/* Pointer to the value of (k1, k2), inserted as `init` when missing. */
uint64_t *wt_map_put(wt_map *m, uint64_t k1, uint64_t k2, uint64_t init, bool *inserted);

/* JSON: a string literal with every byte that JSON or an HTML <script>
 * block cares about escaped (quotes, backslash, controls, '<', '>', '&');
 * invalid UTF-8 becomes U+FFFD. */
void wt_json_str(FILE *f, const char *s);
/* The symbolic name of a libworker-actor error code ("WORKER_EXIT"), or
 * NULL when unknown. */
const char *wt_err_name(int64_t code);
const char *wt_wait_kind_name(unsigned kind); /* "event", "until", ... or "?" */

/* --- read.c ------------------------------------------------------------------ */

typedef struct wt_rec {
    uint64_t ts;
    uint64_t a, b;
    uint32_t worker;
    uint16_t kind, flags;
    uint32_t thread; /* the chunk's thread number */
    uint32_t order; /* position in the file, for a stable sort */
} wt_rec;

typedef struct wt_thread {
    uint32_t number;
    uint32_t next_seq;
    uint64_t os_tid; /* from its THREAD record; 0 unknown */
    uint64_t name_id;
    uint64_t records, dropped, chunks;
} wt_thread;

/* One traced process of a (merged) trace: its workers have the ids
 * [worker_base, worker_end) there (worker_base itself stands for its
 * threads that run no worker). */
typedef struct wt_process {
    const char *path; /* its trace file */
    char *label; /* "NAME pid N": NAME the main thread's name, or "worker-actor" */
    uint32_t pid;
    uint32_t worker_base, worker_end;
    int64_t shift_ns; /* added to its times to put them on the merged axis */
    int clock; /* how it was aligned: enum wt_alignment */
} wt_process;

enum wt_alignment {
    WT_ALIGN_SAME = 0, /* the first trace, or one host: CLOCK_MONOTONIC is shared */
    WT_ALIGN_WALL = 1, /* another host: aligned by the wall clocks (approximate) */
    WT_ALIGN_NONE = 2, /* no wall-clock anchor: left as it is */
};

typedef struct wt_trace {
    const char *path;
    wk_trace_file_header hdr;
    uint64_t file_size;
    wt_rec *recs; /* sorted by (ts, order) */
    size_t nrecs;
    wt_map names; /* string id -> index into strings */
    char **strings;
    size_t nstrings, capstrings;
    wt_thread *threads;
    size_t nthreads, capthreads;
    uint64_t chunks, slots, dropped, skipped_unknown;
    wt_process *procs; /* one per trace file; several after wt_merge */
    size_t nprocs;
    bool complete; /* ended with TRACE_END */
    bool partial; /* --partial cut the file at its first error */
    char error[512]; /* with --partial: why the rest was ignored */
} wt_trace;

/* Read and validate `path`. Returns 0, or -1 with a one-line message in
 * `err` (the input is bad: exit WT_EXIT_INPUT). With `partial`, a file cut
 * short or corrupted after some valid chunks loads those chunks and sets
 * t->partial and t->error instead of failing. */
int wt_load(const char *path, bool partial, wt_trace *t, char *err, size_t errlen);
void wt_trace_free(wt_trace *t);

/* Kinds set aside for additions of the current minor (skipped when unknown). */
static inline bool wt_reserved_kind(uint16_t kind)
{
    return kind >= WK_TR_RESERVED_FIRST && kind <= WK_TR_RESERVED_LAST;
}

/* --- merge.c ------------------------------------------------------------------ */

/* Describes a trace just loaded as one process (wt_load calls it). */
void wt_single_process(wt_trace *t);
/* Merges n loaded traces (one per process) into *out, on one time axis:
 * traces of one host (same boot id, or no boot id and wall-clock anchors
 * within a second) keep their shared CLOCK_MONOTONIC times; others are
 * aligned by their wall-clock anchors (as good as the hosts' clock sync).
 * Worker, string and thread ids are renumbered so they do not collide;
 * serials and timer ids get the trace's index in their top bits. The
 * inputs are left as they are (free them apart). */
void wt_merge(const wt_trace *in, size_t n, wt_trace *out);
/* The index of the process that worker id `id` belongs to (0 when none). */
size_t wt_process_of(const wt_trace *t, uint32_t id);

/* The thread numbered `number`, added (zeroed but its number) if new. */
wt_thread *wt_thread_add(wt_trace *t, uint32_t number);

/* 1 in how many events had its flow recorded (1: all). */
static inline uint32_t wt_sample_every(const wt_trace *t)
{
    return t->hdr.sample_every > 1 ? t->hdr.sample_every : 1;
}
/* The string with that id, or NULL. */
const char *wt_name(const wt_trace *t, uint64_t id);
/* The thread with that trace number (a chunk's `thread`), or NULL. */
const wt_thread *wt_thread_of(const wt_trace *t, uint32_t number);

/* --- model.c ----------------------------------------------------------------- */

typedef struct wt_worker {
    uint32_t id;
    const char *name; /* never NULL */
    uint32_t parent; /* worker id, 0 none */
    int parent_idx; /* index into workers, -1 none */
    uint16_t cflags; /* WK_TRF_DAEMON | ROOT | MAIN */
    bool seen_created, seen_started, seen_ended;
    uint64_t created, started, ended; /* ns from trace start */
    int64_t err;
    uint64_t os_tid;
    int process; /* index into the trace's procs */
    int depth; /* in the tree */
    int lane; /* position in tree order */
    /* counters */
    uint64_t recv, sent, handled, rejects, runs, errors, pauses, stops, timers;
    uint64_t wait_count, wait_ns;
    uint64_t max_mailbox;
    uint64_t *run_ns; /* listener run durations, sorted after build */
    size_t nrun, caprun;
    /* supervision: from its last SUPERVISOR_STARTED (a supervisor), and
     * its restarts as a child (the highest count of its CHILD_RESTARTs, at
     * least their number) */
    bool supervisor;
    uint32_t strategy, intensity, period_ms, backoff_ms;
    uint32_t restarts, restart_records;
    /* pooled (M:N): WORKER_STARTED had WK_TRF_POOLED, or SLICE records name
     * it; sched_slices: how many slices ran it */
    bool pooled;
    uint64_t sched_slices;
} wt_worker;

#define WT_SLICE_OPEN 0x1u /* no end record: ends at the trace's end */
#define WT_SLICE_ERROR 0x2u /* listener returned non-zero */
#define WT_SLICE_NAME_GIVEN 0x4u /* the listener's name was given (worker_listen_opts.name) */
#define WT_SLICE_NAME_SYMBOL 0x8u /* the listener's name is its function's symbol */

typedef struct wt_slice { /* one listener run */
    uint64_t t0, t1; /* ns from trace start */
    uint64_t serial;
    uint32_t lane;
    uint32_t event_name, listener_name; /* string ids */
    int32_t ret;
    uint16_t depth, flags;
    int64_t msg; /* index of its message, -1 unknown */
} wt_slice;

#define WT_MSG_DELIVERED 0x10000u /* a DELIVER matched it */
#define WT_MSG_NO_FIRE 0x20000u /* seen only at delivery */
#define WT_MSG_REMOTE 0x40000u /* crossed processes: REMOTE_SEND to REMOTE_RECEIVE */

typedef struct wt_msg { /* one queued event: a FIRE and its DELIVER */
    uint64_t t_fire, t_deliver; /* ns from start; t_deliver = t_fire when not delivered */
    uint64_t serial;
    uint32_t from_lane, to_lane; /* from: the sender, or the previous hop */
    uint32_t sender_lane; /* the original sender */
    uint32_t event_name;
    uint32_t flags; /* WK_TRF_* of the FIRE | WT_MSG_* */
    int64_t next_same_serial;
} wt_msg;

typedef struct wt_span { /* a wait or a pause */
    uint64_t t0, t1;
    uint64_t what; /* WAIT: as in WAIT_BEGIN's b; PAUSE: requester id */
    int64_t result; /* WAIT: its result */
    uint32_t lane;
    uint16_t kind; /* WAIT: enum wk_trace_wait; PAUSE: 0 */
    uint16_t depth; /* nesting among this lane's waits */
    bool open;
} wt_span;

typedef struct wt_mark { /* an instant: stop, reject, timer, future, defer, publish, drop */
    uint64_t t;
    uint64_t a, b;
    uint32_t lane;
    uint16_t kind, flags;
} wt_mark;

typedef struct wt_sample { /* mailbox depth */
    uint64_t t, depth;
    uint32_t lane;
} wt_sample;

/* A slice of a pooled worker on a scheduler thread (SLICE_BEGIN ..
 * SLICE_END). Not to be confused with wt_slice, a listener run. */
#define WT_SCHED_OPEN 0x1u /* no end record: ends at the next begin or the trace's end */
#define WT_SCHED_ENDED 0x2u /* the worker's run ended in it (WK_TRF_ENDED) */

typedef struct wt_sched_slice {
    uint64_t t0, t1; /* ns from trace start */
    uint32_t lane; /* the pooled worker */
    uint32_t sched; /* index into wt_model.scheds */
    uint16_t flags; /* WT_SCHED_* */
} wt_sched_slice;

/* A scheduler thread: one per (scheduler index, trace thread) seen in
 * SLICE_BEGIN records, in order of (process, index, tid). In a merged
 * trace the thread numbers are the merged ones (merge.c moves each input's
 * above the ones before it), so the same index in two processes is two
 * scheduler threads, each named and tid'd from its own trace's THREAD record. */
typedef struct wt_sched {
    uint32_t index; /* the scheduler thread's index (wk-sched-INDEX) */
    uint32_t thread; /* the trace's thread number of its chunks */
    int process; /* index into the trace's procs: that of the workers it ran */
    uint64_t os_tid; /* from its THREAD record; 0 unknown */
    const char *name; /* its thread name, "wk-sched-INDEX" when unknown; never NULL */
    uint64_t slices, busy_ns;
    uint32_t track_tid; /* its thread id in the perfetto outputs (the OS tid
                           unless that is 0 or a worker id) */
} wt_sched;

typedef struct wt_model {
    const wt_trace *trace;
    uint64_t t_first, t_last; /* absolute ns of the first and last record */
    uint64_t t0; /* absolute ns that times are relative to */
    wt_worker *workers; /* in tree order: index = lane */
    size_t nworkers;
    wt_slice *slices;
    size_t nslices, capslices; /* sorted by (lane, t0) */
    wt_msg *msgs;
    size_t nmsgs, capmsgs; /* by t_fire */
    wt_span *waits;
    size_t nwaits, capwaits; /* by (lane, t0) */
    wt_span *pauses;
    size_t npauses, cappauses;
    wt_mark *marks;
    size_t nmarks, capmarks;
    wt_sample *samples;
    size_t nsamples, capsamples;
    int max_slice_depth;
    wt_sched_slice *sched_slices;
    size_t nsched_slices, capsched_slices; /* sorted by (lane, t0) */
    wt_sched *scheds;
    size_t nscheds, capscheds;
} wt_model;

void wt_model_build(const wt_trace *t, wt_model *m);
void wt_model_free(wt_model *m);
const char *wt_model_str(const wt_model *m, uint64_t id); /* "" when unknown */
/* model_sched.c: SLICE_BEGIN/SLICE_END into m->sched_slices and m->scheds */
typedef struct wt_sched_state wt_sched_state;
wt_sched_state *wt_sched_begin(wt_model *m);
void wt_sched_record(wt_sched_state *st, const wt_rec *r, uint32_t lane);
void wt_sched_finish(wt_sched_state *st);

/* --- outputs ---------------------------------------------------------------- */

int wt_stats(const wt_model *m, FILE *out, int top);
int wt_perfetto(const wt_model *m, FILE *out); /* Chrome Trace Event JSON */
int wt_perfetto_proto(const wt_model *m, FILE *out); /* Perfetto's protobuf (TrackEvent) */
const char *wt_mark_kind_name(uint16_t kind); /* "ended", "reject", ... or "mark" */
int wt_view(const wt_model *m, FILE *out, const char *title);
/* wt_view with `extra` (a JSON fragment ",\"key\":value...", or NULL)
 * added to the page's data object; wt_view_data writes that object alone. */
int wt_view_page(const wt_model *m, FILE *out, const char *title, const char *extra);
int wt_view_data(const wt_model *m, FILE *out, const char *title, const char *extra);

/* --- live: top.c, live.c ------------------------------------------------------ */

/* The trace of `arg`: a file name as it is, or a process id (all digits,
 * no such file) resolved through /proc (top.c). Returns 0, or -1 with a
 * message on standard error. *pid is the process id or 0. */
int wt_top_resolve(const char *arg, char *path, size_t pathlen, long *pid);
/* The top view of the trace at `path` every `interval` seconds until q or
 * a signal; with `once`, one plain frame on standard output. Exit status. */
int wt_top(const char *arg, const char *path, double interval, bool once);
/* Serves the view of the trace at `path` on 127.0.0.1:port (0: any free
 * port) until a signal: the page, its data and the file's size. Exit status. */
int wt_live_serve(const char *path, const char *title, int port);

#endif
