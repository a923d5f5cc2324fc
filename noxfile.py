"""reclab's nox sessions: how people run the lab (see README)."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

# Every session runs on the interpreter that runs nox (Python 3.13: see noxw).
PYTHON = None


def install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite, against real embedded MongoDB and Valkey (pytest arguments after --)."""
    install(session)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy."""
    install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "reclab", "servers", "workloads")


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """Both frameworks, a few variants, one request repeated: latency and Server-Timing (arguments go to `reclab smoke`)."""
    install(session)
    session.run("reclab", "smoke", *session.posargs)
