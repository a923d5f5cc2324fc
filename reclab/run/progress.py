"""A one-line progress bar for long benchmark runs: variant, repeat and time left."""

from __future__ import annotations

import sys
import time

from reclab.results.record import RunRecord

WIDTH = 24


class Progress:
    def __init__(self, total: int, per_run_s: float) -> None:
        self.total = total
        self.per_run_s = per_run_s
        self.finished = 0
        self.started = time.monotonic()
        self.measured = 0

    def _left_s(self) -> float:
        if self.measured:
            return (time.monotonic() - self.started) / self.measured * (self.total - self.finished)
        return self.per_run_s * (self.total - self.finished)

    def show(self, key: str, repeat: int, repeats: int) -> None:
        filled = WIDTH * self.finished // max(1, self.total)
        bar = "#" * filled + "." * (WIDTH - filled)
        left = self._left_s()
        eta = f"~{left // 60:.0f}m{left % 60:02.0f}s left"
        print(
            f"[{bar}] {self.finished + 1}/{self.total} {key} repeat {repeat + 1}/{repeats}, {eta}",
            file=sys.stderr,
            flush=True,
        )

    def skip(self) -> None:
        self.finished += 1

    def done(self, record: RunRecord) -> None:
        self.finished += 1
        self.measured += 1
        if not record.ok:
            print(f"    FAILED: {(record.error or '').splitlines()[0]}", file=sys.stderr, flush=True)
            return
        for phase in record.phases:
            lat = phase.latency_us
            p50, p99 = (lat.p50 / 1000, lat.p99 / 1000) if lat else (0.0, 0.0)
            cpu = f"{phase.server_cpu_ms_per_request:.2f}" if phase.server_cpu_ms_per_request is not None else "–"
            flags = f"  flags: {', '.join(phase.flags)}" if phase.flags else ""
            offered = f" (offered {phase.offered_rps:.1f})" if phase.offered_rps is not None else ""
            docs = f"  {phase.db_docs_per_request:.0f} docs/req" if phase.db_docs_per_request is not None else ""
            print(
                f"    {phase.name:6s} {phase.throughput_rps:8.1f} req/s{offered}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
                f"server CPU {cpu} ms/req{docs}  limited by {phase.bottleneck}{flags}",
                file=sys.stderr,
                flush=True,
            )

    def finish(self) -> None:
        elapsed = time.monotonic() - self.started
        print(f"done in {elapsed // 60:.0f}m{elapsed % 60:02.0f}s", file=sys.stderr, flush=True)
