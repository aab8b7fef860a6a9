/* Platform layer: Linux futexes and CLOCK_MONOTONIC. */
#define _GNU_SOURCE
#include "wk_os.h"
#include "wk_tls.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint64_t wk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool wk_deadline_after(double seconds, uint64_t *deadline_ns)
{
    if (isnan(seconds))
        return false;
    if (seconds < 0 || seconds > 1e9) {
        *deadline_ns = WK_NO_DEADLINE;
        return true;
    }
    *deadline_ns = wk_now_ns() + (uint64_t)(seconds * 1e9);
    return true;
}

static int ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
    (void)ops;
    return clock_gettime(CLOCK_MONOTONIC, out);
}

/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, which is
 * exactly what ck_ec hands us. */
static void futex_wait(const void *addr, uint32_t expected, const struct timespec *deadline)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, deadline, NULL,
        FUTEX_BITSET_MATCH_ANY);
}

static void futex_wake(const void *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

static void ec_wait32(const struct ck_ec_wait_state *state, const uint32_t *addr, uint32_t expected,
    const struct timespec *deadline)
{
    (void)state;
    futex_wait(addr, expected, deadline);
}

/* Little-endian x86_64: the low half of the 64-bit word is at its address. */
static void ec_wait64(const struct ck_ec_wait_state *state, const uint64_t *addr, uint64_t expected,
    const struct timespec *deadline)
{
    (void)state;
    futex_wait(addr, (uint32_t)expected, deadline);
}

static void ec_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
    (void)ops;
    futex_wake(addr);
}

static void ec_wake64(const struct ck_ec_ops *ops, const uint64_t *addr)
{
    (void)ops;
    futex_wake(addr);
}

const struct ck_ec_ops wk_ec_ops = {
    .gettime = ec_gettime,
    .wait32 = ec_wait32,
    .wait64 = ec_wait64,
    .wake32 = ec_wake32,
    .wake64 = ec_wake64,
};

/* The calling thread's tid and the process's pid, asked of the kernel once
 * per thread (each a system call, and every worker's start and end asks
 * whether it runs on the main thread). Per thread, so no shared state; a
 * fork() child forgets them (wk_os_atfork_child): its only thread has a new
 * tid and the process a new pid. */
static WK_TLS long cached_tid, cached_pid;

long wk_gettid(void)
{
    if (__builtin_expect(!cached_tid, 0))
        cached_tid = (long)syscall(SYS_gettid);
    return cached_tid;
}

bool wk_on_main_thread(void)
{
    if (__builtin_expect(!cached_pid, 0))
        cached_pid = (long)getpid();
    return wk_gettid() == cached_pid;
}

void wk_os_atfork_child(void)
{
    cached_tid = 0;
    cached_pid = 0;
}

void wk_set_thread_name(const char *name)
{
    char buf[16];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    pthread_setname_np(pthread_self(), buf);
}

uint64_t wk_boot_id(void)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f)
        return 0;
    char text[64] = "";
    bool got = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    uint64_t id = 0;
    int digits = 0;
    for (const char *p = text; got && *p && digits < 16; p++) {
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (v < 0)
            continue; /* the dashes */
        id = id << 4 | (uint64_t)v;
        digits++;
    }
    return digits == 16 ? id : 0;
}
