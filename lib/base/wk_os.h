/* The platform: monotonic clock, deadlines, futex ops for ck_ec, thread
 * names. Nothing here keeps state. */
#ifndef WK_OS_H
#define WK_OS_H

#include <time.h> /* struct timespec, which ck_ec.h uses */

#include <ck_ec.h>
#include <stdbool.h>
#include <stdint.h>

#define WK_NO_DEADLINE UINT64_MAX

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t wk_now_ns(void);

/* Turn a timeout in seconds into an absolute deadline: WK_NO_DEADLINE for a
 * negative timeout. Returns false for NaN. */
bool wk_deadline_after(double seconds, uint64_t *deadline_ns);

/* The futex and clock operations ck_ec blocks with. */
extern const struct ck_ec_ops wk_ec_ops;

/* The kernel's id of the calling thread; equals getpid() on the main thread. */
long wk_gettid(void);
bool wk_on_main_thread(void);
/* In a fork() child, on the forking thread: forget the cached ids. */
void wk_os_atfork_child(void);

/* The host's boot: the first 16 hex digits of the kernel's boot_id (equal
 * for every process of one host since one boot); 0 when unknown. */
uint64_t wk_boot_id(void);

/* Name the calling thread (first 15 bytes). */
void wk_set_thread_name(const char *name);

#endif
