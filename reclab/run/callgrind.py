"""Counting a server's instructions with valgrind's callgrind, over a window of requests only.

A bench that counts instructions starts a second server zygote (`servers.zygote`) under
`valgrind --tool=callgrind --instr-atstart=no`: it imports everything once, with instrumentation off
(valgrind then runs code several times slower, not the 30-50 times of counting), and every server it
forks is under valgrind too, as is every worker that server forks (valgrind follows every fork, and
`--trace-children=yes` every exec); each process counts every one of its threads. Around the measured
window the lab switches instrumentation on, then off, in every process of the server (`vgdb`, valgrind's
monitor channel), and has each dump what it counted; the dumps' totals, summed, are the window's
instructions. Start-up, warm-up, the lab's scrapes and shut-down are not counted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reclab.errors import UsageError
from reclab.host.processes import Forker, ProcessGroup

TOOLS = ("valgrind", "vgdb")
MONITOR_TIMEOUT_S = 60.0  # vgdb waits for the process to reach a point where valgrind can take the command
TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class InstructionWindow:
    """The slice of the stream a run's instructions are counted over: `requests` entries after the
    warm-up, sent in order over `connections` keep-alive connections."""

    requests: int
    connections: int = 1


def valgrind_version() -> str:
    """valgrind's version line; a UsageError naming what is missing when valgrind or vgdb is."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise UsageError(
            f"counting instructions needs valgrind ({' and '.join(missing)} not found on PATH): "
            "install it, e.g. `apt install valgrind`"
        )
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=True).stdout.strip()


class InstructionCounter:
    """A server zygote under callgrind, and the switches and dumps of the servers it forks."""

    def __init__(self, group: ProcessGroup, work_dir: Path) -> None:
        self.tool = f"{valgrind_version()} callgrind"
        self.dir = work_dir / "callgrind"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prefix = str(self.dir / "vgdb")
        wrapper = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--trace-children=yes",
            f"--callgrind-out-file={self.dir}/callgrind.%p",
            "--vgdb=yes",
            f"--vgdb-prefix={self.prefix}",
        )
        self.forker = Forker(group, work_dir / "zygote-callgrind.log", wrapper=wrapper)

    def switch(self, pid: int, on: bool) -> None:
        """Instrumentation of process `pid` on or off."""
        self._monitor(pid, "instrumentation", "on" if on else "off")

    def take(self, pid: int) -> int:
        """What process `pid` counted since its instrumentation went on: it dumps its counters (which
        zeroes them), the dump is read and removed."""
        self._monitor(pid, "dump")
        dumps = sorted(self.dir.glob(f"callgrind.{pid}.*"), key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1)
        if not dumps:
            raise RuntimeError(f"callgrind wrote no dump for process {pid} into {self.dir}")
        found = TOTALS.search(dumps[-1].read_bytes())
        for dump in dumps:
            dump.unlink(missing_ok=True)
        if found is None:
            raise RuntimeError(f"callgrind's dump of process {pid} has no totals line")
        return int(found.group(1))

    def forget(self, pids: list[int]) -> None:
        """Remove what processes that have exited left behind (callgrind's file at exit, counting nothing:
        their counts were dumped and instrumentation was off since)."""
        for pid in pids:
            (self.dir / f"callgrind.{pid}").unlink(missing_ok=True)

    def _monitor(self, pid: int, *command: str) -> None:
        argv = ["vgdb", f"--vgdb-prefix={self.prefix}", f"--pid={pid}", *command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=MONITOR_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"vgdb {' '.join(command)} to process {pid}: no answer in {MONITOR_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
            raise RuntimeError(f"vgdb {' '.join(command)} to process {pid} failed ({done.returncode}): {said[0]}")
