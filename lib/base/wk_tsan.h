/* ThreadSanitizer annotations for what TSan cannot see: ck_pr's inline
 * assembly. Empty in every other build. */
#ifndef WK_TSAN_H
#define WK_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define WK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WK_TSAN 1
#endif
#endif

#ifdef WK_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
/* Everything the publisher wrote before this is visible after the matching
 * acquire on the same address. */
#define wk_tsan_release(p) __tsan_release((void *)(p))
#define wk_tsan_acquire(p) __tsan_acquire((void *)(p))
/* ck writes queue nodes with plain stores that race, on paper, with their
 * later reuse; the epoch protocol orders them, which TSan cannot see. */
#define wk_tsan_ignore_begin() __tsan_ignore_thread_begin()
#define wk_tsan_ignore_end() __tsan_ignore_thread_end()
#else
#define wk_tsan_release(p) ((void)(p))
#define wk_tsan_acquire(p) ((void)(p))
#define wk_tsan_ignore_begin() ((void)0)
#define wk_tsan_ignore_end() ((void)0)
#endif

#endif
