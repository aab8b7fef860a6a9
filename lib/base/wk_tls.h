/* Thread-local variables of the library. */
#ifndef WK_TLS_H
#define WK_TLS_H

/* The initial-exec model: the variable sits at a fixed offset from the
 * thread pointer, so reading it is one instruction instead of a call to
 * __tls_get_addr (the default for a shared library, paid on every fire).
 * The cost: the library's few thread-locals (tens of bytes) take static TLS
 * space, which glibc reserves enough of for a library loaded by dlopen. */
#define WK_TLS _Thread_local __attribute__((tls_model("initial-exec")))

#endif
