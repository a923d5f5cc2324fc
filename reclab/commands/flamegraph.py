"""`reclab flamegraph`: a server variant under the workload's load, recorded with py-spy.

Writes DIR/flamegraphs/<variant>.svg (flamegraph) and <variant>.speedscope.json (open it at
speedscope or in any speedscope viewer), idle frames off, then prints the sample counts.
`reclab report DIR` links them next to the variant's numbers.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.driver import Generator
from reclab.results.config import RunConfig
from reclab.run.profile import FORMATS, record_profiles, speedscope_samples
from reclab.run.server import start_server
from reclab.run.workload import prepare_workload
from reclab.services.start import start_services
from servers.core.variant import Variant
from workloads.spec import Phase


def flamegraph(
    *,
    framework: str,
    loop: str = "uvloop",
    spec: Path,
    out: Path,
    seconds: float = 10.0,
    rate: int = 200,
    variant: Variant,
    mongo_uri: str | None = None,
    redis_url: str | None = None,
    rules: Path,
) -> int:
    config = RunConfig.of(framework, variant, loop)
    out_dir = out / "flamegraphs"
    run_dir = out_dir / "run"  # the stream, the generator, the server's log: beside the profiles, not among them
    workload = prepare_workload(spec, run_dir)
    spec_load = workload.spec.load
    recording_s = len(FORMATS) * (seconds + 1.0) + 1.0
    phases = (Phase("recording", "closed", duration_s=recording_s),)
    load = replace(spec_load, warmup_requests=spec_load.quick_warmup_requests, phases=phases)
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(
            group, spec, out / "logs", mongo_uri=mongo_uri, redis_url=redis_url, need_redis=config.variant.needs_redis
        )
        server = start_server(group, config.framework, config.variant, endpoints, run_dir, rules=rules, loop=loop)
        generator = Generator(group, load.processes, run_dir / "generator")
        run = generator.prepare(server.base_url, workload.paths_file, load, workload.spec.requests.seed, run_dir)
        window = generator.release(run, server.child.alive)[0]
        time.sleep(max(0.0, window.start - time.monotonic()))
        written = record_profiles(group, server.worker_pid(), config.key, out_dir, seconds, rate)
        result = generator.collect(run)
        group.stop(server.child)
    served = sum(phase.ok for phase in result.phases)
    print(f"{config.key}: {served} requests served while recording; {speedscope_samples(written[0])} samples")
    for path in written:
        print(f"  {path}")
    return 0
