/* Per-worker listener tables. */
#ifndef WK_LISTENERS_H
#define WK_LISTENERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <worker/event.h>

#include "wk_atom.h"

typedef struct wk_lslot {
    const wk_atom *atom;
    size_t count, cap;
    worker_listener_t **items; /* priority descending, then order added */
} wk_lslot;

typedef struct wk_lsnap wk_lsnap;

/* A hash table from non-zero 64-bit keys to values (listeners.c): open
 * addressing with linear probing, at most half full. */
typedef struct wk_lmap_entry {
    uint64_t key; /* 0: empty */
    uintptr_t value;
} wk_lmap_entry;

typedef struct wk_lmap {
    wk_lmap_entry *items;
    size_t count, cap; /* cap: 0 or a power of two */
} wk_lmap;

typedef struct wk_listeners {
    pthread_mutex_t lock; /* guards slots, slot_count, next_seq, reserve, the maps */
    wk_lslot *slots;
    size_t slot_count, slot_cap;
    size_t item_count; /* listeners in all slots */
    wk_lmap by_name; /* atom id -> index in slots */
    wk_lmap by_id; /* listener id -> listener */
    uint64_t next_seq;
    _Atomic uint64_t version; /* bumped (under lock) by every change */
    void *reserve; /* room for the owner's next snapshot (listeners.c) */
    size_t reserve_bytes;
    /* Owner thread only. */
    wk_lsnap *snap;
    uint64_t snap_version;
} wk_listeners;

typedef void (*wk_listener_error_fn)(void *ctx, const worker_event_t *e, int code);

void wk_listeners_init(wk_listeners *ls);
void wk_listeners_destroy(wk_listeners *ls);

/* Any thread. The user's handle (an encoded id, not the listener's
 * address); NULL when memory runs out. */
worker_listener_t *wk_listeners_add(wk_listeners *ls, const wk_atom *atom, worker_listener_fn fn,
    void *userdata, const worker_listen_opts *opts, uint64_t target_id);

/* Any thread. WORKER_OK or WORKER_EINVAL (not a current listener: also a
 * stale handle, whose listener was removed, even when a newer listener has
 * its memory). `handle` is decoded, never dereferenced. */
int wk_listeners_remove(wk_listeners *ls, const worker_listener_t *handle);

/* Any thread. The number removed. */
size_t wk_listeners_remove_fn(wk_listeners *ls, worker_listener_fn fn, void *userdata);

/* Any thread. Removes the transient listeners. */
void wk_listeners_remove_transient(wk_listeners *ls);

/* Owner thread only: call the listeners of e's name, in order. */
void wk_listeners_dispatch(
    wk_listeners *ls, const worker_event_t *e, wk_listener_error_fn on_error, void *ctx);
/* The same, with LISTENER_START / LISTENER_END records (traced events) on
 * the lane of worker `receiver`. */
void wk_listeners_dispatch_traced(wk_listeners *ls, const worker_event_t *e,
    wk_listener_error_fn on_error, void *ctx, uint32_t receiver);

#endif
