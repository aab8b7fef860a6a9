/* libworker-actor: threads with event loops, lock-free mailboxes and a
 * parent/child tree, after the Python library pyThreadWorker.
 *
 * Including this header is enough for the whole public API. */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <worker/call.h>
#include <worker/channel.h>
#include <worker/current.h>
#include <worker/embed.h>
#include <worker/error.h>
#include <worker/event.h>
#include <worker/export.h>
#include <worker/future.h>
#include <worker/lifecycle.h>
#include <worker/monitor.h>
#include <worker/service.h>
#include <worker/stats.h>
#include <worker/supervision.h>
#include <worker/timer.h>
#include <worker/trace.h>
#include <worker/types.h>
#include <worker/version.h>

#endif
