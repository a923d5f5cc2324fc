"""Load from several machines: locust's distributed mode driven by the lab. The bench starts a locust
master on its own machine and waits for `processes` workers, each started elsewhere by
`reclab loadgen --master HOST:PORT`; the master relays runs, signals and parts between the lab's
files and the workers (`workloads.bridge`), so a run's results have the same schema (HDR histograms
merged, one part per worker) as with local locust processes. The workers' CPU time is what they
report for each phase; the master itself only relays and is not counted as load."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from reclab.errors import GeneratorError, UsageError
from reclab.host.cores import CpuUse, pin
from reclab.host.processes import Child, ProcessGroup
from reclab.load.driver import LOCUSTFILE, RUN_TIME_S, Generator, PhaseLoad, locust_command
from workloads.loadplan import generator_environment, workers_status_path

DEFAULT_PORT = 5557  # locust's own default master port
CHECK_EVERY_S = 0.5


@dataclass(frozen=True)
class MasterAddress:
    """Where the master listens for workers (and where `reclab loadgen` finds it)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> MasterAddress:
        host, _, port = text.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise UsageError(f"{text!r}: give the master as HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class LoadGens:
    """A bench's load from `reclab loadgen` workers: where their master listens, how long to wait for them."""

    address: MasterAddress
    wait_s: float = 300.0


class DistributedGenerator(Generator):
    """A locust master here; `processes` workers attached from wherever `reclab loadgen` runs."""

    def __init__(
        self, group: ProcessGroup, processes: int, work_dir: Path, address: MasterAddress, wait_s: float,
        cores: list[int] | None = None,
    ) -> None:  # fmt: skip
        self.address, self.wait_s = address, wait_s
        self.master: Child | None = None
        self.checked = 0.0
        super().__init__(group, processes, work_dir, cores)

    @property
    def status(self) -> Path:
        return workers_status_path(self.mailbox)

    def start(self) -> None:
        """Start the master and wait for the workers; a master still up keeps its workers (a new run
        ends whatever an abandoned one left running on them)."""
        if self.master is not None and self.master.alive():
            self.check()
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.mailbox.unlink(missing_ok=True)
        self.status.unlink(missing_ok=True)
        n = str(self.processes)
        argv = [
            *locust_command(), "-f", str(LOCUSTFILE), "--master", "--master-bind-host", self.address.host,
            "--master-bind-port", str(self.address.port), "--headless", "--expect-workers", n, "-u", n, "-r", n,
            "--run-time", f"{RUN_TIME_S}s", "--stop-timeout", "0", "--exit-code-on-error", "0", "--only-summary",
            "--loglevel", "WARNING", "--skip-log-setup",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **generator_environment(self.mailbox, 0, self.processes)}
        self.master = self.group.start("locust-master", argv, self.work_dir / "locust-master.log", env=env)
        self.children = [self.master]
        if self.cores:
            pin(self.pids, self.cores)
        print(
            f"waiting up to {self.wait_s:.0f} s for {self.processes} load generator(s): "
            f"run `reclab loadgen --master {self.address}` on each machine"
        )
        deadline = time.monotonic() + self.wait_s
        while len(self.attached()) < self.processes:
            super().check()
            if time.monotonic() > deadline:
                raise GeneratorError(
                    f"{len(self.attached())} of {self.processes} load generator(s) attached to {self.address} "
                    f"within {self.wait_s:.0f} s"
                )
            time.sleep(0.1)
        print(f"{self.processes} load generator(s) attached to {self.address}")

    @property
    def cpu_pids(self) -> list[int]:
        return []

    def count_cpu(self, cpu: CpuUse, phase: PhaseLoad) -> None:
        """The workers' CPU, as each reported it for the phase."""
        cpu.process_seconds.update({f"generator.{index}": seconds for index, seconds in phase.cpu_s.items()})

    def attached(self) -> list[str]:
        """The workers the master last said were attached."""
        try:
            workers: list[str] = msgspec.json.decode(self.status.read_bytes())["workers"]
        except (OSError, ValueError, KeyError):
            return []
        return workers

    def check(self) -> None:
        super().check()
        now = time.monotonic()
        if now - self.checked < CHECK_EVERY_S:
            return
        self.checked = now
        if (attached := len(self.attached())) < self.processes:
            raise RuntimeError(f"only {attached} of {self.processes} load generator(s) still attached to {self.address}")
