"""`reclab loadgen --master HOST:PORT`: load generator processes for a bench on another machine (or
this one). Each is a locust worker attached to the master that `reclab bench --loadgens N` started;
it carries out the runs the master relays and sends back what it recorded. They serve until that
bench ends (its master tells them to quit), or until Ctrl-C."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from reclab import REPORTS
from reclab.errors import UsageError
from reclab.host.cores import pin
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.distributed import MasterAddress
from reclab.load.driver import LOCUSTFILE, locust_command
from workloads.loadplan import INDEX_ENV, MAILBOX_ENV, PROCESSES_ENV


def loadgen(*, master: str, processes: int = 1, cores: list[int] | None = None, log_dir: Path | None = None) -> int:
    """0 once every worker has ended (the bench is over), 1 if one failed."""
    address = MasterAddress.parse(master)
    if cores and not set(cores) <= os.sched_getaffinity(0):
        raise UsageError(f"--cores {' '.join(map(str, cores))}: this process may only use {sorted(os.sched_getaffinity(0))}")
    log_dir = log_dir or REPORTS / "logs" / time.strftime("loadgen-%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (MAILBOX_ENV, INDEX_ENV, PROCESSES_ENV)}
    argv = [
        *locust_command(), "-f", str(LOCUSTFILE), "--worker", "--master-host", address.host,
        "--master-port", str(address.port), "--loglevel", "WARNING", "--skip-log-setup",
    ]  # fmt: skip
    with stop_on_signals(), ProcessGroup() as group:
        workers = [
            group.start(f"loadgen-{i}", argv, log_dir / f"loadgen-{i}.log", env={**env, "PYTHONUNBUFFERED": "1"})
            for i in range(processes)
        ]  # fmt: skip
        if cores:
            pin([w.pid for w in workers], cores)
        print(f"{processes} load generator(s) for the bench at {address}; logs in {log_dir}  — Ctrl-C stops them")
        while any(w.alive() for w in workers):
            time.sleep(0.2)
        failed = [w for w in workers if w.exit_code() not in (0, None)]
        for worker in failed:
            print(f"{worker.name} ended with code {worker.exit_code()}:\n{worker.log_tail(5)}", file=sys.stderr)
        return 1 if failed else 0
