"""`reclab smoke`: every framework, a few variants, a fixed request repeated: latency, its
Server-Timing breakdown, and db ops / round trips per request (from /metrics). Quick, not a load test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reclab import REPORTS
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.report.document import Table, table_markdown
from reclab.run.options import Connections
from reclab.run.probe import Probe, probe
from reclab.run.server import start_server
from servers.core.variant import STACKS, Variant
from workloads.spec import DEFAULT_SPEC

SMOKE_VARIANTS = [
    Variant("gather", "app", "none"),
    Variant("gather", "app", "local"),
    Variant("sequential", "app", "none"),
]
PATHS = {
    "item": "/recommend/items/{item}?user={user}",
    "user": "/recommend/users/{user}?service=home/for-you",
}
ITEM, USER = 7, 11  # an ordinary item and a user with history in the default dataset


@dataclass
class SmokeRow:
    framework: str
    variant: Variant
    route: str
    probe: Probe


def table(rows: list[SmokeRow]) -> Table:
    headers = ["framework", "strategy", "cache", "route", "latency p50 (ms)", "db (ms)", "cache (ms)", "app (ms)",
               "server total (ms)", "db ops/req", "round trips/req"]  # fmt: skip
    body = []
    for r in rows:
        t, m = r.probe.timing_ms, r.probe.metrics
        body.append([r.framework, r.variant.strategy, r.variant.cache, r.route, f"{r.probe.latency_ms:.2f}", f"{t['db']:.2f}",
                     f"{t['cache']:.2f}", f"{t['app']:.2f}", f"{t['total']:.2f}", f"{m.db_ops_per_request:.1f}",
                     f"{m.db_round_trips_per_request:.1f}"])  # fmt: skip
    return Table(headers, body)


@dataclass(frozen=True, kw_only=True)
class SmokeArgs:
    """`reclab smoke`'s flags as given."""

    connections: Connections = field(default_factory=Connections)
    spec: Path = DEFAULT_SPEC
    out: Path = REPORTS / "smoke"
    requests: int = 200  # per variant and route, after warm-up


def smoke(args: SmokeArgs) -> int:
    out, requests = args.out, args.requests
    out.mkdir(parents=True, exist_ok=True)
    rows: list[SmokeRow] = []
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = args.connections.start_services(group, args.spec, out / "logs", need_redis=False)
        print(f"MongoDB: {endpoints.mongo_engine}, dataset {endpoints.dataset_hash} loaded in {endpoints.load_s:.1f} s")
        for framework in STACKS:
            for variant in SMOKE_VARIANTS:
                server = start_server(group, framework, variant, endpoints, out / "logs", rules=args.connections.rules)
                try:
                    for route, path in PATHS.items():
                        rows.append(
                            SmokeRow(framework, variant, route, probe(server, path.format(item=ITEM, user=USER), requests))
                        )
                finally:
                    group.stop(server.child)
                print(f"  {framework:8s} {variant.label()}: done")
    text = (
        f"# reclab smoke comparison\n\nMongoDB engine: {endpoints.mongo_engine} (its timings are not MongoDB's). "
        f"Dataset {endpoints.dataset_hash}. {requests} sequential requests per row after warm-up, one client "
        f"connection; medians.\nItem route: `{PATHS['item'].format(item=ITEM, user=USER)}`; "
        f"user route: `{PATHS['user'].format(user=USER)}`.\n\n" + "\n".join(table_markdown(table(rows))) + "\n"
    )
    (out / "smoke.md").write_text(text)
    print(text)
    print(f"written to {out / 'smoke.md'}")
    return 0
