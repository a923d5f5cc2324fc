"""An ASGI adapter's main: the application (`module:create_app`, a factory each worker calls) served by
uvicorn or Granian, each with its own worker model, as people deploy them.

- uvicorn (httptools, the loop asked for): uvicorn's supervisor (`uvicorn.supervisors.Multiprocess`)
  owns the socket and spawns `--workers` worker processes, also for one, so that the server is a
  master and its workers as on the other frameworks. SIGHUP: uvicorn's graceful restart (each new
  worker ready before the old one stops; the new ones read the rule file afresh). A worker that dies
  is replaced by uvicorn.
- Granian (its Rust HTTP/1.1 server, the Python loop asked for): Granian's master owns the socket and
  runs `--workers` worker processes, each with the Rust runtime's threads beside Python's. SIGHUP:
  Granian's graceful respawn (a new worker, then the old one stops after `RESPAWN_INTERVAL_S`). A
  worker that dies stops the server.
- SIGTERM or SIGINT: the workers stop (in-flight requests finish), then the master.

Neither takes SIGUSR2 (the graceful restart of the other frameworks' master, `servers.workers`): a
restart is SIGHUP here (`servers.core.variant.restart_signal`), and the rules are reloaded in place
only by `--watch-rules`. Every worker reads its settings from the command line it inherits
(`sys.argv`, also in a spawned worker), and adds to one shared tally (`servers.core.tally.share_file`)
so that /metrics counts the whole server.
"""

from __future__ import annotations

import math
import sys
from typing import NoReturn

from servers.core.tally import share_file
from servers.core.variant import ASGI_SERVERS
from servers.serving import ServerArgs, parse_server_args
from servers.workers import BACKLOG

WORKER_READY_S = 30  # uvicorn: how long a restarted worker gets to come up (import, the core opened) before
# uvicorn keeps the old one and gives the restart up; its default, 5 s, is too short on a busy machine
RESPAWN_INTERVAL_S = 1.0  # Granian: how long a new worker gets before the old one is stopped (a fixed wait)


def run_asgi(framework: str, target: str, argv: list[str] | None) -> NoReturn:
    """Serve `target` (`module:factory`) on the server the command line names, until SIGTERM/SIGINT."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_server_args(framework, argv, ASGI_SERVERS)
    sys.argv = [f"servers.{framework}_app", *argv]  # what every worker reads its settings from
    tally = share_file(2 * args.workers + 2)  # a row per worker, and free ones for those a restart starts
    try:
        code = serve_uvicorn(target, args) if args.server == "uvicorn" else serve_granian(target, args)
    finally:
        tally.remove()
    sys.exit(code)


def serve_uvicorn(target: str, args: ServerArgs) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    limits = args.settings.limits
    config = uvicorn.Config(
        target,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop=args.loop,
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=BACKLOG,
        timeout_keep_alive=max(1, round(limits.keepalive_s)),
        limit_concurrency=limits.max_connections,  # connections and requests in progress: beyond it 503
        timeout_graceful_shutdown=math.ceil(limits.deadline_ms / 1000) + 1,
        timeout_worker_healthcheck=WORKER_READY_S,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
    return 0


def serve_granian(target: str, args: ServerArgs) -> int:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    limits = args.settings.limits
    server = Granian(
        target,
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        loop=Loops(args.loop),
        http=HTTPModes.http1,
        websockets=False,
        backlog=BACKLOG,
        log_level=LogLevels.warning,
        log_access=False,
        respawn_interval=RESPAWN_INTERVAL_S,
        workers_kill_timeout=math.ceil(limits.deadline_ms / 1000) + 1,
        http1_settings=HTTP1Settings(header_read_timeout=round(limits.header_timeout_s * 1000), keep_alive=True),
    )
    server.serve()
    return 0
