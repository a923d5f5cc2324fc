"""reclab's nox sessions: how people run the lab (see README).

./noxw -s bench        default matrix + report (arguments after -- go to `reclab bench`)
./noxw -s tests        the tests (arguments after -- go to pytest)
./noxw -s lint         ruff, mypy and the import contracts
./noxw -s capacity     each variant's capacity at a p99 objective + report (arguments after -- go to `reclab capacity`)
./noxw -s report       rebuild a report: -- DIR (default reports/latest)
./noxw -s flamegraph   py-spy flamegraph of a loaded server: -- --framework sanic [variant flags]
./noxw -s hotpath      a warmed-up server's CPU per request against its /health: -- --frameworks sanic
./noxw -s asv          asv benchmarks of the current commit, published as HTML
./noxw -s microbench   pytest-benchmark microbenchmarks of the core's hot paths
./noxw -s smoke        one request per variant: latency and its Server-Timing breakdown
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

PYTHON = None  # every session runs on the interpreter that runs nox (Python 3.13: see noxw)
LATEST = "reports/latest"


def install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite, against real embedded MongoDB and Valkey: one test file per worker process, a
    worker per core (each starts the embedded services its files need)."""
    install(session)
    session.run("pytest", *(session.posargs or ["-q", "-n", "auto", "--dist", "loadfile"]))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format check), mypy, and the import contracts (lint-imports, see pyproject.toml)."""
    install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "reclab", "servers", "workloads")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The main job: the default benchmark matrix on the embedded services, then its report."""
    install(session)
    session.run("reclab", "bench", *session.posargs, success_codes=[0, 3])  # 3: some runs failed (they are in the report)
    session.run("reclab", "report", LATEST)
    session.log(f"report: {Path(LATEST).resolve() / 'index.html'}  (and report.md beside it)")


@nox.session(python=PYTHON)
def capacity(session: nox.Session) -> None:
    """Each variant's highest arrival rate at the latency objective (baseline on each framework by default), then its report."""
    install(session)
    session.run("reclab", "capacity", *session.posargs, success_codes=[0, 3])  # 3: some search was not confirmed
    session.run("reclab", "report", LATEST)
    session.log(f"report: {Path(LATEST).resolve() / 'index.html'}  (and report.md beside it)")


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Rebuild the report of a result folder (default reports/latest), or -- --compare OLD NEW."""
    install(session)
    session.run("reclab", "report", *(session.posargs or [LATEST]))


@nox.session(python=PYTHON)
def flamegraph(session: nox.Session) -> None:
    """py-spy flamegraph (SVG + speedscope) of a loaded server, into reports/latest/flamegraphs."""
    install(session)
    session.run("reclab", "flamegraph", *(session.posargs or ["--framework", "sanic"]))


@nox.session(python=PYTHON)
def hotpath(session: nox.Session) -> None:
    """The warmed-up baseline's server CPU per request against its /health, into reports/latest/hotpath.json."""
    install(session)
    session.run("reclab", "hotpath", *(session.posargs or ["--frameworks", "sanic", "tornado", "aiohttp"]))


@nox.session(python=PYTHON)
def asv(session: nox.Session) -> None:
    """asv benchmarks of the current commit (added to the history in .asv/), then `asv publish`."""
    install(session)
    commit = session.run("git", "rev-parse", "HEAD", silent=True, external=True).strip()
    session.run("asv", "machine", "--yes")
    session.run("asv", "run", "--python=same", "--set-commit-hash", commit, "--show-stderr", *session.posargs)
    session.run("asv", "publish")
    session.log(f"asv HTML: {Path('.asv/html').resolve()}/index.html (serve it with: asv preview)")


@nox.session(python=PYTHON)
def microbench(session: nox.Session) -> None:
    """pytest-benchmark microbenchmarks of the core's hot paths (not part of the test run)."""
    install(session)
    session.run("pytest", "microbench", "--benchmark-only", "-q", *session.posargs, env={"PYTHONHASHSEED": "0"})


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """Every framework, a few variants, one request repeated: latency and Server-Timing."""
    install(session)
    session.run("reclab", "smoke", *session.posargs)
