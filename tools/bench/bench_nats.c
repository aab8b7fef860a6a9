/* Raw nats.c across two processes through a nats-server: the peer of our
 * node (bench_node.c) for BENCH.md Part 2. The program forks its peer
 * process (bench_link.c); both connect to $WORKER_BENCH_NATS_URL, which
 * tools/bench/run points at a nats-server it starts on 127.0.0.1.
 *
 * P12  the parent publishes 1,000,000 32-byte messages on one subject; the
 *      peer (a synchronous subscription with no pending limits, so that
 *      the client drops nothing) checks each, in order, and reports the
 *      count and the time of its last check: none may be lost.
 * P13x request/reply: the parent makes 10,000 requests (plus warm-up),
 *      each timed (natsConnection_Request); the peer answers each with the
 *      same 32 bytes. By default nats.c buffers a publish and its flusher
 *      sends it a little later; with WORKER_BENCH_NATS_ASAP=1 both sides
 *      send at once (natsOptions_SetSendAsap): "flushed at once". */
#define _GNU_SOURCE
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "bench_link.h"

#define SUBJECT_P12 "bench.p12"
#define SUBJECT_P13 "bench.p13"
#define NEXT_TIMEOUT_MS 10000
#define REQUEST_TIMEOUT_MS 10000

static bool send_asap(void)
{
    const char *v = getenv("WORKER_BENCH_NATS_ASAP");
    return v && strcmp(v, "1") == 0;
}

static natsStatus connect_server(natsConnection **nc)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, bench_nats_url());
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, send_asap());
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

/* A synchronous subscription on `subject`, known to the server on return. */
static natsStatus subscribe(natsConnection **nc, natsSubscription **sub, const char *subject)
{
    natsStatus s = connect_server(nc);
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(sub, *nc, subject);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(*sub, -1, -1);
    if (s == NATS_OK)
        s = natsConnection_Flush(*nc);
    return s;
}

static void disconnect(natsConnection *nc, natsSubscription *sub)
{
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
}

/* --- P12 --------------------------------------------------------------------------- */

/* One message of the subscription into *m (a wrong size is a torn one). */
static int next_published(void *ctx, bench_msg *m)
{
    natsMsg *msg = NULL;
    natsStatus s = natsSubscription_NextMsg(&msg, ctx, NEXT_TIMEOUT_MS);
    if (s != NATS_OK)
        return (int)s;
    memset(m, 0, sizeof *m);
    if (natsMsg_GetDataLength(msg) == (int)BENCH_MSG_SIZE)
        memcpy(m, natsMsg_GetData(msg), BENCH_MSG_SIZE);
    natsMsg_Destroy(msg);
    return 0;
}

static int p12_peer(bench_link *l, void *arg)
{
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsStatus s = subscribe(&nc, &sub, SUBJECT_P12);
    int rc = bench_far_receive(l, s == NATS_OK, *(long *)arg, next_published, sub);
    disconnect(nc, sub);
    return rc;
}

static void publish_all(natsConnection *nc, long n, bench_result *r)
{
    bench_msg m;
    for (long i = 0; i < n && r->ok; i++) {
        bench_msg_make(&m, 0, (uint64_t)i);
        natsStatus s = natsConnection_Publish(nc, SUBJECT_P12, &m, (int)sizeof m);
        if (s != NATS_OK)
            bench_fail(r, "publish %ld: %s", i, natsStatus_GetText(s));
    }
    natsStatus s = natsConnection_FlushTimeout(nc, 60000);
    if (s != NATS_OK)
        bench_fail(r, "flush: %s", natsStatus_GetText(s));
}

static void p12(const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    bench_link l;
    if (bench_link_fork(&l, p12_peer, &n) != 0) {
        bench_fail(r, "fork failed");
        return;
    }
    natsConnection *nc = NULL;
    natsStatus s = connect_server(&nc);
    if (s != NATS_OK)
        bench_fail(r, "connect %s: %s", bench_nats_url(), natsStatus_GetText(s));
    else if (!bench_far_ready(&l))
        bench_fail(r, "the subscriber process did not get ready");
    uint64_t t0 = bench_now_ns();
    if (r->ok)
        publish_all(nc, n, r);
    if (r->ok)
        bench_far_verdict(&l, n, t0, r);
    natsConnection_Destroy(nc);
    if (bench_link_wait(&l) != 0)
        bench_fail(r, "the subscriber process failed");
}

/* --- P13x ---------------------------------------------------------------------------- */

/* Answers `n` requests with their own bytes, then ends. */
static int p13_peer(bench_link *l, void *arg)
{
    long n = *(long *)arg;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsStatus s = subscribe(&nc, &sub, SUBJECT_P13);
    char ready = s == NATS_OK;
    bench_link_send(l, &ready, 1);
    for (long i = 0; i < n && s == NATS_OK; i++) {
        natsMsg *msg = NULL;
        s = natsSubscription_NextMsg(&msg, sub, NEXT_TIMEOUT_MS);
        if (s == NATS_OK)
            s = natsConnection_Publish(
                nc, natsMsg_GetReply(msg), natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
        natsMsg_Destroy(msg);
    }
    if (s == NATS_OK)
        s = natsConnection_Flush(nc);
    disconnect(nc, sub);
    return s == NATS_OK ? 0 : 1;
}

/* One timed request; false (and the failure recorded) when it went wrong. */
static bool request_once(natsConnection *nc, long i, uint64_t *ns, bench_result *r)
{
    bench_msg m;
    bench_msg_make(&m, 0, (uint64_t)i);
    natsMsg *reply = NULL;
    uint64_t t0 = bench_now_ns();
    natsStatus s
        = natsConnection_Request(&reply, nc, SUBJECT_P13, &m, (int)sizeof m, REQUEST_TIMEOUT_MS);
    *ns = bench_now_ns() - t0;
    if (s != NATS_OK)
        bench_fail(r, "request %ld: %s", i, natsStatus_GetText(s));
    else if (natsMsg_GetDataLength(reply) != (int)BENCH_MSG_SIZE
        || !bench_msg_ok((const bench_msg *)natsMsg_GetData(reply), 0, (uint64_t)i))
        bench_fail(r, "request %ld: wrong reply", i);
    natsMsg_Destroy(reply);
    return r->ok;
}

static void ask_all(natsConnection *nc, long n, long warm, bench_result *r)
{
    uint64_t *lat = malloc(sizeof *lat * (size_t)n), scratch;
    if (!lat) {
        bench_fail(r, "out of memory");
        return;
    }
    for (long i = 0; i < warm && request_once(nc, i, &scratch, r); i++) { }
    uint64_t start = bench_now_ns();
    long done = 0;
    while (r->ok && done < n && request_once(nc, warm + done, &lat[done], r))
        done++;
    if (r->ok)
        bench_latency_result(r, lat, done, start, bench_now_ns());
    free(lat);
}

static void p13x(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n), total = n + warm;
    bench_link l;
    if (bench_link_fork(&l, p13_peer, &total) != 0) {
        bench_fail(r, "fork failed");
        return;
    }
    natsConnection *nc = NULL;
    natsStatus s = connect_server(&nc);
    if (s != NATS_OK)
        bench_fail(r, "connect %s: %s", bench_nats_url(), natsStatus_GetText(s));
    else if (!bench_far_ready(&l))
        bench_fail(r, "the replying process did not get ready");
    if (r->ok)
        ask_all(nc, n, warm, r);
    natsConnection_Destroy(nc);
    if (bench_link_wait(&l) != 0 && r->ok)
        bench_fail(r, "the replying process failed");
    bench_fig(r, "send_asap", send_asap() ? 1 : 0);
}

int main(int argc, char **argv)
{
    static const bench_scenario both[] = { { "P12", p12 }, { "P13x", p13x } };
    /* Sending at once is the P13x variant; P12 is measured as nats.c does by default. */
    size_t n = send_asap() ? 1 : 2;
    int rc = bench_main(argc, argv, send_asap() ? "nats-asap" : "nats", both + (2 - n), n);
    nats_Close();
    return rc;
}
