/* Listener tables.
 *
 * Invariants:
 * - The shared table (slots) is changed only under `lock`, from any thread;
 *   every change bumps `version` while the lock is held.
 * - Two hash tables, under `lock` too, keep the table's changes O(1)
 *   amortised however many names a worker listens to: `by_name` maps the id
 *   of every atom that has a slot to that slot's index (slots are never
 *   taken out, so an index stays valid), and `by_id` maps the id of every
 *   listener in the table, and only those, to the listener. `item_count`
 *   is the number of listeners in all slots. A change that needs room in
 *   them takes it first, so it fails (out of memory) having changed
 *   nothing.
 * - Only the owner thread calls listeners. It dispatches from `snap`, its
 *   own immutable copy of the table, rebuilt (under `lock`) when `version`
 *   moved. So dispatch takes no lock and no atomic read-modify-write on the
 *   common path; a listener added during a dispatch is not in the copy being
 *   walked, so it does not see the event being delivered.
 * - The owner needs no memory to see an added listener: every add leaves
 *   `reserve`, a block big enough for a copy of the table as it is after
 *   that add (later changes until the next add only remove), and the next
 *   rebuild takes it. A rebuild without a reserve follows removals only;
 *   if it runs out of memory, the old copy is still right (removed
 *   listeners are skipped) and the rebuild is retried on the next event.
 *   A snapshot is one block: its slots, then every slot's items.
 * - A snapshot's `refs` is touched by the owner thread only: one for being
 *   current plus one per dispatch walking it (dispatches nest when a
 *   listener waits).
 * - A listener object is referenced by the shared table and by each
 *   snapshot holding it (atomic count). `removed` is set once, by whoever
 *   takes it out of the table (unlisten, unlisten_fn, transient cleanup, or
 *   the owner claiming a `once` listener); dispatch skips removed listeners.
 * - The handle a user gets is not the object's address but its `id`, from
 *   a process-wide counter, encoded odd (handle_of): ids are never reused,
 *   so a stale handle matches no listener of any worker, also when a newer
 *   listener got the old one's memory. A handle is only compared, never
 *   dereferenced.
 */
#define _GNU_SOURCE
#include "wk_array.h"
#include "wk_listeners.h"

#include <dlfcn.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>

#include <worker/error.h>

#include "wk_event.h"
#include "wk_probe.h"
#include "wk_symbol.h"

struct worker_listener {
    const wk_atom *trace_name; /* the name traces show: given at add, else made on first
                                  traced call (owner thread) */
    uint8_t name_from; /* WK_TRF_NAME_*: where trace_name came from (0: the address) */
    _Atomic uint32_t refs;
    _Atomic bool removed;
    uint64_t id; /* what the user's handle encodes; unique in the process */
    const wk_atom *atom;
    worker_listener_fn fn;
    void *userdata;
    int priority;
    bool once;
    bool transient;
    uint64_t target_id;
};

struct wk_lsnap {
    int refs;
    size_t slot_count;
    wk_lslot slots[]; /* sorted by atom id; their items follow in the same block */
};

/* Global: handles must differ across workers (a handle passed to the wrong
 * worker is not one of its listeners). 64 bits (the handle is a pointer,
 * 64 bits wide on the targets the library is built for): never wraps in
 * practice. */
static _Atomic uint64_t next_listener_id = 1;

/* The user's handle for a listener: its id, shifted and made odd, so that
 * it is never a valid object address and never NULL. */
static worker_listener_t *handle_of(const worker_listener_t *l)
{
    return (worker_listener_t *)(uintptr_t)((l->id << 1) | 1);
}

/* The id a handle encodes; 0 (no listener has it) for a value that is not
 * a handle. */
static uint64_t id_of(const worker_listener_t *handle)
{
    uintptr_t v = (uintptr_t)handle;
    return v & 1 ? (uint64_t)(v >> 1) : 0;
}

static void listener_unref(worker_listener_t *l)
{
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
        free(l);
}

void wk_listeners_init(wk_listeners *ls)
{
    memset(ls, 0, sizeof *ls);
    pthread_mutex_init(&ls->lock, NULL);
    atomic_init(&ls->version, 1);
}

static void snap_free(wk_lsnap *s)
{
    for (size_t i = 0; i < s->slot_count; i++)
        for (size_t j = 0; j < s->slots[i].count; j++)
            listener_unref(s->slots[i].items[j]);
    free(s);
}

static void snap_release(wk_listeners *ls, wk_lsnap *s)
{
    (void)ls;
    if (--s->refs == 0)
        snap_free(s);
}

void wk_listeners_destroy(wk_listeners *ls)
{
    for (size_t i = 0; i < ls->slot_count; i++) {
        for (size_t j = 0; j < ls->slots[i].count; j++)
            listener_unref(ls->slots[i].items[j]);
        free(ls->slots[i].items);
    }
    free(ls->slots);
    free(ls->by_name.items);
    free(ls->by_id.items);
    free(ls->reserve);
    if (ls->snap)
        snap_release(ls, ls->snap);
    pthread_mutex_destroy(&ls->lock);
}

/* ---- hash tables from ids (callers hold ls->lock) ---- */

/* Where `key` would be without collisions (Fibonacci hashing: the ids are
 * small consecutive numbers, the top bits of the product spread them). */
static size_t lmap_home(const wk_lmap *m, uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - __builtin_ctzll(m->cap)));
}

static wk_lmap_entry *lmap_find(const wk_lmap *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = lmap_home(m, key);; i = (i + 1) & (m->cap - 1)) {
        wk_lmap_entry *x = &m->items[i];
        if (x->key == key)
            return x;
        if (x->key == 0) /* at most half full: an empty entry ends every probe */
            return NULL;
    }
}

/* Put a key that is not there; the table has room (lmap_room). */
static void lmap_put(wk_lmap *m, uint64_t key, uintptr_t value)
{
    size_t i = lmap_home(m, key);
    while (m->items[i].key)
        i = (i + 1) & (m->cap - 1);
    m->items[i] = (wk_lmap_entry) { key, value };
    m->count++;
}

/* Room for one more key (the table doubles when it would be more than half
 * full). false: out of memory, the table is unchanged. */
static bool lmap_room(wk_lmap *m)
{
    if ((m->count + 1) * 2 <= m->cap)
        return true;
    /* Small first: most workers listen to a few names (a million pooled
     * workers with one listener each pay for this table a million times). */
    wk_lmap grown = { .cap = m->cap ? m->cap * 2 : 4 };
    grown.items = calloc(grown.cap, sizeof *grown.items);
    if (!grown.items)
        return false;
    for (size_t i = 0; i < m->cap; i++)
        if (m->items[i].key)
            lmap_put(&grown, m->items[i].key, m->items[i].value);
    free(m->items);
    *m = grown;
    return true;
}

/* Take `key` out (it is there), moving back the entries after it that
 * would no longer be found (no tombstones). */
static void lmap_del(wk_lmap *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t hole = (size_t)(lmap_find(m, key) - m->items);
    m->items[hole].key = 0;
    m->count--;
    for (size_t j = (hole + 1) & mask; m->items[j].key; j = (j + 1) & mask) {
        size_t home = lmap_home(m, m->items[j].key);
        if (((j - home) & mask) >= ((j - hole) & mask)) { /* the hole is on its probe path */
            m->items[hole] = m->items[j];
            m->items[j].key = 0;
            hole = j;
        }
    }
}

/* ---- the shared table (callers hold ls->lock) ---- */

static wk_lslot *slot_find(wk_listeners *ls, const wk_atom *atom)
{
    const wk_lmap_entry *x = lmap_find(&ls->by_name, atom->id);
    return x ? &ls->slots[x->value] : NULL;
}

static wk_lslot *slot_get(wk_listeners *ls, const wk_atom *atom)
{
    wk_lslot *s = slot_find(ls, atom);
    if (s)
        return s;
    wk_lslot *grown = wk_array_room(ls->slots, &ls->slot_cap, ls->slot_count, sizeof *grown, 2);
    if (!grown)
        return NULL;
    ls->slots = grown;
    if (!lmap_room(&ls->by_name))
        return NULL;
    lmap_put(&ls->by_name, atom->id, ls->slot_count);
    s = &ls->slots[ls->slot_count++];
    *s = (wk_lslot) { .atom = atom };
    return s;
}

static bool slot_insert(wk_lslot *s, worker_listener_t *l)
{
    worker_listener_t **grown = wk_array_room(s->items, &s->cap, s->count, sizeof *grown, 2);
    if (!grown)
        return false;
    s->items = grown;
    size_t at = 0;
    while (at < s->count && s->items[at]->priority >= l->priority)
        at++;
    memmove(&s->items[at + 1], &s->items[at], (s->count - at) * sizeof *s->items);
    s->items[at] = l;
    s->count++;
    return true;
}

static void slot_remove_at(wk_lslot *s, size_t i)
{
    memmove(&s->items[i], &s->items[i + 1], (s->count - i - 1) * sizeof *s->items);
    s->count--;
}

static size_t slot_index(const wk_lslot *s, const worker_listener_t *l)
{
    size_t i = 0;
    while (s->items[i] != l)
        i++;
    return i;
}

/* Take the listener at `i` of `s` out of the table. */
static worker_listener_t *take_at(wk_listeners *ls, wk_lslot *s, size_t i)
{
    worker_listener_t *l = s->items[i];
    slot_remove_at(s, i);
    ls->item_count--;
    lmap_del(&ls->by_id, l->id);
    return l;
}

static void changed(wk_listeners *ls)
{
    atomic_fetch_add_explicit(&ls->version, 1, memory_order_release);
}

/* The bytes a snapshot of the table needs. */
static size_t snap_bytes(const wk_listeners *ls)
{
    return sizeof(wk_lsnap) + ls->slot_count * sizeof(wk_lslot)
        + ls->item_count * sizeof(worker_listener_t *);
}

/* Room for the owner's next snapshot, the table having grown. A new
 * reserve has half as much again, so that adds in a row allocate O(log n)
 * times, not once each. false: out of memory. */
static bool reserve_room(wk_listeners *ls, void **old)
{
    size_t bytes = snap_bytes(ls);
    if (ls->reserve && ls->reserve_bytes >= bytes)
        return true;
    bytes += bytes / 2;
    void *room = malloc(bytes);
    if (!room)
        return false;
    *old = ls->reserve;
    ls->reserve = room;
    ls->reserve_bytes = bytes;
    return true;
}

worker_listener_t *wk_listeners_add(wk_listeners *ls, const wk_atom *atom, worker_listener_fn fn,
    void *userdata, const worker_listen_opts *opts, uint64_t target_id)
{
    worker_listener_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (opts && opts->name && *opts->name) {
        l->trace_name = wk_atom_intern(opts->name); /* the copy */
        l->name_from = WK_TRF_NAME_GIVEN;
        if (!l->trace_name) {
            free(l);
            return NULL;
        }
    }
    atomic_init(&l->refs, 1);
    atomic_init(&l->removed, false);
    l->id = atomic_fetch_add_explicit(&next_listener_id, 1, memory_order_relaxed);
    l->atom = atom;
    l->fn = fn;
    l->userdata = userdata;
    l->priority = opts ? opts->priority : 0;
    l->once = opts && opts->once;
    l->transient = opts && opts->transient;
    l->target_id = target_id;

    void *old_reserve = NULL;
    pthread_mutex_lock(&ls->lock);
    wk_lslot *s = lmap_room(&ls->by_id) ? slot_get(ls, atom) : NULL;
    bool ok = s && slot_insert(s, l);
    if (ok) {
        ls->item_count++;
        lmap_put(&ls->by_id, l->id, (uintptr_t)l);
        if (!reserve_room(ls, &old_reserve)) {
            take_at(ls, s, slot_index(s, l));
            ok = false;
        }
    }
    if (ok)
        changed(ls);
    pthread_mutex_unlock(&ls->lock);
    free(old_reserve);
    if (!ok) {
        free(l);
        return NULL;
    }
    return handle_of(l);
}

/* Take the listener with that id out of the table; NULL if it is not
 * there. Caller holds the lock. */
static worker_listener_t *table_take_id(wk_listeners *ls, uint64_t id)
{
    const wk_lmap_entry *x = lmap_find(&ls->by_id, id);
    if (!x)
        return NULL;
    worker_listener_t *l = (worker_listener_t *)x->value;
    wk_lslot *s = slot_find(ls, l->atom);
    return take_at(ls, s, slot_index(s, l));
}

/* Take `l` out of the table if it is there. Caller holds the lock. */
static bool table_take(wk_listeners *ls, const worker_listener_t *l)
{
    return table_take_id(ls, l->id) != NULL;
}

int wk_listeners_remove(wk_listeners *ls, const worker_listener_t *handle)
{
    uint64_t id = id_of(handle);
    pthread_mutex_lock(&ls->lock);
    worker_listener_t *l = id ? table_take_id(ls, id) : NULL;
    if (l) {
        atomic_store_explicit(&l->removed, true, memory_order_release);
        changed(ls);
    }
    pthread_mutex_unlock(&ls->lock);
    if (!l)
        return WORKER_EINVAL;
    listener_unref(l);
    return WORKER_OK;
}

/* Remove every listener matching `pred`; returns how many. */
static size_t remove_matching(
    wk_listeners *ls, bool (*pred)(const worker_listener_t *, void *), void *arg)
{
    size_t removed = 0;
    worker_listener_t *dropped[64];
    size_t ndropped = 0;
    size_t from = 0; /* slots before it have been searched (they are never taken out) */
    bool again;
    do {
        again = false;
        pthread_mutex_lock(&ls->lock);
        for (; from < ls->slot_count; from++) {
            wk_lslot *s = &ls->slots[from];
            for (size_t j = 0; j < s->count && ndropped < 64;) {
                worker_listener_t *l = s->items[j];
                if (!pred(l, arg)) {
                    j++;
                    continue;
                }
                take_at(ls, s, j);
                atomic_store_explicit(&l->removed, true, memory_order_release);
                dropped[ndropped++] = l;
            }
            if (ndropped == 64)
                break; /* this slot again in the next round */
        }
        if (ndropped) {
            changed(ls);
            again = ndropped == 64;
        }
        pthread_mutex_unlock(&ls->lock);
        for (size_t k = 0; k < ndropped; k++)
            listener_unref(dropped[k]);
        removed += ndropped;
        ndropped = 0;
    } while (again);
    return removed;
}

typedef struct fn_match {
    worker_listener_fn fn;
    void *userdata;
} fn_match;

static bool matches_fn(const worker_listener_t *l, void *arg)
{
    const fn_match *m = arg;
    return l->fn == m->fn && l->userdata == m->userdata;
}

size_t wk_listeners_remove_fn(wk_listeners *ls, worker_listener_fn fn, void *userdata)
{
    fn_match m = { fn, userdata };
    return remove_matching(ls, matches_fn, &m);
}

static bool is_transient(const worker_listener_t *l, void *arg)
{
    (void)arg;
    return l->transient;
}

void wk_listeners_remove_transient(wk_listeners *ls)
{
    remove_matching(ls, is_transient, NULL);
}

/* ---- the owner's snapshot ---- */

static int by_atom_id(const void *a, const void *b)
{
    uint32_t x = ((const wk_lslot *)a)->atom->id, y = ((const wk_lslot *)b)->atom->id;
    return (x > y) - (x < y);
}

/* Copy the table into `s`, a block of snap_bytes(). Caller holds the lock. */
static wk_lsnap *snap_build(wk_listeners *ls, wk_lsnap *s)
{
    s->refs = 1;
    s->slot_count = 0;
    worker_listener_t **items = (worker_listener_t **)&s->slots[ls->slot_count];
    for (size_t i = 0; i < ls->slot_count; i++) {
        const wk_lslot *from = &ls->slots[i];
        if (from->count == 0)
            continue;
        wk_lslot *to = &s->slots[s->slot_count++];
        *to = (wk_lslot) { .atom = from->atom, .count = from->count, .cap = from->count };
        to->items = items;
        items += from->count;
        for (size_t j = 0; j < from->count; j++) {
            to->items[j] = from->items[j];
            atomic_fetch_add_explicit(&to->items[j]->refs, 1, memory_order_relaxed);
        }
    }
    qsort(s->slots, s->slot_count, sizeof *s->slots, by_atom_id);
    return s;
}

static void snap_refresh(wk_listeners *ls)
{
    pthread_mutex_lock(&ls->lock);
    uint64_t version = atomic_load_explicit(&ls->version, memory_order_relaxed);
    size_t bytes = snap_bytes(ls);
    wk_lsnap *fresh;
    if (ls->reserve && ls->reserve_bytes >= bytes) { /* the room the last add made */
        fresh = ls->reserve;
        ls->reserve = NULL;
        ls->reserve_bytes = 0;
    } else {
        fresh = malloc(bytes);
    }
    if (fresh)
        snap_build(ls, fresh);
    pthread_mutex_unlock(&ls->lock);
    if (!fresh)
        return; /* removals only since the old copy: it skips them; retried on the next event */
    if (ls->snap)
        snap_release(ls, ls->snap);
    ls->snap = fresh;
    ls->snap_version = version;
}

static const wk_lslot *snap_find(const wk_lsnap *s, const wk_atom *atom)
{
    size_t lo = 0, hi = s->slot_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t id = s->slots[mid].atom->id;
        if (id == atom->id)
            return &s->slots[mid];
        if (id < atom->id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The name a trace shows for a listener not named at add: its function's
 * symbol from the binary's symbol table (static functions too), else from
 * the dynamic one, else its address. */
static const wk_atom *listener_name(worker_listener_t *l)
{
    void *address;
    memcpy(&address, &l->fn, sizeof address);
    char name[256];
    Dl_info info;
    l->name_from = WK_TRF_NAME_SYMBOL;
    if (wk_symbol_name(address, name, sizeof name))
        return wk_atom_intern(name);
    if (dladdr(address, &info) && info.dli_sname && info.dli_saddr == address)
        return wk_atom_intern(info.dli_sname);
    l->name_from = 0;
    snprintf(name, sizeof name, "listener@%p", address);
    return wk_atom_intern(name);
}

/* A listener run between its two trace records (kept out of the hot loop). */
static __attribute__((noinline, cold)) int call_traced(
    worker_listener_t *l, const worker_event_t *e, uint32_t receiver)
{
    if (!l->trace_name)
        l->trace_name = listener_name(l);
    wk_probe_listener_start(receiver, wk_event_serial(e), l->trace_name, l->name_from, e->atom);
    int code = l->fn(e, l->userdata);
    wk_probe_listener_end(receiver, wk_event_serial(e), l->trace_name, code);
    return code;
}

/* The owner takes a `once` listener out before calling it. */
static bool claim_once(wk_listeners *ls, worker_listener_t *l)
{
    pthread_mutex_lock(&ls->lock);
    bool mine = table_take(ls, l);
    if (mine) {
        atomic_store_explicit(&l->removed, true, memory_order_release);
        changed(ls);
    }
    pthread_mutex_unlock(&ls->lock);
    if (mine)
        listener_unref(l); /* the table's reference; the snapshot keeps one */
    return mine;
}

/* One body for both variants; `traced` is a constant in each, so the plain
 * one has no trace test at all. */
static inline __attribute__((always_inline)) void dispatch_with(wk_listeners *ls,
    const worker_event_t *e, wk_listener_error_fn on_error, void *ctx, uint32_t receiver,
    const bool traced)
{
    if (atomic_load_explicit(&ls->version, memory_order_acquire) != ls->snap_version)
        snap_refresh(ls);
    wk_lsnap *s = ls->snap;
    const wk_lslot *slot = s ? snap_find(s, e->atom) : NULL;
    if (!slot)
        return;
    s->refs++;
    for (size_t i = 0; i < slot->count; i++) {
        worker_listener_t *l = slot->items[i];
        if (atomic_load_explicit(&l->removed, memory_order_acquire))
            continue;
        if (l->target_id && l->target_id != wk_event_sender_id(e))
            continue;
        if (l->once && !claim_once(ls, l))
            continue;
        int code = traced ? call_traced(l, e, receiver) : l->fn(e, l->userdata);
        if (code)
            on_error(ctx, e, code);
    }
    snap_release(ls, s);
}

void wk_listeners_dispatch(
    wk_listeners *ls, const worker_event_t *e, wk_listener_error_fn on_error, void *ctx)
{
    dispatch_with(ls, e, on_error, ctx, 0, false);
}

void wk_listeners_dispatch_traced(wk_listeners *ls, const worker_event_t *e,
    wk_listener_error_fn on_error, void *ctx, uint32_t receiver)
{
    dispatch_with(ls, e, on_error, ctx, receiver, true);
}
