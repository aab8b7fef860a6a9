// CAF 0.17 (C++ Actor Framework) under BENCH.md Part 2's P9, P10 and P11:
// event-based actors on CAF's work-stealing scheduler with 2 threads (the
// machine has 2 vCPUs), doing the same checked work as bench_worker's pooled
// workers. Same command line and JSON lines as every bench_* program (the
// harness of bench_common.c).
//
// P9  spawn N actors (one handler each) from the main thread, send one
//     message to each from a scoped actor and get its reply, read RSS while
//     all are alive, then send each an exit message and wait until all are
//     done (the actor registry's running count). Spawned with lazy_init and
//     from the main thread, not from inside one actor's handler: CAF 0.17's
//     work stealing walks the victim's whole queue, so a handler that
//     spawns a million actors (each scheduled at once) leaves the other
//     thread stealing through a million-job queue and can take minutes.
//     With lazy_init an actor is first scheduled by its first message.
// P10 skynet: every inner actor spawns 10 children from its own set-up and
//     adds up their sums; every leaf sends its number to its parent. Each
//     actor quits after sending its sum; timed until the root's sum reached
//     the main thread and every actor has terminated.
// P11 pairs of actors ping-ponging: the pinger sends PING n, the ponger
//     answers PONG n, both check the sequence; after the round trips the
//     pinger reports to the main thread. Timed from the first GO to the
//     last report.
#include "bench_common.h"

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace
{

using hello_atom = caf::atom_constant<caf::atom("hello")>;
using sum_atom = caf::atom_constant<caf::atom("sum")>;
using go_atom = caf::atom_constant<caf::atom("go")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using pong_atom = caf::atom_constant<caf::atom("pong")>;
using done_atom = caf::atom_constant<caf::atom("done")>;

constexpr uint64_t bad_sequence = UINT64_MAX;
const auto wait_limit = std::chrono::seconds(300);

caf::actor_system_config make_config()
{
    caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", BENCH_SCHEDULER_THREADS);
    return cfg;
}

// Wait until every actor has terminated except the main thread's scoped
// actor, which CAF 0.17 counts as running (hidden or not).
void await_all_but_main(caf::actor_system &system)
{
    system.registry().await_running_count_equal(1);
}

double seconds_between(uint64_t t0_ns, uint64_t t1_ns)
{
    return static_cast<double>(t1_ns - t0_ns) / 1e9;
}

// --- P9 ----------------------------------------------------------------------

// One handler: answers its own index (bad_sequence for any other).
caf::behavior hello_actor(caf::event_based_actor *, uint64_t index)
{
    return { [=](hello_atom, uint64_t asked) -> uint64_t {
        return asked == index ? index : bad_sequence;
    } };
}

// Receives `n` replies; each index once. Returns how many were right.
long collect_hellos(caf::scoped_actor &self, long n, bench_result *r)
{
    std::vector<char> seen(static_cast<size_t>(n), 0);
    long good = 0, got = 0;
    bool timed_out = false;
    self->receive_while([&] { return got < n && !timed_out; })(
        [&](uint64_t index) {
            got++;
            if (index < static_cast<uint64_t>(n) && !seen[index]) {
                seen[index] = 1;
                good++;
            }
        },
        caf::after(wait_limit) >> [&] { timed_out = true; });
    if (timed_out)
        bench_fail(r, "%ld of %ld replies before the time limit", got, n);
    else if (good != n)
        bench_fail(r, "%ld of %ld replies were right", good, n);
    return good;
}

void p9(const bench_args *a, bench_result *r)
{
    long n = bench_workers(a);
    auto cfg = make_config();
    caf::actor_system system { cfg };
    caf::scoped_actor self { system };
    std::vector<caf::actor> actors(static_cast<size_t>(n)); // touched before the baseline
    long rss0 = bench_rss_bytes(), heap0 = bench_heap_bytes();
    double cpu0 = bench_cpu_seconds();
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        actors[static_cast<size_t>(i)]
            = system.spawn<caf::lazy_init>(hello_actor, static_cast<uint64_t>(i));
    uint64_t t_spawned = bench_now_ns();
    for (long i = 0; i < n; i++)
        self->send(actors[static_cast<size_t>(i)], hello_atom::value, static_cast<uint64_t>(i));
    long good = collect_hellos(self, n, r);
    uint64_t t_answered = bench_now_ns();
    long rss1 = bench_rss_bytes(), heap1 = bench_heap_bytes();
    for (auto &actor : actors)
        caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    actors.clear();
    await_all_but_main(system);
    uint64_t t1 = bench_now_ns();
    r->count = good;
    r->elapsed = seconds_between(t0, t1);
    bench_fig(r, "us_per_worker", r->elapsed * 1e6 / static_cast<double>(n));
    bench_fig(r, "rss_bytes_per_worker", static_cast<double>(rss1 - rss0) / static_cast<double>(n));
    bench_fig(
        r, "heap_bytes_per_worker", static_cast<double>(heap1 - heap0) / static_cast<double>(n));
    bench_fig(
        r, "spawn_us_per_worker", seconds_between(t0, t_spawned) * 1e6 / static_cast<double>(n));
    bench_fig(
        r, "stop_us_per_worker", seconds_between(t_answered, t1) * 1e6 / static_cast<double>(n));
    bench_fig(r, "cpu_s", bench_cpu_seconds() - cpu0);
}

// --- P10 ---------------------------------------------------------------------

struct skynet_state {
    uint64_t sum = 0;
    int pending = 0;
};

caf::behavior skynet(
    caf::stateful_actor<skynet_state> *self, caf::actor parent, uint64_t first, uint64_t leaves)
{
    if (leaves == 1) {
        self->send(parent, sum_atom::value, first);
        self->quit();
        return {};
    }
    uint64_t per_child = leaves / 10;
    for (uint64_t c = 0; c < 10; c++)
        self->spawn(skynet, caf::actor_cast<caf::actor>(self), first + c * per_child, per_child);
    self->state.pending = 10;
    return { [=](sum_atom, uint64_t part) {
        self->state.sum += part;
        if (--self->state.pending == 0) {
            self->send(parent, sum_atom::value, self->state.sum);
            self->quit();
        }
    } };
}

void p10(const bench_args *a, bench_result *r)
{
    long leaves = bench_count(a);
    if (bench_skynet_levels(leaves) < 0) {
        bench_fail(r, "--count %ld: the leaves must be a power of 10", leaves);
        return;
    }
    auto cfg = make_config();
    caf::actor_system system { cfg };
    caf::scoped_actor self { system };
    uint64_t total = 0;
    bool timed_out = false;
    double cpu0 = bench_cpu_seconds();
    uint64_t t0 = bench_now_ns();
    system.spawn(skynet, caf::actor_cast<caf::actor>(self.ptr()), uint64_t { 0 },
        static_cast<uint64_t>(leaves));
    self->receive([&](sum_atom, uint64_t sum) { total = sum; },
        caf::after(wait_limit) >> [&] { timed_out = true; });
    await_all_but_main(system);
    uint64_t t1 = bench_now_ns();
    if (timed_out)
        bench_fail(r, "no sum before the time limit");
    else if (total != bench_skynet_sum(leaves))
        bench_fail(r, "sum %llu, expected %llu", static_cast<unsigned long long>(total),
            static_cast<unsigned long long>(bench_skynet_sum(leaves)));
    r->count = r->ok ? leaves : 0;
    r->elapsed = seconds_between(t0, t1);
    bench_fig(r, "seconds", r->elapsed);
    bench_fig(r, "actors", static_cast<double>(bench_skynet_nodes(leaves)));
    bench_fig(r, "cpu_s", bench_cpu_seconds() - cpu0);
}

// --- P11 ---------------------------------------------------------------------

struct ponger_state {
    uint64_t expected = 0;
};

caf::behavior ponger(caf::stateful_actor<ponger_state> *self)
{
    return { [=](ping_atom, uint64_t seq) {
        uint64_t answer = seq == self->state.expected ? seq : bad_sequence;
        self->state.expected++;
        return caf::make_message(pong_atom::value, answer);
    } };
}

struct pinger_state {
    caf::actor partner;
    caf::actor report_to;
    uint64_t next = 0;
    bool in_order = true;
};

caf::behavior pinger(caf::stateful_actor<pinger_state> *self, caf::actor partner, uint64_t rounds)
{
    self->state.partner = partner;
    return {
        [=](go_atom) {
            self->state.report_to = caf::actor_cast<caf::actor>(self->current_sender());
            self->send(self->state.partner, ping_atom::value, uint64_t { 0 });
        },
        [=](pong_atom, uint64_t seq) {
            auto &st = self->state;
            if (seq != st.next)
                st.in_order = false;
            if (++st.next < rounds) {
                self->send(st.partner, ping_atom::value, st.next);
                return;
            }
            self->send(st.report_to, done_atom::value, st.in_order);
            self->quit();
        },
    };
}

void p11(const bench_args *a, bench_result *r)
{
    long pairs = bench_workers(a), rounds = bench_count(a);
    auto cfg = make_config();
    caf::actor_system system { cfg };
    caf::scoped_actor self { system };
    std::vector<caf::actor> pongers, pingers;
    for (long i = 0; i < pairs; i++) {
        pongers.push_back(system.spawn<caf::lazy_init>(ponger));
        pingers.push_back(
            system.spawn<caf::lazy_init>(pinger, pongers.back(), static_cast<uint64_t>(rounds)));
    }
    long reported = 0, in_order = 0;
    bool timed_out = false;
    double cpu0 = bench_cpu_seconds();
    uint64_t t0 = bench_now_ns();
    for (auto &p : pingers)
        self->send(p, go_atom::value);
    self->receive_while([&] { return reported < pairs && !timed_out; })(
        [&](done_atom, bool ok) {
            reported++;
            in_order += ok;
        },
        caf::after(wait_limit) >> [&] { timed_out = true; });
    uint64_t t1 = bench_now_ns();
    double cpu = bench_cpu_seconds() - cpu0;
    for (auto &p : pongers)
        caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
    pongers.clear();
    pingers.clear();
    await_all_but_main(system);
    if (timed_out || reported != pairs)
        bench_fail(r, "%ld of %ld pairs reported", reported, pairs);
    else if (in_order != pairs)
        bench_fail(r, "%ld of %ld pairs saw their sequence out of order", pairs - in_order, pairs);
    double messages = 2.0 * static_cast<double>(pairs) * static_cast<double>(rounds);
    r->count = r->ok ? static_cast<long>(messages) : 0;
    r->elapsed = seconds_between(t0, t1);
    bench_fig(r, "messages_per_s", messages / r->elapsed);
    bench_fig(r, "pairs", static_cast<double>(pairs));
    bench_fig(r, "cpu_s", cpu);
}

} // namespace

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = {
        { "P9", p9 },
        { "P10", p10 },
        { "P11", p11 },
    };
    return bench_main(argc, argv, "caf", scenarios, sizeof scenarios / sizeof *scenarios);
}
