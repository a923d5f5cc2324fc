"""`reclab flamegraph`: a server variant under the workload's load, recorded with py-spy.

Writes DIR/flamegraphs/<variant>.svg (flamegraph) and <variant>.speedscope.json (open it at
speedscope or in any speedscope viewer), idle frames off, then prints the sample counts.
`reclab report DIR` links them next to the variant's numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from reclab.load import start_load, wait_load
from reclab.matrix import RunConfig
from reclab.processes import ProcessGroup, stop_on_signals
from reclab.server_process import start_server
from reclab.services import start_services
from servers.core.runtime import variant_from_args
from workloads.dataset import generate
from workloads.spec import load_spec
from workloads.stream import build_stream

FORMATS = (("speedscope", ".speedscope.json"), ("flamegraph", ".svg"))


def slug(key: str) -> str:
    return key.replace("/", "_").replace("=", "-")


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy not found (it is a dependency of reclab: reinstall the project)")
    return found


def speedscope_samples(path: Path) -> int:
    data = json.loads(path.read_text())
    return sum(len(profile.get("samples", [])) for profile in data.get("profiles", []))


def run_flamegraph(args: argparse.Namespace) -> int:
    config = RunConfig(args.framework, variant_from_args(args))
    spec = load_spec(args.spec)
    seconds = float(args.seconds)
    load = replace(spec.load, warmup_s=spec.load.quick_warmup_s, duration_s=len(FORMATS) * (seconds + 1.0) + 1.0)
    out_dir: Path = args.out / "flamegraphs"
    out_dir.mkdir(parents=True, exist_ok=True)
    stream = build_stream(spec, generate(spec.dataset))
    paths_file = out_dir / f"stream-{stream.hash}.txt"
    paths_file.write_text("\n".join(stream.paths))
    written = []
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(
            group,
            Path(spec.path),
            args.out / "logs",
            mongo_uri=args.mongo_uri,
            redis_url=args.redis_url,
            need_redis=config.variant.needs_redis,
        )
        server = start_server(group, config.framework, config.variant, endpoints, out_dir, rules=args.rules)
        run = start_load(group, server.base_url, paths_file, load, spec.requests.seed, out_dir)
        time.sleep(max(0.0, run.measure_start - time.monotonic()))
        for fmt, suffix in FORMATS:
            target = out_dir / f"{slug(config.key)}{suffix}"
            argv = [
                py_spy(),
                "record",
                "--pid",
                str(server.child.pid),
                "--rate",
                str(args.rate),
                "--duration",
                str(int(seconds)),
                "--format",
                fmt,
                "--output",
                str(target),
            ]
            recorder = group.start(f"py-spy {fmt}", argv, out_dir / "py-spy.log")
            recorder.popen.wait(timeout=seconds + 60)
            group.stop(recorder)
            if not target.exists():
                raise RuntimeError(f"py-spy wrote no {fmt} output; see {out_dir / 'py-spy.log'}")
            written.append(target)
        result = wait_load(group, run)
        group.stop(server.child)
    samples = speedscope_samples(written[0])
    print(f"{config.key}: {result.ok} requests served while recording; {samples} samples")
    for path in written:
        print(f"  {path}")
    return 0
