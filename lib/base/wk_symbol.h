/* Function names from the ELF symbol tables of the running program, for
 * traces (a listener without a given name is shown by its function's name).
 *
 * Reads the file of the object that holds the address (the program itself
 * through /proc/self/exe, or a shared library by its path) and looks in its
 * full symbol table (.symtab), so static functions are found without
 * -rdynamic; a stripped file falls back to its dynamic table (.dynsym).
 * Nothing is cached: each call opens, maps and scans the file (slow; call it
 * once per function). Any thread. */
#ifndef WK_SYMBOL_H
#define WK_SYMBOL_H

#include <stdbool.h>
#include <stddef.h>

/* The name of the function that starts at `addr`, into `buf` (cut to
 * `len` - 1 bytes). False when no symbol table names it. */
bool wk_symbol_name(const void *addr, char *buf, size_t len);

#endif
