"""A pre-imported parent that forks fresh server processes on request.

Importing a server (Sanic or Tornado, the drivers, Redis, uvloop) takes seconds; a benchmark that
starts a fresh server for every run would spend them again and again. The zygote imports everything
once, freezes what it holds out of the garbage collector's way, and for each request on its standard
input — one JSON line `{"module": "servers.sanic_app", "args": [...], "log": "path"}` — forks a child
that runs that module's `main(args)` in a session of its own, with its output in the log; it answers
with one JSON line `{"pid": ...}`. It creates no event loop, client or thread, so a child starts clean.
When its standard input closes, it stops the children still running and exits.

Run: python -m servers.zygote
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
import sys
from types import FrameType
from typing import NoReturn

import motor.motor_asyncio  # noqa: F401  (imported once here, not in every child)
import orjson
import pymongo  # noqa: F401
import redis.asyncio  # noqa: F401
import uvicorn.supervisors  # noqa: F401
import uvloop  # noqa: F401
from granian import Granian  # noqa: F401

import servers.aiohttp_app
import servers.fastapi_app
import servers.sanic_app
import servers.starlette_app
import servers.tornado_app
from servers.lifeline import run_forked

ADAPTERS = (servers.sanic_app, servers.tornado_app, servers.aiohttp_app, servers.fastapi_app, servers.starlette_app)
SERVERS = {module.__name__: module for module in ADAPTERS}
children: set[int] = set()


def reap(signum: int, frame: FrameType | None) -> None:
    with contextlib.suppress(ChildProcessError):
        while (pid := os.waitpid(-1, os.WNOHANG)[0]) > 0:
            children.discard(pid)


def run_child(module: str, args: list[str], log: str, parent: int) -> NoReturn:
    """In the forked child: a session of its own, output to the log, then the server's main. Never returns."""

    def serve() -> None:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        sys.argv = [module, *args]
        server = importlib.import_module(module)
        sys.modules["__main__"] = server  # as `python -m module` would run it: what a spawned worker imports as its main
        server.main(args)

    run_forked(parent, serve)  # nothing outlives the zygote


def main() -> None:
    zygote = os.getpid()
    signal.signal(signal.SIGCHLD, reap)
    gc.collect()
    gc.freeze()  # imported objects stay out of the collector's way: fewer copy-on-write pages in the children
    for line in sys.stdin:
        request = orjson.loads(line)
        if request.get("module") not in SERVERS:
            print(orjson.dumps({"error": f"unknown server module {request.get('module')!r}"}).decode(), flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            run_child(request["module"], [str(a) for a in request["args"]], str(request["log"]), zygote)
        children.add(pid)
        print(orjson.dumps({"pid": pid}).decode(), flush=True)
    for pid in list(children):  # the lab is gone: stop what it left
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
