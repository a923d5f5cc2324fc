"""The `reclab` command: serve a variant, generate data, compare variants.

reclab serve --framework sanic|tornado [variant flags] [--mongo-uri URI] [--redis-url URL]
reclab data [--spec SPEC] [--out DIR]
reclab smoke [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reclab import REPORTS
from reclab.matrix import MATRICES
from reclab.processes import ProcessGroup, stop_on_signals
from reclab.server_process import start_server
from reclab.services import ServiceError, start_services
from servers.core.runtime import add_connection_arguments, add_variant_arguments, variant_from_args
from servers.core.variant import FRAMEWORKS
from workloads.spec import DEFAULT_SPEC, load_spec
from workloads.tomlcheck import SpecError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reclab", description="A benchmarking lab for Python recommender servers.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the recommender (embedded services unless URIs are given)")
    serve.add_argument("--framework", choices=FRAMEWORKS, required=True)
    serve.add_argument("--host", default="127.0.0.1", help="only 127.0.0.1 is supported for embedded runs")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="workload spec whose dataset is served")
    add_variant_arguments(serve)
    add_connection_arguments(serve)
    serve.set_defaults(run=cmd_serve)

    data = commands.add_parser("data", help="generate the dataset of a spec, print its counts and content hash")
    data.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    data.add_argument("--out", type=Path, help="also write each collection as JSON lines into this folder")
    data.set_defaults(run=cmd_data)

    bench = commands.add_parser("bench", help="run a benchmark matrix under reproducible load; results to DIR/results.jsonl")
    bench.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help="workload spec (TOML)")
    bench.add_argument(
        "--matrix",
        choices=MATRICES,
        default="ofat",
        help="ofat (default): one factor at a time around "
        "the baseline; full: every combination; network: sequential vs gather at 0/1/5 ms delay",
    )
    bench.add_argument("--repeats", type=int, help="repeats of the whole matrix, interleaved (default 3; 2 with --quick)")
    bench.add_argument("--quick", action="store_true", help="the spec's short warm-up and duration")
    bench.add_argument("--out", type=Path, help="result folder (default reports/bench-<time>)")
    bench.add_argument("--resume", action="store_true", help="skip runs already finished in OUT/results.jsonl")
    bench.add_argument("--delay-ms", type=float, default=0.0, help="emulated delay to MongoDB/Redis for every run")
    bench.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, help="only these frameworks")
    bench.add_argument("--users", type=int, help="override the spec's concurrent users")
    bench.add_argument("--processes", type=int, help="override the spec's locust processes")
    bench.add_argument("--no-ceiling", action="store_true", help="skip measuring the generator's ceiling")
    bench.add_argument("--no-warmup-run", action="store_true", help="skip the unscored run that warms the services up")
    bench.add_argument("--no-pin", action="store_true", help="do not give the server a CPU core of its own")
    add_connection_arguments(bench)
    bench.set_defaults(run=cmd_bench)

    report = commands.add_parser("report", help="write DIR/report.md and DIR/index.html from DIR/results.jsonl")
    report.add_argument("dir", type=Path, nargs="?", help="a result folder of reclab bench")
    report.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("OLD", "NEW"),
        help="per-variant changes between two result folders; exit 1 on a significant regression",
    )
    report.add_argument("--threshold", type=float, default=0.05, help="regression threshold for --compare (default 0.05)")
    report.set_defaults(run=cmd_report)

    flame = commands.add_parser("flamegraph", help="record a loaded server variant with py-spy (SVG + speedscope)")
    flame.add_argument("--framework", choices=FRAMEWORKS, required=True)
    flame.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    flame.add_argument("--out", type=Path, default=REPORTS / "latest", help="report folder (flamegraphs/ goes inside)")
    flame.add_argument("--seconds", type=float, default=10.0, help="recording time per format")
    flame.add_argument("--rate", type=int, default=200, help="samples per second")
    add_variant_arguments(flame)
    add_connection_arguments(flame)
    flame.set_defaults(run=cmd_flamegraph)

    smoke = commands.add_parser("smoke", help="both frameworks, a few variants, one request each: latency and Server-Timing")
    smoke.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    smoke.add_argument("--out", type=Path, default=REPORTS / "smoke")
    smoke.add_argument("--requests", type=int, default=200, help="requests per variant (after warm-up)")
    add_connection_arguments(smoke)
    smoke.set_defaults(run=cmd_smoke)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    variant = variant_from_args(args)
    log_dir = REPORTS / "logs"
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(
            group, args.spec, log_dir, mongo_uri=args.mongo_uri, redis_url=args.redis_url, need_redis=variant.needs_redis
        )
        print(f"MongoDB: {endpoints.mongo_engine} at {endpoints.mongo_uri} (dataset {endpoints.dataset_hash})")
        if endpoints.redis_url:
            print(f"Redis: {endpoints.redis_engine} at {endpoints.redis_url}")
        server = start_server(group, args.framework, variant, endpoints, log_dir, port=args.port, rules=args.rules)
        print(f"{args.framework} ({variant.label()}) serving on {server.base_url}  — Ctrl-C stops everything")
        print(
            f"  try: curl -i {server.base_url}/recommend/items/1   or   {server.base_url}/recommend/users/1?service=home/for-you"
        )
        while server.child.alive():
            time.sleep(0.5)
        print(f"server exited with code {server.child.popen.returncode}; see {server.child.log_path}", file=sys.stderr)
        return 1


def cmd_data(args: argparse.Namespace) -> int:
    from workloads.dataset import generate, write_jsonl

    started = time.perf_counter()
    dataset = generate(load_spec(args.spec).dataset)
    print(f"spec {args.spec}: {dataset.counts()} in {time.perf_counter() - started:.2f} s")
    print(f"content hash {dataset.content_hash()}")
    if args.out:
        write_jsonl(dataset, args.out)
        print(f"written to {args.out}/")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from reclab.bench import run_bench

    if args.out is None:
        args.out = REPORTS / time.strftime("bench-%Y%m%d-%H%M%S")
    if args.repeats is not None and args.repeats < 1:
        raise SpecError("--repeats", "", "must be at least 1")
    return run_bench(args)


def cmd_report(args: argparse.Namespace) -> int:
    folders = args.compare or ([args.dir] if args.dir else [])
    if not folders:
        raise SpecError("reclab report", "DIR", "give a result folder, or --compare OLD NEW")
    for folder in folders:
        if not (folder / "results.jsonl").exists():
            raise SpecError(folder / "results.jsonl", "", "no such results file")
    if args.compare:
        from reclab.compare import comparability_notes, compare, compare_table, speed_note
        from reclab.results import read_results

        old, new = (read_results(folder / "results.jsonl") for folder in args.compare)
        changes = compare(old, new, args.threshold)
        print(compare_table(changes, args.threshold))
        for note in [*comparability_notes(old, new), speed_note(old, new)]:
            if note:
                print(note)
        regressed = [c.key for c in changes if c.regressed]
        if regressed:
            print(f"{len(regressed)} variant(s) regressed: {', '.join(regressed)}", file=sys.stderr)
            return 1
        return 0
    from reclab.report import build_report

    md, page = build_report(args.dir)
    print(f"report: {md}\n        {page.resolve()}")
    return 0


def cmd_flamegraph(args: argparse.Namespace) -> int:
    from reclab.flamegraph import run_flamegraph

    return run_flamegraph(args)


def cmd_smoke(args: argparse.Namespace) -> int:
    from reclab.smoke import run_smoke

    return run_smoke(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SpecError, ServiceError, ConnectionError) as error:
        print(f"reclab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reclab: interrupted; every started process was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
