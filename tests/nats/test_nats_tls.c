/* libworker-actor-nats over TLS: worker_node_opts.tls_ca_file,
 * tls_cert_file and tls_key_file against a nats-server with TLS (and
 * client certificates required, as with --tlsverify). The certificates are made at
 * test time with openssl(1) in a temporary directory: a throwaway CA, a
 * server certificate for 127.0.0.1 and localhost, a client certificate,
 * and a second CA that signed nothing the server shows. Without openssl
 * the tests are skipped. */
#define _GNU_SOURCE /* strcasestr */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "tn_server.h"

#include <worker/nats.h>
#include <worker/worker.h>

#define HB 0.1

static tn_server srv;
static char dir[64];
static char ca[128], other_ca[128], server_cert[128], server_key[128], client_cert[128],
    client_key[128];
static char last_log[512];

static void on_log(int level, const char *worker_name, const char *msg, void *u)
{
    (void)worker_name;
    (void)u;
    if (level == WORKER_LOG_ERROR)
        snprintf(last_log, sizeof last_log, "%s", msg);
}

/* The shell script that makes the certificates in the current directory.
 * Its own openssl configuration: the system's may differ in defaults. */
static const char gen_script[]
    = "set -e\n"
      "cat > x509.cnf <<'EOF'\n"
      "[req]\n"
      "distinguished_name = dn\n"
      "prompt = no\n"
      "x509_extensions = ca\n"
      "[dn]\n"
      "CN = wktest CA\n"
      "[ca]\n"
      "basicConstraints = critical, CA:TRUE\n"
      "keyUsage = critical, keyCertSign, cRLSign\n"
      "subjectKeyIdentifier = hash\n"
      "[server]\n"
      "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
      "extendedKeyUsage = serverAuth\n"
      "[client]\n"
      "extendedKeyUsage = clientAuth\n"
      "EOF\n"
      "key='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
      "openssl req -config x509.cnf -x509 -days 1 $key "
      "-keyout ca-key.pem -out ca.pem\n"
      "openssl req -config x509.cnf -x509 -days 1 $key "
      "-subj \"/CN=other CA\" -keyout other-ca-key.pem -out other-ca.pem\n"
      "for who in server:127.0.0.1 client:wktest-client; do\n"
      "  n=${who%%:*}\n"
      "  openssl req -config x509.cnf -new $key -subj /CN=${who#*:} "
      "-keyout $n-key.pem -out $n.csr\n"
      "  openssl x509 -req -days 1 -in $n.csr -CA ca.pem "
      "-CAkey ca-key.pem -CAcreateserial "
      "-extfile x509.cnf -extensions $n -out $n.pem\n"
      "done\n";

static bool have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

static void make_certs(void)
{
    snprintf(dir, sizeof dir, "/tmp/wktls-XXXXXX");
    cr_assert(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    char path[128];
    snprintf(path, sizeof path, "%s/gen.sh", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(gen_script, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cd %s && sh gen.sh >gen.log 2>&1", dir);
    cr_assert_eq(system(cmd), 0, "openssl failed: see %s/gen.log", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other-ca.pem", dir);
    snprintf(server_cert, sizeof server_cert, "%s/server.pem", dir);
    snprintf(server_key, sizeof server_key, "%s/server-key.pem", dir);
    snprintf(client_cert, sizeof client_cert, "%s/client.pem", dir);
    snprintf(client_key, sizeof client_key, "%s/client-key.pem", dir);
}

static void setup(void)
{
    srv = (tn_server) { 0 };
    dir[0] = '\0';
    last_log[0] = '\0';
    worker_set_log(on_log, NULL);
}

static void teardown(void)
{
    tn_server_kill(&srv, SIGTERM);
    worker_set_log(NULL, NULL);
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
}

/* About 1 s a test, but under ASan with the tests' ASAN_OPTIONS
 * (fast_unwind_on_malloc=0) each TLS connection costs seconds of
 * OpenSSL's allocations: up to 25 s a test measured. */
TestSuite(tls, .init = setup, .fini = teardown, .timeout = 90);

/* Certificates made and nats-server started with TLS (client certificates
 * required if `verify`); skips the test without openssl. The TLS options
 * are those of --tls --tlscert --tlskey [--tlsverify --tlscacert], in a
 * configuration file for one more: a handshake timeout of 5 s instead of
 * 2 s, which a loaded machine (sanitizers, parallel builds) can miss. */
static void start_tls_server(bool verify)
{
    if (!have_openssl())
        cr_skip_test("openssl not found: the certificates cannot be made");
    make_certs();
    static char conf[128];
    snprintf(conf, sizeof conf, "%s/server.conf", dir);
    FILE *f = fopen(conf, "w");
    cr_assert(f);
    fprintf(f, "tls {\n  cert_file: \"%s\"\n  key_file: \"%s\"\n  timeout: 5\n", server_cert,
        server_key);
    if (verify)
        fprintf(f, "  verify: true\n  ca_file: \"%s\"\n", ca);
    fprintf(f, "}\n");
    fclose(f);
    static const char *args[] = { "-c", conf, NULL };
    srv.args = args;
    cr_assert(tn_server_start(&srv, NULL), "nats-server with TLS did not start");
}

static worker_node_t *try_node(const char *url, const char *name, const char *ca_file,
    const char *cert, const char *key, int *err)
{
    worker_node_opts o = { .name = name,
        .heartbeat = HB,
        .connect_timeout = 5, /* slow handshakes under ASan */
        .tls_ca_file = ca_file,
        .tls_cert_file = cert,
        .tls_key_file = key };
    *err = -99;
    last_log[0] = '\0';
    return worker_node_connect(url, &o, err);
}

static worker_node_t *node_ok(
    const char *url, const char *name, const char *ca_file, const char *cert, const char *key)
{
    int err;
    worker_node_t *n = try_node(url, name, ca_file, cert, key, &err);
    cr_assert(n, "connect %s as %s: %s (%s)", url, name, worker_err_name(err), last_log);
    cr_assert_eq(err, WORKER_OK);
    return n;
}

/* A refused connect: NULL, WORKER_EAGAIN, and an error logged that says
 * why (`why`, case-insensitive, in the message). A refused certificate is
 * "SSL Error: SSL handshake error: 20:unable to get local issuer
 * certificate..."; on a loaded machine the server may give up on the
 * handshake first ("SSL Error: SSL handshake error: unexpected eof..."). */
static void refused(
    const char *url, const char *ca_file, const char *cert, const char *key, const char *why)
{
    int err;
    worker_node_t *n = try_node(url, "refused", ca_file, cert, key, &err);
    cr_assert_null(
        n, "admitted: %s, CA %s, cert %s", url, ca_file ? ca_file : "none", cert ? cert : "none");
    cr_assert_eq(err, WORKER_EAGAIN, "%s: %s", url, worker_err_name(err));
    cr_assert(strcasestr(last_log, why), "the log does not say \"%s\": \"%s\"", why, last_log);
}

static int on_ping(const worker_event_t *e, void *u)
{
    (void)u;
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_fire_ex(worker_event_target(e), "pong", NULL, &fo);
}

static int on_echo(const worker_event_t *e, void *u)
{
    (void)u;
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_reply_ex(e, NULL, &fo);
}

/* Node `b` exports an echo worker, node `a` fires at it (the answer comes
 * back as a fire) and calls it: both across the TLS connections. */
static void round_trip(worker_node_t *a, worker_node_t *b)
{
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts) { .name = "echo" });
    worker_listen(w, "ping", on_ping, NULL, NULL);
    worker_listen(w, "echo", on_echo, NULL, NULL);
    cr_assert_eq(worker_node_export(b, w, "echo"), WORKER_OK);
    worker_t *p = worker_node_lookup(a, "echo");
    cr_assert(p);
    double end = tn_now() + 5;
    while (!worker_is_running(p)) {
        cr_assert(tn_now() < end, "the export was not heard of over TLS");
        worker_wait_timeout(0.01);
    }
    worker_fire_opts fo = { .copy = "42", .copy_size = 2 };
    cr_assert_eq(worker_fire_ex(p, "ping", NULL, &fo), WORKER_OK);
    void *data = NULL;
    cr_assert_eq(worker_wait_event("pong", 5, NULL, &data), WORKER_OK);
    cr_assert_eq(memcmp(data, "42", 2), 0);
    fo = (worker_fire_opts) { .copy = "hello", .copy_size = 5 };
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(worker_call_ex(p, "echo", NULL, &fo, 5, &reply, &size), WORKER_OK);
    cr_assert_eq(size, 5);
    cr_assert_eq(memcmp(reply, "hello", 5), 0);
    worker_unref(p);
    worker_stop(w);
    worker_join(w);
    worker_unref(w);
}

Test(tls, the_ca_file_connects_and_events_cross, .timeout = 90)
{
    start_tls_server(false);
    /* nats://: tls_ca_file alone turns TLS on. tls://: the same. */
    worker_node_t *a = node_ok(srv.url, "a", ca, NULL, NULL);
    char url[64];
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", srv.port);
    worker_node_t *b = node_ok(url, "b", ca, NULL, NULL);
    round_trip(a, b);
    worker_node_close(a);
    worker_node_close(b);
    /* The certificate names localhost too. */
    snprintf(url, sizeof url, "nats://localhost:%d", srv.port);
    worker_node_close(node_ok(url, "c", ca, NULL, NULL));
}

Test(tls, no_ca_or_a_wrong_ca_is_refused, .timeout = 90)
{
    start_tls_server(false);
    /* No TLS asked for: nats.c turns it on as the server requires it, and
     * then the server's certificate is signed by a CA not trusted. */
    refused(srv.url, NULL, NULL, NULL, "SSL");
    char url[64];
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", srv.port);
    refused(url, NULL, NULL, NULL, "SSL");
    refused(srv.url, other_ca, NULL, NULL, "SSL");
    /* TLS asked for, and a server without TLS. */
    tn_server plain = { 0 };
    cr_assert(tn_server_start(&plain, NULL));
    int rc;
    worker_node_t *n = try_node(plain.url, "plain", ca, NULL, NULL, &rc);
    tn_server_kill(&plain, SIGTERM);
    cr_assert_null(n, "TLS asked for and a server without TLS: admitted");
    cr_assert_eq(rc, WORKER_EAGAIN, "%s", worker_err_name(rc));
    cr_assert(strstr(last_log, "Secure Connection not available: ") == NULL, "%s", last_log);
    cr_assert(strcasestr(last_log, "secure connection"), "%s", last_log);
    /* A CA file that does not load: a bad option, refused up front. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.pem", dir);
    int err;
    cr_assert_null(try_node(srv.url, "x", missing, NULL, NULL, &err));
    cr_assert_eq(err, WORKER_EINVAL, "%s", worker_err_name(err));
    cr_assert(strstr(last_log, "missing.pem"), "the log does not name the file: %s", last_log);
}

Test(tls, client_certificates_with_tlsverify, .timeout = 90)
{
    start_tls_server(true);
    worker_node_t *a = node_ok(srv.url, "a", ca, client_cert, client_key);
    worker_node_t *b = node_ok(srv.url, "b", ca, client_cert, client_key);
    round_trip(a, b);
    worker_node_close(a);
    worker_node_close(b);
    /* Without a client certificate the server refuses the handshake. */
    int err;
    worker_node_t *n = try_node(srv.url, "nocert", ca, NULL, NULL, &err);
    cr_assert_null(n, "admitted without a client certificate");
    cr_assert_eq(err, WORKER_EAGAIN, "%s", worker_err_name(err));
    cr_assert(strstr(last_log, "cannot connect"), "%s", last_log);
    /* A certificate without its key: a bad option. */
    cr_assert_null(try_node(srv.url, "x", ca, client_cert, NULL, &err));
    cr_assert_eq(err, WORKER_EINVAL);
}
