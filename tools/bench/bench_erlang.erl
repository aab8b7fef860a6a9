#!/usr/bin/env escript
%% -*- erlang -*-
%%! +P 4000000 +S 2:2
%%
%% Erlang/OTP processes under BENCH.md Part 2's P9, P10 and P11, doing the
%% same checked work as bench_worker's pooled workers and bench_caf's actors,
%% with the command line and JSON lines of every bench_* program. Run as an
%% escript (compiled at start, -mode(compile)); the emulator flags above
%% allow 4,000,000 processes and fix 2 schedulers (the machine has 2 vCPUs).
%%
%% P9  spawn N processes (one receive each), send one message to each and
%%     get its reply, read RSS while all are alive, then monitor each, send
%%     it `stop` and wait for every 'DOWN'. The main process's list of the N
%%     pids (about 24 bytes a process) is part of the RSS figure.
%% P10 skynet: every inner process spawns 10 children and adds up their
%%     sums, every leaf sends its number; each process ends after sending.
%%     Timed until the root's sum reached the main process.
%% P11 pairs ping-ponging: PING n, PONG n, both sides check the sequence;
%%     each pinger reports when its round trips are done. Timed from the
%%     first `go` to the last report.
-mode(compile).

-define(WAIT_LIMIT_MS, 300000).

main(Args) ->
    case parse_args(Args, #{runs => 1, json => false, quick => false, count => 0, workers => 0}) of
        list ->
            [io:format("~s~n", [Id]) || Id <- scenario_ids()],
            halt(0);
        help ->
            usage(standard_io),
            halt(0);
        {error, Why} ->
            io:format(standard_error, "bench_erlang: ~s~n", [Why]),
            usage(standard_error),
            halt(2);
        Opts ->
            halt(run_all(Opts))
    end.

scenario_ids() -> ["P9", "P10", "P11"].

usage(Out) ->
    io:format(Out, "usage: bench_erlang --scenario ID [--count N] [--workers N] [--runs R]"
                   " [--quick] [--json] | --list~nsystem: erlang; scenarios: P9 P10 P11~n", []).

%% --- command line ---------------------------------------------------------------

parse_args([], Opts) ->
    case maps:is_key(scenario, Opts) of
        true -> Opts;
        false -> {error, "no --scenario"}
    end;
parse_args(["--list" | _], _) -> list;
parse_args(["--help" | _], _) -> help;
parse_args(["-h" | _], _) -> help;
parse_args(["--json" | Rest], Opts) -> parse_args(Rest, Opts#{json := true});
parse_args(["--quick" | Rest], Opts) -> parse_args(Rest, Opts#{quick := true});
parse_args(["--scenario", Id | Rest], Opts) ->
    case lists:member(Id, scenario_ids()) of
        true -> parse_args(Rest, Opts#{scenario => Id});
        false -> {error, "system erlang has no scenario " ++ Id}
    end;
parse_args([Opt, Value | Rest], Opts)
  when Opt =:= "--count"; Opt =:= "--workers"; Opt =:= "--runs";
       Opt =:= "--events"; Opt =:= "--senders"; Opt =:= "--seconds" ->
    case parse_number(Value) of
        bad -> {error, "bad " ++ Opt ++ " " ++ Value};
        N -> parse_args(Rest, set_number(Opt, N, Opts))
    end;
parse_args([Bad | _], _) -> {error, "bad argument '" ++ Bad ++ "'"}.

set_number("--count", N, Opts) -> Opts#{count := N};
set_number("--workers", N, Opts) -> Opts#{workers := N};
set_number("--runs", N, Opts) -> Opts#{runs := max(1, N)};
set_number(_, _, Opts) -> Opts. % accepted for a common command line, unused here

%% "1000", "1e6", "2.5e3": a non-negative whole number, or bad.
parse_number(Text) ->
    case string:split(string:lowercase(Text), "e") of
        [Mantissa] -> to_number(Mantissa);
        [Mantissa, Exponent] ->
            case {to_number(Mantissa), to_number(Exponent)} of
                {M, E} when is_number(M), is_integer(E) -> round(M * math:pow(10, E));
                _ -> bad
            end
    end.

to_number(Text) ->
    case string:to_integer(Text) of
        {N, ""} when N >= 0 -> N;
        _ ->
            case string:to_float(Text) of
                {F, ""} when F >= 0 -> F;
                _ -> bad
            end
    end.

%% --- runs and output ----------------------------------------------------------------

run_all(Opts = #{runs := Runs}) ->
    Statuses = [run_one(Opts, Run) || Run <- lists:seq(1, Runs)],
    case lists:all(fun(S) -> S =:= ok end, Statuses) of
        true -> 0;
        false -> 1
    end.

run_one(Opts = #{scenario := Id}, Run) ->
    Result = run_scenario(Id, Opts),
    print_result(Opts, Run, Result),
    case Result of
        #{error := none} -> ok;
        #{error := Why} ->
            io:format(standard_error, "erlang ~s run ~b FAILED: ~s~n", [Id, Run, Why]),
            failed
    end.

run_scenario("P9", Opts) -> p9(workers(Opts, 200, 1000000));
run_scenario("P10", Opts) -> p10(count(Opts, 100, 1000000));
run_scenario("P11", Opts) -> p11(workers(Opts, 10, 1000), count(Opts, 100, 1000)).

workers(#{workers := 0, quick := Quick}, QuickN, FullN) -> pick(Quick, QuickN, FullN);
workers(#{workers := N}, _, _) -> N.

count(#{count := 0, quick := Quick}, QuickN, FullN) -> pick(Quick, QuickN, FullN);
count(#{count := N}, _, _) -> N.

pick(true, QuickN, _) -> QuickN;
pick(false, _, FullN) -> FullN.

print_result(#{json := true, scenario := Id, quick := Quick}, Run, R) ->
    #{count := Count, elapsed := Elapsed, figures := Figures, error := Error} = R,
    io:format("{\"system\":\"erlang\",\"scenario\":\"~s\",\"run\":~b,\"ok\":~s,\"quick\":~s,"
              "\"count\":~b,\"elapsed_s\":~s,\"figures\":{~s},\"error\":~s}~n",
              [Id, Run, Error =:= none, Quick, Count, number(Elapsed),
               lists:join(",", [io_lib:format("\"~s\":~s", [K, number(V)]) || {K, V} <- Figures]),
               json_error(Error)]);
print_result(#{scenario := Id}, Run, R) ->
    #{count := Count, elapsed := Elapsed, figures := Figures, error := Error} = R,
    Status = case Error of none -> "ok"; _ -> "FAILED" end,
    io:format("erlang ~s run ~b: ~s, count ~b, ~.3f s~s~s~n",
              [Id, Run, Status, Count, float(Elapsed),
               [io_lib:format(", ~s ~s", [K, number(V)]) || {K, V} <- Figures],
               case Error of none -> ""; _ -> " (" ++ Error ++ ")" end]).

number(V) -> float_to_list(float(V), [short]).

json_error(none) -> "null";
json_error(Why) -> io_lib:format("\"~s\"", [[escape_char(C) || C <- Why]]).

escape_char($") -> "\\\"";
escape_char($\\) -> "\\\\";
escape_char(C) when C < 32 -> " ";
escape_char(C) -> C.

result(Count, Elapsed, Figures, Error) ->
    #{count => Count, elapsed => Elapsed, figures => Figures, error => Error}.

%% --- time and memory ------------------------------------------------------------------

now_ns() -> erlang:monotonic_time(nanosecond).

seconds(T0, T1) -> (T1 - T0) / 1.0e9.

%% CPU seconds of every thread of the runtime system so far.
cpu_seconds() ->
    {Ms, _} = statistics(runtime),
    Ms / 1000.

rss_bytes(PageSize) ->
    {ok, Statm} = file:read_file("/proc/self/statm"),
    [_Size, Resident | _] = string:lexemes(binary_to_list(Statm), " \n"),
    list_to_integer(Resident) * PageSize.

page_size() ->
    case string:to_integer(os:cmd("getconf PAGESIZE")) of
        {N, _} when is_integer(N) -> N;
        _ -> 4096
    end.

%% --- P9 -------------------------------------------------------------------------------

hello(Index) ->
    receive
        {hello, From, Asked} ->
            From ! {hello_back, answer(Asked, Index)},
            receive stop -> ok end
    end.

answer(Same, Same) -> Same;
answer(_, _) -> bad.

spawn_hellos(N) -> [spawn(fun() -> hello(I) end) || I <- lists:seq(0, N - 1)].

send_hellos(Pids) ->
    Me = self(),
    lists:foldl(fun(Pid, I) -> Pid ! {hello, Me, I}, I + 1 end, 0, Pids).

%% {Replies, SumOfIndices}, or timeout.
collect_hellos(0, Sum) -> {ok, Sum};
collect_hellos(Left, Sum) ->
    receive
        {hello_back, bad} -> {bad, Sum};
        {hello_back, I} -> collect_hellos(Left - 1, Sum + I)
    after ?WAIT_LIMIT_MS -> {timeout, Left}
    end.

stop_all(Pids) ->
    [begin erlang:monitor(process, Pid), Pid ! stop end || Pid <- Pids],
    await_downs(length(Pids)).

await_downs(0) -> ok;
await_downs(Left) ->
    receive
        {'DOWN', _, process, _, normal} -> await_downs(Left - 1);
        {'DOWN', _, process, _, Why} -> {error, Why}
    after ?WAIT_LIMIT_MS -> {timeout, Left}
    end.

p9(N) ->
    PageSize = page_size(),
    Rss0 = rss_bytes(PageSize),
    Cpu0 = cpu_seconds(),
    T0 = now_ns(),
    Pids = spawn_hellos(N),
    TSpawned = now_ns(),
    send_hellos(Pids),
    Replies = collect_hellos(N, 0),
    TAnswered = now_ns(),
    Rss1 = rss_bytes(PageSize),
    Stopped = stop_all(Pids),
    T1 = now_ns(),
    Expected = N * (N - 1) div 2,
    Error = case {Replies, Stopped} of
                {{ok, Expected}, ok} -> none;
                {{ok, Sum}, _} when Sum =/= Expected ->
                    io_lib:format("replies add up to ~b, expected ~b", [Sum, Expected]);
                {{ok, _}, Bad} -> io_lib:format("stopping: ~p", [Bad]);
                {Bad, _} -> io_lib:format("replies: ~p", [Bad])
            end,
    Elapsed = seconds(T0, T1),
    result(case Error of none -> N; _ -> 0 end, Elapsed,
           [{"us_per_worker", Elapsed * 1.0e6 / N},
            {"rss_bytes_per_worker", (Rss1 - Rss0) / N},
            {"spawn_us_per_worker", seconds(T0, TSpawned) * 1.0e6 / N},
            {"stop_us_per_worker", seconds(TAnswered, T1) * 1.0e6 / N},
            {"cpu_s", cpu_seconds() - Cpu0}],
           flat(Error)).

flat(none) -> none;
flat(Chars) -> lists:flatten(Chars).

%% --- P10 ------------------------------------------------------------------------------

skynet(Parent, First, 1) ->
    Parent ! {sum, First};
skynet(Parent, First, Leaves) ->
    PerChild = Leaves div 10,
    Me = self(),
    [spawn(fun() -> skynet(Me, First + C * PerChild, PerChild) end) || C <- lists:seq(0, 9)],
    Parent ! {sum, add_sums(10, 0)}.

add_sums(0, Sum) -> Sum;
add_sums(Left, Sum) ->
    receive {sum, Part} -> add_sums(Left - 1, Sum + Part) end.

is_power_of_ten(1) -> true;
is_power_of_ten(N) when N >= 10, N rem 10 =:= 0 -> is_power_of_ten(N div 10);
is_power_of_ten(_) -> false.

p10(Leaves) ->
    case is_power_of_ten(Leaves) of
        false -> result(0, 0, [], flat(io_lib:format("--count ~b: the leaves must be a power of 10",
                                                     [Leaves])));
        true -> p10_run(Leaves)
    end.

p10_run(Leaves) ->
    Me = self(),
    Cpu0 = cpu_seconds(),
    T0 = now_ns(),
    spawn(fun() -> skynet(Me, 0, Leaves) end),
    Total = receive {sum, S} -> S after ?WAIT_LIMIT_MS -> timeout end,
    T1 = now_ns(),
    Cpu = cpu_seconds() - Cpu0,
    Expected = Leaves * (Leaves - 1) div 2,
    Error = case Total of
                Expected -> none;
                _ -> flat(io_lib:format("sum ~p, expected ~b", [Total, Expected]))
            end,
    Elapsed = seconds(T0, T1),
    result(case Error of none -> Leaves; _ -> 0 end, Elapsed,
           [{"seconds", Elapsed}, {"actors", (Leaves * 10 - 1) div 9}, {"cpu_s", Cpu}], Error).

%% --- P11 ------------------------------------------------------------------------------

ponger(Expected) ->
    receive
        {ping, From, Seq} ->
            From ! {pong, answer(Seq, Expected)},
            ponger(Expected + 1);
        stop -> ok
    end.

pinger(Ponger, Rounds) ->
    receive
        {go, Main} ->
            Ponger ! {ping, self(), 0},
            pinger_loop(Ponger, Main, 0, Rounds, true)
    end.

pinger_loop(Ponger, Main, Seq, Rounds, InOrder) ->
    receive
        {pong, Answer} ->
            StillInOrder = InOrder andalso Answer =:= Seq,
            Next = Seq + 1,
            case Next < Rounds of
                true ->
                    Ponger ! {ping, self(), Next},
                    pinger_loop(Ponger, Main, Next, Rounds, StillInOrder);
                false ->
                    Main ! {done, StillInOrder}
            end
    end.

await_pairs(0, InOrder) -> {ok, InOrder};
await_pairs(Left, InOrder) ->
    receive
        {done, true} -> await_pairs(Left - 1, InOrder + 1);
        {done, false} -> await_pairs(Left - 1, InOrder)
    after ?WAIT_LIMIT_MS -> {timeout, Left}
    end.

p11(Pairs, Rounds) ->
    Pongers = [spawn(fun() -> ponger(0) end) || _ <- lists:seq(1, Pairs)],
    Pingers = [spawn(fun() -> pinger(P, Rounds) end) || P <- Pongers],
    Me = self(),
    Cpu0 = cpu_seconds(),
    T0 = now_ns(),
    [P ! {go, Me} || P <- Pingers],
    Reports = await_pairs(Pairs, 0),
    T1 = now_ns(),
    Cpu = cpu_seconds() - Cpu0,
    [P ! stop || P <- Pongers],
    Error = case Reports of
                {ok, Pairs} -> none;
                {ok, InOrder} ->
                    flat(io_lib:format("~b of ~b pairs saw their sequence out of order",
                                       [Pairs - InOrder, Pairs]));
                {timeout, Left} ->
                    flat(io_lib:format("~b of ~b pairs reported", [Pairs - Left, Pairs]))
            end,
    Elapsed = seconds(T0, T1),
    Messages = 2 * Pairs * Rounds,
    result(case Error of none -> Messages; _ -> 0 end, Elapsed,
           [{"messages_per_s", Messages / Elapsed}, {"pairs", Pairs}, {"cpu_s", Cpu}], Error).
