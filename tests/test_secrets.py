"""Passwords in service URIs stay secret: never on a command line the lab starts (nor on its own: a
URI with a password comes from the environment), never printed, never in an error message, a run
record or a log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from reclab.cli import main
from reclab.errors import ServiceError
from reclab.host.ports import free_port
from reclab.run.matrix import BASELINE
from reclab.run.runner import attempt
from reclab.services.external import check_mongo, check_redis
from reclab.services.network import _target_of
from servers.core.uris import passwords
from tests.conftest import TINY_SPEC
from tests.records import record

SECRET = "s3cret-Pw"
SERVE_READY_S = 120.0


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        (["bench", "--mongo-uri", f"mongodb://lab:{SECRET}@127.0.0.1:27017/"], "RECLAB_MONGO_URI"),
        (["serve", "--framework", "sanic", f"--redis-url=redis://:{SECRET}@127.0.0.1:6379/0"], "RECLAB_REDIS_URL"),
        (["capacity", "--mongo-uri", f"mongodb://a:1@127.0.0.1:1/ mongodb://b:{SECRET}@127.0.0.1:2/"], "RECLAB_MONGO_URI"),
    ],
)
def test_a_password_on_the_lab_s_command_line_is_refused(
    argv: list[str], variable: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"in the environment instead: {variable}=" in err and SECRET not in err


def test_a_uri_without_a_password_may_stay_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--mongo-uri", "mongodb://127.0.0.1:1/", "--target", "http://127.0.0.1:1"]) == 2
    assert "--target: the lab starts no server" in capsys.readouterr().err  # got past the URI, to the next check


def test_a_uri_from_the_environment_is_used_and_shown_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECLAB_MONGO_URI", f"mongodb://lab:{SECRET}@127.0.0.1:{free_port()}/")
    assert main(["serve", "--framework", "sanic", "--spec", str(TINY_SPEC), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "cannot reach MongoDB at mongodb://lab:***@127.0.0.1:" in err and SECRET not in err


def test_service_errors_and_failed_runs_carry_no_password() -> None:
    mongo, cache = f"mongodb://lab:{SECRET}@127.0.0.1:{free_port()}/", f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    for check, uri in ((check_mongo, mongo), (check_redis, cache), (check_mongo, f"mongodb://lab:{SECRET}@127.0.0.1:port/")):
        with pytest.raises(ServiceError) as raised:
            check(uri)
        assert SECRET not in str(raised.value)
    with pytest.raises(ValueError) as bad:
        _target_of(f"mongodb://lab:{SECRET}@a:1,b:2/")
    assert SECRET not in str(bad.value) and "lab:***@" in str(bad.value)

    def fails() -> object:
        raise ConnectionError(f"cannot reach {mongo} nor {cache}")

    failed = attempt(record(BASELINE, 0, 1.0), fails, [mongo, cache])  # type: ignore[arg-type]
    assert failed.status == "failed" and failed.error is not None and SECRET not in failed.error and "***" in failed.error


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`reclab serve` in a process of its own (embedded MongoDB and Valkey), until it serves; stopped with Ctrl-C."""
    output = tmp_path / "serve.out"
    argv = [sys.executable, "-m", "reclab.cli", "serve", "--framework", "sanic", "--spec", str(TINY_SPEC),
            "--port", str(free_port()), "--cache", "two-level"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(output, "wb") as out:
        lab = subprocess.Popen(argv, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + SERVE_READY_S
        while "serving on" not in output.read_text() and lab.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "serving on" in output.read_text(), output.read_text()
        yield lab, output
    finally:
        lab.send_signal(signal.SIGINT)
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()


@pytest.mark.slow
def test_reclab_serve_shows_the_embedded_valkey_s_password_nowhere(serving: tuple[subprocess.Popen[bytes], Path]) -> None:
    lab, output = serving
    started = [lab.pid, *(p.pid for p in psutil.Process(lab.pid).children(recursive=True))]
    environments = [Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in started]
    urls = [v.split(b"=", 1)[1].decode() for env in environments for v in env if v.startswith(b"RECLAB_REDIS_URL=")]
    secrets = passwords(urls)
    assert secrets, "the server gets the Valkey URL, with its password, in its environment"
    assert len(started) >= 4  # the lab, MongoDB, Valkey, the server
    for pid in started:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert not any(secret in cmdline for secret in secrets), cmdline
    lab.send_signal(signal.SIGINT)
    lab.wait(timeout=30)
    logs = output.parent / "reports" / "logs"
    for text in [output.read_text(), *(log.read_text(errors="replace") for log in logs.rglob("*.log"))]:
        assert not any(secret in text for secret in secrets)
    assert "Redis: valkey" in output.read_text() and ":***@127.0.0.1:" in output.read_text()
