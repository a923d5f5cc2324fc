"""reclab's nox sessions: how people run the lab (see README).

./noxw -s bench        default matrix + report (arguments after -- go to `reclab bench`)
./noxw -s tests        the tests (arguments after -- go to pytest)
./noxw -s lint         ruff, mypy and the import contracts
./noxw -s capacity     each variant's capacity at a p99 objective + report (arguments after -- go to `reclab capacity`)
./noxw -s report       rebuild a report: -- DIR (default reports/latest)
./noxw -s flamegraph   py-spy flamegraph of a loaded server: -- --framework sanic [variant flags]
./noxw -s hotpath      a warmed-up server's CPU per request against its /health: -- --frameworks sanic
./noxw -s asv          asv benchmarks of the current commit, published as HTML (offline)
./noxw -s asv_backfill asv benchmarks of past commits in their own environments: -- HEAD~3..HEAD
./noxw -s asv_compare  two commits measured and compared, fails on a regression: -- OLD NEW
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
REPORTS = "reports"  # every result set below it is listed in reports/index.html


def install(session: nox.Session) -> None:
    session.install("-e", ".[lab,dev]")


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
    session.run("reclab", "report", "--index", REPORTS)
    session.log(f"report: {Path(LATEST).resolve() / 'index.html'}  (and report.md beside it)")
    session.log(f"every result set: {Path(REPORTS).resolve() / 'index.html'}")


@nox.session(python=PYTHON)
def capacity(session: nox.Session) -> None:
    """Each variant's highest arrival rate at the latency objective (baseline on each framework by default), then its report."""
    install(session)
    session.run("reclab", "capacity", *session.posargs, success_codes=[0, 3])  # 3: some search was not confirmed
    session.run("reclab", "report", LATEST)
    session.run("reclab", "report", "--index", REPORTS)
    session.log(f"report: {Path(LATEST).resolve() / 'index.html'}  (and report.md beside it)")
    session.log(f"every result set: {Path(REPORTS).resolve() / 'index.html'}")


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


ASV_HTML = ".asv/html"  # asv.conf.json's html_dir
ASV_BACKFILL = "HEAD~3..HEAD"


def asv_setup(session: nox.Session) -> None:
    """The project (asv, and the offline step) and asv's record of this machine."""
    install(session)
    session.run("asv", "machine", "--yes")


def asv_publish(session: nox.Session) -> None:
    """`asv publish`, then the offline step: the page's libraries from local copies instead of CDNs, and its
    data readable when the page is opened from a file (reclab/report/asv_offline.py)."""
    session.run("asv", "publish")
    session.run("python", "-m", "reclab.report.asv_offline", ASV_HTML)
    session.log(f"asv HTML: {Path(ASV_HTML).resolve()}/index.html (open it as a file, or serve it: asv preview)")


@nox.session(python=PYTHON)
def asv(session: nox.Session) -> None:
    """asv benchmarks of the current commit, quickly: the working tree as installed in this session, added to the
    history in .asv/ (its own series: python is this session's interpreter), then published."""
    asv_setup(session)
    commit = session.run("git", "rev-parse", "HEAD", silent=True, external=True).strip()
    session.run("asv", "run", "--python=same", "--set-commit-hash", commit, "--show-stderr", *session.posargs)
    asv_publish(session)


@nox.session(python=PYTHON)
def asv_backfill(session: nox.Session) -> None:
    """asv benchmarks of past commits, each built and installed in asv's own virtualenv (asv.conf.json):
    -- RANGE [asv run options], e.g. -- HEAD~3..HEAD --bench bench_core (the default range: HEAD~3..HEAD).
    Commits already measured are skipped; the history is published."""
    asv_setup(session)
    arguments = session.posargs or [ASV_BACKFILL]
    # 2: some benchmark failed at some commit (asv says which; the others are recorded and published)
    session.run("asv", "run", "--skip-existing-commits", "--show-stderr", *arguments, success_codes=[0, 2])
    asv_publish(session)


ASV_COMPARE_BENCH = "bench_core"  # the server benchmarks: one quick bench per round, no spread, and req/s counts higher as worse


@nox.session(python=PYTHON)
def asv_compare(session: nox.Session) -> None:
    """Two commits measured in asv's virtualenvs and compared (asv continuous): -- OLD NEW [options], e.g.
    -- HEAD~1 HEAD --factor 1.2. Fails when a benchmark got worse by more than the factor (asv's default 1.1) and
    significantly (asv exits 1), or failed (2). The core's benchmarks unless --bench/-b says otherwise."""
    if len(session.posargs) < 2 or session.posargs[0].startswith("-") or session.posargs[1].startswith("-"):
        session.error("usage: ./noxw -s asv_compare -- OLD NEW [--factor 1.1] [--bench REGEX]")
    old, new, *options = session.posargs
    if not any(option in ("-b", "--bench") or option.startswith("--bench=") for option in options):
        options = ["--bench", ASV_COMPARE_BENCH, *options]
    asv_setup(session)
    try:
        session.run("asv", "continuous", "--show-stderr", *options, old, new)
    finally:
        asv_publish(session)


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
