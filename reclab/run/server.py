"""Starts one server variant (framework, event loop, the core's switches) and waits for /health.

A bench forks its servers from a pre-imported parent (`servers.zygote`): a fresh process for every
run, started in a fraction of a second instead of the seconds its imports take; `reclab serve`
starts its server as a plain subprocess."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import msgspec
import psutil

from reclab.host.ports import HOST, free_port
from reclab.host.processes import Child, ForkedChild, Forker, ProcessGroup, python_module
from reclab.services.start import Endpoints
from servers.core.limits import Limits
from servers.core.rules import DEFAULT_RULES
from servers.core.variant import Variant, split_stack
from servers.serving import limit_arguments, rule_arguments

READY_TIMEOUT_S = 30.0
HASH_SEED = "0"  # every server hashes alike: dict and set layouts do not differ from run to run


@dataclass
class RunningServer:
    framework: str  # the stack: a framework serving itself, or `framework@server` (servers.core.variant)
    variant: Variant
    child: Child | ForkedChild
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def process_ids(self) -> list[int]:
        """The server's master and its worker(s): the processes whose CPU is the server's."""
        try:
            return [self.child.pid, *(p.pid for p in psutil.Process(self.child.pid).children(recursive=True))]
        except psutil.Error:
            return [self.child.pid]

    def worker_pid(self) -> int:
        """The worker answering now (what a profiler records)."""
        return int(self.get_json("/health")["worker"])

    def get_json(self, path: str, timeout_s: float = 5.0) -> dict:
        with urllib.request.urlopen(self.base_url + path, timeout=timeout_s) as response:
            return msgspec.json.decode(response.read())


def server_args(
    endpoints: Endpoints,
    port: int,
    variant: Variant,
    rules: Path,
    loop: str,
    cache_namespace: str,
    limits: Limits | None,
    workers: int = 1,
    rules_as_code: bool = False,
    watch_rules: bool = False,
    admission: str = "none",
    pace: bool = True,
) -> list[str]:
    """The command-line arguments of `servers.<framework>_app`; the service URIs are not among them
    (`service_uris`: they may carry passwords)."""
    switches = [arg for name, value in variant.as_dict().items() for arg in (f"--{name}", value)]
    args = [
        "--host",
        HOST,
        "--port",
        str(port),
        *switches,
        "--rules",
        str(rules),
        "--loop",
        loop,
        "--admission",
        admission,
    ]
    if cache_namespace:
        args += ["--cache-namespace", cache_namespace]
    if workers != 1:
        args += ["--workers", str(workers)]
    if limits is not None:
        args += limit_arguments(limits)
    if not pace:
        args.append("--no-pace")
    return args + rule_arguments(rules_as_code, watch_rules)


def server_module(stack: str) -> tuple[str, str | None]:
    """The adapter module that serves a stack (`sanic`, `fastapi@granian`, ...), and its `--server`."""
    framework, server = split_stack(stack)
    return f"servers.{framework}_app", server


URI_OPTIONS = {"RECLAB_MONGO_URI": "--mongo-uri", "RECLAB_REDIS_URL": "--redis-url"}  # the server takes either


def service_uris(endpoints: Endpoints) -> dict[str, str]:
    """The URIs a server reaches its services by, as the environment variables it reads them from: in
    the environment of the server's process, not on its command line, where any user of the machine
    could read a password."""
    uris = {"RECLAB_MONGO_URI": endpoints.mongo_uri}
    if endpoints.redis_url:
        uris["RECLAB_REDIS_URL"] = endpoints.redis_url
    return uris


def start_server(
    group: ProcessGroup,
    framework: str,
    variant: Variant,
    endpoints: Endpoints,
    log_dir: Path,
    port: int | None = None,
    rules: Path = DEFAULT_RULES,
    loop: str = "uvloop",
    cache_namespace: str = "",
    forker: Forker | None = None,
    limits: Limits | None = None,
    workers: int = 1,
    rules_as_code: bool = False,
    watch_rules: bool = False,
    admission: str = "none",
    ready_timeout_s: float = READY_TIMEOUT_S,
    pace: bool = True,
) -> RunningServer:
    """Start the server of `framework` (a stack name: `sanic`, `fastapi@granian`...) in `group` (forked
    by `forker` if given) and wait until /health answers (at most `ready_timeout_s`)."""
    port = port or free_port()
    log = log_dir / f"server-{framework.replace('@', '-')}-{loop}-{variant.label().replace('/', '-')}.log"
    args = server_args(
        endpoints, port, variant, rules, loop, cache_namespace, limits, workers, rules_as_code, watch_rules, admission, pace
    )
    module, server_name = server_module(framework)
    args += ["--server", server_name] if server_name else []
    child: Child | ForkedChild
    uris = service_uris(endpoints)
    if forker is not None:  # its arguments go down a pipe, never on a command line
        piped = [arg for name, uri in uris.items() for arg in (URI_OPTIONS[name], uri)]
        child = group.adopt(forker.fork(f"{framework} server", module, args + piped, log))
    else:
        inherited = {name: value for name, value in os.environ.items() if name not in URI_OPTIONS}
        env = {**inherited, **uris, "PYTHONHASHSEED": HASH_SEED}
        child = group.start(f"{framework} server", python_module(module, *args), log, env=env)
    server = RunningServer(framework, variant, child, port)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            group.stop(child)
            raise RuntimeError(f"{framework} server exited at start-up:\n{child.log_tail()}")
        try:
            server.get_json("/health", timeout_s=1.0)
            if workers == 1 or server.get_json("/metrics", timeout_s=1.0).get("workers", 1) >= workers:  # all serving
                return server
            time.sleep(0.05)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.02)
    group.stop(child)
    raise TimeoutError(f"{framework} server not healthy after {ready_timeout_s:.0f} s:\n{child.log_tail()}")
