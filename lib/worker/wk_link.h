/* Links (link.c): two workers that hear of each other's end. */
#ifndef WK_LINK_H
#define WK_LINK_H

#include "wk_worker.h"

/* `w` has ended (its end sequence, no lock held): tell `other`, the worker
 * on the other end of a link, if the link is still there on its side
 * (it is removed there now). `spare`: the watch entry's, for what cannot
 * be allocated now. */
void wk_link_tell(worker_t *w, worker_t *other, wk_thread *t, wk_spare *spare);

#endif
