"""`reclab serve`: one server variant on the spec's dataset, embedded services unless URIs are given."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from reclab import REPORTS
from reclab.errors import UsageError
from reclab.host.ports import HOST
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.run.options import OneServer
from reclab.run.server import start_server
from servers.core.admission import DEFAULT_ADMISSION
from servers.core.limits import Limits
from servers.core.rules import load_rules
from servers.core.uris import shown
from servers.core.variant import SELF_SERVED


@dataclass(frozen=True, kw_only=True)
class ServeArgs(OneServer):
    """`reclab serve`'s flags as given."""

    host: str = HOST
    port: int = 8000
    workers: int = 1
    shards: int = 1
    limits: Limits | None = None
    rules_as_code: bool = False
    watch_rules: bool = False
    admission: str = DEFAULT_ADMISSION


def serve(args: ServeArgs) -> int:
    """Serve until Ctrl-C (or until the server exits, which returns 1)."""
    if args.host != HOST:
        raise UsageError(f"--host {args.host}: reclab serves on {HOST} only")
    framework, loop, variant, rules = args.framework, args.switches.loop, args.switches.variant, args.connections.rules
    load_rules(rules, args.rules_as_code)  # a bad rule file is one line before anything starts (a SpecError)
    log_dir = REPORTS / "logs"
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = args.connections.start_services(group, args.spec, log_dir, need_redis=variant.needs_redis, shards=args.shards)
        print(f"MongoDB: {endpoints.mongo_engine} at {shown(endpoints.mongo_uri)} (dataset {endpoints.dataset_hash})")
        if endpoints.redis_url:
            print(f"Redis: {endpoints.redis_engine} at {shown(endpoints.redis_url)}")
        server = start_server(
            group, framework, variant, endpoints, log_dir, port=args.port, rules=rules, loop=loop, limits=args.limits,
            workers=args.workers, rules_as_code=args.rules_as_code, watch_rules=args.watch_rules, admission=args.admission,
        )  # fmt: skip
        shown_variant = f"{variant.label()}, admission {args.admission}"
        print(f"{framework} on {loop} ({shown_variant}) serving on {server.base_url}  — Ctrl-C stops everything")
        watching = "; and when the file changes" if args.watch_rules else ""
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
