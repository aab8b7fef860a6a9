/* Plain lists of workers, each entry holding a reference. Not thread-safe
 * by themselves: the caller holds the lock of the worker that owns the
 * list. */
#include "wk_list.h"

#include <stdlib.h>

#include "wk_array.h"

bool wk_list_add(wk_worker_list *l, worker_t *w)
{
    worker_t **grown = wk_array_room(l->items, &l->cap, l->count, sizeof *grown, 4);
    if (!grown)
        return false;
    l->items = grown;
    l->items[l->count++] = worker_ref(w);
    return true;
}

bool wk_list_take(wk_worker_list *l, worker_t *w)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i] == w) {
            l->items[i] = l->items[--l->count];
            return true;
        }
    }
    return false;
}

bool wk_list_remove(wk_worker_list *l, worker_t *w)
{
    bool found = wk_list_take(l, w);
    if (found)
        worker_unref(w);
    return found;
}

size_t wk_list_copy(wk_worker_list *l, worker_t ***out)
{
    *out = NULL;
    if (l->count == 0)
        return 0;
    worker_t **copy = malloc(l->count * sizeof *copy);
    if (!copy)
        return 0;
    for (size_t i = 0; i < l->count; i++)
        copy[i] = worker_ref(l->items[i]);
    *out = copy;
    return l->count;
}

void wk_list_release(worker_t **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        worker_unref(items[i]);
    free(items);
}
