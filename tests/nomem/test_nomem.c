/* Out of memory: every call returns its error (WORKER_ENOMEM, or NULL for
 * constructors), leaves no partial state, and loses no accepted event.
 * Also the other resources the library asks the system for: a thread
 * (pthread_create refused: WORKER_EAGAIN) and a thread-specific key or
 * value (pthread_key_create, pthread_setspecific).
 *
 * Fault injection: the executable is linked with the static library and
 * `-Wl,--wrap=malloc,...,--wrap=pthread_create` (tests/nomem/CMakeLists.txt),
 * so every allocation, thread creation and thread-specific key or value the
 * library asks for goes through the __wrap_* functions below. Each one
 * asks nm_fails() whether to fail. Two plans may be armed:
 * - the calling thread's own (nm, _Thread_local): it only ever fails that
 *   thread's calls, so Criterion's own calls (its library is not wrapped)
 *   and the workers' threads are not affected. It names the functions it
 *   may fail (`which`: the allocations unless said otherwise), and either
 *   fails the Nth of their calls from now, or every one, or only counts; it
 *   may run a function of the test just before its first failure
 *   (`before_failing`, disarmed meanwhile), to act at that exact point;
 * - the process-wide one (nm_any): it reaches every thread, the threads the
 *   library starts too. It fails the Nth call of its functions made by any
 *   thread after arming (an atomic countdown: exactly one call sees it
 *   reach zero), or every call made on a thread other than the one that
 *   armed it (the test's). Which thread makes
 *   the Nth call may differ from run to run; a sweep over N still ends,
 *   when N passes the scenario's last call.
 * A thread's own plan, when armed, decides for that thread's calls; the
 * process-wide plan decides for the others.
 *
 * The library pools events and queue nodes in slabs (lib/mem/pool.c): once a
 * slab exists most allocations do not reach malloc. nm_hoard() takes every
 * object a pool class can give to the calling thread (its cache, the depot,
 * the rest of the slab) without letting it carve a new slab, so that the
 * thread's next object of that class needs a new slab, which the injector
 * can fail; nm_unhoard() gives them back. Tests that want the first slab
 * of a process rely on Criterion running each test in a fresh process; the
 * sweeps that fork one process per N do so for the same reason. */
#include "test_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "wk_pool.h"

#if defined(__SANITIZE_ADDRESS__)
#define NM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NM_ASAN 1
#endif
#endif
#ifdef NM_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- the injector ----------------------------------------------------- */

enum nm_fn {
    NM_MALLOC,
    NM_CALLOC,
    NM_REALLOC,
    NM_ALIGNED_ALLOC,
    NM_POSIX_MEMALIGN,
    NM_STRDUP,
    NM_PTHREAD_CREATE,
    NM_KEY_CREATE,
    NM_SETSPECIFIC,
    NM_FNS
};

static const char *const nm_fn_name[NM_FNS] = { "malloc", "calloc", "realloc", "aligned_alloc",
    "posix_memalign", "strdup", "pthread_create", "pthread_key_create", "pthread_setspecific" };

#define NM_BIT(fn) (1u << (fn))
/* The system refuses a key (EAGAIN) or a value (ENOMEM) for want of memory
 * too: they count as allocations. */
#define NM_ALLOCATIONS                                                                             \
    (NM_BIT(NM_MALLOC) | NM_BIT(NM_CALLOC) | NM_BIT(NM_REALLOC) | NM_BIT(NM_ALIGNED_ALLOC)         \
        | NM_BIT(NM_POSIX_MEMALIGN) | NM_BIT(NM_STRDUP) | NM_BIT(NM_KEY_CREATE)                    \
        | NM_BIT(NM_SETSPECIFIC))
#define NM_THREADS NM_BIT(NM_PTHREAD_CREATE)
#define NM_KEYS (NM_BIT(NM_KEY_CREATE) | NM_BIT(NM_SETSPECIFIC))

static _Thread_local struct {
    bool armed;
    unsigned which; /* NM_BIT()s of the functions that may fail */
    bool all; /* every call of those fails */
    long countdown; /* > 0: the countdown-th call of those from now fails */
    long failed; /* calls failed since arming */
    long calls[NM_FNS]; /* calls seen since arming (of every function) */
    enum nm_fn last_fn; /* the last one failed */
    size_t last_size;
    void (*before_failing)(void *arg); /* once, just before the first failure */
    void *before_failing_arg;
} nm;

static void nm_arm(unsigned which, bool all, long nth)
{
    memset(&nm, 0, sizeof nm);
    nm.armed = true;
    nm.which = which;
    nm.all = all;
    nm.countdown = nth;
}

static void nm_fail_nth(long n)
{
    nm_arm(NM_ALLOCATIONS, false, n);
}

static void nm_fail_all(void)
{
    nm_arm(NM_ALLOCATIONS, true, 0);
}

static void nm_count_only(void)
{
    nm_arm(NM_ALLOCATIONS, false, 0);
}

/* The nth call from now of one of the functions in `which` fails. */
static void nm_fail_nth_of(unsigned which, long n)
{
    nm_arm(which, false, n);
}

/* After arming: run fn(arg) once, unarmed, just before the first failure. */
static void nm_before_failing(void (*fn)(void *arg), void *arg)
{
    nm.before_failing = fn;
    nm.before_failing_arg = arg;
}

/* Every aligned allocation fails (the pools' slabs are aligned), the
 * others do not. */
static void nm_fail_slabs(void)
{
    nm_arm(NM_BIT(NM_ALIGNED_ALLOC) | NM_BIT(NM_POSIX_MEMALIGN), true, 0);
}

/* Disarm; returns how many allocations failed. */
static long nm_disarm(void)
{
    nm.armed = false;
    return nm.failed;
}

/* The process-wide plan. Armed and disarmed by the test's thread; read by
 * every thread's wrapped calls. */
enum nm_any_mode {
    NM_ANY_NTH, /* the countdown-th call from now, on any thread */
    NM_ANY_OTHERS, /* every call on a thread other than `owner` */
};

static struct {
    atomic_bool armed;
    atomic_uint which;
    atomic_int mode;
    atomic_long countdown;
    atomic_long failed;
    atomic_long calls[NM_FNS];
    atomic_int last_fn;
    pthread_t owner; /* written before `armed` is set */
} nm_any;

static void nm_any_arm(unsigned which, enum nm_any_mode mode, long nth)
{
    atomic_store(&nm_any.armed, false);
    atomic_store(&nm_any.which, which);
    atomic_store(&nm_any.mode, mode);
    atomic_store(&nm_any.countdown, nth);
    atomic_store(&nm_any.failed, 0);
    for (int i = 0; i < NM_FNS; i++)
        atomic_store(&nm_any.calls[i], 0);
    atomic_store(&nm_any.last_fn, -1);
    nm_any.owner = pthread_self();
    atomic_store(&nm_any.armed, true);
}

/* The nth allocation made by any thread from now fails. */
static void nm_any_fail_nth(long n)
{
    nm_any_arm(NM_ALLOCATIONS, NM_ANY_NTH, n);
}

/* The nth call of one of `which` made by any thread from now fails. */
static void nm_any_fail_nth_of(unsigned which, long n)
{
    nm_any_arm(which, NM_ANY_NTH, n);
}

/* Every allocation on every thread but the calling one fails. */
static void nm_others_fail_all(void)
{
    nm_any_arm(NM_ALLOCATIONS, NM_ANY_OTHERS, 0);
}

/* Disarm the process-wide plan; returns how many calls it failed. A
 * thread may still be inside a failing call when this returns. */
static long nm_any_disarm(void)
{
    atomic_store(&nm_any.armed, false);
    return atomic_load(&nm_any.failed);
}

static bool nm_any_fails(enum nm_fn fn)
{
    if (!atomic_load_explicit(&nm_any.armed, memory_order_acquire))
        return false;
    atomic_fetch_add(&nm_any.calls[fn], 1);
    if (!(atomic_load(&nm_any.which) & NM_BIT(fn)))
        return false;
    switch (atomic_load(&nm_any.mode)) {
    case NM_ANY_NTH:
        if (atomic_fetch_sub(&nm_any.countdown, 1) != 1)
            return false;
        break;
    case NM_ANY_OTHERS:
        if (pthread_equal(pthread_self(), nm_any.owner))
            return false;
        break;
    }
    atomic_fetch_add(&nm_any.failed, 1);
    atomic_store(&nm_any.last_fn, fn);
    return true;
}

static bool nm_fails(enum nm_fn fn, size_t size)
{
    if (!nm.armed)
        return nm_any_fails(fn);
    nm.calls[fn]++;
    if (!(nm.which & NM_BIT(fn)))
        return false;
    if (!nm.all && !(nm.countdown > 0 && --nm.countdown == 0))
        return false;
    if (nm.before_failing) {
        void (*before)(void *) = nm.before_failing;
        nm.before_failing = NULL;
        nm.armed = false;
        before(nm.before_failing_arg);
        nm.armed = true;
    }
    nm.failed++;
    nm.last_fn = fn;
    nm.last_size = size;
    return true;
}

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
int __real_posix_memalign(void **p, size_t alignment, size_t size);
char *__real_strdup(const char *s);
int __real_pthread_create(
    pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __real_pthread_key_create(pthread_key_t *key, void (*destructor)(void *));
int __real_pthread_setspecific(pthread_key_t key, const void *value);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t alignment, size_t size);
int __wrap_posix_memalign(void **p, size_t alignment, size_t size);
char *__wrap_strdup(const char *s);
int __wrap_pthread_create(
    pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_key_create(pthread_key_t *key, void (*destructor)(void *));
int __wrap_pthread_setspecific(pthread_key_t key, const void *value);

void *__wrap_malloc(size_t size)
{
    if (nm_fails(NM_MALLOC, size)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (nm_fails(NM_CALLOC, n * size)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    if (nm_fails(NM_REALLOC, size)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, size);
}

void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
    if (nm_fails(NM_ALIGNED_ALLOC, size)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_aligned_alloc(alignment, size);
}

int __wrap_posix_memalign(void **p, size_t alignment, size_t size)
{
    if (nm_fails(NM_POSIX_MEMALIGN, size))
        return ENOMEM;
    return __real_posix_memalign(p, alignment, size);
}

char *__wrap_strdup(const char *s)
{
    if (nm_fails(NM_STRDUP, strlen(s) + 1)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

/* Refused as the system refuses a thread when it has none to give. */
int __wrap_pthread_create(
    pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (nm_fails(NM_PTHREAD_CREATE, 0))
        return EAGAIN;
    return __real_pthread_create(thread, attr, fn, arg);
}

/* Refused as when the process has no key left. */
int __wrap_pthread_key_create(pthread_key_t *key, void (*destructor)(void *))
{
    if (nm_fails(NM_KEY_CREATE, 0))
        return EAGAIN;
    return __real_pthread_key_create(key, destructor);
}

/* Refused as when the thread's value block cannot be allocated. Clearing a
 * value (NULL) never allocates, so the system never refuses it: neither
 * does the injector. */
int __wrap_pthread_setspecific(pthread_key_t key, const void *value)
{
    if (value && nm_fails(NM_SETSPECIFIC, 0))
        return ENOMEM;
    return __real_pthread_setspecific(key, value);
}

/* ---- emptying a pool for the calling thread --------------------------- */

typedef struct nm_hoard {
    enum wk_pool_class cls;
    void *head; /* the objects taken, linked through their first word */
    size_t count;
} nm_hoard;

/* Take every object of `cls` the calling thread can get without a new
 * slab. The thread needs its context (worker_current() makes it). Any plan
 * the thread had armed is disarmed. */
static void nm_hoard_take(nm_hoard *h, enum wk_pool_class cls)
{
    *h = (nm_hoard) { .cls = cls };
    nm_fail_all(); /* a slab is an allocation: none can be made meanwhile */
    void *o;
    while ((o = wk_pool_alloc(cls)) != NULL) {
        *(void **)o = h->head;
        h->head = o;
        h->count++;
    }
    nm_disarm();
}

static void nm_hoard_give_back(nm_hoard *h)
{
    while (h->head) {
        void *o = h->head;
        h->head = *(void **)o;
        wk_pool_free(h->cls, o);
    }
    h->count = 0;
}

/* ---- helpers ---------------------------------------------------------- */

/* Calls of the release functions given to fires (one test per process). */
static atomic_int released;

static void on_release(void *data)
{
    (void)data;
    atomic_fetch_add(&released, 1);
}

static void fill(unsigned char *b, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i);
}

/* What a listener saw of copied payloads: `size` bytes made by fill(seed). */
typedef struct seen {
    atomic_int count;
    atomic_int bad;
    size_t size;
    unsigned char seed;
} seen;

static int check_payload(const worker_event_t *e, void *userdata)
{
    seen *s = userdata;
    const unsigned char *p = worker_event_data(e);
    bool ok = worker_event_size(e) == s->size && (s->size == 0 || p != NULL);
    for (size_t i = 0; ok && i < s->size; i++)
        ok = p[i] == (unsigned char)(s->seed + i);
    if (!ok)
        atomic_fetch_add(&s->bad, 1);
    atomic_fetch_add(&s->count, 1);
    return 0;
}

/* A running parent-less worker with the sync listener (and `fn` for
 * `name` when given). */
static worker_t *spawn_listening(const char *name, worker_listener_fn fn, void *userdata)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(tu_sync_install(w));
    if (name)
        cr_assert_not_null(worker_listen(w, name, fn, userdata, NULL));
    return w;
}

/* A timer function: counts and fires ACK at the worker that armed it. */
typedef struct later_ctx {
    atomic_int ran;
    worker_t *to;
} later_ctx;

static void later_ran(void *arg)
{
    later_ctx *c = arg;
    atomic_fetch_add(&c->ran, 1);
    tu_ack(c->to, 1);
}

/* ---- the injector itself ---------------------------------------------- */

/* --wrap only redirects references inside the executable's own objects:
 * each wrapped function must be seen from the (static) library's calls.
 * (worker_spawn's thread: pthread_create.) */
Test(nomem, every_wrapped_call_reaches_the_injector, .timeout = 30)
{
    atomic_int count = 0;
    unsigned char big[100];
    fill(big, sizeof big, 1);
    nm_count_only(); /* a fresh process: slabs, atoms and contexts are made here */
    worker_opts opts = { .name = "counted" };
    worker_t *w = worker_spawn(NULL, NULL, &opts); /* posix_memalign, strdup, malloc */
    worker_channel_t *ch = worker_channel_new(); /* calloc */
    worker_listener_t *l = worker_listen(w, "X", tu_count_listener, &count, NULL); /* realloc */
    worker_fire_opts fo = { .copy = big, .copy_size = sizeof big }; /* malloc; a slab */
    int rc = worker_fire_ex(w, "X", NULL, &fo);
    long calls[NM_FNS];
    memcpy(calls, nm.calls, sizeof calls);
    cr_assert_eq(nm_disarm(), 0);
    cr_assert_not_null(w);
    cr_assert_not_null(ch);
    cr_assert_not_null(l);
    cr_assert_eq(rc, WORKER_OK);
    for (int i = 0; i < NM_FNS; i++)
        cr_assert_gt(calls[i], 0, "no call of %s reached the injector", nm_fn_name[i]);
    worker_channel_free(ch);
    tu_stop_join_unref(w);
    cr_assert_eq(atomic_load(&count), 1);
}

/* ---- first use -------------------------------------------------------- */

/* The very first calls of a process fail (the library's one-time set-up
 * cannot be made); once memory is back, everything works. */
Test(nomem, a_failed_first_use_is_not_sticky, .timeout = 30)
{
    char path[] = "/tmp/test_nomem-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    later_ctx lc = { 0 };

    nm_fail_all();
    worker_t *w = worker_new(NULL, NULL, NULL);
    worker_t *spawned = worker_spawn(NULL, NULL, NULL);
    worker_t *current = worker_current();
    worker_channel_t *ch = worker_channel_new();
    int trace_rc = worker_trace_start(path);
    int later_rc = worker_later(NULL, later_ran, &lc, 0, NULL);
    long failed = nm_disarm();

    cr_assert_gt(failed, 0);
    cr_assert_null(w);
    cr_assert_null(spawned);
    cr_assert_null(current);
    cr_assert_null(ch);
    /* The recorder takes no memory to start (buffers come with the first
     * records): it starts, and stops, without any. */
    cr_assert_eq(trace_rc, WORKER_OK, "%s", worker_err_name(trace_rc));
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    cr_assert_eq(later_rc, WORKER_ENOMEM, "%s", worker_err_name(later_rc));

    /* Memory is back: the same calls work. */
    lc.to = tu_main();
    cr_assert_not_null(lc.to);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    seen s = { .size = 0 };
    w = spawn_listening("PING", check_payload, &s);
    cr_assert_eq(worker_fire(w, "PING", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), 1);
    cr_assert_eq(worker_later(NULL, later_ran, &lc, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(atomic_load(&lc.ran), 1);
    ch = worker_channel_new();
    cr_assert_not_null(ch);
    worker_channel_free(ch);
    tu_stop_join_unref(w);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    unlink(path);
}

/* ---- workers ---------------------------------------------------------- */

Test(nomem, worker_new_fails_cleanly_at_each_allocation, .timeout = 30)
{
    tu_main();
    worker_t *p = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(p);
    worker_opts opts = { .name = "child", .parent = p };
    for (long n = 1;; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        worker_t *w = worker_new(NULL, NULL, &opts);
        long failed = nm_disarm();
        if (!failed) {
            cr_assert_not_null(w);
            cr_assert_eq(worker_parent(w), p);
            worker_unref(w);
            break;
        }
        cr_assert_null(w, "allocation %ld failed and worker_new returned a worker", n);
    }
    /* No child was left in p's tree (p's end would wait for it). */
    cr_assert_eq(worker_children_count(p), 0);
    tu_stop_join_unref(p); /* with LeakSanitizer: no reference on p leaked */
}

Test(nomem, worker_spawn_fails_cleanly_at_each_allocation, .timeout = 60)
{
    worker_t *me = tu_main();
    worker_t *p = spawn_listening(NULL, NULL, NULL);
    cr_assert_not_null(p);
    worker_opts opts = { .name = "child", .parent = p };
    for (long n = 1;; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        worker_t *w = worker_spawn(NULL, NULL, &opts);
        long failed = nm_disarm();
        if (failed) {
            cr_assert_null(w, "allocation %ld (%s) failed and worker_spawn returned a worker", n,
                nm_fn_name[nm.last_fn]);
            cr_assert_eq(worker_children_count(p), 0, "allocation %ld: a child was left behind", n);
            continue;
        }
        cr_assert_not_null(w);
        cr_assert_eq(worker_children_count(p), 1);
        cr_assert_not_null(tu_sync_install(w));
        cr_assert_eq(tu_sync(w), WORKER_OK);
        tu_stop_join_unref(w);
        break;
    }
    /* The parent still runs, and its end does not wait for a phantom child. */
    cr_assert_eq(tu_sync(p), WORKER_OK);
    tu_stop_join_unref(p);
    cr_assert(worker_is_running(me));
}

/* A racer fires at a worker that is not running while the worker's start
 * runs out of memory: every fire it was told was accepted must be
 * delivered once the worker does start. */
typedef struct racer {
    worker_t *target;
    atomic_bool stop;
    atomic_long accepted;
    tu_gate started;
} racer;

static void *race_fire(void *arg)
{
    racer *r = arg;
    for (long i = 1; !atomic_load(&r->stop); i++) {
        if (worker_fire(r->target, "RACE", NULL) == WORKER_OK)
            atomic_fetch_add(&r->accepted, 1);
        if (i == 1)
            tu_gate_open(&r->started);
        if (i % 64 == 0)
            worker_update(); /* the EVENT_REJECTs for this thread's root worker */
    }
    return NULL;
}

Test(nomem, a_start_out_of_memory_loses_no_accepted_event, .timeout = 60)
{
    tu_main();
    atomic_int delivered = 0;
    worker_t *w = worker_new(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "RACE", tu_count_listener, &delivered, NULL));
    cr_assert_not_null(tu_sync_install(w));
    racer r = { .target = w };
    tu_gate_init(&r.started);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, race_fire, &r), 0);
    cr_assert_eq(tu_gate_pass(&r.started, TU_WAIT), 0);
    for (int i = 0; i < 2000; i++) {
        nm_fail_all();
        int rc = worker_start(w);
        nm_disarm();
        cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
        cr_assert_not(worker_is_running(w));
    }
    atomic_store(&r.stop, true);
    pthread_join(thread, NULL);
    tu_gate_destroy(&r.started);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK); /* queued behind everything the racer got in */
    cr_assert_eq(atomic_load(&delivered), atomic_load(&r.accepted),
        "%ld fires were accepted, %d delivered", atomic_load(&r.accepted), atomic_load(&delivered));
    tu_stop_join_unref(w);
}

/* ---- no thread -------------------------------------------------------- */

/* What happens while a start whose pthread_create the system refuses has
 * the worker's mailbox open: an event is fired at it, the main thread
 * monitors it, and another worker waits for it in worker_wait_thread. */
typedef struct refused_start {
    worker_t *w;
    worker_t *waiter;
    tu_gate waiting; /* opened once the waiter is registered */
    atomic_int delivered;
    atomic_bool on_main_thread; /* where the listener ran */
    pthread_t main_thread;
    int fire_rc;
    int monitor_rc;
    int during;
} refused_start;

static void open_gate(void *arg)
{
    tu_gate_open(arg);
}

/* The waiter's listener: wait for the worker, then tell the sender (the
 * main thread) how the wait ended, as WAITED (data: err, or the wait's
 * own code). */
static int wait_for_it(const worker_event_t *e, void *userdata)
{
    refused_start *r = userdata;
    worker_later(NULL, open_gate, &r->waiting, 0, NULL); /* runs inside the wait */
    int err = -100;
    int rc = worker_wait_thread(r->w, &err, NULL);
    worker_fire(worker_event_target(e), "WAITED", TU_PTR(rc == WORKER_OK ? err : rc));
    return 0;
}

static int count_where(const worker_event_t *e, void *userdata)
{
    (void)e;
    refused_start *r = userdata;
    atomic_store(&r->on_main_thread, pthread_equal(pthread_self(), r->main_thread));
    atomic_fetch_add(&r->delivered, 1);
    return 0;
}

/* Runs inside worker_start, on the main thread, right before
 * pthread_create fails. */
static void while_starting(void *arg)
{
    refused_start *r = arg;
    r->during++;
    r->fire_rc = worker_fire(r->w, "EV", NULL);
    r->monitor_rc = worker_monitor(r->w);
    worker_fire(r->waiter, "WAIT_FOR_IT", NULL);
    tu_gate_pass(&r->waiting, TU_WAIT);
}

/* A start the system refuses a thread returns WORKER_EAGAIN, and the worker
 * is as if it had run and failed with WORKER_EAGAIN at once: the event
 * accepted meanwhile is delivered, the waiter returns, the monitor gets
 * its DOWN. Then the worker starts normally. */
Test(nomem, a_start_without_a_thread_ends_like_a_failed_run, .timeout = 30)
{
    refused_start r = { .main_thread = pthread_self() };
    worker_t *me = tu_main();
    tu_gate_init(&r.waiting);
    worker_opts quiet = { .quiet = true };
    r.w = worker_new(NULL, NULL, &quiet);
    cr_assert_not_null(r.w);
    cr_assert_not_null(worker_listen(r.w, "EV", count_where, &r, NULL));
    cr_assert_not_null(tu_sync_install(r.w));
    r.waiter = worker_new(NULL, NULL, NULL);
    cr_assert_not_null(r.waiter);
    cr_assert_not_null(worker_listen(r.waiter, "WAIT_FOR_IT", wait_for_it, &r, NULL));
    cr_assert_eq(worker_start(r.waiter), WORKER_OK);

    /* The data of this thread's last wait stays valid across the start
     * (it is not a wait). */
    const char note[] = "still valid";
    worker_fire_opts copy = { .copy = note, .copy_size = sizeof note };
    cr_assert_eq(worker_fire_ex(me, "NOTE", NULL, &copy), WORKER_OK);
    void *kept = NULL;
    cr_assert_eq(tu_wait("NOTE", &kept), WORKER_OK);

    nm_fail_nth_of(NM_THREADS, 1);
    nm_before_failing(while_starting, &r);
    int rc = worker_start(r.w);
    long failed = nm_disarm();
    cr_assert_str_eq(kept, note);
    cr_assert_eq(failed, 1);
    cr_assert_eq(r.during, 1);
    cr_assert_eq(rc, WORKER_EAGAIN, "%s", worker_err_name(rc));
    cr_assert_not(worker_is_running(r.w));
    cr_assert_eq(r.fire_rc, WORKER_OK);
    cr_assert_eq(r.monitor_rc, WORKER_OK);
    cr_assert_eq(atomic_load(&r.delivered), 1, "an accepted event was not delivered");
    cr_assert(atomic_load(&r.on_main_thread), "the failed run is on the starting thread");
    /* DOWN was queued on this thread during worker_start, before the
     * waiter could answer: handle it first. */
    void *d = NULL;
    cr_assert_eq(
        worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, r.w, &d), WORKER_OK, "no WORKER_DOWN");
    cr_assert_eq(((worker_down_t *)d)->err, WORKER_EAGAIN);
    cr_assert_eq(worker_wait_event("WAITED", TU_WAIT, r.waiter, &d), WORKER_OK,
        "the waiter registered during the failed start never returned");
    cr_assert_eq(TU_INT(d), WORKER_EAGAIN, "%s", worker_err_name(TU_INT(d)));
    int err = -100;
    cr_assert_eq(worker_wait_thread(r.w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EAGAIN);
    cr_assert_eq(worker_current(), me);

    /* With a thread, it starts as usual. */
    cr_assert_eq(worker_start(r.w), WORKER_OK);
    cr_assert_eq(worker_fire(r.w, "EV", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(r.w), WORKER_OK);
    cr_assert_eq(atomic_load(&r.delivered), 2);
    cr_assert_not(atomic_load(&r.on_main_thread));
    tu_stop_join_unref(r.w);
    tu_stop_join_unref(r.waiter);
    tu_gate_destroy(&r.waiting);
}

/* ---- listeners -------------------------------------------------------- */

Test(nomem, worker_listen_fails_cleanly_at_each_allocation, .timeout = 30)
{
    tu_main();
    atomic_int pings = 0, late = 0;
    worker_t *w = spawn_listening("PING", tu_count_listener, &pings);
    worker_listener_t *l = NULL;
    for (long n = 1; !l; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        l = worker_listen(w, "LATE", tu_count_listener, &late, NULL);
        if (nm_disarm()) {
            cr_assert_null(l, "allocation %ld failed and worker_listen returned a listener", n);
            cr_assert_eq(worker_unlisten_fn(w, tu_count_listener, &late), WORKER_EINVAL,
                "allocation %ld: a failed listen left a listener", n);
        } else {
            cr_assert_not_null(l);
        }
    }
    nm_fail_all();
    cr_assert_null(worker_listen(w, "NEVER", tu_count_listener, &late, NULL));
    cr_assert_gt(nm_disarm(), 0);
    /* The worker still works: exactly the one listener that was added. */
    cr_assert_eq(worker_fire(w, "LATE", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "NEVER", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "PING", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&late), 1);
    cr_assert_eq(atomic_load(&pings), 1);
    tu_stop_join_unref(w);
}

/* The receiving thread itself is out of memory when it delivers: a
 * listener added before the fire still sees the event, a removed one does
 * not. */
Test(nomem, an_owner_out_of_memory_still_calls_its_listeners, .timeout = 30)
{
    worker_t *me = tu_main();
    atomic_int first = 0, second = 0, gone = 0;
    worker_listener_t *g = worker_listen(me, "GONE", tu_count_listener, &gone, NULL);
    cr_assert_not_null(g);
    cr_assert_eq(worker_fire(me, "WARM", NULL), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK); /* its dispatch copies GONE's listener */
    cr_assert_not_null(worker_listen(me, "OWN", tu_count_listener, &first, NULL));
    cr_assert_eq(worker_fire(me, "OWN", NULL), WORKER_OK);
    cr_assert_eq(worker_unlisten(me, g), WORKER_OK);
    cr_assert_eq(worker_fire(me, "GONE", NULL), WORKER_OK);
    nm_fail_all();
    int rc = worker_update();
    nm_disarm();
    cr_assert_eq(rc, WORKER_OK);
    cr_assert_eq(atomic_load(&first), 1, "the listener missed an accepted event");
    cr_assert_eq(atomic_load(&gone), 0, "a removed listener was called");
    /* And again with a listener added while a snapshot exists. */
    cr_assert_not_null(worker_listen(me, "OWN", tu_count_listener, &second, NULL));
    cr_assert_eq(worker_fire(me, "OWN", NULL), WORKER_OK);
    nm_fail_all();
    rc = worker_update();
    nm_disarm();
    cr_assert_eq(rc, WORKER_OK);
    cr_assert_eq(atomic_load(&first), 2);
    cr_assert_eq(atomic_load(&second), 1, "the listener missed an accepted event");
}

/* ---- fire ------------------------------------------------------------- */

Test(nomem, a_heap_copy_out_of_memory_is_refused_whole, .timeout = 30)
{
    tu_main();
    seen big_seen = { .size = 100, .seed = 7 }, small_seen = { .size = 8, .seed = 3 };
    worker_t *w = spawn_listening("BIG", check_payload, &big_seen);
    cr_assert_not_null(worker_listen(w, "SMALL", check_payload, &small_seen, NULL));
    cr_assert_eq(tu_sync(w), WORKER_OK); /* warm: the event comes from this thread's cache */
    unsigned char big[100], small[8];
    fill(big, sizeof big, 7);
    fill(small, sizeof small, 3);
    /* Larger than the inline 32 bytes, and a small copy with a release
     * function: both take one allocation, which fails. */
    worker_fire_opts big_opts = { .copy = big, .copy_size = sizeof big, .release = on_release };
    worker_fire_opts small_opts
        = { .copy = small, .copy_size = sizeof small, .release = on_release };
    const struct {
        const char *name;
        worker_fire_opts *opts;
    } cases[] = { { "BIG", &big_opts }, { "SMALL", &small_opts } };
    for (int i = 0; i < 2; i++) {
        nm_fail_nth(1);
        int rc = worker_fire_ex(w, cases[i].name, NULL, cases[i].opts);
        long failed = nm_disarm();
        cr_assert_eq(rc, WORKER_ENOMEM, "%s: %s", cases[i].name, worker_err_name(rc));
        cr_assert_eq(failed, 1);
        cr_assert_eq(nm.last_fn, NM_MALLOC, "%s failed", nm_fn_name[nm.last_fn]);
        cr_assert_geq(nm.last_size, cases[i].opts->copy_size);
    }
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&big_seen.count), 0, "a refused fire was delivered");
    cr_assert_eq(atomic_load(&small_seen.count), 0, "a refused fire was delivered");
    cr_assert_eq(atomic_load(&released), 0, "release ran for a refused fire");
    /* The same fires with memory: delivered once each, released once each. */
    for (int i = 0; i < 2; i++)
        cr_assert_eq(worker_fire_ex(w, cases[i].name, NULL, cases[i].opts), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&big_seen.count), 1);
    cr_assert_eq(atomic_load(&small_seen.count), 1);
    cr_assert_eq(atomic_load(&big_seen.bad) + atomic_load(&small_seen.bad), 0);
    cr_assert_eq(atomic_load(&released), 2);
    tu_stop_join_unref(w);
}

/* A fresh process: no event exists yet, so the event pool must carve its
 * first slab, and that allocation fails. */
Test(nomem, an_inline_copy_fails_cleanly_on_the_first_slab, .timeout = 30)
{
    tu_main();
    seen s = { .size = 8, .seed = 42 };
    worker_t *w = spawn_listening("SMALL", check_payload, &s); /* makes no event */
    unsigned char small[8];
    fill(small, sizeof small, 42);
    worker_fire_opts opts = { .copy = small, .copy_size = sizeof small };
    nm_fail_all();
    int rc = worker_fire_ex(w, "SMALL", NULL, &opts);
    long failed = nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    cr_assert_eq(failed, 1);
    cr_assert_eq(nm.last_fn, NM_ALIGNED_ALLOC, "%s failed", nm_fn_name[nm.last_fn]);
    cr_assert_eq(worker_fire_ex(w, "SMALL", NULL, &opts), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), 1, "delivered %d times", atomic_load(&s.count));
    cr_assert_eq(atomic_load(&s.bad), 0);
    tu_stop_join_unref(w);
}

/* ---- the tree --------------------------------------------------------- */

typedef struct ending_parent {
    long nth; /* the allocation of the end sequence that fails */
    worker_t *child;
    worker_t *daemon_child;
    tu_gate daemon_stopped;
} ending_parent;

static int open_gate_on_stop(const worker_event_t *e, void *userdata)
{
    (void)e;
    tu_gate_open(userdata);
    return 0;
}

/* Runs as an overlay on the test's thread, so that the injector (armed per
 * thread) reaches the end sequence that follows: one non-daemon and one
 * daemon child, then the nth allocation from here fails. */
static int parent_ends_out_of_memory(void *arg, void **result)
{
    (void)result;
    ending_parent *c = arg;
    c->child = worker_spawn(tu_task_forever, NULL, NULL);
    worker_opts daemon = { .daemon = WORKER_DAEMON_YES };
    c->daemon_child = worker_new(tu_task_forever, NULL, &daemon);
    if (!c->child || !c->daemon_child)
        return 1;
    if (!worker_listen(
            c->daemon_child, WORKER_EV_STOP_THREAD, open_gate_on_stop, &c->daemon_stopped, NULL)
        || worker_start(c->daemon_child) != WORKER_OK)
        return 2;
    nm_fail_nth(c->nth);
    return 0;
}

/* Whichever allocation of a parent's end sequence fails, the parent still
 * stops every child and joins the non-daemon one. */
Test(nomem, a_parent_out_of_memory_in_its_end_still_stops_its_children, .timeout = 60)
{
    worker_t *me = tu_main();
    for (long n = 1;; n++) {
        cr_assert_lt(n, 100);
        ending_parent c = { .nth = n };
        tu_gate_init(&c.daemon_stopped);
        worker_t *p = worker_new(parent_ends_out_of_memory, &c, NULL);
        cr_assert_not_null(p);
        cr_assert_eq(worker_start_overlay(p), WORKER_OK);
        long failed = nm_disarm();
        int err = -100;
        cr_assert_eq(worker_wait_thread(p, &err, NULL), WORKER_OK);
        cr_assert_eq(err, 0);
        cr_assert_not(worker_is_running(c.child),
            "allocation %ld (%s) failed: the non-daemon child outlived its parent's end", n,
            nm_fn_name[nm.last_fn]);
        cr_assert_eq(tu_gate_pass(&c.daemon_stopped, TU_WAIT), 0,
            "allocation %ld failed: the daemon child was never stopped", n);
        cr_assert_eq(worker_join(c.daemon_child), WORKER_OK);
        cr_assert_eq(worker_children_count(p), 0);
        worker_unref(c.child);
        worker_unref(c.daemon_child);
        worker_unref(p);
        tu_gate_destroy(&c.daemon_stopped);
        cr_assert_eq(worker_current(), me);
        if (!failed)
            break;
    }
}

/* worker_broadcast out of memory: WORKER_OK means the child got it. */
Test(nomem, a_broadcast_out_of_memory_says_so, .timeout = 30)
{
    worker_t *me = tu_main();
    atomic_int got = 0;
    worker_opts under_main = { .parent = me };
    worker_t *c = worker_new(NULL, NULL, &under_main);
    cr_assert_not_null(c);
    cr_assert_not_null(tu_sync_install(c));
    cr_assert_not_null(worker_listen(c, "NEWS", tu_count_listener, &got, NULL));
    cr_assert_eq(worker_start(c), WORKER_OK);
    cr_assert_eq(tu_sync(c), WORKER_OK); /* warm: this thread's event cache */
    int expected = 0;
    nm_fail_all();
    int rc = worker_broadcast("NEWS", NULL);
    nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    for (long n = 1;; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        rc = worker_broadcast("NEWS", NULL);
        long failed = nm_disarm();
        cr_assert(rc == WORKER_OK || (failed && rc == WORKER_ENOMEM), "allocation %ld: %s", n,
            worker_err_name(rc));
        expected += rc == WORKER_OK;
        cr_assert_eq(tu_sync(c), WORKER_OK);
        cr_assert_eq(atomic_load(&got), expected,
            "allocation %ld: broadcast returned %s, the child got %d of %d", n, worker_err_name(rc),
            atomic_load(&got), expected);
        if (!failed)
            break;
    }
    tu_stop_join_unref(c);
}

/* ---- channels --------------------------------------------------------- */

Test(nomem, channel_calls_fail_cleanly, .timeout = 30)
{
    worker_t *me = tu_main();
    worker_channel_t *ch = NULL;
    for (long n = 1; !ch; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        ch = worker_channel_new();
        if (nm_disarm())
            cr_assert_null(ch, "allocation %ld failed and worker_channel_new returned one", n);
        else
            cr_assert_not_null(ch);
    }
    seen s = { .size = 100, .seed = 9 };
    worker_t *w = spawn_listening("NEWS", check_payload, &s);
    for (long n = 1;; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        int rc = worker_channel_sub(ch, w);
        if (!nm_disarm()) {
            cr_assert_eq(rc, WORKER_OK);
            break;
        }
        cr_assert_eq(rc, WORKER_ENOMEM, "allocation %ld: %s", n, worker_err_name(rc));
        cr_assert_eq(worker_channel_count(ch), 0, "allocation %ld: half a subscription", n);
    }
    cr_assert_eq(worker_channel_count(ch), 1);
    /* Subscribing the current worker, unsubscribing: refused, unchanged. */
    nm_fail_all();
    int sub_rc = worker_channel_sub(ch, NULL);
    int unsub_rc = worker_channel_unsub(ch, w);
    nm_disarm();
    cr_assert_eq(sub_rc, WORKER_ENOMEM, "%s", worker_err_name(sub_rc));
    cr_assert_eq(unsub_rc, WORKER_ENOMEM, "%s", worker_err_name(unsub_rc));
    cr_assert_eq(worker_channel_count(ch), 1);

    unsigned char big[100];
    fill(big, sizeof big, 9);
    worker_fire_opts opts = { .copy = big, .copy_size = sizeof big, .release = on_release };
    nm_fail_all();
    int rc = worker_channel_pub_ex(ch, "NEWS", NULL, &opts);
    nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), 0, "a refused publish was delivered");
    cr_assert_eq(atomic_load(&released), 0, "release ran for a refused publish");
    cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", NULL, &opts), 1);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), 1);
    cr_assert_eq(atomic_load(&s.bad), 0);
    cr_assert_eq(atomic_load(&released), 1);

    /* Freeing needs no memory: nothing leaks, and the worker's own end
     * later does not touch the freed channel (both checked under ASan). */
    nm_fail_all();
    worker_channel_free(ch);
    nm_disarm();
    tu_stop_join_unref(w);
    cr_assert(worker_is_running(me));
}

/* ---- timers ----------------------------------------------------------- */

Test(nomem, worker_later_fails_cleanly, .timeout = 30)
{
    later_ctx c = { .to = tu_main() };
    worker_t *w = spawn_listening(NULL, NULL, NULL);
    worker_timer_t *const untouched = (worker_timer_t *)&c;
    const double delays[] = { 0, 0.001 };
    for (int i = 0; i < 2; i++) {
        for (long n = 1;; n++) {
            cr_assert_lt(n, 100);
            worker_timer_t *tm = untouched;
            nm_fail_nth(n);
            int rc = worker_later(w, later_ran, &c, delays[i], &tm);
            if (!nm_disarm()) {
                cr_assert_eq(rc, WORKER_OK);
                cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
                worker_timer_free(tm);
                break;
            }
            cr_assert_eq(rc, WORKER_ENOMEM, "delay %g, allocation %ld: %s", delays[i], n,
                worker_err_name(rc));
            cr_assert_eq(tm, untouched, "a failed later handed out a timer");
        }
    }
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&c.ran), 2, "timers ran %d times", atomic_load(&c.ran));
    tu_stop_join_unref(w);
}

/* A fresh process: the timer's event needs the event pool's first slab. */
Test(nomem, worker_later_fails_cleanly_on_the_first_slab, .timeout = 30)
{
    later_ctx c = { .to = tu_main() };
    worker_t *w = spawn_listening(NULL, NULL, NULL);
    nm_fail_all();
    int rc = worker_later(w, later_ran, &c, 0, NULL);
    nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    nm_fail_nth(2); /* the timer itself, then the event */
    rc = worker_later(w, later_ran, &c, 0, NULL);
    cr_assert_eq(nm_disarm(), 1);
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    cr_assert_eq(nm.last_fn, NM_ALIGNED_ALLOC, "%s failed", nm_fn_name[nm.last_fn]);
    cr_assert_eq(worker_later(w, later_ran, &c, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&c.ran), 1);
    tu_stop_join_unref(w);
}

/* worker_later returned WORKER_OK; the worker that keeps the timer runs out
 * of memory when it files it. The timer must still run. */
Test(nomem, an_accepted_timer_survives_its_owner_out_of_memory, .timeout = 30)
{
    later_ctx c = { .to = tu_main() };
    worker_timer_t *tm = NULL;
    /* Due well after the window without memory: were it due inside it (a
     * loaded machine), it would run there and its ACK could not be sent. */
    cr_assert_eq(worker_later(NULL, later_ran, &c, 0.2, &tm), WORKER_OK);
    nm_fail_all();
    int rc = worker_update(); /* files the timer */
    long failed = nm_disarm();
    cr_assert_eq(rc, WORKER_OK);
    cr_assert_gt(failed, 0);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK, "the accepted timer never ran");
    cr_assert_eq(atomic_load(&c.ran), 1);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_ESTATE);
    worker_timer_free(tm);
    /* Later timers are filed normally again. */
    cr_assert_eq(worker_later(NULL, later_ran, &c, 0.001, NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(atomic_load(&c.ran), 2);
}

/* ---- futures and defers ----------------------------------------------- */

static int answer_task(void *arg, void **result)
{
    (void)arg;
    *result = TU_PTR(42);
    return 0;
}

static int wait_go_task(void *arg, void **result)
{
    (void)arg;
    int rc = tu_wait("GO", NULL);
    *result = TU_PTR(7);
    return rc;
}

Test(nomem, futures_fail_cleanly, .timeout = 30)
{
    tu_main();
    for (long n = 1;; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        worker_future_t *f = worker_async(answer_task, NULL);
        if (nm_disarm()) {
            cr_assert_null(f, "allocation %ld failed and worker_async returned a future", n);
            continue;
        }
        cr_assert_not_null(f);
        void *r = NULL;
        cr_assert_eq(worker_future_get(f, &r), 0);
        cr_assert_eq(r, TU_PTR(42));
        worker_future_free(f);
        break;
    }
    void *r = NULL;
    nm_fail_all();
    int rc = worker_await(answer_task, NULL, &r);
    nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    cr_assert_eq(worker_await(answer_task, NULL, &r), 0);
    cr_assert_eq(r, TU_PTR(42));

    /* A get that cannot register itself: refused; the task goes on. */
    worker_future_t *f = worker_async(wait_go_task, NULL);
    cr_assert_not_null(f);
    nm_fail_all();
    rc = worker_future_get(f, &r);
    nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    cr_assert(worker_is_running(worker_future_worker(f)));
    cr_assert_eq(worker_fire(worker_future_worker(f), "GO", NULL), WORKER_OK);
    cr_assert_eq(worker_future_get(f, &r), 0);
    cr_assert_eq(r, TU_PTR(7));
    worker_future_free(f);
}

Test(nomem, defer_calls_fail_cleanly, .timeout = 30)
{
    tu_main();
    nm_fail_all();
    worker_defer_t *d = worker_defer_new();
    nm_disarm();
    cr_assert_null(d);
    d = worker_defer_new();
    cr_assert_not_null(d);
    void *v = NULL;
    nm_fail_all();
    int rc = worker_defer_get(d, &v);
    nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    cr_assert_eq(worker_defer_resolve(d, TU_PTR(5)), WORKER_OK);
    cr_assert_eq(worker_defer_get(d, &v), WORKER_OK);
    cr_assert_eq(v, TU_PTR(5));
    worker_defer_free(d);
}

typedef struct defer_waiter_ctx {
    worker_defer_t *d;
    worker_t *to;
} defer_waiter_ctx;

static void ack_fn(void *arg)
{
    tu_ack(arg, 1);
}

/* Waits on the defer, then fires GOT (data: the value) at `to`. The ACK
 * comes from inside the get's loop, so the waiter is registered by then. */
static int defer_waiter(void *arg, void **result)
{
    defer_waiter_ctx *c = arg;
    worker_later(NULL, ack_fn, c->to, 0, NULL);
    void *v = NULL;
    int rc = worker_defer_get(c->d, &v);
    worker_fire(c->to, "GOT", v);
    *result = v;
    return rc;
}

typedef struct resolver {
    worker_defer_t *d;
    long nth; /* 0: every allocation fails */
    int rc;
    long failed;
} resolver;

/* A new thread (no context, no root worker yet) settles the defer. */
static void *resolve_thread(void *arg)
{
    resolver *r = arg;
    if (r->nth)
        nm_fail_nth(r->nth);
    else
        nm_fail_all();
    r->rc = worker_defer_resolve(r->d, TU_PTR(99));
    r->failed = nm_disarm();
    return NULL;
}

Test(nomem, a_defer_settled_out_of_memory_wakes_its_waiter_or_stays_pending, .timeout = 30)
{
    defer_waiter_ctx c = { .d = worker_defer_new(), .to = tu_main() };
    cr_assert_not_null(c.d);
    worker_t *w = worker_spawn(defer_waiter, &c, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    for (long n = 0;; n++) {
        cr_assert_lt(n, 100);
        resolver r = { .d = c.d, .nth = n };
        pthread_t thread;
        cr_assert_eq(pthread_create(&thread, NULL, resolve_thread, &r), 0);
        pthread_join(thread, NULL);
        if (r.failed && r.rc == WORKER_ENOMEM)
            continue; /* refused: still pending, the waiter still waits */
        cr_assert_eq(r.rc, WORKER_OK, "allocation %ld: %s", n, worker_err_name(r.rc));
        break;
    }
    void *got = NULL;
    int rc = tu_wait("GOT", &got);
    if (rc != WORKER_OK)
        worker_stop(w); /* so that the test ends */
    cr_assert_eq(rc, WORKER_OK, "the waiter was never told (%s)", worker_err_name(rc));
    cr_assert_eq(got, TU_PTR(99));
    int err = -1;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, 0);
    worker_unref(w);
    worker_defer_free(c.d);
}

/* ---- tracing ---------------------------------------------------------- */

/* Once the library is set up, starting a trace allocates nothing; events
 * fired while out of memory and tracing are refused whole. */
Test(nomem, tracing_out_of_memory, .timeout = 30)
{
    char path[] = "/tmp/test_nomem-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    tu_main();
    seen s = { .size = 0 };
    worker_t *w = spawn_listening("T", check_payload, &s);
    nm_fail_all();
    int start_rc = worker_trace_start(path);
    int fire_rc = worker_fire(w, "T", NULL); /* traced: its first slab fails */
    nm_disarm();
    cr_assert_eq(start_rc, WORKER_OK, "%s", worker_err_name(start_rc));
    cr_assert_eq(fire_rc, WORKER_ENOMEM, "%s", worker_err_name(fire_rc));
    cr_assert_eq(worker_fire(w, "T", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), 1);
    tu_stop_join_unref(w);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    unlink(path);
}

/* ---- the sweep: fail the Nth allocation of a short scenario ----------- */

enum sweep_outcome {
    SWEEP_INJECTED, /* an allocation failed; every check passed */
    SWEEP_CLEAN, /* no allocation failed (N is past the scenario) */
    SWEEP_BAD_CODE, /* a call returned something else than OK or its error */
    SWEEP_NOT_ALL_OK, /* nothing failed, yet a step did not succeed */
    SWEEP_LOST, /* accepted events and deliveries differ */
    SWEEP_RELEASE, /* release calls and accepted events with release differ */
    SWEEP_PAYLOAD, /* a copied payload arrived damaged */
    SWEEP_OUTCOMES
};

static const char *const sweep_outcome_name[SWEEP_OUTCOMES]
    = { "injected", "clean", "a call returned a wrong code",
          "a step failed without an injected failure", "accepted events were lost or duplicated",
          "release did not run once per accepted event", "a payload arrived damaged" };

static atomic_int sweep_delivered, sweep_bad;

static int sweep_listener(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    size_t size = worker_event_size(e);
    const unsigned char *p = worker_event_data(e);
    bool ok = size == 8 || size == 100;
    for (size_t i = 0; ok && i < size; i++)
        ok = p[i] == (unsigned char)(size + i);
    if (!ok)
        atomic_fetch_add(&sweep_bad, 1);
    atomic_fetch_add(&sweep_delivered, 1);
    return 0;
}

/* Spawn a worker, listen, fire four copies (inline, and on the heap with a
 * release), stop, join, unref, with the nth allocation failing (0: none).
 * Every step either works or returns its error; what was accepted is
 * delivered and released exactly once. */
static enum sweep_outcome sweep_once(long n)
{
    unsigned char small[8], big[100];
    fill(small, sizeof small, sizeof small);
    fill(big, sizeof big, sizeof big);
    atomic_store(&sweep_delivered, 0);
    atomic_store(&sweep_bad, 0);
    atomic_store(&released, 0);
    bool bad_code = false;
    int accepted = 0, accepted_release = 0;

    nm_fail_nth(n);
    worker_opts opts = { .name = "sweep" };
    worker_t *w = worker_spawn(NULL, NULL, &opts);
    worker_listener_t *l = w ? worker_listen(w, "SWEEP", sweep_listener, NULL, NULL) : NULL;
    for (int i = 0; w && i < 4; i++) {
        worker_fire_opts fo = i % 2
            ? (worker_fire_opts) { .copy = big, .copy_size = sizeof big, .release = on_release }
            : (worker_fire_opts) { .copy = small, .copy_size = sizeof small };
        int rc = worker_fire_ex(w, "SWEEP", NULL, &fo);
        accepted += rc == WORKER_OK;
        accepted_release += rc == WORKER_OK && i % 2;
        bad_code |= rc != WORKER_OK && rc != WORKER_ENOMEM;
    }
    int stop_rc = w ? worker_stop(w) : WORKER_OK;
    int join_rc = w && stop_rc == WORKER_OK ? worker_join(w) : WORKER_OK;
    long failed = nm_disarm();
    bool listened = l != NULL;
    bool all_ok = w && listened && accepted == 4 && stop_rc == WORKER_OK;

    bad_code |= (stop_rc != WORKER_OK && stop_rc != WORKER_ENOMEM) || join_rc != WORKER_OK;
    if (w && stop_rc != WORKER_OK) { /* memory is back: stop it for good */
        bad_code |= worker_stop(w) != WORKER_OK;
        worker_join(w);
    }
    worker_unref(w);
    if (bad_code)
        return SWEEP_BAD_CODE;
    if (!failed && !all_ok)
        return SWEEP_NOT_ALL_OK;
    if (atomic_load(&sweep_delivered) != (listened ? accepted : 0))
        return SWEEP_LOST;
    if (atomic_load(&released) != accepted_release)
        return SWEEP_RELEASE;
    if (atomic_load(&sweep_bad))
        return SWEEP_PAYLOAD;
    return failed ? SWEEP_INJECTED : SWEEP_CLEAN;
}

/* The scenario as a process's first use of the library: one process per N
 * (fork from this test's process, which never touches the library), so
 * that each N meets the one-time set-up, the first slabs and the thread
 * contexts. The child also runs the scenario again without failures (the
 * library must have recovered), then checks for leaks. */
Test(nomem, sweep_from_first_use, .timeout = 120)
{
    for (long n = 1;; n++) {
        cr_assert_lt(n, 400, "the scenario still fails an allocation at N = 400");
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            alarm(30); /* a hang ends the child with SIGALRM */
            enum sweep_outcome out = sweep_once(n);
            if (out == SWEEP_INJECTED) {
                enum sweep_outcome again = sweep_once(0);
                if (again != SWEEP_CLEAN)
                    out = again == SWEEP_INJECTED ? SWEEP_NOT_ALL_OK : again;
            }
#ifdef NM_ASAN
            __lsan_do_leak_check(); /* a leak aborts (abort_on_error) */
#endif
            _exit((int)out);
        }
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status), "N = %ld: the scenario died of signal %d%s", n,
            WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
        int out = WEXITSTATUS(status);
        cr_assert(out == SWEEP_INJECTED || out == SWEEP_CLEAN, "N = %ld: %s", n,
            out < SWEEP_OUTCOMES ? sweep_outcome_name[out] : "?");
        if (out == SWEEP_CLEAN) {
            cr_assert_gt(n, 1, "the injector saw no allocation of the scenario");
            break;
        }
    }
}

/* The same scenario in one process, after a first run has made the
 * contexts and slabs: the allocations of steady use. */
Test(nomem, sweep_in_steady_use, .timeout = 60)
{
    tu_main();
    cr_assert_eq(sweep_once(0), SWEEP_CLEAN);
    for (long n = 1;; n++) {
        cr_assert_lt(n, 400, "the scenario still fails an allocation at N = 400");
        enum sweep_outcome out = sweep_once(n);
        cr_assert(
            out == SWEEP_INJECTED || out == SWEEP_CLEAN, "N = %ld: %s", n, sweep_outcome_name[out]);
        if (out == SWEEP_CLEAN) {
            cr_assert_gt(n, 1, "the injector saw no allocation of the scenario");
            break;
        }
    }
    cr_assert_eq(sweep_once(0), SWEEP_CLEAN);
}

/* ---- the injector on every thread ------------------------------------- */

typedef struct on_thread {
    void *got; /* what malloc gave on the worker's thread */
    worker_channel_t *channel; /* what the library gave there */
    tu_gate done;
} on_thread;

static void allocate_here(void *arg)
{
    on_thread *o = arg;
    o->got = malloc(16);
    o->channel = worker_channel_new();
    tu_gate_open(&o->done);
}

/* The process-wide plan reaches the threads the library starts; the
 * thread's own plan never does. */
Test(nomem, the_process_wide_plan_reaches_every_thread, .timeout = 30)
{
    tu_main();
    worker_t *w = spawn_listening(NULL, NULL, NULL);
    on_thread o = { 0 };
    tu_gate_init(&o.done);

    nm_fail_all(); /* this thread's plan: the worker's thread is not affected */
    int rc = worker_later(w, allocate_here, &o, 0, NULL);
    nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM);
    cr_assert_eq(worker_later(w, allocate_here, &o, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&o.done, TU_WAIT), 0);
    cr_assert_not_null(o.got);
    cr_assert_not_null(o.channel);
    free(o.got);
    worker_channel_free(o.channel);

    nm_others_fail_all(); /* every thread but this one */
    void *mine = malloc(16);
    cr_assert_eq(worker_later(w, allocate_here, &o, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&o.done, TU_WAIT), 0);
    long failed = nm_any_disarm();
    cr_assert_not_null(mine);
    free(mine);
    cr_assert_null(o.got);
    cr_assert_null(o.channel);
    cr_assert_geq(failed, 2);

    nm_any_fail_nth(2); /* the timer (this thread's), then the worker's malloc */
    cr_assert_eq(worker_later(w, allocate_here, &o, 0, NULL), WORKER_OK); /* event from caches */
    cr_assert_eq(tu_gate_pass(&o.done, TU_WAIT), 0);
    failed = nm_any_disarm();
    cr_assert_eq(failed, 1);
    cr_assert_null(o.got);
    cr_assert_not_null(o.channel);
    worker_channel_free(o.channel);
    tu_gate_destroy(&o.done);
    tu_stop_join_unref(w);
}

/* ---- thread-specific keys and values ---------------------------------- */

typedef struct plain_thread {
    worker_t *current;
    worker_t *again;
} plain_thread;

static void *use_library_twice(void *arg)
{
    plain_thread *p = arg;
    p->current = worker_current(); /* its value is refused: no context */
    nm_any_disarm();
    p->again = worker_current();
    return NULL;
}

/* A fresh process: a refused key makes the first contexts fail with
 * ENOMEM, and the next use tries again. A refused value: a plain thread
 * gets no context; a thread the library starts runs all the same and ends
 * its context itself (no leak under ASan). */
Test(nomem, refused_keys_and_values_are_not_sticky, .timeout = 30)
{
    nm_any_fail_nth_of(NM_BIT(NM_KEY_CREATE), 1);
    worker_t *me = worker_current();
    cr_assert_eq(nm_any_disarm(), 1);
    cr_assert_null(me);
    me = tu_main();
    cr_assert_not_null(me);

    nm_any_fail_nth_of(NM_BIT(NM_SETSPECIFIC), 1); /* the worker's thread's */
    atomic_int got = 0;
    worker_t *w = spawn_listening("EV", tu_count_listener, &got);
    cr_assert_eq(worker_fire(w, "EV", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(nm_any_disarm(), 1);
    cr_assert_eq(atomic_load(&got), 1);
    tu_stop_join_unref(w);

    plain_thread p = { 0 };
    pthread_t thread;
    nm_any_fail_nth_of(NM_BIT(NM_SETSPECIFIC), 1); /* the thread disarms after its first try */
    cr_assert_eq(pthread_create(&thread, NULL, use_library_twice, &p), 0);
    pthread_join(thread, NULL);
    cr_assert_null(p.current);
    cr_assert_not_null(p.again);
}

/* ---- pools: leaving k objects ----------------------------------------- */

/* This thread's pools of events and queue nodes hold exactly k objects
 * each, and the next of either needs a new slab. */
typedef struct nm_starved {
    nm_hoard events, nodes;
} nm_starved;

static void nm_leave(nm_hoard *h, int k)
{
    for (int i = 0; i < k && h->head; i++) {
        void *o = h->head;
        h->head = *(void **)o;
        h->count--;
        wk_pool_free(h->cls, o);
    }
}

static void nm_starve(nm_starved *s, int k)
{
    nm_hoard_take(&s->events, WK_POOL_EVENT);
    nm_hoard_take(&s->nodes, WK_POOL_QNODE);
    nm_leave(&s->events, k);
    nm_leave(&s->nodes, k);
}

static void nm_feed(nm_starved *s)
{
    nm_hoard_give_back(&s->events);
    nm_hoard_give_back(&s->nodes);
}

/* Queue nodes for this thread's own pushes while another thread is starved
 * of them: the depot's slab is shared, so a thread that carves a new one
 * would feed the starved thread too. nm_stock_take() takes every node
 * there is, then `count` new ones (at most a cache's worth) kept aside;
 * nm_stock_use() puts those in this thread's cache, after the other thread
 * has taken what the new slab had left. */
typedef struct nm_stock {
    nm_hoard all;
    nm_hoard mine;
} nm_stock;

static void nm_stock_take_of(nm_stock *s, enum wk_pool_class cls, size_t count)
{
    nm_hoard_take(&s->all, cls);
    s->mine = (nm_hoard) { .cls = cls };
    for (size_t i = 0; i < count; i++) {
        void *o = wk_pool_alloc(cls);
        cr_assert_not_null(o);
        *(void **)o = s->mine.head;
        s->mine.head = o;
        s->mine.count++;
    }
}

static void nm_stock_take(nm_stock *s, size_t count)
{
    nm_stock_take_of(s, WK_POOL_QNODE, count);
}

static void nm_stock_use(nm_stock *s)
{
    nm_hoard_give_back(&s->mine);
}

/* ---- sweeps in a fresh process per N ---------------------------------- */

/* A scenario run with the process-wide plan armed for N; returns NULL when
 * every check passed, else what went wrong. Sets *failed to how many calls
 * the injector failed. */
typedef const char *(*nm_scenario)(long n, long *failed);

enum { NM_RUN_INJECTED = 0, NM_RUN_CLEAN = 1, NM_RUN_BAD = 2 };

/* One fresh process per N (forked from this test's process, which has not
 * touched the library), so that each N meets the first slabs, keys and
 * contexts; a hang ends the child with SIGALRM, a leak (ASan) with SIGABRT.
 * Until a run in which nothing failed. */
static void nm_sweep_forked(const char *what, nm_scenario run, long max_n)
{
    for (long n = 1;; n++) {
        cr_assert_lt(n, max_n, "%s: still failing an allocation at N = %ld", what, max_n);
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            close(fds[0]);
            alarm(20);
            long failed = 0;
            const char *bad = run(n, &failed);
#ifdef NM_ASAN
            if (!bad)
                __lsan_do_leak_check(); /* a leak aborts (abort_on_error) */
#endif
            if (bad && write(fds[1], bad, strlen(bad)) < 0)
                _exit(NM_RUN_BAD);
            _exit(bad ? NM_RUN_BAD : failed ? NM_RUN_INJECTED : NM_RUN_CLEAN);
        }
        close(fds[1]);
        char msg[256] = "";
        size_t len = 0;
        ssize_t got;
        while (len < sizeof msg - 1 && (got = read(fds[0], msg + len, sizeof msg - 1 - len)) > 0)
            len += (size_t)got;
        msg[len] = 0;
        close(fds[0]);
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status), "%s, N = %ld: died of signal %d%s", what, n, WTERMSIG(status),
            WTERMSIG(status) == SIGALRM ? " (it hung)" : " (a crash, or a leak under ASan)");
        cr_assert_neq(WEXITSTATUS(status), NM_RUN_BAD, "%s, N = %ld: %s", what, n, msg);
        if (WEXITSTATUS(status) == NM_RUN_CLEAN) {
            cr_assert_gt(n, 1, "%s: the injector saw no call of the scenario", what);
            break;
        }
    }
}

/* ---- end sequences ---------------------------------------------------- */

typedef struct downs {
    atomic_int of[2]; /* WORKER_DOWN from the targets below */
    worker_t *target[2];
    int expected[2];
} downs;

static int count_down(const worker_event_t *e, void *userdata)
{
    downs *d = userdata;
    for (int i = 0; i < 2; i++)
        if (worker_event_target(e) == d->target[i])
            atomic_fetch_add(&d->of[i], 1);
    return 0;
}

static bool downs_arrived(const worker_event_t *e, void *userdata)
{
    (void)e;
    downs *d = userdata;
    return atomic_load(&d->of[0]) >= d->expected[0] && atomic_load(&d->of[1]) >= d->expected[1];
}

static worker_t *start_under(worker_t *parent, const char *name, int daemon, int *rc)
{
    worker_opts o = { .name = name, .parent = parent, .daemon = daemon, .quiet = true };
    worker_t *w = worker_new(NULL, NULL, &o);
    *rc = w ? worker_start(w) : WORKER_ENOMEM;
    if (w && *rc != WORKER_OK) {
        worker_unref(w);
        w = NULL;
    }
    return w;
}

/* A pool hoard taken on a worker's thread (its cache, the depot, the rest of
 * the slab), so that its next object needs a new slab. */
typedef struct thread_hoard {
    nm_starved s;
    tu_gate done;
} thread_hoard;

static void hoard_here(void *arg)
{
    thread_hoard *h = arg;
    nm_starve(&h->s, 0);
    tu_gate_open(&h->done);
}

/* A tree P (C (G), D daemon) ends: P is stopped from the main thread,
 * which waits for it and monitors P and C. Whichever allocation of any
 * thread fails, the end completes (no hang: each parent hears its
 * children end), the waiter returns, every monitor whose worker_monitor
 * returned WORKER_OK gets its WORKER_DOWN, P hears C's CHILD_THREAD_END. */
static const char *end_sequence_scenario(long n, long *failed, bool others)
{
    worker_t *me = worker_current();
    downs d = { 0 };
    atomic_int c_ended = 0;
    if (!me || !worker_listen(me, WORKER_EV_WORKER_DOWN, count_down, &d, NULL))
        return "no memory before the injector was armed";
    if (!others)
        nm_any_fail_nth(n);
    int rc;
    worker_opts po = { .name = "P", .quiet = true, .no_parent = true };
    worker_t *p = worker_new(NULL, NULL, &po);
    worker_t *c = NULL, *g = NULL, *dm = NULL;
    bool p_listens = false;
    if (p) {
        p_listens = worker_listen(p, WORKER_EV_CHILD_THREAD_END, tu_count_listener, &c_ended, NULL)
            != NULL;
        if (worker_start(p) != WORKER_OK) {
            worker_unref(p);
            p = NULL;
        }
    }
    if (p) {
        c = start_under(p, "C", WORKER_DAEMON_INHERIT, &rc);
        g = c ? start_under(c, "G", WORKER_DAEMON_INHERIT, &rc) : NULL;
        dm = start_under(p, "D", WORKER_DAEMON_YES, &rc);
        d.target[0] = p;
        d.target[1] = c;
        d.expected[0] = worker_monitor(p) == WORKER_OK;
        d.expected[1] = c && worker_monitor(c) == WORKER_OK;
    }
    /* Starved: the worker threads have only what their pool caches hold
     * (none of the depot, no new slab), and every other allocation fails on
     * them; this thread keeps a stock of its own. */
    thread_hoard hoards[4] = { 0 };
    nm_stock events, nodes;
    if (others) {
        nm_stock_take_of(&events, WK_POOL_EVENT, 40);
        nm_stock_take_of(&nodes, WK_POOL_QNODE, 40);
        worker_t *tree[4] = { p, c, g, dm };
        for (int i = 0; i < 4; i++) {
            tu_gate_init(&hoards[i].done);
            if (tree[i]
                && (worker_later(tree[i], hoard_here, &hoards[i], 0, NULL) != WORKER_OK
                    || tu_gate_pass(&hoards[i].done, TU_WAIT) != 0))
                return "could not starve the tree";
        }
        nm_stock_use(&events);
        nm_stock_use(&nodes);
        nm_others_fail_all();
    }
    const char *bad = NULL;
    if (p) {
        while ((rc = worker_stop(p)) == WORKER_ENOMEM)
            ;
        if (rc != WORKER_OK)
            bad = "worker_stop failed";
        int err = -100;
        rc = worker_wait_thread(p, &err, NULL);
        if (rc == WORKER_ENOMEM)
            rc = worker_join(p);
        else if (rc == WORKER_OK && err != WORKER_EXIT)
            bad = "the waiter got a wrong end";
        if (rc != WORKER_OK)
            bad = "the wait for P failed";
        if (!downs_arrived(NULL, &d)
            && worker_wait_until(downs_arrived, &d, TU_WAIT, NULL) != WORKER_OK)
            bad = "a monitor never got its WORKER_DOWN";
        if ((c && worker_is_running(c)) || (g && worker_is_running(g)))
            bad = "a non-daemon child outlived its parent's end";
        if (dm)
            worker_join(dm);
    }
    *failed = nm_any_disarm();
    if (others) {
        for (int i = 0; i < 4; i++) {
            nm_feed(&hoards[i].s);
            tu_gate_destroy(&hoards[i].done);
        }
        nm_hoard_give_back(&events.all);
        nm_hoard_give_back(&nodes.all);
    }
    if (!bad && p && c && p_listens && atomic_load(&c_ended) < 1)
        bad = "P never heard CHILD_THREAD_END";
    if (!bad && (atomic_load(&d.of[0]) > 1 || atomic_load(&d.of[1]) > 1))
        bad = "a monitor got two WORKER_DOWNs";
    worker_unref(g);
    worker_unref(dm);
    worker_unref(c);
    worker_unref(p);
    worker_unlisten_fn(me, count_down, &d);
    return bad;
}

static const char *end_sequences_nth(long n, long *failed)
{
    return end_sequence_scenario(n, failed, false);
}

Test(nomem, end_sequences_survive_any_allocation_failing_on_any_thread, .timeout = 120)
{
    nm_sweep_forked("end sequences", end_sequences_nth, 400);
}

/* Every worker thread is out of memory from the stop on (nothing but what
 * its pool caches hold): the whole tree still ends, and everyone who
 * watches hears of it. */
Test(nomem, end_sequences_need_no_memory_on_the_ending_threads, .timeout = 30)
{
    long failed = 0;
    const char *bad = end_sequence_scenario(0, &failed, true);
    cr_assert_null(bad, "%s", bad);
    cr_assert_gt(failed, 0);
}

/* ---- first use, on every thread -------------------------------------- */

static void *fire_from_a_plain_thread(void *arg)
{
    worker_t *to = arg;
    worker_fire(to, "PLAIN", NULL);
    return NULL;
}

/* The first use of the library with one key, value or allocation of any
 * thread failing: every call works or says so, and the same calls work
 * again once the failure is past. */
static const char *first_use_scenario(long n, long *failed)
{
    nm_any_fail_nth(n);
    worker_t *me = worker_current();
    worker_t *w = me ? worker_spawn(NULL, NULL, NULL) : NULL;
    pthread_t thread;
    if (w && pthread_create(&thread, NULL, fire_from_a_plain_thread, me) == 0)
        pthread_join(thread, NULL);
    if (w) {
        while (worker_stop(w) == WORKER_ENOMEM)
            ;
        worker_join(w);
    }
    *failed = nm_any_disarm();
    worker_unref(w);
    if (!worker_current())
        return "no root worker once memory was back";
    worker_t *again = worker_spawn(NULL, NULL, NULL);
    if (!again)
        return "no worker once memory was back";
    if (!tu_sync_install(again) || tu_sync(again) != WORKER_OK)
        return "a worker made once memory was back did not answer";
    tu_stop_join_unref(again);
    return NULL;
}

Test(nomem, first_use_survives_any_allocation_failing_on_any_thread, .timeout = 120)
{
    nm_sweep_forked("first use", first_use_scenario, 400);
}

/* ---- broadcast -------------------------------------------------------- */

/* worker_fire_ex with .broadcast out of memory: either every worker of the
 * subtree gets the event (WORKER_OK) or none does (WORKER_ENOMEM, release
 * not called). */
Test(nomem, a_fired_broadcast_out_of_memory_reaches_all_or_none, .timeout = 60)
{
    tu_main();
    atomic_int got[6] = { 0 };
    worker_t *w[6];
    const int parent_of[6] = { -1, 0, 0, 1, 1, 2 }; /* r, c1, c2, g11, g12, g21 */
    for (int i = 0; i < 6; i++) {
        worker_opts o = { .no_parent = i == 0, .parent = i ? w[parent_of[i]] : NULL };
        w[i] = worker_new(NULL, NULL, &o);
        cr_assert_not_null(w[i]);
        cr_assert_not_null(worker_listen(w[i], "NEWS", tu_count_listener, &got[i], NULL));
        cr_assert_not_null(tu_sync_install(w[i]));
        cr_assert_eq(worker_start(w[i]), WORKER_OK);
        cr_assert_eq(tu_sync(w[i]), WORKER_OK); /* warm: events and nodes are cached */
    }
    int expected = 0, releases = 0;
    worker_fire_opts all = { .broadcast = true, .release = on_release };
    for (long n = 1;; n++) {
        cr_assert_lt(n, 100);
        nm_fail_nth(n);
        int rc = worker_fire_ex(w[0], "NEWS", NULL, &all);
        long failed = nm_disarm();
        cr_assert(rc == WORKER_OK || (failed && rc == WORKER_ENOMEM), "allocation %ld: %s", n,
            worker_err_name(rc));
        expected += rc == WORKER_OK;
        releases += rc == WORKER_OK;
        for (int i = 0; i < 6; i++) {
            cr_assert_eq(tu_sync(w[i]), WORKER_OK);
            cr_assert_eq(atomic_load(&got[i]), expected,
                "allocation %ld: the broadcast returned %s and worker %d got %d of %d", n,
                worker_err_name(rc), i, atomic_load(&got[i]), expected);
        }
        cr_assert_eq(atomic_load(&released), releases);
        if (!failed)
            break;
    }
    /* The same from a fresh pool: the queue nodes of the hops are what
     * runs out. */
    for (int k = 0;; k++) {
        cr_assert_lt(k, 20);
        nm_hoard h;
        nm_hoard_take(&h, WK_POOL_QNODE);
        for (int i = 0; i < k && h.head; i++) { /* leave k nodes in this thread's cache */
            void *o = h.head;
            h.head = *(void **)o;
            h.count--;
            wk_pool_free(WK_POOL_QNODE, o);
        }
        nm_fail_slabs();
        int rc = worker_fire_ex(w[0], "NEWS", NULL, &all);
        long failed = nm_disarm();
        nm_hoard_give_back(&h);
        cr_assert(rc == WORKER_OK || (failed && rc == WORKER_ENOMEM), "%d nodes: %s", k,
            worker_err_name(rc));
        expected += rc == WORKER_OK;
        for (int i = 0; i < 6; i++) {
            cr_assert_eq(tu_sync(w[i]), WORKER_OK);
            cr_assert_eq(atomic_load(&got[i]), expected, "%d nodes: worker %d got %d of %d", k, i,
                atomic_load(&got[i]), expected);
        }
        if (rc == WORKER_OK)
            break;
    }
    for (int i = 5; i >= 0; i--)
        tu_stop_join_unref(w[i]);
}

/* ---- channels: the last unref ------------------------------------------ */

typedef struct last_unref {
    worker_t *w;
    long failed;
} last_unref;

/* A thread with no context: the last unref cannot even make one. */
static void *unref_without_memory(void *arg)
{
    last_unref *u = arg;
    nm_fail_all();
    worker_unref(u->w);
    u->failed = nm_disarm();
    return NULL;
}

/* A worker's last unref takes it out of every channel it is on, whichever
 * allocation fails, also on a thread that has no context: nothing on the
 * channels points at the freed worker (publishing reaches nobody; under
 * ASan a stale pointer would be a use after free). */
Test(nomem, a_worker_leaves_its_channels_without_memory, .timeout = 60)
{
    tu_main();
    worker_channel_t *ch[3];
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(ch[i] = worker_channel_new());
    for (long n = 0;; n++) { /* n = 0: on a thread without a context */
        cr_assert_lt(n, 100);
        worker_t *w = worker_spawn(NULL, NULL, NULL);
        cr_assert_not_null(w);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(worker_channel_sub(ch[i], w), WORKER_OK);
        worker_stop(w);
        worker_join(w);
        long failed;
        if (n == 0) {
            last_unref u = { .w = w };
            pthread_t thread;
            cr_assert_eq(pthread_create(&thread, NULL, unref_without_memory, &u), 0);
            pthread_join(thread, NULL);
            failed = u.failed;
            cr_assert_gt(failed, 0);
        } else {
            nm_fail_nth(n);
            worker_unref(w); /* the last reference */
            failed = nm_disarm();
        }
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(worker_channel_count(ch[i]), 0,
                "allocation %ld: a freed worker is still on channel %d", n, i);
            cr_assert_eq(worker_channel_pub(ch[i], "NEWS", NULL), 0);
        }
        if (n > 0 && !failed)
            break;
    }
    /* The channels still work. */
    atomic_int got = 0;
    worker_t *w = spawn_listening("NEWS", tu_count_listener, &got);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(worker_channel_sub(ch[i], w), WORKER_OK);
        cr_assert_eq(worker_channel_pub(ch[i], "NEWS", NULL), 1);
    }
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&got), 3);
    tu_stop_join_unref(w);
    for (int i = 0; i < 3; i++)
        worker_channel_free(ch[i]);
}

/* ---- defer: several waiters ------------------------------------------- */

typedef struct defer_waiters {
    worker_defer_t *d;
    worker_t *to;
    worker_t *w[3];
    atomic_int fulfills[3];
} defer_waiters;

Test(nomem, a_defer_settled_out_of_memory_tells_every_waiter_once, .timeout = 60)
{
    worker_t *me = tu_main();
    for (int k = 0;; k++) {
        cr_assert_lt(k, 20);
        defer_waiters dw = { .d = worker_defer_new(), .to = me };
        cr_assert_not_null(dw.d);
        defer_waiter_ctx c = { .d = dw.d, .to = me };
        for (int i = 0; i < 3; i++) {
            dw.w[i] = worker_new(defer_waiter, &c, NULL);
            cr_assert_not_null(dw.w[i]);
            cr_assert_not_null(worker_listen(
                dw.w[i], WORKER_EV_DEFER_FULFILL, tu_count_listener, &dw.fulfills[i], NULL));
            cr_assert_eq(worker_start(dw.w[i]), WORKER_OK);
            cr_assert_eq(tu_wait_ack(NULL), WORKER_OK); /* registered */
        }
        nm_starved s;
        nm_starve(&s, k);
        nm_fail_slabs();
        int rc = worker_defer_resolve(dw.d, TU_PTR(99));
        long failed = nm_disarm();
        nm_feed(&s);
        cr_assert_eq(rc, WORKER_OK, "%d events and nodes: %s", k, worker_err_name(rc));
        for (int i = 0; i < 3; i++) {
            void *got = NULL;
            cr_assert_eq(tu_wait("GOT", &got), WORKER_OK, "%d: a waiter was never told", k);
            cr_assert_eq(got, TU_PTR(99));
        }
        for (int i = 0; i < 3; i++) {
            int err = -1;
            cr_assert_eq(worker_wait_thread(dw.w[i], &err, NULL), WORKER_OK);
            cr_assert_eq(err, 0);
            cr_assert_eq(atomic_load(&dw.fulfills[i]), 1,
                "%d: waiter %d saw DEFER_FULFILL %d times", k, i, atomic_load(&dw.fulfills[i]));
            worker_unref(dw.w[i]);
        }
        worker_defer_free(dw.d);
        if (!failed)
            break;
    }
}

/* ---- monitors of an ended worker -------------------------------------- */

/* worker_monitor on a worker that has ended sends WORKER_DOWN at once:
 * WORKER_OK means it was sent; out of memory it returns WORKER_ENOMEM and
 * a later call sends it. */
Test(nomem, a_monitor_of_an_ended_worker_out_of_memory_says_so, .timeout = 30)
{
    tu_main();
    for (int k = 0;; k++) {
        cr_assert_lt(k, 20);
        worker_t *w = worker_spawn(NULL, NULL, NULL);
        cr_assert_not_null(w);
        tu_stop_join_unref(worker_ref(w));
        nm_starved s;
        nm_starve(&s, k);
        nm_fail_slabs();
        int rc = worker_monitor(w);
        long failed = nm_disarm();
        nm_feed(&s);
        cr_assert(
            rc == WORKER_OK || (failed && rc == WORKER_ENOMEM), "%d: %s", k, worker_err_name(rc));
        if (rc != WORKER_OK)
            cr_assert_eq(worker_monitor(w), WORKER_OK);
        void *d = NULL;
        cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, w, &d), WORKER_OK,
            "%d: worker_monitor returned WORKER_OK and no WORKER_DOWN came", k);
        cr_assert_eq(((worker_down_t *)d)->worker, w);
        worker_unref(w);
        if (!failed)
            break;
    }
}

/* ---- listeners on an owner without memory ------------------------------ */

static int open_gate_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    tu_gate_open(userdata);
    return 0;
}

/* Listeners added and removed from a thread with memory, for an owner
 * thread without any: every snapshot the owner rebuilds is right. */
Test(nomem, an_owner_without_memory_sees_every_listener_change, .timeout = 30)
{
    tu_main();
    atomic_int a = 0, a2 = 0, b = 0;
    tu_gate g;
    tu_gate_init(&g);
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "G", open_gate_listener, &g, NULL));
    worker_listener_t *la = worker_listen(w, "A", tu_count_listener, &a, NULL);
    cr_assert_not_null(la);
    cr_assert_eq(worker_fire(w, "A", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "G", NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&g, TU_WAIT), 0);

    nm_others_fail_all();
    worker_listener_t *lb = worker_listen(w, "B", tu_count_listener, &b, NULL);
    cr_assert_not_null(lb);
    cr_assert_eq(worker_unlisten(w, la), WORKER_OK);
    worker_listen_opts once = { .once = true };
    cr_assert_not_null(worker_listen(w, "A", tu_count_listener, &a2, &once));
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(worker_fire(w, "A", NULL), WORKER_OK);
        cr_assert_eq(worker_fire(w, "B", NULL), WORKER_OK);
    }
    cr_assert_eq(worker_fire(w, "G", NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&g, TU_WAIT), 0);
    cr_assert_eq(worker_unlisten(w, lb), WORKER_OK); /* removals only: the old copy skips it */
    cr_assert_eq(worker_fire(w, "B", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "G", NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&g, TU_WAIT), 0);
    long failed = nm_any_disarm();

    cr_assert_eq(atomic_load(&a), 1, "a removed listener was called");
    cr_assert_eq(atomic_load(&a2), 1, "a once listener ran %d times", atomic_load(&a2));
    cr_assert_eq(atomic_load(&b), 2, "B's listener ran %d times", atomic_load(&b));
    cr_assert_gt(failed, 0);
    tu_stop_join_unref(w);
    tu_gate_destroy(&g);
}

/* ---- timers on an owner without memory -------------------------------- */

typedef struct gate_timer {
    atomic_int ran;
    tu_gate g;
} gate_timer;

static void gate_timer_ran(void *arg)
{
    gate_timer *c = arg;
    atomic_fetch_add(&c->ran, 1);
    tu_gate_open(&c->g);
}

/* The owner's heap cannot grow: every accepted timer still runs once, a
 * cancelled one does not. */
Test(nomem, timers_of_an_owner_without_memory_all_run, .timeout = 30)
{
    tu_main();
    gate_timer c = { 0 };
    tu_gate_init(&c.g);
    worker_t *w = spawn_listening(NULL, NULL, NULL);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    nm_others_fail_all();
    worker_timer_t *tm[20];
    for (int i = 0; i < 20; i++)
        cr_assert_eq(
            worker_later(w, gate_timer_ran, &c, 0.002 + 0.001 * (i % 3), &tm[i]), WORKER_OK);
    int cancelled = worker_timer_cancel(tm[19]) == WORKER_OK;
    for (int i = 0; i < 20 - cancelled; i++)
        cr_assert_eq(tu_gate_pass(&c.g, TU_WAIT), 0, "%d of %d timers ran", i, 20 - cancelled);
    long failed = nm_any_disarm();
    cr_assert_gt(failed, 0);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&c.ran), 20 - cancelled);
    for (int i = 0; i < 20; i++)
        worker_timer_free(tm[i]);
    tu_stop_join_unref(w);
    tu_gate_destroy(&c.g);
}

/* Timers armed on a fresh worker with the nth allocation of any thread
 * failing: worker_later accepts (and the timer runs once) or refuses. */
Test(nomem, timers_survive_any_allocation_failing_on_any_thread, .timeout = 60)
{
    tu_main();
    gate_timer c = { 0 };
    tu_gate_init(&c.g);
    int expected = 0;
    for (long n = 1;; n++) {
        cr_assert_lt(n, 200);
        nm_any_fail_nth(n);
        worker_t *w = worker_spawn(NULL, NULL, NULL);
        int accepted = 0;
        for (int i = 0; w && i < 10; i++) {
            int rc = worker_later(w, gate_timer_ran, &c, 0.001, NULL);
            cr_assert(rc == WORKER_OK || rc == WORKER_ENOMEM, "%s", worker_err_name(rc));
            accepted += rc == WORKER_OK;
        }
        for (int i = 0; i < accepted; i++)
            cr_assert_eq(
                tu_gate_pass(&c.g, TU_WAIT), 0, "N = %ld: %d of %d timers ran", n, i, accepted);
        long failed = nm_any_disarm();
        expected += accepted;
        cr_assert_eq(atomic_load(&c.ran), expected);
        tu_stop_join_unref(w);
        if (!failed)
            break;
    }
    tu_gate_destroy(&c.g);
}

/* ---- queue nodes ------------------------------------------------------ */

typedef struct starved_owner {
    nm_hoard nodes;
    long failed;
    tu_gate done;
} starved_owner;

static void starve_nodes_here(void *arg)
{
    starved_owner *s = arg;
    nm_hoard_take(&s->nodes, WK_POOL_QNODE);
    nm_fail_all(); /* this thread's plan: it stays armed after we return */
    tu_gate_open(&s->done);
}

static void feed_nodes_here(void *arg)
{
    starved_owner *s = arg;
    s->failed = nm_disarm();
    nm_hoard_give_back(&s->nodes);
    tu_gate_open(&s->done);
}

/* The owner cannot make the tickets that retire its dequeued nodes: it
 * keeps them (nothing lost, nothing reused early) and retires them once it
 * can; under ASan nothing leaks. */
Test(nomem, retire_tickets_out_of_memory_keep_their_nodes, .timeout = 30)
{
    tu_main();
    atomic_int got = 0;
    starved_owner s = { 0 };
    tu_gate_init(&s.done);
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "EV", tu_count_listener, &got, NULL));
    cr_assert_not_null(worker_listen(w, "G", open_gate_listener, &s.done, NULL));
    nm_stock stock;
    nm_stock_take(&stock, 120);
    cr_assert_eq(worker_later(w, starve_nodes_here, &s, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&s.done, TU_WAIT), 0);
    nm_stock_use(&stock);
    for (int i = 0; i < 100; i++) /* 100 nodes, RETIRE_AFTER is 32 */
        cr_assert_eq(worker_fire(w, "EV", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "G", NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&s.done, TU_WAIT), 0);
    cr_assert_eq(atomic_load(&got), 100);
    cr_assert_eq(worker_later(w, feed_nodes_here, &s, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&s.done, TU_WAIT), 0);
    nm_hoard_give_back(&stock.all);
    cr_assert_gt(s.failed, 0, "no ticket was refused");
    for (int i = 0; i < 300; i++)
        cr_assert_eq(worker_fire(w, "EV", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "G", NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&s.done, TU_WAIT), 0);
    cr_assert_eq(atomic_load(&got), 400);
    tu_stop_join_unref(w);
    tu_gate_destroy(&s.done);
}

/* A push, a mailbox's stub and a root worker's mailbox whose queue node
 * needs a new slab that cannot be made: refused, nothing left behind. */
Test(nomem, queue_nodes_out_of_memory_refuse_cleanly, .timeout = 30)
{
    tu_main();
    atomic_int got = 0;
    worker_t *w = spawn_listening("EV", tu_count_listener, &got);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    nm_hoard h;
    nm_hoard_take(&h, WK_POOL_QNODE);
    nm_fail_all();
    int rc = worker_fire(w, "EV", NULL);
    long failed = nm_disarm();
    cr_assert_eq(rc, WORKER_ENOMEM, "%s", worker_err_name(rc));
    cr_assert_eq(failed, 1);
    nm_hoard_give_back(&h);
    /* worker_new: whichever allocation fails, the stub's too. */
    for (long n = 1;; n++) {
        cr_assert_lt(n, 50);
        nm_hoard_take(&h, WK_POOL_QNODE);
        nm_fail_nth(n);
        worker_t *x = worker_new(NULL, NULL, NULL);
        failed = nm_disarm();
        nm_hoard_give_back(&h);
        cr_assert(failed ? x == NULL : x != NULL, "allocation %ld", n);
        worker_unref(x);
        if (!failed)
            break;
    }
    cr_assert_eq(worker_fire(w, "EV", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&got), 1);
    tu_stop_join_unref(w);
}

/* ---- pause and resume ------------------------------------------------- */

/* Opens the gate each time its task's wait returns a TICK: not while the
 * worker is paused. */
static int tick_task(void *arg, void **result)
{
    (void)result;
    while (worker_wait_event("TICK", -1, NULL, NULL) == WORKER_OK)
        tu_gate_open(arg);
    return WORKER_EXIT;
}

/* worker_pause and worker_resume out of memory: each works or returns
 * WORKER_ENOMEM having sent nothing; events accepted meanwhile are
 * delivered; a refused resume, sent again, resumes. */
Test(nomem, pause_and_resume_out_of_memory, .timeout = 60)
{
    tu_main();
    tu_gate ticked;
    tu_gate_init(&ticked);
    atomic_int got = 0;
    worker_t *w = worker_new(tick_task, &ticked, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "EV", tu_count_listener, &got, NULL));
    cr_assert_not_null(tu_sync_install(w));
    cr_assert_eq(worker_start(w), WORKER_OK);
    int accepted = 0;
    for (int k = 0;; k++) {
        cr_assert_lt(k, 20);
        nm_starved s;
        nm_starve(&s, k);
        nm_fail_slabs();
        int pause_rc = worker_pause(w);
        for (int i = 0; i < 2; i++)
            accepted += worker_fire(w, "EV", NULL) == WORKER_OK;
        int resume_rc = worker_resume(w);
        long failed = nm_disarm();
        nm_feed(&s);
        cr_assert(
            pause_rc == WORKER_OK || pause_rc == WORKER_ENOMEM, "%s", worker_err_name(pause_rc));
        cr_assert(
            resume_rc == WORKER_OK || resume_rc == WORKER_ENOMEM, "%s", worker_err_name(resume_rc));
        if (resume_rc != WORKER_OK)
            cr_assert_eq(worker_resume(w), WORKER_OK);
        cr_assert_eq(worker_fire(w, "TICK", NULL), WORKER_OK);
        cr_assert_eq(tu_gate_pass(&ticked, TU_WAIT), 0, "%d: the worker stayed paused", k);
        cr_assert_eq(tu_sync(w), WORKER_OK);
        cr_assert_eq(atomic_load(&got), accepted, "%d: %d of %d events delivered", k,
            atomic_load(&got), accepted);
        if (!failed)
            break;
    }
    tu_stop_join_unref(w);
    tu_gate_destroy(&ticked);
}

/* ---- the library's own notices ---------------------------------------- */

static int fail_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return 1;
}

/* EVENT_REJECT and LISTENER_ERROR need an event on the thread that sends
 * them; without memory they are not sent (docs/semantics.md), and nothing
 * else changes: the refused fire says WORKER_EREJECTED, the worker whose
 * listener failed goes on. */
Test(nomem, notices_without_memory_are_not_sent_and_nothing_else_changes, .timeout = 30)
{
    worker_t *me = tu_main();
    atomic_int rejects = 0, errors = 0, got = 0;
    cr_assert_not_null(
        worker_listen(me, WORKER_EV_EVENT_REJECT, tu_count_listener, &rejects, NULL));
    worker_t *stopped = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(stopped);
    worker_stop(stopped);
    worker_join(stopped);
    for (int k = 0;; k++) {
        cr_assert_lt(k, 10);
        nm_starved s;
        nm_starve(&s, k);
        nm_fail_slabs();
        int rc = worker_fire(stopped, "LATE", NULL);
        long failed = nm_disarm();
        nm_feed(&s);
        cr_assert(rc == WORKER_EREJECTED || (failed && rc == WORKER_ENOMEM), "%d: %s", k,
            worker_err_name(rc));
        cr_assert_eq(worker_update(), WORKER_OK);
        if (!failed) {
            cr_assert_eq(atomic_load(&rejects), 1, "one EVENT_REJECT once memory is there");
            break;
        }
        cr_assert_eq(atomic_load(&rejects), 0);
    }
    worker_unref(stopped);

    worker_opts quiet = { .quiet = true };
    worker_t *w = worker_new(NULL, NULL, &quiet);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "BAD", fail_listener, NULL, NULL));
    cr_assert_not_null(
        worker_listen(w, WORKER_EV_LISTENER_ERROR, tu_count_listener, &errors, NULL));
    cr_assert_not_null(worker_listen(w, "EV", tu_count_listener, &got, NULL));
    tu_gate g;
    tu_gate_init(&g);
    cr_assert_not_null(worker_listen(w, "G", open_gate_listener, &g, NULL));
    cr_assert_eq(worker_start(w), WORKER_OK);
    starved_owner starve = { 0 };
    tu_gate_init(&starve.done);
    nm_stock stock;
    nm_stock_take(&stock, 20);
    cr_assert_eq(worker_later(w, starve_nodes_here, &starve, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&starve.done, TU_WAIT), 0);
    nm_stock_use(&stock);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(worker_fire(w, "BAD", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "EV", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "G", NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&g, TU_WAIT), 0);
    cr_assert_eq(worker_later(w, feed_nodes_here, &starve, 0, NULL), WORKER_OK);
    cr_assert_eq(tu_gate_pass(&starve.done, TU_WAIT), 0);
    nm_hoard_give_back(&stock.all);
    cr_assert_eq(atomic_load(&got), 1);
    cr_assert_lt(atomic_load(&errors), 3, "every LISTENER_ERROR was sent: nothing ran out");
    tu_stop_join_unref(w);
    tu_gate_destroy(&g);
    tu_gate_destroy(&starve.done);
}

/* ---- trace buffers ---------------------------------------------------- */

/* Threads that cannot get a trace buffer drop their records; everything
 * else goes on, and the trace stops cleanly. */
Test(nomem, trace_buffers_out_of_memory_drop_records, .timeout = 60)
{
    char path[] = "/tmp/test_nomem-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    tu_main();
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    atomic_int got = 0;
    int expected = 0;
    for (long n = 1;; n++) {
        cr_assert_lt(n, 400);
        nm_any_fail_nth(n);
        worker_t *w = worker_new(NULL, NULL, NULL); /* a new thread: no buffer yet */
        if (w
            && (!worker_listen(w, "EV", tu_count_listener, &got, NULL)
                || worker_start(w) != WORKER_OK)) {
            worker_unref(w);
            w = NULL;
        }
        for (int i = 0; w && i < 3; i++)
            expected += worker_fire(w, "EV", NULL) == WORKER_OK;
        if (w) {
            while (worker_stop(w) == WORKER_ENOMEM)
                ;
            worker_join(w);
        }
        long failed = nm_any_disarm();
        worker_unref(w);
        cr_assert_eq(atomic_load(&got), expected, "N = %ld: %d of %d delivered", n,
            atomic_load(&got), expected);
        if (!failed)
            break;
    }
    /* Every thread but this one out of memory while tracing. */
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "EV", tu_count_listener, &got, NULL));
    nm_others_fail_all();
    for (int i = 0; i < 3; i++)
        cr_assert_eq(worker_fire(w, "EV", NULL), WORKER_OK);
    worker_stop(w);
    worker_join(w);
    nm_any_disarm();
    cr_assert_eq(atomic_load(&got), expected + 3);
    worker_unref(w);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    unlink(path);
}

/* ---- threads refused on any thread ------------------------------------ */

/* P's task starts a child C on P's thread. */
static int start_a_child(void *arg, void **result)
{
    (void)arg;
    worker_opts quiet = { .name = "C", .quiet = true };
    worker_t *c = worker_new(answer_task, NULL, &quiet);
    int rc = c ? worker_start(c) : WORKER_ENOMEM;
    if (c && rc == WORKER_OK)
        worker_join(c);
    worker_unref(c);
    *result = TU_PTR(rc);
    return 0;
}

static int record_child_error(const worker_event_t *e, void *userdata)
{
    atomic_store((atomic_int *)userdata, TU_INT(worker_event_data(e)));
    return 0;
}

/* Whichever thread's pthread_create is refused, the start returns
 * WORKER_EAGAIN there and the worker runs and ends at once on that thread:
 * its parent gets CHILD_THREAD_ERROR (WORKER_EAGAIN). */
Test(nomem, a_thread_refused_on_any_thread, .timeout = 30)
{
    tu_main();
    for (long n = 1;; n++) {
        cr_assert_lt(n, 10);
        atomic_int child_error = 0;
        worker_opts quiet = { .name = "P", .quiet = true };
        worker_t *p = worker_new(start_a_child, NULL, &quiet);
        cr_assert_not_null(p);
        cr_assert_not_null(
            worker_listen(p, WORKER_EV_CHILD_THREAD_ERROR, record_child_error, &child_error, NULL));
        nm_any_fail_nth_of(NM_THREADS, n);
        int rc = worker_start(p);
        int err = -100;
        void *ret = NULL;
        cr_assert_eq(worker_wait_thread(p, &err, &ret), WORKER_OK);
        long failed = nm_any_disarm();
        if (n == 1) {
            cr_assert_eq(rc, WORKER_EAGAIN, "%s", worker_err_name(rc));
            cr_assert_eq(err, WORKER_EAGAIN);
        } else {
            cr_assert_eq(rc, WORKER_OK);
            cr_assert_eq(err, 0);
            cr_assert_eq(TU_INT(ret), n == 2 ? WORKER_EAGAIN : WORKER_OK, "N = %ld: C's start: %s",
                n, worker_err_name(TU_INT(ret)));
            cr_assert_eq(atomic_load(&child_error), n == 2 ? WORKER_EAGAIN : 0);
        }
        worker_unref(p);
        if (!failed)
            break;
    }
}

/* ---- links ------------------------------------------------------------- */

static int go_code_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *d = NULL;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, &d);
    return rc != WORKER_OK ? rc : TU_INT(d);
}

static int count_linked_exit(const worker_event_t *e, void *userdata)
{
    (void)e;
    (*(int *)userdata)++;
    return 0;
}

/* worker_link out of memory: WORKER_ENOMEM and no half link (neither end
 * acts); WORKER_OK and the link acts when the other fails, without memory
 * of its own (its notices were taken when it was made). */
Test(nomem, worker_link_out_of_memory_links_nothing, .timeout = 60)
{
    tu_main();
    int exits = 0;
    worker_listener_t *li = worker_on(WORKER_EV_LINKED_EXIT, count_linked_exit, &exits, NULL);
    static const worker_opts quiet = { .quiet = true };
    int refused = 0;
    for (int k = 0;; k++) {
        cr_assert_lt(k, 30);
        worker_t *b = worker_spawn(go_code_task, NULL, &quiet);
        cr_assert_not_null(b);
        nm_starved s;
        nm_starve(&s, k);
        nm_fail_slabs();
        int rc = worker_link(b);
        long failed = nm_disarm();
        nm_feed(&s);
        cr_assert(
            rc == WORKER_OK || (failed && rc == WORKER_ENOMEM), "%d: %s", k, worker_err_name(rc));
        int before = exits;
        cr_assert_eq(worker_fire(b, "GO", TU_PTR(9)), WORKER_OK);
        cr_assert_eq(worker_join(b), WORKER_OK);
        cr_assert_eq(worker_update(), WORKER_OK);
        cr_assert_eq(exits - before, rc == WORKER_OK ? 1 : 0, "%d: %d LINKED_EXIT after %s", k,
            exits - before, worker_err_name(rc));
        cr_assert_eq(worker_unlink(b), WORKER_EINVAL, "%d: a link left behind", k);
        worker_unref(b);
        refused += rc == WORKER_ENOMEM;
        if (!failed)
            break;
    }
    cr_assert_gt(refused, 0, "no allocation of worker_link was made to fail");
    worker_unlisten(worker_current(), li);
}
