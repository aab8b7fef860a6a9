/* The ck_epoch domain.
 *
 * Invariants:
 * - One domain for the process (global state: every mailbox's producers and
 *   consumer must share one notion of grace period), initialised once,
 *   before the first record joins it.
 * - One record per thread, registered on first use and given back at thread
 *   exit after a barrier, so that no callback is dropped; ck_epoch_recycle()
 *   reuses given-back records so thread churn does not grow the record list.
 */
#define _GNU_SOURCE
#include "wk_epoch.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

static ck_epoch_t domain; /* global: see the invariants above */
static pthread_once_t domain_once = PTHREAD_ONCE_INIT;

static void domain_init(void)
{
    ck_epoch_init(&domain);
}

/* Before the first record is registered: initialising the domain later
 * would drop the records registered so far from its list. */
void wk_epoch_domain_init(void)
{
    pthread_once(&domain_once, domain_init);
}

ck_epoch_record_t *wk_epoch_register(void)
{
    wk_epoch_domain_init();
    ck_epoch_record_t *rec = ck_epoch_recycle(&domain, NULL);
    if (rec)
        return rec;
    if (posix_memalign((void **)&rec, 64, sizeof *rec) != 0)
        return NULL;
    ck_epoch_register(&domain, rec, NULL);
    return rec;
}

void wk_epoch_unregister(ck_epoch_record_t *rec)
{
    ck_epoch_barrier(rec);
    ck_epoch_unregister(rec);
}

static void yield_while_waiting(ck_epoch_t *ep, ck_epoch_record_t *rec, void *arg)
{
    (void)ep;
    (void)rec;
    (void)arg;
    sched_yield();
}

void wk_epoch_atfork_child(ck_epoch_record_t *keep)
{
    ck_stack_entry_t *cursor;
    CK_STACK_FOREACH(&domain.records, cursor)
    {
        ck_epoch_record_t *rec = (ck_epoch_record_t *)cursor; /* record_next is first */
        if (rec != keep)
            ck_pr_store_uint(&rec->active, 0); /* out of any section, for good */
    }
}

char wk_epoch_tsan_grace; /* an address for TSan annotations only */

void wk_epoch_synchronize(wk_thread *t)
{
    (void)t;
    ck_epoch_synchronize_wait(&domain, yield_while_waiting, NULL);
    wk_tsan_acquire(&wk_epoch_tsan_grace);
}
