"""`reclab flamegraph`: a server variant under the workload's load, recorded with py-spy.

Writes DIR/flamegraphs/<variant>.svg (flamegraph) and <variant>.speedscope.json (open it at
speedscope or in any speedscope viewer), idle frames off, then prints the sample counts.
With `--diff FACTOR=VALUE ...`, records the variant (A) and the variant changed as named (B), one
after the other under the same load on the same services, and draws a differential flamegraph
(`reclab.report.flamediff`): DIR/flamegraphs/<A>__vs__<B>.diff.svg and .diff-reverse.svg.
`reclab report DIR` links them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from reclab import REPORTS
from reclab.errors import UsageError
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.driver import Generator
from reclab.report.flamediff import write_diff
from reclab.results.config import RunConfig, key_slug
from reclab.run.options import OneServer
from reclab.run.profile import FOLDED, FORMATS, record_profiles
from reclab.run.server import start_server
from reclab.run.workload import prepare_workload
from servers.core.variant import split_stack, stack_of
from workloads.spec import Phase


@dataclass(frozen=True, kw_only=True)
class FlamegraphArgs(OneServer):
    """`reclab flamegraph`'s flags as given."""

    out: Path = REPORTS / "latest"
    seconds: float = 10.0  # recording time per format
    rate: int = 200  # samples per second
    diff: tuple[str, ...] = ()  # FACTOR=VALUE changes of the second variant (none: one variant, no diff)


def flamegraph(args: FlamegraphArgs) -> int:
    first = args.switches.config(args.framework)
    configs = [first, changed(first, args.diff)] if args.diff else [first]
    formats = FOLDED if args.diff else FORMATS
    out_dir = args.out / "flamegraphs"
    run_dir = out_dir / "run"  # the stream, the generator, the server's log: beside the profiles, not among them
    workload = prepare_workload(args.spec, run_dir)
    spec_load = workload.spec.load
    recording_s = len(formats) * (args.seconds + 1.0) + 1.0
    phases = (Phase("recording", "closed", duration_s=recording_s),)
    load = replace(spec_load, warmup_requests=spec_load.quick_warmup_requests, phases=phases)
    recorded: list[Path] = []
    with stop_on_signals(), ProcessGroup() as group:
        needs_redis = any(c.variant.needs_redis for c in configs)
        endpoints = args.connections.start_services(group, args.spec, args.out / "logs", need_redis=needs_redis)
        generator = Generator(group, load.processes, run_dir / "generator")
        for config in configs:
            server = start_server(group, config.stack, config.variant, endpoints, run_dir, rules=args.connections.rules,
                                  loop=config.loop)  # fmt: skip
            run = generator.prepare(server.base_url, workload.paths_file, load, workload.spec.requests.seed, run_dir)
            window = generator.release(run, server.child.alive)[0]
            time.sleep(max(0.0, window.start - time.monotonic()))
            written = record_profiles(group, server.worker_pid(), config.key, out_dir, args.seconds, args.rate, formats)
            result = generator.collect(run)
            group.stop(server.child)
            served = sum(phase.ok for phase in result.phases)
            print(f"{config.key}: {served} requests served while recording")
            recorded += written
    if args.diff:
        target = out_dir / f"{key_slug(configs[0].key)}__vs__{key_slug(configs[1].key)}"
        recorded += write_diff(recorded[0], recorded[1], configs[0].key, configs[1].key, target)
    for path in recorded:
        print(f"  {path}")
    return 0


def changed(config: RunConfig, assignments: tuple[str, ...]) -> RunConfig:
    """`config` with FACTOR=VALUE changes (framework, loop, strategy, grouping, cache, driver)."""
    values = config.as_dict()
    for assignment in assignments:
        factor, _, value = assignment.partition("=")
        if factor not in values or factor in ("delay_ms", "fault"):
            raise UsageError(f"--diff {assignment}: name one of framework, server, loop, strategy, grouping, cache, driver")
        if factor == "framework":  # a framework, or framework@server (fastapi@granian)
            try:
                values["framework"], values["server"] = split_stack(stack_of(*split_stack(value)))
            except ValueError as error:
                raise UsageError(f"--diff {assignment}: {error}") from None
            continue
        values[factor] = value
    try:
        other = RunConfig(**values)
    except ValueError as error:
        raise UsageError(f"--diff {' '.join(assignments)}: {error}") from None
    if other == config:
        raise UsageError(f"--diff {' '.join(assignments)}: that is the same variant")
    return other
