/* The two-process NATS example (examples/nats_front.c, nats_workers.c)
 * run as its users would: a nats-server, the worker node, then the front
 * end, whose exit status says whether every answer was right. */
#include <criterion/criterion.h>

#include "tn_server.h"

Test(nats_example, front_and_workers, .timeout = 60)
{
    tn_server srv = { 0 };
    cr_assert(tn_server_start(&srv, NULL));
    int workers_in = -1, front_in = -1;
    const char *wargv[] = { EXAMPLE_WORKERS, srv.url, NULL };
    pid_t workers = tn_spawn(wargv, &workers_in);
    const char *fargv[] = { EXAMPLE_FRONT, srv.url, "30", NULL };
    pid_t front = tn_spawn(fargv, &front_in);
    int status = 0;
    cr_assert_eq(waitpid(front, &status, 0), front);
    close(front_in);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nats_front failed");
    kill(workers, SIGTERM);
    cr_assert_eq(waitpid(workers, &status, 0), workers);
    close(workers_in);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nats_workers did not end cleanly");
    tn_server_kill(&srv, SIGTERM);
}
