"""Faults of the dependencies, against the real embedded services: MongoDB and Valkey stalled,
slowed and refusing through the delay proxy's control port (the same mechanism as the fault
matrix). The server answers 503 with Retry-After, never a 500 or a hang, when the database fails;
it answers from the database when the cache fails; /ready names what is down."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import orjson
import psutil
import pytest

from reclab.host.processes import ProcessGroup
from reclab.results.config import RunConfig
from reclab.results.faults import FAULTS, LOST_WRITES_FLAG, UNCHECKED_WRITES_FLAG
from reclab.results.file import read_results
from reclab.results.record import RunRecord
from reclab.run.faults import fault_load
from reclab.run.live_reset import LiveData
from reclab.run.matrix import BASELINE, MatrixEntry, build_matrix
from reclab.run.runner import BenchOptions, run_matrix
from reclab.run.server import start_server
from reclab.run.workload import prepare_workload
from reclab.run.write_probe import ProbeSubject, WriteProbe, check_writes, probe_subject, with_writes
from reclab.services.network import DelayedEndpoints, delayed
from reclab.services.start import Endpoints
from servers.core import stats
from servers.core.api import Reply
from servers.core.cache import LocalCache
from servers.core.limits import Limits
from servers.core.rules import DEFAULT_RULES, load_rules
from servers.core.runtime import Runtime, Settings, open_runtime
from servers.core.variant import SELF_SERVED, STACKS, Variant
from servers.workers import RESTART_SIGNAL
from tests.conftest import TINY_SPEC
from tests.polling import wait_for
from tests.records import BENCH
from workloads.dataset import generate
from workloads.spec import load_spec

# Short bounds keep the tests quick; the defaults are in servers/core/limits.py.
LIMITS = Limits(deadline_ms=600, db_timeout_ms=400, cache_timeout_ms=100, ready_timeout_ms=200, breaker_reset_s=30)
INTERNALS = ("Error", "Exception", "Traceback", "pymongo", "redis")


@pytest.fixture(scope="module")
def proxied(services: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DelayedEndpoints]:
    """The session's services behind delay proxies at 0 ms, whose control ports inject the faults."""
    with ProcessGroup() as group:
        yield delayed(group, services, 0.0, tmp_path_factory.mktemp("proxies"))


@pytest.fixture
def healed(proxied: DelayedEndpoints) -> Iterator[DelayedEndpoints]:
    """Every proxy back to normal forwarding after the test, whatever it did."""
    yield proxied
    for control in proxied.controls.values():
        control.set("pass")


async def core(net: DelayedEndpoints, cache: str = "none", limits: Limits = LIMITS, driver: str = "pymongo") -> Runtime:
    settings = Settings(
        mongo_uri=net.endpoints.mongo_uri, redis_url=net.endpoints.redis_url, variant=Variant(cache=cache, driver=driver),
        limits=limits,
    )  # fmt: skip
    return await open_runtime(settings)


@pytest.fixture
async def uncached(healed: DelayedEndpoints) -> AsyncIterator[Runtime]:
    runtime = await core(healed)
    yield runtime
    await runtime.close()


def body(reply: Reply) -> dict:
    return orjson.loads(reply.body)


def assert_unavailable(reply: Reply) -> None:
    assert reply.status == 503, reply.body
    assert body(reply)["error"] == "unavailable"
    assert reply.headers["Retry-After"] == str(LIMITS.retry_after_s)
    assert not any(word in reply.body.decode() for word in INTERNALS), reply.body


@pytest.mark.parametrize("driver", ["pymongo", "wire"])
@pytest.mark.parametrize("fault", ["stall", "slow 2000", "refuse"])
async def test_a_failing_database_gives_503_with_retry_after_then_recovers(
    healed: DelayedEndpoints, fault: str, driver: str
) -> None:
    runtime = await core(healed, driver=driver)
    try:
        assert (await runtime.api.recommend_items("7", "")).status == 200  # leaves connections in the pool
        healed.controls["mongo"].set(fault)
        assert_unavailable(await runtime.api.recommend_items("7", ""))
        assert_unavailable(await runtime.api.recommend_users("11", "service=home/for-you"))
        healed.controls["mongo"].set("pass")
        assert (await runtime.api.recommend_items("7", "")).status == 200  # back without a restart, no cut connection reused
    finally:
        await runtime.close()


async def test_the_deadline_bounds_a_request_whose_every_call_is_slow(healed: DelayedEndpoints) -> None:
    """Each call (60 ms) stays inside the database timeout; a sequential request of many calls does not
    stay inside the deadline, and is answered 503 at it."""
    runtime = await open_runtime(
        Settings(mongo_uri=healed.endpoints.mongo_uri, variant=Variant(strategy="sequential"), limits=LIMITS)
    )
    try:
        healed.controls["mongo"].set("slow 60")
        reply = await runtime.api.recommend_users("11", "service=home/for-you")
        assert_unavailable(reply)
        assert "deadline" in body(reply)["detail"]
    finally:
        await runtime.close()


@pytest.mark.parametrize("fault", ["stall", "refuse"])
async def test_a_failing_cache_is_skipped_counted_and_then_left_alone(healed: DelayedEndpoints, fault: str) -> None:
    runtime = await core(healed, cache="redis")
    try:
        expected = [(await runtime.api.recommend_items(str(i), "")).body for i in range(1, 8)]
        healed.controls["redis"].set(fault)
        during = [await runtime.api.recommend_items(str(i), "") for i in range(1, 8)]
        assert [r.status for r in during] == [200] * 7
        assert [r.body for r in during] == expected  # the database answered, the same answers
        counted = body(runtime.api.metrics_reply())
        assert counted["cache_errors"] >= LIMITS.breaker_failures
        assert counted["cache_skipped"] > 0  # the breaker opened: the dead cache is no longer called
    finally:
        await runtime.close()


async def test_ready_names_the_dependency_that_is_down(healed: DelayedEndpoints) -> None:
    runtime = await core(healed, cache="two-level")
    try:
        assert (await runtime.api.ready()).status == 200
        assert runtime.api.health().status == 200
        for service, name in (("mongo", "mongodb"), ("redis", "redis")):
            healed.controls[service].set("stall")
            reply = await runtime.api.ready()
            assert reply.status == 503 and body(reply)["down"] == [name], reply.body
            assert runtime.api.health().status == 200  # liveness: the process itself is fine
            healed.controls[service].set("pass")
        assert (await runtime.api.ready()).status == 200
    finally:
        await runtime.close()


async def test_one_request_has_at_most_fanout_database_calls_in_flight(
    uncached: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    peak = [0]
    enter = stats._Stage.enter

    def counting_enter(stage: stats._Stage) -> None:
        enter(stage)
        peak[0] = max(peak[0], stage.in_flight)

    monkeypatch.setattr(stats._Stage, "enter", counting_enter)
    reply = await uncached.api.recommend_items("7", "limit=100")
    assert reply.status == 200 and body(reply)["count"] > LIMITS.fanout
    assert 1 < peak[0] <= LIMITS.fanout


async def test_unknown_ids_do_not_take_room_in_the_local_cache(services: Endpoints) -> None:
    runtime = await open_runtime(Settings(mongo_uri=services.mongo_uri, variant=Variant(cache="local")))
    try:
        cache = runtime.store.cache
        assert isinstance(cache, LocalCache)
        assert (await runtime.api.recommend_items("7", "")).status == 200
        held = len(cache)
        for unknown in range(900_000, 900_050):
            assert (await runtime.api.recommend_items(str(unknown), "")).status == 404
        assert len(cache) == held
    finally:
        await runtime.close()


async def test_a_bug_answers_500_without_internals(uncached: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recommender is replaced by one that raises (an in-process stand-in for a bug in the core)."""

    async def broken(*args: object) -> list:
        raise KeyError("secret_field")

    monkeypatch.setattr(uncached.api.recommender, "for_item", broken)
    reply = await uncached.api.recommend_items("7", "")
    assert reply.status == 500 and body(reply)["error"] == "internal_error"
    assert "KeyError" not in reply.body.decode() and "secret_field" not in reply.body.decode()


def get(url: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


@pytest.mark.slow
@pytest.mark.parametrize("framework", SELF_SERVED)  # uvicorn and Granian: tests/test_asgi_servers.py
def test_sighup_restarts_the_worker_with_new_rules_and_a_bad_file_keeps_the_old_worker(
    services: Endpoints, tmp_path: Path, framework: str
) -> None:
    rules = tmp_path / "rules.toml"
    original = DEFAULT_RULES.read_text()
    rules.write_text(original)
    with ProcessGroup() as group:
        server = start_server(group, framework, Variant(), services, tmp_path, rules=rules)
        health = orjson.loads(get(server.base_url + "/health")[1])
        assert get(server.base_url + "/recommend/items/7?service=new/thing")[0] == 400
        assert get(server.base_url + "/health", "HEAD")[:2] == (200, b"")
        assert get(server.base_url + "/ready")[0] == 200

        rules.write_text(original + '\n[services."new/thing"]\ntype = "similar"\nlimit = 3\n')
        os.kill(server.child.pid, RESTART_SIGNAL)  # the master: a new worker, then the old one drains and exits
        wait_for(lambda: not psutil.pid_exists(health["worker"]))
        restarted = orjson.loads(get(server.base_url + "/health")[1])
        assert restarted["worker"] != health["worker"] and restarted["rules"] != health["rules"]
        status, answer, _ = get(server.base_url + "/recommend/items/7?service=new/thing")
        assert status == 200 and orjson.loads(answer)["count"] == 3

        rules.write_text(original + '\n[services."broken"]\ntype = "nonsense"\n')
        os.kill(server.child.pid, RESTART_SIGNAL)
        wait_for(lambda: "did not start" in server.child.log_tail(20))
        assert "nonsense" in server.child.log_tail(20) and str(rules) in server.child.log_tail(20)
        assert orjson.loads(get(server.base_url + "/health")[1])["worker"] == restarted["worker"]  # still serving
        assert get(server.base_url + "/recommend/items/7?service=new/thing")[0] == 200


def test_the_fault_matrix_covers_every_fault_on_every_framework() -> None:
    entries = build_matrix("faults")
    faults = {(e.config.stack, e.config.fault) for e in entries}
    assert faults == {(fw, f) for fw in STACKS for f in (None, *FAULTS)}
    assert all(e.config.delay_ms == 0.0 for e in entries)  # the proxy is there even without a fault


@pytest.mark.slow
def test_faults_injected_in_the_window_lose_no_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Faults of the matrix, end to end: the process stopped and continued, the proxy refusing, and a
    graceful worker restart (a new worker takes the socket, the old one drains; every framework's
    restart under load is in tests/test_workers.py)."""
    out = tmp_path / "out"
    workload = prepare_workload(TINY_SPEC, out / "runs", load_rules())
    load = fault_load(load_spec(TINY_SPEC).load.quick(), quick=True)
    proxied = BASELINE.with_factor("delay_ms", 0.0)
    tornado = proxied.with_factor("framework", "tornado")
    aiohttp = proxied.with_factor("framework", "aiohttp")
    entries = [
        MatrixEntry(replace_fault(proxied, "db-stall"), "baseline"),
        MatrixEntry(replace_fault(tornado, "cache-refuse")),
        MatrixEntry(replace_fault(aiohttp, "reload")),
    ]
    options = BenchOptions(matrix="faults", repeats=1, ceiling=False, warmup_run=False)
    assert run_matrix(workload, load, options, out, mongo_uri=None, redis_url=None, rules=DEFAULT_RULES, entries=entries) == 0
    runs = read_results(out / "results.jsonl")
    by_fault = {(r.config.framework, r.config.fault): r.fault for r in runs}
    assert len(by_fault) == 3 and all(fault is not None for fault in by_fault.values()), [r.error for r in runs]
    for fault in by_fault.values():
        assert fault is not None and fault.lost == 0 and fault.sent == fault.answered > 0, fault
        assert fault.start_s < fault.end_s
    stalled, refused = by_fault[("sanic", "db-stall")], by_fault[("tornado", "cache-refuse")]
    assert stalled is not None and refused is not None
    assert stalled.by_status.get("503", 0) > 0  # answered, not hung
    assert set(refused.by_status) == {"200"}  # the database answered instead
    restarted = by_fault[("aiohttp", "reload")]
    assert restarted is not None and set(restarted.by_status) == {"200"}
    assert all("faults:server_restarted" in r.flags for r in runs if r.config.fault == "reload")
    assert not [r.flags for r in runs if LOST_WRITES_FLAG in r.flags or UNCHECKED_WRITES_FLAG in r.flags]
    log = capsys.readouterr().err
    probed = [line for line in log.splitlines() if "write probe:" in line]
    assert len(probed) == 3 and all("lost 0" in line for line in probed), probed
    assert log.count("database put back:") == 3  # after every run: the probe's writes deleted


def replace_fault(config: RunConfig, fault: str) -> RunConfig:
    return msgspec.structs.replace(config, fault=fault)


class Answers(http.server.BaseHTTPRequestHandler):
    """A stand-in for the server's `POST /events`: 200 `{"accepted": 1}` for an even `ts`, 503 for an
    odd one divisible by 3, and for the rest no answer at all (the connection is closed)."""

    def do_POST(self) -> None:
        event = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if event["ts"] % 2 == 0:
            self._reply(200, {"accepted": 1})
        elif event["ts"] % 3 == 0:
            self._reply(503, {"error": "unavailable", "detail": "database"})
        else:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reply(self, status: int, body: dict) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class FakeLive:
    """A plain in-process fake of `LiveData.live_times` (no database): the times it is told are stored."""

    def __init__(self, stored: set[int]) -> None:
        self.stored = stored

    def live_times(self, user: int, since: int) -> set[int]:
        return {ts for ts in self.stored if ts >= since}


def test_the_write_probe_counts_acknowledged_refused_failed_and_lost_writes() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        subject = ProbeSubject(user=1, item=2, first_ts=1_000_000)
        probe = WriteProbe(f"http://127.0.0.1:{server.server_address[1]}", subject, duration_s=0.6, rate=20)
        probe.start()
        time.sleep(0.8)
        probe.stop()
        sent = sorted(probe.outcomes)
        assert sent == list(range(1_000_000, 1_000_000 + len(sent))) and 10 <= len(sent) <= 13
        acknowledged = {ts for ts in sent if ts % 2 == 0}
        refused = [ts for ts in sent if ts % 2 and ts % 3 == 0]
        missing = min(acknowledged)  # acknowledged, yet not stored: lost
        unanswered = next(ts for ts in sent if ts % 2 and ts % 3)  # not acknowledged, stored all the same
        live = FakeLive((acknowledged - {missing}) | {unanswered})
        writes = check_writes(probe, live)  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()
    assert writes.sent == len(sent) and writes.acknowledged == len(acknowledged)
    assert writes.refused == {"503": len(refused)}
    assert writes.failed == len(sent) - len(acknowledged) - len(refused)
    assert (writes.lost, writes.stored_unacknowledged) == (1, 1)
    record = with_writes(RunRecord(kind="run", config=BASELINE, bench=BENCH), writes)
    assert LOST_WRITES_FLAG in record.flags


def test_the_write_probe_writes_only_to_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        WriteProbe("http://10.0.0.1:8000", ProbeSubject(1, 2, 3), duration_s=1)


@pytest.mark.slow
def test_writes_acknowledged_by_a_real_server_are_found_and_then_put_back(services: Endpoints, tmp_path: Path) -> None:
    """The probe against a real server's `POST /events` on the tiny world, then the reset after it."""
    dataset = generate(load_spec(TINY_SPEC).dataset)
    subject = probe_subject(dataset).for_run(7)
    with ProcessGroup() as group, LiveData(services.mongo_uri, [subject.user]) as live:
        before = len(list(live.database_of(subject.user)["events"].find({"user": subject.user}, {"_id": 1})))
        server = start_server(group, "sanic", Variant(grouping="write"), services, tmp_path)
        probe = WriteProbe(server.base_url, subject, duration_s=1.0)
        probe.start()
        time.sleep(1.2)
        writes = check_writes(probe, live)
        assert writes.sent >= 15 and writes.acknowledged == writes.sent, writes
        assert writes.lost == 0 and writes.failed == 0 and not writes.refused
        done = live.reset()
        assert done.deleted == writes.acknowledged
        after = len(list(live.database_of(subject.user)["events"].find({"user": subject.user}, {"_id": 1})))
        assert after == before
