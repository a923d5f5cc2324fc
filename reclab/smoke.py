"""`reclab smoke`: both frameworks, a few variants, a fixed request repeated: latency, its
Server-Timing breakdown, and db ops / round trips per request (from /metrics). Quick, not a load test.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path

from reclab.httpclient import Client
from reclab.processes import ProcessGroup, stop_on_signals
from reclab.server_process import RunningServer, start_server
from reclab.services import start_services
from servers.core.variant import FRAMEWORKS, Variant

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
    latency_ms: float
    timing: dict[str, float]
    db_ops: float
    round_trips: float


def measure(server: RunningServer, route: str, requests: int) -> SmokeRow:
    path = PATHS[route].format(item=ITEM, user=USER)
    client = Client(server.port)
    try:
        for _ in range(max(5, requests // 10)):  # warm-up: connections, caches
            client.get(path)
        before = server.get_json("/metrics")
        samples = [client.get(path) for _ in range(requests)]
        after = server.get_json("/metrics")
    finally:
        client.close()
    bad = [s.status for s in samples if s.status != 200]
    if bad:
        raise RuntimeError(f"{server.framework} {server.variant.label()} answered {bad[0]} on {path}")
    served = after["requests"] - before["requests"]
    return SmokeRow(
        framework=server.framework,
        variant=server.variant,
        route=route,
        latency_ms=statistics.median(s.latency_ms for s in samples),
        timing={k: statistics.median(s.server_timing[k] for s in samples) for k in ("db", "cache", "app", "total")},
        db_ops=(after["db_ops"] - before["db_ops"]) / served,
        round_trips=(after["db_round_trips"] - before["db_round_trips"]) / served,
    )


def table(rows: list[SmokeRow]) -> str:
    lines = [
        "| framework | strategy | cache | route | latency p50 (ms) | db (ms) | cache (ms) | app (ms) | server total (ms) "
        "| db ops/req | round trips/req |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r.timing
        lines.append(
            f"| {r.framework} | {r.variant.strategy} | {r.variant.cache} | {r.route} | {r.latency_ms:.2f} | {t['db']:.2f} | "
            f"{t['cache']:.2f} | {t['app']:.2f} | {t['total']:.2f} | {r.db_ops:.1f} | {r.round_trips:.1f} |"
        )
    return "\n".join(lines)


def run_smoke(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows: list[SmokeRow] = []
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(
            group, args.spec, out / "logs", mongo_uri=args.mongo_uri, redis_url=args.redis_url, need_redis=False
        )
        print(f"MongoDB: {endpoints.mongo_engine}, dataset {endpoints.dataset_hash} loaded in {endpoints.load_s:.1f} s")
        for framework in FRAMEWORKS:
            for variant in SMOKE_VARIANTS:
                server = start_server(group, framework, variant, endpoints, out / "logs", rules=args.rules)
                try:
                    rows += [measure(server, route, args.requests) for route in PATHS]
                finally:
                    group.stop(server.child)
                print(f"  {framework:8s} {variant.label()}: done")
    text = (
        f"# reclab smoke comparison\n\nMongoDB engine: {endpoints.mongo_engine} (its timings are not MongoDB's). "
        f"Dataset {endpoints.dataset_hash}. {args.requests} sequential requests per row after warm-up, one client "
        f"connection; medians.\nItem route: `{PATHS['item'].format(item=ITEM, user=USER)}`; "
        f"user route: `{PATHS['user'].format(user=USER)}`.\n\n{table(rows)}\n"
    )
    (out / "smoke.md").write_text(text)
    print(text)
    print(f"written to {out / 'smoke.md'}")
    return 0
