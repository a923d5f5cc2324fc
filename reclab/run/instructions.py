"""One run's server instructions per request: the variant's server forked from the bench's zygote
under valgrind (`reclab.run.callgrind`), the run's usual warm-up prefix of the stream sent with
instrumentation off, then a fixed slice of the stream (the entries right after the warm-up, where the
timed phases start too) with instrumentation on in every process of the server; the instructions
counted, summed over the processes, divided by the requests answered.

Only the server is under valgrind: the database, the cache and the lab run as usual. The slice goes
in stream order over the window's connections (one by default: every run then serves exactly the
same requests in the same order), so what is counted depends on the code and the data, hardly on
the machine: two runs of a variant agree to a fraction of a percent. For that the server runs without
its pace work (`--no-pace`): a reference loop every 50 ms of wall time, which valgrind's slowness would
make a quarter of the count, and a different quarter from run to run.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from reclab.host.processes import ProcessGroup
from reclab.load.replay import Replayer, stream_slice
from reclab.results.config import RunConfig
from reclab.results.record import InstructionCount, Warmup
from reclab.run.callgrind import InstructionCounter
from reclab.run.measure import BenchContext, ServerHook, delete_namespace, exit_named, start_variant, warmup_start_of
from reclab.run.server import RunningServer
from workloads.loadplan import parse_stream

READY_UNDER_VALGRIND_S = 180.0  # a forked server under valgrind: its event loop, clients and workers, several times slower


@dataclass(frozen=True)
class Counted:
    """What an instruction run measured: the window's count, the warm-up, the loop the server ran on."""

    instructions: InstructionCount
    warmup: Warmup
    server_loop: str | None


def count_run(ctx: BenchContext, config: RunConfig, on_server: ServerHook | None = None) -> Counted:
    """One instruction run of `config` (the bench must count instructions: `ctx.counter`,
    `ctx.window`). Everything the run starts is stopped when it ends. Raises if the run fails."""
    if ctx.counter is None or ctx.window is None:
        raise ValueError("this bench does not count instructions")
    run_dir = ctx.work_dir / uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True)
    namespace = f"reclab-{run_dir.name}"
    entries, _ = parse_stream(ctx.paths_file.read_text())
    try:
        with ProcessGroup() as group:
            up = start_variant(ctx, config, group, run_dir, namespace, on_server, forker=ctx.counter.forker,
                               ready_timeout_s=READY_UNDER_VALGRIND_S, pace=False)  # fmt: skip
            with exit_named(up.server), Replayer(up.server.port, ctx.window.connections) as replayer:
                begin, warmup_end = warmup_start_of(config, ctx.load), ctx.load.warmup_requests
                warm = replayer.send(stream_slice(entries, begin, warmup_end - begin))
                window = stream_slice(entries, warmup_end, ctx.window.requests)
                count = count_window(ctx.counter, up.server, replayer, window, warmup_end)
        ctx.counter.forget([int(pid) for pid in count.processes])  # stopped with the run's group
        warmed = Warmup(requests=warmup_end - begin, ok=warm.ok, errors=warm.by_kind)
        return Counted(count, warmed, up.loop)
    finally:
        delete_namespace(ctx.endpoints.redis_url, namespace)


def count_window(
    counter: InstructionCounter, server: RunningServer, replayer: Replayer, entries: list[str], start: int
) -> InstructionCount:
    """The instructions every process of `server` executes while it serves `entries` (sent by
    `replayer`, over the connections the warm-up went over): instrumentation on in each process (the
    server idle), the entries sent, instrumentation off in each, their counts taken.
    Raises if a process of the server appeared or went during the window (its count would be partial)."""
    processes = server.process_ids()
    with ThreadPoolExecutor(len(processes)) as each:  # one vgdb per process at once: each waits for its process
        list(each.map(partial(counter.switch, on=True), processes))
        try:
            started = time.monotonic()
            sent = replayer.send(entries)
            seconds = time.monotonic() - started
        finally:
            list(each.map(partial(counter.switch, on=False), processes))
        counts = dict(zip(map(str, processes), each.map(counter.take, processes), strict=True))
    after = server.process_ids()
    if sorted(after) != sorted(processes):
        raise RuntimeError(f"the server's processes changed during the instruction window: {processes} then {after}")
    if sent.answered == 0:
        raise RuntimeError(f"no request of the instruction window was answered: {sent.first_error}")
    return InstructionCount(
        total=sum(counts.values()),
        requests=sent.answered,
        errors=sent.errors,
        start=start,
        connections=len(replayer.connections),
        processes=counts,
        seconds=round(seconds, 2),
        tool=counter.tool,
    )
