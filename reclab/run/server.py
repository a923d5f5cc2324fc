"""Starts one server variant (framework x variant switches) as a subprocess and waits for /health."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson

from reclab.host.ports import HOST, free_port
from reclab.host.processes import Child, ProcessGroup, python_module
from reclab.services.start import Endpoints
from servers.core.rules import DEFAULT_RULES
from servers.core.variant import Variant

READY_TIMEOUT_S = 30.0


@dataclass
class RunningServer:
    framework: str
    variant: Variant
    child: Child
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def get_json(self, path: str, timeout_s: float = 5.0) -> dict:
        with urllib.request.urlopen(self.base_url + path, timeout=timeout_s) as response:
            return orjson.loads(response.read())


def server_argv(framework: str, variant: Variant, endpoints: Endpoints, port: int, rules: Path = DEFAULT_RULES) -> list[str]:
    switches = [arg for name, value in variant.as_dict().items() for arg in (f"--{name}", value)]
    argv = python_module(
        f"servers.{framework}_app", "--host", HOST, "--port", str(port), "--mongo-uri", endpoints.mongo_uri,
        *switches, "--rules", str(rules),
    )  # fmt: skip
    if endpoints.redis_url:
        argv += ["--redis-url", endpoints.redis_url]
    return argv


def start_server(
    group: ProcessGroup,
    framework: str,
    variant: Variant,
    endpoints: Endpoints,
    log_dir: Path,
    port: int | None = None,
    rules: Path = DEFAULT_RULES,
) -> RunningServer:
    port = port or free_port()
    log = log_dir / f"server-{framework}-{variant.label().replace('/', '-')}.log"
    child = group.start(f"{framework} server", server_argv(framework, variant, endpoints, port, rules), log)
    server = RunningServer(framework, variant, child, port)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not child.alive():
            group.stop(child)
            raise RuntimeError(f"{framework} server exited at start-up:\n{child.log_tail()}")
        try:
            server.get_json("/health", timeout_s=1.0)
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.05)
    group.stop(child)
    raise TimeoutError(f"{framework} server not healthy after {READY_TIMEOUT_S:.0f} s:\n{child.log_tail()}")
