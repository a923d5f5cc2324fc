"""wrk (Debian's `wrk` package) as a second, independent generator for closed windows: one thread
and N connections replaying a request stream in order (`workloads/wrk_replay.lua`; reads as GET,
writes as POST /events with their JSON body), so a figure of locust's can be checked against a
generator written in C that costs little CPU of its own. Its counts take reads and writes together."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import workloads
from reclab.errors import GeneratorError
from reclab.host.cores import pin
from reclab.host.processes import ProcessGroup

REPLAY_SCRIPT = Path(workloads.__file__).parent / "wrk_replay.lua"
EXTRA_WAIT_S = 30.0  # beyond the window, for wrk to connect and report


@dataclass(frozen=True)
class WrkWindow:
    """What wrk reports of one window."""

    requests: int  # completed, whatever their status
    bad_status: int  # answers other than 2xx/3xx
    socket_errors: int  # connect, read, write and timeout errors

    @property
    def ok(self) -> int:
        return self.requests - self.bad_status


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise GeneratorError("wrk is not installed: it comes in Debian's `wrk` package (apt-get install wrk)")
    return found


def run_wrk(
    group: ProcessGroup,
    base_url: str,
    paths_file: Path,
    *,
    connections: int,
    seconds: float,
    start: int,
    log_path: Path,
    cores: list[int] | None,
) -> WrkWindow:
    """One closed window of `seconds` with `connections` connections, from line `start` of the stream;
    returns when wrk has reported (its report is kept in `log_path`)."""
    argv = [
        wrk_binary(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(REPLAY_SCRIPT),
        base_url, "--", str(paths_file), str(start),
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    child = group.start("wrk", argv, log_path)
    if cores is not None:
        pin([child.pid], cores)
    try:
        child.popen.wait(timeout=seconds + EXTRA_WAIT_S)
    except subprocess.TimeoutExpired as error:
        raise GeneratorError(f"wrk did not finish a {seconds:g} s window (log: {log_path})") from error
    finally:
        code = group.stop(child)
    report = log_path.read_text(errors="replace")
    if code != 0:
        raise GeneratorError(f"wrk exited with {code}: {report.strip().splitlines()[-1:] or 'no output'} (log: {log_path})")
    return parse_report(report, log_path)


def parse_report(report: str, source: Path) -> WrkWindow:
    """The counts of wrk's summary (`N requests in ...`, `Non-2xx or 3xx responses: K`, `Socket errors: ...`)."""
    done = re.search(r"^\s*(\d+) requests in ", report, re.MULTILINE)
    if done is None:
        raise GeneratorError(f"wrk reported no request count (log: {source})")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    return WrkWindow(
        requests=int(done.group(1)),
        bad_status=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )
