/* The process-wide ck_epoch domain and this thread's record in it.
 *
 * Rules (see ck_epoch): never block inside a section; retire memory that
 * other threads may still read with wk_epoch_retire(); callbacks run when the
 * retiring thread polls (wk_epoch_poll) or at its exit (barrier). */
#ifndef WK_EPOCH_H
#define WK_EPOCH_H

#include <ck_epoch.h>

#include "wk_thread.h"
#include "wk_tsan.h"

/* TSan cannot see ck_epoch's grace periods. Every section's end releases
 * this address and every completed synchronize acquires it, which is the
 * ordering a grace period gives: what a reader did inside a section comes
 * before what the writer does after waiting for it. */
extern char wk_epoch_tsan_grace;

void wk_epoch_domain_init(void);

/* Register the calling thread (reusing a recycled record when there is one).
 * NULL when memory runs out. */
ck_epoch_record_t *wk_epoch_register(void);

/* Run pending callbacks and release the record for reuse. Outside sections. */
void wk_epoch_unregister(ck_epoch_record_t *rec);
/* In a fork() child: mark every record but `keep` (the forking thread's)
 * outside any section. Their threads do not exist there; a record left
 * inside a section would hold every grace period forever. The records and
 * their pending callbacks stay (lost memory in the child, never reused). */
void wk_epoch_atfork_child(ck_epoch_record_t *keep);

static inline void wk_epoch_enter(wk_thread *t)
{
    ck_epoch_begin(t->epoch, NULL);
}

static inline void wk_epoch_exit(wk_thread *t)
{
    wk_tsan_release(&wk_epoch_tsan_grace);
    ck_epoch_end(t->epoch, NULL);
}

/* Queue `cb(entry)` to run once no section that could see the object is
 * still open. */
static inline void wk_epoch_retire(wk_thread *t, ck_epoch_entry_t *entry, ck_epoch_cb_t *cb)
{
    ck_epoch_call(t->epoch, entry, cb);
}

/* Run the callbacks whose grace period has passed. Outside sections. */
static inline void wk_epoch_poll(wk_thread *t)
{
    ck_epoch_poll(t->epoch);
}

/* Wait until every section open at the time of the call has closed.
 * Outside sections; spins briefly, yields while it waits. `t` may be NULL:
 * a thread without a context (out of memory) can wait too. */
void wk_epoch_synchronize(wk_thread *t);

#endif
