"""Rules reloaded in place under open-loop load: a changed file (with --watch-rules) and SIGHUP swap
the rules in every worker without failing a request; a bad file is refused and the rules stay, and the
watch goes on; a bad file at start-up is one line, not a traceback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from reclab.host.processes import ProcessGroup
from reclab.run.server import start_server
from reclab.services.start import Endpoints
from servers.core.rules import DEFAULT_RULES
from servers.core.variant import FRAMEWORKS, SELF_SERVED, Variant

RATE = 40  # requests per second, sent on schedule whatever the answers (open loop), well under capacity
SECONDS = 3.0


def version_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def with_limit(limit: int) -> str:
    return DEFAULT_RULES.read_text().replace("limit = 20\n", f"limit = {limit}\n", 1)


async def open_loop(base_url: str, changes: list[tuple[float, object]]) -> list[int | str]:
    """Send RATE requests a second for SECONDS, making each change at its moment; every outcome."""
    outcomes: list[int | str] = []

    async def one(session: aiohttp.ClientSession, item: int) -> None:
        try:
            async with session.get(f"{base_url}/recommend/items/{item}") as response:
                await response.read()
                outcomes.append(response.status)
        except aiohttp.ClientError as error:
            outcomes.append(type(error).__name__)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        started, tasks, pending = time.monotonic(), [], list(changes)
        for n in range(int(RATE * SECONDS)):
            due = started + n / RATE
            while pending and pending[0][0] <= due - started:
                change = pending.pop(0)[1]
                change()  # type: ignore[operator]
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(session, 1 + n % 50)))
        await asyncio.gather(*tasks)
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("framework", SELF_SERVED)  # SIGHUP restarts uvicorn's and Granian's workers: test_asgi_servers
async def test_reloads_under_open_loop_load_fail_no_request(services: Endpoints, framework: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(DEFAULT_RULES.read_text())
    with ProcessGroup() as group:
        server = start_server(
            group, framework, Variant(cache="local"), services, tmp_path, rules=rules, workers=2, watch_rules=True
        )
        first = server.get_json("/health")["rules"]
        assert first == version_of(rules)
        changes = [
            (0.4, lambda: rules.write_text(with_limit(5))),  # the watch picks it up
            (1.1, lambda: rules.write_text(with_limit(6) + '\n[services.bad]\ntype = "similar"\ncode = "import os"\n')),
            (1.8, lambda: os.kill(server.child.pid, signal.SIGHUP)),  # the bad file again: refused again
            (2.2, lambda: rules.write_text(with_limit(7))),
            (2.6, lambda: os.kill(server.child.pid, signal.SIGHUP)),
        ]
        outcomes = await open_loop(server.base_url, changes)
        await asyncio.sleep(1.0)  # the last change seen by both workers' watches
        assert len(outcomes) == int(RATE * SECONDS) and set(outcomes) == {200}, sorted(set(map(str, outcomes)))
        final = version_of(rules)
        seen = {server.get_json("/health")["rules"] for _ in range(10)}
        assert seen == {final} and final != first
        metrics = server.get_json("/metrics")
        assert metrics["rules_reload_failures"] >= 4  # the bad file, refused by each worker, on change and on SIGHUP
        assert metrics["rules_reloads"] >= 4  # two good files, in each worker
        async with aiohttp.ClientSession() as session, session.get(f"{server.base_url}/recommend/items/1") as response:
            assert (await response.json())["count"] == 7


UNREADABLE = {  # rule files that once stopped the watch or printed a traceback at start-up
    "not UTF-8": (b'[services.s]\ntype = "\xff"\n', "not UTF-8"),
    "nested 20,000 deep": (b"a = " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested too deeply"),
    "a bad field": (b'[services.s]\ntype = "nope"\n', "services.s.type: must be one of"),
}


async def test_the_watch_goes_on_after_files_it_cannot_read(services: Endpoints, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(DEFAULT_RULES.read_text())
    with ProcessGroup() as group:
        server = start_server(group, "sanic", Variant(), services, tmp_path, rules=rules, watch_rules=True)
        for content, _ in UNREADABLE.values():
            rules.write_bytes(content)
            await asyncio.sleep(1.2)  # two looks of the watch
            assert server.get_json("/health")["status"] == "ok"
        rules.write_text(with_limit(7))
        deadline = time.monotonic() + 10
        while server.get_json("/health")["rules"] != version_of(rules) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert server.get_json("/health")["rules"] == version_of(rules)
        assert server.get_json("/metrics")["rules_reload_failures"] == len(UNREADABLE)
        log = server.child.log_path.read_text()
        assert all(reason in log for _, reason in UNREADABLE.values()) and "Traceback" not in log


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_bad_rule_file_at_start_up_is_one_line(framework: str, tmp_path: Path) -> None:
    for name, (content, reason) in UNREADABLE.items():
        rules = tmp_path / "rules.toml"
        rules.write_bytes(content)
        env = {**os.environ, "RECLAB_MONGO_URI": "mongodb://127.0.0.1:9"}  # never reached: the rules are read first
        command = [sys.executable, "-m", f"servers.{framework}_app", "--rules", str(rules), "--port", "0"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, name
        assert done.stderr.count("\n") == 1 and reason in done.stderr and str(rules) in done.stderr, done.stderr
