"""Lines of older schemas in the record's layout, that of schema 2 (schema 3 changed the file only:
the bench description on a line of its own, see `reclab.results.file`). Schema 1 (reclab 0.1) was
flat, one measured window per run, bench fields beside the run's own. Fields added to schema 2 since
have defaults that read as their absence: a phase without `reads`/`writes` had no writes."""

from __future__ import annotations

from typing import Any

from reclab.results.config import RunConfig
from reclab.results.record import BenchInfo

V1_MEASURED = (
    "throughput_rps", "requests_ok", "requests_sent", "late_starts", "unfinished", "window_s", "latency_us", "errors",
    "error_count", "cpu_s", "generator_cpu_share", "server_cpu_ms_per_request", "served_in_window", "db_ops_per_request",
    "db_round_trips_per_request", "cache_hit_ratio", "server_timing_ms", "server_loop", "hdr", "added_delay_ms",
)  # fmt: skip
V1_LOAD = ("mode", "users", "rate", "arrival", "processes", "duration_s")
RECORD_LAYOUT = 2  # the schema whose lines `RunRecord` reads as they are


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A line of any readable schema in the record's layout (a line of schema 3 names its bench: see
    `reclab.results.file`)."""
    if data.get("schema") == 1:
        return _from_v1(data)
    return data


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    bench_fields = set(BenchInfo.__struct_fields__)
    out = {k: v for k, v in data.items() if k not in bench_fields and k not in V1_MEASURED and k != "schema"}
    out["schema"] = RECORD_LAYOUT
    bench = {k: data[k] for k in bench_fields if k in data}
    bench.setdefault("bench_id", "")
    load = data.get("load") or {}
    mode = load.get("mode", "closed")
    bench["load"] = {k: v for k, v in load.items() if k in V1_LOAD and k not in ("mode", "rate", "duration_s")}
    bench["load"]["phases"] = [
        {"name": mode, "mode": mode, "rate": load.get("rate", 1.0), "duration_s": load.get("duration_s", 1.0)}
    ]
    out["bench"] = bench
    config = dict(data.get("config") or {})
    if "route" in config:  # ceiling lines: {"framework": ..., "route": ...}
        out["route"] = config.pop("route")
        config["cache"] = "none"
    server_loop = data.get("server_loop")
    config["loop"] = server_loop if server_loop in ("uvloop", "asyncio") else "uvloop"
    delay = float(config.get("delay_ms") or 0.0)
    config["delay_ms"] = delay if delay > 0 else None  # 0.1 ran without the proxy at 0 ms
    out["config"] = config
    if out.get("kind") == "run":
        out["key"] = RunConfig(**config).key
        out["role"] = "baseline" if data.get("order") == 0 else "variant"
    out["server_loop"] = server_loop
    out["added_delay_idle_ms"] = data.get("added_delay_ms") or {}
    if data.get("status") == "ok" and "throughput_rps" in data:
        out["phases"] = [_phase_from_v1(data, mode)]
    return out


def _phase_from_v1(data: dict[str, Any], mode: str) -> dict[str, Any]:
    window = float(data["window_s"])
    return {
        "name": mode,
        "mode": mode,
        "window_s": window,
        "offered_rps": data["load"].get("rate") if mode == "open" else None,
        "ok": data["requests_ok"],
        "errors": data.get("errors") or {},
        "unfinished": data.get("unfinished", 0),
        "late_starts": data.get("late_starts", 0),
        "throughput_rps": data["throughput_rps"],
        "latency_us": data.get("latency_us") or None,
        "hdr": data.get("hdr", ""),
        "served": data.get("served_in_window", 0),
        "server_cpu_ms_per_request": data.get("server_cpu_ms_per_request"),
        "db_ops_per_request": data.get("db_ops_per_request", 0.0),
        "db_round_trips_per_request": data.get("db_round_trips_per_request", 0.0),
        "cache_hit_ratio": data.get("cache_hit_ratio"),
        "server_timing_ms": data.get("server_timing_ms") or {},
        "cpu": {"seconds": window, "processes": data.get("cpu_s") or {}},
        "flags": data.get("flags") or [],
    }
