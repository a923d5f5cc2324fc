"""`reclab serve`: one server variant on the spec's dataset, embedded services unless URIs are given."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from reclab import REPORTS
from reclab.errors import UsageError
from reclab.host.ports import HOST
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.run.server import start_server
from reclab.services.start import start_services
from servers.core.admission import DEFAULT_ADMISSION
from servers.core.limits import Limits
from servers.core.rules import load_rules
from servers.core.uris import shown
from servers.core.variant import SELF_SERVED, Variant


def serve(
    *,
    framework: str,
    loop: str = "uvloop",
    host: str = HOST,
    port: int = 8000,
    spec: Path,
    variant: Variant,
    mongo_uri: str | None = None,
    redis_url: str | None = None,
    rules: Path,
    limits: Limits | None = None,
    workers: int = 1,
    shards: int = 1,
    rules_as_code: bool = False,
    watch_rules: bool = False,
    admission: str = DEFAULT_ADMISSION,
) -> int:
    """Serve until Ctrl-C (or until the server exits, which returns 1)."""
    if host != HOST:
        raise UsageError(f"--host {host}: reclab serves on {HOST} only")
    load_rules(rules, rules_as_code)  # a bad rule file is one line before anything starts (a SpecError)
    log_dir = REPORTS / "logs"
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(
            group, spec, log_dir, mongo_uri=mongo_uri, redis_url=redis_url, need_redis=variant.needs_redis, shards=shards
        )
        print(f"MongoDB: {endpoints.mongo_engine} at {shown(endpoints.mongo_uri)} (dataset {endpoints.dataset_hash})")
        if endpoints.redis_url:
            print(f"Redis: {endpoints.redis_engine} at {shown(endpoints.redis_url)}")
        server = start_server(
            group, framework, variant, endpoints, log_dir, port=port, rules=rules, loop=loop, limits=limits, workers=workers,
            rules_as_code=rules_as_code, watch_rules=watch_rules, admission=admission,
        )  # fmt: skip
        shown_variant = f"{variant.label()}, admission {admission}"
        print(f"{framework} on {loop} ({shown_variant}) serving on {server.base_url}  — Ctrl-C stops everything")
        watching = "; and when the file changes" if watch_rules else ""
        if framework in SELF_SERVED:
            print(f"  rules: {rules} (kill -HUP {server.child.pid} reloads them in place{watching})")
        else:  # uvicorn's and Granian's SIGHUP: a graceful restart of the workers, which read the rules afresh
            print(f"  rules: {rules} (kill -HUP {server.child.pid} restarts the workers gracefully with them{watching})")
        print(
            f"  try: curl -i {server.base_url}/recommend/items/1   or   {server.base_url}/recommend/users/1?service=home/for-you"
        )
        while server.child.alive():
            time.sleep(0.5)
        print(f"server exited with code {server.child.exit_code()}; see {server.child.log_path}", file=sys.stderr)
        return 1
