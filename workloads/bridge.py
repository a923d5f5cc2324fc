"""The master of a distributed load generator: a locust master process the lab starts on its own
machine, which relays between the lab's files and the workers that `reclab loadgen` attached.

The lab sees the same files as with local locust processes: it posts a run to the mailbox, waits for
`warm.<index>` in the run's signal folder, writes `t0` there and reads one part file per index. The
master hands each run to the first `processes` workers (ordered by their ids), each with its index
and, once per worker, the request stream; it writes their warm-up signals and parts where the lab
reads them, and forwards `t0` as a delay from the moment of sending (the workers' clocks are
theirs). It keeps `workers.json` beside the mailbox up to date with the workers attached.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gevent
import msgspec

from workloads.loadplan import (
    PART_MESSAGE,
    RUN_MESSAGE,
    T0_MESSAGE,
    WARM_MESSAGE,
    LoadPart,
    LoadSettings,
    Mailbox,
    workers_status_path,
)

POLL_S = 0.02  # the lab writes t0 0.1 s ahead, and the workers place it by the delay sent, so this only has to be well under that


class Bridge:
    """Relays the runs of one lab to its workers (see the module's docstring)."""

    def __init__(self, runner: Any, mailbox: Path) -> None:
        self.runner = runner
        self.mailbox = Mailbox(mailbox)
        self.status = workers_status_path(mailbox)
        self.current: LoadSettings | None = None
        self.assigned: list[str] = []
        self.t0_sent = False
        self.stream_sent: dict[str, str] = {}  # worker id -> digest of the stream it holds
        self.streams: dict[str, tuple[str, str]] = {}  # paths file -> (digest, text)
        runner.register_message(WARM_MESSAGE, self._on_warm)
        runner.register_message(PART_MESSAGE, self._on_part)

    def start(self) -> None:
        gevent.spawn(self.serve)

    def serve(self) -> None:
        attached: list[str] | None = None
        while True:
            workers = self.attached()
            if workers != attached:
                attached = workers
                write_json(self.status, {"workers": workers, "at": time.time()})
            settings = self.mailbox.new_run()
            if settings is not None:
                self.hand_over(settings, workers)
            if self.current is not None and not self.t0_sent and self.current.signal("t0").exists():
                self.forward_t0(self.current)
            gevent.sleep(POLL_S)

    def attached(self) -> list[str]:
        """The ids of the workers attached and answering heartbeats."""
        return sorted(node.id for node in self.runner.clients.values() if node.state != "missing")

    def hand_over(self, settings: LoadSettings, workers: list[str]) -> None:
        self.current, self.t0_sent = settings, False
        self.assigned = workers[: settings.processes]
        digest, text = self.stream(settings.paths_file)
        for index, worker in enumerate(self.assigned):
            fresh = self.stream_sent.get(worker) != digest
            message = {"settings": asdict(settings), "index": index, "digest": digest, "stream": text if fresh else None}
            self.runner.send_message(RUN_MESSAGE, message, client_id=worker)
            self.stream_sent[worker] = digest
        for index in range(len(self.assigned), settings.processes):  # the lab reads why at once
            LoadPart(index, settings.run_id, failure=f"only {len(workers)} load generator(s) attached").write(
                settings.part_path(index)
            )

    def stream(self, paths_file: str) -> tuple[str, str]:
        if paths_file not in self.streams:
            text = Path(paths_file).read_text()
            self.streams[paths_file] = (hashlib.sha256(text.encode()).hexdigest()[:16], text)
        return self.streams[paths_file]

    def forward_t0(self, settings: LoadSettings) -> None:
        self.t0_sent = True
        t0 = float(msgspec.json.decode(settings.signal("t0").read_bytes())["t0"])
        for worker in self.assigned:
            self.runner.send_message(T0_MESSAGE, {"run_id": settings.run_id, "in_s": t0 - time.monotonic()}, client_id=worker)

    def _on_warm(self, msg: Any, **_: Any) -> None:
        settings = self.current
        if settings is not None and msg.data["run_id"] == settings.run_id:
            settings.send(f"warm.{int(msg.data['index'])}", {"at": time.monotonic()})

    def _on_part(self, msg: Any, **_: Any) -> None:
        settings = self.current
        part = LoadPart.from_dict(msg.data["part"])
        if settings is not None and msg.data["run_id"] == settings.run_id:
            part.write(settings.part_path(part.index))


def write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(msgspec.json.encode(data))
    os.replace(partial, path)
