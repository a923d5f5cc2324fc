"""The `reclab` command line: argparse only; each verb is a function of `reclab.commands`, given its
options as one frozen dataclass (`ServeArgs`, `BenchArgs`...) whose shared blocks mirror the helpers
that add their flags (`Connections`: `_add_connection_arguments`; `Switches`: `--loop` and the variant
flags), or, for a command whose flags no other command shares, as keywords.

reclab serve --framework sanic|tornado|aiohttp|fastapi|starlette [--server uvicorn|granian] [variant flags]
             [--mongo-uri URI] [--redis-url URL]
reclab data [--spec SPEC] [--out DIR]
reclab bench [SPEC] [--matrix ...] [--quick] [--out DIR] [--loadgens N] [--capacity-rps X]
reclab loadgen --master HOST:PORT [--processes N]
reclab loadcheck [--processes N]
reclab capacity [SPEC] [--slo-p99-ms 100] [--max-error-rate 0.001] [--quick] [variant and matrix flags]
reclab report DIR | --compare OLD NEW | --index DIR
reclab flamegraph --framework F [--server S] [variant flags]
reclab hotpath [--frameworks F ...] [--server S] [--generator locust|wrk] [variant flags]
reclab smoke [--out DIR]
reclab import-trace FILE [--delimiter D] [--columns ...] [--header|--no-header] [--kinds ...] [--items FILE] [--skip-bad]
                    [--encoding E] [--rating-scale LO..HI] [--rate R] --out DIR
reclab sample-trace OUT [--shape shop|movielens] [--lines N] [--items-out FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reclab import REPORTS
from reclab.analysis.verdicts import MARGIN
from reclab.commands.bench import QUICK_WINDOW_REQUESTS, WINDOW_REQUESTS, BenchArgs, bench
from reclab.commands.capacity import CapacityArgs, capacity
from reclab.commands.data import data
from reclab.commands.flamediff import flamediff
from reclab.commands.flamegraph import FlamegraphArgs, flamegraph
from reclab.commands.hotpath import HotpathArgs, hotpath
from reclab.commands.import_trace import import_trace, sample_trace
from reclab.commands.loadcheck import loadcheck
from reclab.commands.loadgen import loadgen
from reclab.commands.report import report
from reclab.commands.serve import ServeArgs, serve
from reclab.commands.smoke import SmokeArgs, smoke
from reclab.errors import LabError, SpecError, UsageError
from reclab.load.distributed import DEFAULT_PORT
from reclab.run.matrix import BASELINE, MATRICES
from reclab.run.options import Connections, Switches
from reclab.run.runner import MEASURES
from servers.core.limits import Limits
from servers.core.uris import hidden, passwords
from servers.core.variant import ASGI_SERVERS, FRAMEWORKS, SELF_SERVED, STACKS, Variant, stack_of, stacks_named
from servers.serving import (
    add_admission_argument,
    add_connection_arguments,
    add_limit_arguments,
    add_loop_argument,
    add_rule_arguments,
    add_variant_arguments,
    limits_from_args,
    positive,
)
from workloads.spec import DEFAULT_SPEC
from workloads.trace_log import TraceError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

URI_SOURCES = {"mongo_uri": ("--mongo-uri", "RECLAB_MONGO_URI"), "redis_url": ("--redis-url", "RECLAB_REDIS_URL")}
# The blocks of the commands' options, each with the flags it is made of (after `main` has made the
# variant flags one Variant).
BLOCKS: dict[str, tuple[Callable[..., object], tuple[str, ...]]] = {
    "connections": (Connections, ("mongo_uri", "redis_url", "rules")),  # _add_connection_arguments
    "switches": (Switches, ("loop", "variant")),  # add_loop_argument, add_variant_arguments
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reclab", description="A benchmarking lab for Python recommender servers.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="serve the recommender (embedded services unless URIs are given)")
    _add_framework_arguments(p)
    add_loop_argument(p)
    add_admission_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="only 127.0.0.1 is supported for embedded runs")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="workload spec whose dataset is served")
    p.add_argument("--workers", type=positive, default=1, help="worker processes on the one socket (default 1)")
    p.add_argument("--shards", type=positive, default=1, help="embedded MongoDB servers the data is spread over (default 1)")
    add_variant_arguments(p)
    _add_connection_arguments(p)
    add_rule_arguments(p)
    add_limit_arguments(p)
    p.set_defaults(run=serve, options=ServeArgs)

    p = commands.add_parser("data", help="generate the dataset of a spec, print its counts and content hash")
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    p.add_argument("--out", type=Path, help="also write each collection as JSON lines into this folder")
    p.set_defaults(run=data)

    p = commands.add_parser("bench", help="run a benchmark matrix under reproducible load; results to DIR/results.jsonl")
    p.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help="workload spec (TOML)")
    p.add_argument("--matrix", choices=MATRICES, default="ofat", help="ofat (default): one factor at a time around "
                   "the baseline; full: every combination; network: sequential vs gather at 0/1/5 ms delay "
                   "(with workloads/specs/network.toml); frameworks: each framework (FastAPI and Starlette on uvicorn and on "
                   "Granian) on each loop (3 repeats unless told); faults: the "
                   "baseline on each framework under each fault (quick: 1 repeat); supernode: the hot-shard fix; rules: the "
                   "rules' price cap and boost as written and as rule code; drivers: PyMongo, Motor and the bare wire "
                   "protocol; grouping: app, db and write grouping, uncached; overload: the baseline without and with "
                   "admission control at 0.5, 1, 2 and 4x its capacity (quick: 2 repeats)")  # fmt: skip
    p.add_argument("--repeats", type=int, help="repeats of the whole matrix, each in a random order (default 5; frameworks 3; "
                   "3 with --quick)")  # fmt: skip
    p.add_argument("--measure", choices=MEASURES, default="time", help="time (default): the spec's timed phases; "
                   "instructions: each server's instructions per request, counted under valgrind over a fixed slice "
                   "of the stream after the warm-up (3 repeats unless told; needs valgrind); both: each run timed, "
                   "then counted")  # fmt: skip
    p.add_argument("--window-requests", type=positive, metavar="N", help="counting instructions: the requests of each "
                   f"run's window (default {WINDOW_REQUESTS}; {QUICK_WINDOW_REQUESTS} with --quick)")  # fmt: skip
    p.add_argument("--capacity-rps", type=float, metavar="X", help="--matrix overload: the capacity its load multiplies "
                   "(default: searched first, at the spec's objective_ms)")  # fmt: skip
    p.add_argument(
        "--quick", action="store_true", help="the spec's short warm-up and phases: indicative verdicts in a few minutes"
    )
    p.add_argument("--out", type=Path, help="result folder (default reports/bench-<time>)")
    p.add_argument("--resume", action="store_true", help="skip runs already finished in OUT/results.jsonl")
    p.add_argument("--delay-ms", type=float, help="run every variant through the delay proxy with this delay to MongoDB/Redis")
    p.add_argument("--order-seed", type=int, help="seed of the run order within each repeat (default: from the clock; stored)")
    _add_frameworks_arguments(p, "only these frameworks")
    p.add_argument("--workers", type=positive, default=1, help="worker processes of every server (default 1)")
    p.add_argument("--users", type=int, help="override the spec's concurrent users")
    p.add_argument("--processes", type=int, help="override the spec's locust processes")
    p.add_argument("--loadgens", type=positive, help="load from N `reclab loadgen` workers (any machine) through a locust "
                   "master, instead of local locust processes")  # fmt: skip
    p.add_argument("--loadgen-master", default=f"127.0.0.1:{DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"where the master listens for them (default 127.0.0.1:{DEFAULT_PORT})")  # fmt: skip
    p.add_argument("--loadgen-wait-s", type=float, default=300.0, help="how long to wait for them (default 300)")
    p.add_argument("--no-ceiling", action="store_true", help="skip measuring the generator's ceiling")
    p.add_argument("--no-warmup-run", action="store_true", help="skip the unscored run that warms the services up")
    p.add_argument("--no-pin", action="store_true", help="do not give the server a CPU core of its own")
    p.add_argument("--target", metavar="URL", help="replay the stream against a server the lab did not start (on this "
                   "machine); its CPU and counters are marked unknown")  # fmt: skip
    p.add_argument("--shards", type=positive, default=1,
                   help="embedded MongoDB servers the data is spread over (servers/core/shards.py; default 1)")  # fmt: skip
    p.add_argument("--server-cores", type=positive, default=1,
                   help="cores the server's workers are spread over, one worker per core in turn (default 1)")  # fmt: skip
    _add_connection_arguments(p)
    p.set_defaults(run=bench, options=BenchArgs)

    p = commands.add_parser("capacity", help="each variant's highest arrival rate whose p99 stays within an objective")
    p.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help="workload spec (TOML)")
    p.add_argument("--slo-p99-ms", type=float, default=100.0, help="the objective's p99 (default 100 ms)")
    p.add_argument("--max-error-rate", type=float, default=0.001, help="the objective's error rate (default 0.001)")
    p.add_argument("--quick", action="store_true", help="shorter windows, one search per variant: a few minutes")
    p.add_argument("--repeats", type=int, help="searches per variant, interleaved (default 2; 1 with --quick)")
    _add_frameworks_arguments(p, "only these frameworks (default: all)")
    p.add_argument("--matrix", choices=[m for m in MATRICES if m not in ("faults", "overload")],
                   help="a bench matrix's variants (without its A/A copy) instead of the variant on each framework")  # fmt: skip
    p.add_argument("--start-rps", type=float, default=25.0, help="the search's first rate (default 25/s)")
    p.add_argument("--out", type=Path, help="result folder (default reports/capacity-<time>)")
    p.add_argument("--order-seed", type=int, help="seed of the order within each round (default: from the clock; stored)")
    p.add_argument("--no-pin", action="store_true", help="do not give the server a CPU core of its own")
    add_loop_argument(p)
    add_variant_arguments(p)
    p.set_defaults(**BASELINE.variant.as_dict())  # the bench's baseline unless told otherwise
    _add_connection_arguments(p)
    p.set_defaults(run=capacity, options=CapacityArgs)

    p = commands.add_parser("loadgen", help="load generator processes for a bench started with --loadgens (any machine)")
    p.add_argument("--master", required=True, metavar="HOST:PORT", help="the bench's locust master")
    p.add_argument("--processes", type=positive, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--cores", type=int, nargs="+", help="pin them to these CPU cores")
    p.add_argument("--log-dir", type=Path, help="their logs (default reports/logs/loadgen-<time>)")
    p.set_defaults(run=loadgen)

    p = commands.add_parser("loadcheck", help="throughput from `reclab loadgen` workers vs as many local locust processes")
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    p.add_argument("--out", type=Path, default=REPORTS / "latest", help="report folder (loadcheck.json goes inside)")
    p.add_argument("--processes", type=positive, default=2, help="generator processes on each side (default 2)")
    p.add_argument("--rounds", type=positive, default=5, help="pairs of windows per route (default 5)")
    p.add_argument("--window-s", type=float, default=4.0, help="length of each window")
    p.add_argument("--master", default=f"127.0.0.1:{DEFAULT_PORT}", metavar="HOST:PORT", help="where the master listens")
    p.add_argument("--no-pin", dest="pin_cores", action="store_false", help="do not give the server a CPU core of its own")
    _add_connection_arguments(p)
    p.set_defaults(run=loadcheck)

    p = commands.add_parser("report", help="write DIR/report.md and DIR/index.html from DIR/results.jsonl")
    p.add_argument("folder", metavar="DIR", type=Path, nargs="?", help="a result folder of reclab bench")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"),
                   help="regression gate: each variant's ratio to its baseline, OLD vs NEW; its page goes into "
                   "NEW/comparisons/. Exit 0: every variant ok (shown within the threshold); 1: a variant regressed, is "
                   "missing or failed in NEW; 3: none did, but one is undecided (the repeats it needs are printed); "
                   "2: the sets are not like for like")  # fmt: skip
    p.add_argument("--index", type=Path, metavar="DIR", help="DIR/index.html and index.md: every result set below "
                   "DIR, newest first, its verdicts, links to its report and comparisons (no set is written into)")  # fmt: skip
    p.add_argument("--threshold", type=float, default=0.05, help="regression threshold for --compare (default 0.05)")
    p.add_argument("--margin", type=float, default=MARGIN, help=f"equivalence margin of the verdicts (default {MARGIN:g})")
    p.set_defaults(run=report)

    p = commands.add_parser("flamegraph", help="record a loaded server variant with py-spy (SVG + speedscope)")
    _add_framework_arguments(p)
    add_loop_argument(p)
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    p.add_argument("--out", type=Path, default=REPORTS / "latest", help="report folder (flamegraphs/ goes inside)")
    p.add_argument("--seconds", type=float, default=10.0, help="recording time per format")
    p.add_argument("--rate", type=int, default=200, help="samples per second")
    p.add_argument("--diff", nargs="+", metavar="FACTOR=VALUE",
                   help="also record the variant changed so (framework=tornado) and draw a differential flamegraph")  # fmt: skip
    add_variant_arguments(p)
    _add_connection_arguments(p)
    p.set_defaults(run=flamegraph, options=FlamegraphArgs)

    p = commands.add_parser("hotpath", help="a warmed-up server's CPU per request on the stream, against its /health")
    _add_frameworks_arguments(p, "the frameworks measured (default: sanic)", default=["sanic"])
    add_loop_argument(p)
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    p.add_argument("--out", type=Path, default=REPORTS / "latest", help="report folder (hotpath.json goes inside)")
    p.add_argument("--rounds", type=int, default=5, help="pairs of windows (stream, /health)")
    p.add_argument("--window-s", type=float, default=4.0, help="length of each window")
    p.add_argument("--warmup-s", type=float, default=10.0, help="closed-loop warm-up on the stream first")
    p.add_argument("--no-pin", dest="pin_cores", action="store_false", help="do not give the server a CPU core of its own")
    p.add_argument("--generator", choices=["locust", "wrk"], default="locust",
                   help="the load: locust, or wrk replaying the same stream (Debian's wrk package)")  # fmt: skip
    add_variant_arguments(p)
    p.set_defaults(**BASELINE.variant.as_dict())  # the bench's baseline unless told otherwise
    _add_connection_arguments(p)
    p.set_defaults(run=hotpath, options=HotpathArgs)

    p = commands.add_parser("flamediff", help="a differential flamegraph of two folded-stack recordings (A, then B)")
    p.add_argument("before", type=Path, metavar="A.folded")
    p.add_argument("after", type=Path, metavar="B.folded")
    p.add_argument("--out", type=Path, help="path prefix of the two SVGs (default: beside B, named A__vs__B)")
    p.set_defaults(run=flamediff)

    p = commands.add_parser("smoke", help="every framework, a few variants, one request each: latency and Server-Timing")
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    p.add_argument("--out", type=Path, default=REPORTS / "smoke")
    p.add_argument("--requests", type=int, default=200, help="requests per variant (after warm-up)")
    _add_connection_arguments(p)
    p.set_defaults(run=smoke, options=SmokeArgs)

    p = commands.add_parser("import-trace", help="a log of interactions as a workload: dataset, id mappings, a spec replaying it")
    p.add_argument("file", type=Path, help="the log: user, item, an optional rating or event kind, a timestamp per line")
    p.add_argument("--out", type=Path, required=True, help="a new or empty folder for the dataset, ids, spec.toml, "
                   "import.json (and rejects.tsv); written only if the import succeeds")  # fmt: skip
    p.add_argument("--delimiter", help="the column delimiter (default: sniffed; \\t for a tab)")
    p.add_argument("--columns", help="the columns in order, from user,item,rating,kind,timestamp and - to skip one "
                   "(default: from the header's names, else user,item,rating,timestamp)")  # fmt: skip
    p.add_argument("--header", action=argparse.BooleanOptionalAction, default=None, help="the first line names the columns "
                   "(default: sniffed)")  # fmt: skip
    p.add_argument("--kinds", help="KIND=MATCH pairs mapping ratings or event names to view/like/dislike/purchase, e.g. "
                   "'like=4..,dislike=..2,view=*' (the default for ratings) or 'purchase=buy|transaction,view=*'")  # fmt: skip
    p.add_argument("--items", type=Path, help="item metadata: a header naming item and any of category, name, price; "
                   "or a MovieLens item file (id|title|date|video date|URL|genre flags)")  # fmt: skip
    p.add_argument("--skip-bad", action="store_true", help="leave bad lines out (counted by reason, every one in "
                   "DIR/rejects.tsv) instead of failing")  # fmt: skip
    p.add_argument("--encoding", default="utf-8", help="the log's text encoding, e.g. latin-1 (default utf-8; "
                   "a line not valid in it is a bad line)")  # fmt: skip
    p.add_argument("--rating-scale", metavar="LO..HI", help="ratings outside it are bad lines (default: inferred, "
                   "the narrowest common scale holding 99.9%% of them)")  # fmt: skip
    p.add_argument("--rate", type=float, default=20.0, help="the spec's open phase: requests per second each window offers, "
                   "the log's gaps paced to it (default 20)")  # fmt: skip
    p.add_argument("--similar-items", type=positive, default=20, help="items in each item's similarity list (default 20)")
    p.add_argument("--similar-users", type=positive, default=10, help="users in each user's similarity list (default 10)")
    p.set_defaults(run=import_trace)

    p = commands.add_parser("sample-trace", help="write a seeded sample log of interactions (and optionally its item file)")
    p.add_argument("out", type=Path)
    p.add_argument("--shape", choices=("shop", "movielens"), default="shop",
                   help="shop: a CSV log with string ids and ISO timestamps; movielens: shaped and written like "
                   "MovieLens 100k's u.data (943 users, 1,682 items at 100,000 lines)")  # fmt: skip
    p.add_argument("--lines", type=positive, help="interactions (default: 5000 for shop, 100000 for movielens)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--items-out", type=Path, help="also write the catalogue's item file here (movielens: like u.item)")
    p.add_argument("--unix", action="store_true", help="shop: timestamps in unix seconds (default: ISO 8601)")
    p.set_defaults(run=sample_trace)
    return parser


FRAMEWORK_NAMES = tuple(dict.fromkeys((*STACKS, *FRAMEWORKS)))


def _add_framework_arguments(parser: argparse.ArgumentParser) -> None:
    """`--framework` and, for FastAPI and Starlette, the ASGI `--server` it runs on."""
    parser.add_argument("--framework", choices=FRAMEWORKS, required=True)
    parser.add_argument("--server", choices=ASGI_SERVERS, help="FastAPI and Starlette: the ASGI server (default uvicorn)")


def _add_frameworks_arguments(parser: argparse.ArgumentParser, what: str, default: list[str] | None = None) -> None:
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORK_NAMES, default=default, metavar="FRAMEWORK",
                        help=f"{what}: sanic, tornado, aiohttp, fastapi, starlette (on every server unless --server "
                        "says which), or framework@server (fastapi@granian)")  # fmt: skip
    parser.add_argument("--server", choices=ASGI_SERVERS, help="FastAPI and Starlette in --frameworks: only on this server")


def _stacks(args: dict[str, Any]) -> None:
    """`--framework` and `--server` as one stack name (`fastapi@granian`), `--frameworks` as stack names."""
    server = args.pop("server", None)
    try:
        if "framework" in args:
            args["framework"] = stack_of(args["framework"], server)
        elif server is not None and not set(args.get("frameworks") or ()) & set(FRAMEWORKS) - set(SELF_SERVED):
            raise ValueError("--server applies to FastAPI and Starlette: name them in --frameworks")
        elif args.get("frameworks"):
            args["frameworks"] = stacks_named(args["frameworks"], server)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The service URIs: on the command line only without a password; else from the environment."""
    add_connection_arguments(parser)
    parser.set_defaults(mongo_uri=None, redis_url=None)  # main reads the environment when a flag is not given


def _service_uris(args: dict[str, Any]) -> None:
    """Each service URI from its flag or else its environment variable; a password on the command
    line (which anyone on the machine can read, `ps`) is refused."""
    for name, (flag, variable) in URI_SOURCES.items():
        if name not in args:
            continue
        if args[name] is not None and passwords(args[name]):
            raise UsageError(
                f"{flag}: the URI holds a password, and a command line is readable by every user of this machine; "
                f"pass the URI in the environment instead: {variable}='...' reclab ..."
            )
        args[name] = args[name] or os.environ.get(variable) or None


def _limits(deadline_ms: int, assignments: list[str]) -> Limits:
    try:
        return limits_from_args(deadline_ms, assignments)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _options[Options: DataclassInstance](kind: type[Options], args: dict[str, Any]) -> Options:
    """A command's options from its parsed flags: each of its blocks (`BLOCKS`) made of the flags it
    holds, the other flags as they are (a list of values as a tuple)."""
    given = {name: tuple(value) if isinstance(value, list) else value for name, value in args.items()}
    for block in [f.name for f in fields(kind) if f.name in BLOCKS]:
        make, flags = BLOCKS[block]
        given[block] = make(**{flag: given.pop(flag) for flag in flags})
    return kind(**given)


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command, options = args.pop("run"), args.pop("options", None)
    args.pop("command")
    if "strategy" in args:  # the variant switches reach the command as one Variant
        args["variant"] = Variant(*(args.pop(name) for name in ("strategy", "grouping", "cache", "driver")))
    try:
        _stacks(args)
        _service_uris(args)
        if "deadline_ms" in args:  # the limits reach the command as one Limits
            args["limits"] = _limits(args.pop("deadline_ms"), args.pop("limit"))
        return int(command(_options(options, args)) if options else command(**args))
    except (LabError, SpecError, TraceError, ConnectionError) as error:
        uris = [args.get("mongo_uri") or "", args.get("redis_url") or ""]
        print(f"reclab: error: {hidden(str(error), uris)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reclab: interrupted; every started process was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
