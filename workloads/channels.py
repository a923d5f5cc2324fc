"""How a locust process hears of the lab's runs and answers: through files when the lab started it on
this machine (the mailbox, the run's signal folder, part files), or through locust's master/worker
messages when it is a distributed worker (`reclab loadgen`) on any machine, whose master relays them
(`workloads.bridge`).

A worker's clock is its own: its master sends the measured phases' start as a delay from the moment
of sending, and the worker places the timeline on its own `time.monotonic()`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.event import AsyncResult
from gevent.queue import Queue

from workloads.loadplan import (
    PART_MESSAGE,
    RUN_MESSAGE,
    T0_MESSAGE,
    WARM_MESSAGE,
    LoadPart,
    LoadSettings,
    Mailbox,
    parse_stream,
)

SIGNAL_TIMEOUT_S = 120.0  # how long a process waits for the lab's t0 signal
MAILBOX_POLL_S = 0.01


@dataclass(frozen=True)
class Job:
    """One run as a locust process carries it out: the settings, its own index, the request stream."""

    settings: LoadSettings
    index: int
    paths: list[str]
    gaps: list[float] | None = None  # a stream replayed from a trace: seconds since the entry before


class FileChannel:
    """A locust process the lab started on this machine: the run comes through the mailbox file."""

    def __init__(self, mailbox: Path, index: int) -> None:
        self.mailbox = Mailbox(mailbox)
        self.index = index
        self.streams: dict[str, tuple[list[str], list[float] | None]] = {}
        self.running: gevent.Greenlet | None = None

    def next_run(self) -> Job:
        while True:
            settings = self.mailbox.new_run()
            if settings is not None:
                if settings.paths_file not in self.streams:
                    self.streams[settings.paths_file] = parse_stream(Path(settings.paths_file).read_text())
                return Job(settings, self.index, *self.streams[settings.paths_file])
            gevent.sleep(MAILBOX_POLL_S)

    def warm(self, job: Job) -> None:
        job.settings.send(f"warm.{job.index}", {"at": time.monotonic()})

    def t0(self, job: Job) -> float:
        return float(job.settings.wait_for("t0", time.monotonic() + SIGNAL_TIMEOUT_S)["t0"])

    def deliver(self, job: Job, part: LoadPart) -> None:
        part.write(job.settings.part_path(job.index))


class WorkerChannel:
    """A distributed worker: runs, the t0 signal and the stream come as messages from the master;
    warm-up done and parts go back as messages. A new run ends one still going (the lab only ever has
    one run at a time, so an older one was given up)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.jobs: Queue[Job] = Queue()
        self.starts: dict[str, AsyncResult] = {}
        self.streams: dict[str, tuple[list[str], list[float] | None]] = {}
        self.running: gevent.Greenlet | None = None
        runner.register_message(RUN_MESSAGE, self._on_run)
        runner.register_message(T0_MESSAGE, self._on_t0)

    def _on_run(self, msg: Any, **_: Any) -> None:
        data = msg.data
        if data.get("stream") is not None:
            self.streams[data["digest"]] = parse_stream(data["stream"])
        settings = LoadSettings.from_dict(data["settings"])
        if self.running is not None and not self.running.dead:
            self.running.kill(block=False)
        self.starts = {settings.run_id: AsyncResult()}
        self.jobs.put(Job(settings, int(data["index"]), *self.streams[data["digest"]]))

    def _on_t0(self, msg: Any, **_: Any) -> None:
        start = self.starts.get(msg.data["run_id"])
        if start is not None:
            start.set(time.monotonic() + float(msg.data["in_s"]))

    def next_run(self) -> Job:
        return self.jobs.get()

    def warm(self, job: Job) -> None:
        self.runner.send_message(WARM_MESSAGE, {"run_id": job.settings.run_id, "index": job.index})

    def t0(self, job: Job) -> float:
        start = self.starts.get(job.settings.run_id)
        if start is None:
            raise TimeoutError("the run was replaced before it started")
        try:
            return float(start.get(timeout=SIGNAL_TIMEOUT_S))
        except gevent.Timeout:
            raise TimeoutError("no 't0' signal by the deadline") from None

    def deliver(self, job: Job, part: LoadPart) -> None:
        self.runner.send_message(PART_MESSAGE, {"run_id": job.settings.run_id, "part": asdict(part)})
