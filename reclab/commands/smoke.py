"""`reclab smoke`: every framework, a few variants, a fixed request repeated: latency, its
Server-Timing breakdown, and db ops / round trips per request (from /metrics). Quick, not a load test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.report.document import Table, table_markdown
from reclab.run.probe import Probe, probe
from reclab.run.server import start_server
from reclab.services.start import start_services
from servers.core.variant import STACKS, Variant

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


def smoke(
    *, spec: Path, out: Path, requests: int = 200, mongo_uri: str | None = None, redis_url: str | None = None, rules: Path
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows: list[SmokeRow] = []
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(group, spec, out / "logs", mongo_uri=mongo_uri, redis_url=redis_url, need_redis=False)
        print(f"MongoDB: {endpoints.mongo_engine}, dataset {endpoints.dataset_hash} loaded in {endpoints.load_s:.1f} s")
        for framework in STACKS:
            for variant in SMOKE_VARIANTS:
                server = start_server(group, framework, variant, endpoints, out / "logs", rules=rules)
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
