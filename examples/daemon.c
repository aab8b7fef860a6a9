/* daemon: pyThreadWorker's "Daemon thread" section.
 *
 * pyThreadWorker explains that every worker has a parent (the worker that
 * created it); when a parent ends it sends STOP_THREAD to all its children
 * and waits for them to stop, except for children marked daemon=True: they
 * get STOP_THREAD too, but the parent does not wait for them.
 *
 * Here a parent worker creates two children, one non-daemon and one
 * daemon, and then ends by itself. Both children need time after their
 * stop: the non-daemon one cleans up for 200 ms, the daemon one is held
 * until main releases it. main joins the parent and checks:
 *   - the non-daemon child had finished its cleanup when the join returned
 *     (the parent waited for it);
 *   - the daemon child was still running (the parent did not wait for it).
 * It also shows how the daemon flag is inherited.
 *
 * Run: ./daemon [--auto]            (no input is ever read) */
#define _POSIX_C_SOURCE 200809L
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <worker/worker.h>

struct family {
    worker_t *main_worker;
    worker_t *normal; /* the non-daemon child */
    worker_t *daemon; /* the daemon child */
    int normal_cleaned;
    int normal_rc, daemon_rc;
    sem_t release_daemon;
};

/* The non-daemon child: after its stop it "cleans up" for 200 ms. A plain
 * nanosleep, not worker_sleep(): once stopped, every wait of this worker
 * returns WORKER_EXIT at once. */
static int normal_child(void *arg, void **result)
{
    struct family *f = arg;
    (void)result;
    f->normal_rc = worker_wait_forever();
    nanosleep(&(struct timespec) { .tv_nsec = 200 * 1000 * 1000 }, NULL);
    f->normal_cleaned = 1;
    return f->normal_rc;
}

/* The daemon child: after its stop it is held until main releases it. */
static int daemon_child(void *arg, void **result)
{
    struct family *f = arg;
    (void)result;
    f->daemon_rc = worker_wait_forever();
    while (sem_wait(&f->release_daemon) != 0) { }
    return f->daemon_rc;
}

/* The parent: creates its children (a worker created inside a worker gets
 * it as parent by default), tells main, and ends. Its end sequence sends
 * STOP_THREAD to both children and joins the non-daemon one. */
static int parent_task(void *arg, void **result)
{
    struct family *f = arg;
    (void)result;
    f->normal = worker_spawn(normal_child, f, &(worker_opts) { .name = "normal-child" });
    f->daemon = worker_spawn(
        daemon_child, f, &(worker_opts) { .name = "daemon-child", .daemon = WORKER_DAEMON_YES });
    if (f->normal == NULL || f->daemon == NULL)
        return WORKER_ENOMEM;
    return worker_fire(f->main_worker, "CHILDREN_READY", NULL);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;

    struct family f = { .main_worker = worker_current() };
    if (sem_init(&f.release_daemon, 0, 0) != 0) {
        perror("sem_init");
        return 1;
    }

    worker_t *parent = worker_spawn(parent_task, &f, &(worker_opts) { .name = "parent" });
    if (parent == NULL) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }
    int rc = worker_wait_event("CHILDREN_READY", 5.0, parent, NULL);
    if (rc != WORKER_OK) {
        fprintf(stderr, "waiting for the children: %s\n", worker_strerror(rc));
        return 1;
    }
    printf("parent of %s: %s, daemon: %s\n", worker_name(f.normal),
        worker_name(worker_parent(f.normal)), worker_is_daemon(f.normal) ? "yes" : "no");
    printf("parent of %s: %s, daemon: %s\n", worker_name(f.daemon),
        worker_name(worker_parent(f.daemon)), worker_is_daemon(f.daemon) ? "yes" : "no");

    /* Inheritance: a child with daemon = WORKER_DAEMON_INHERIT (the
     * default) answers like its parent. Created, never started. */
    worker_t *grandchild = worker_new(NULL, NULL, &(worker_opts) { .parent = f.daemon });
    if (grandchild == NULL) {
        fprintf(stderr, "worker_new failed\n");
        return 1;
    }
    int inherited = worker_is_daemon(grandchild);
    printf("a child of the daemon child inherits: daemon: %s\n", inherited ? "yes" : "no");
    worker_unref(grandchild);

    /* The parent's task has returned (or is about to): join it. */
    rc = worker_join(parent);
    if (rc != WORKER_OK) {
        fprintf(stderr, "worker_join: %s\n", worker_strerror(rc));
        return 1;
    }
    int normal_done = f.normal_cleaned && !worker_is_running(f.normal);
    int daemon_alive = worker_is_running(f.daemon);
    printf("parent joined: non-daemon child finished: %s, "
           "daemon child still running: %s\n",
        normal_done ? "yes" : "no", daemon_alive ? "yes" : "no");

    /* The daemon child did get STOP_THREAD: release it and join it. */
    sem_post(&f.release_daemon);
    rc = worker_join(f.daemon);
    if (rc != WORKER_OK) {
        fprintf(stderr, "worker_join: %s\n", worker_strerror(rc));
        return 1;
    }
    printf("daemon child ended: its wait returned %s\n", worker_err_name(f.daemon_rc));

    int ok = normal_done && daemon_alive && inherited && f.normal_rc == WORKER_EXIT
        && f.daemon_rc == WORKER_EXIT && !worker_is_daemon(f.normal) && worker_is_daemon(f.daemon);
    worker_unref(f.normal);
    worker_unref(f.daemon);
    worker_unref(parent);
    sem_destroy(&f.release_daemon);
    return ok ? 0 : 1;
}
