/* Growable arrays: the one place that knows how they grow. */
#ifndef WK_ARRAY_H
#define WK_ARRAY_H

#include <stddef.h>
#include <stdlib.h>

/* Room for one more element in `items` (holding `count` of `cap`, each
 * `size` bytes): the array itself, reallocated to twice its capacity (at
 * least `first`) when full. NULL when memory runs out; `items` and `*cap`
 * are then unchanged. */
static inline void *wk_array_room(void *items, size_t *cap, size_t count, size_t size, size_t first)
{
    if (count < *cap)
        return items;
    size_t grown_cap = *cap ? *cap * 2 : first;
    void *grown = realloc(items, grown_cap * size);
    if (grown)
        *cap = grown_cap;
    return grown;
}

#endif
