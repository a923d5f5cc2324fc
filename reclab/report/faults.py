"""The faults section of a report: for every fault of the fault matrix, on every framework, what the
requests saw while it was on and after it, next to the same server without a fault."""

from __future__ import annotations

from reclab.analysis.findings import Findings
from reclab.report.document import Section, Table
from reclab.report.sections import num
from reclab.results.faults import FAULT_END_S, FAULT_START_S, FAULTS
from reclab.results.record import RunRecord


def _p99_ms(record: RunRecord) -> float | None:
    latency = record.phases[0].latency_us if record.phases else None
    return latency.p99 / 1000 if latency else None


def faults_section(f: Findings) -> Section:
    runs = [r for r in f.records if r.kind == "run"]
    controls = {r.config.framework: _p99_ms(r) for r in runs if r.ok and r.config.fault is None}
    rows, lost, failed = [], 0, []
    for r in sorted(runs, key=lambda r: (r.config.fault or "", r.config.framework, r.repeat)):
        if r.config.fault is None:
            continue
        if r.fault is None:
            failed.append(f"{r.config.framework} {r.config.fault} (repeat {r.repeat + 1}): {r.error or 'no fault record'}")
            continue
        x = r.fault
        lost += x.lost
        statuses = ", ".join(f"{status} x{n}" for status, n in x.by_status.items())
        rows.append([
            x.name, r.config.framework, str(r.repeat + 1), f"{x.start_s:.2f}–{x.end_s:.2f}", str(x.sent), str(x.answered),
            f"**{x.lost}**" if x.lost else "0", statuses, num(x.p99_during_ms), num(x.p99_after_ms),
            num(controls.get(r.config.framework)), num(x.recovery_s, 2),
        ])  # fmt: skip
    verdict = f"**{lost} request(s) lost** (sent and never answered)." if lost else "**No request was lost**."
    paragraphs = [
        f"The baseline on each framework, through the delay proxy at 0 ms, under open-loop load at "
        f"{f.bench.load.phases[0].rate:g} requests/s; each fault is on from {FAULT_START_S:g} s to {FAULT_END_S:g} s "
        "of the window (times as injected). A request counts `during` the fault when it was due while the fault was "
        "on; `recovery` is the time from the fault's end until the last failed or slow request (above 5x the median "
        "before the fault, at least 100 ms) was over. " + verdict,
        "Faults: " + "; ".join(f"`{name}` {what}" for name, what in FAULTS.items()) + ".",
    ]
    if failed:
        paragraphs.append("Runs that failed: " + "; ".join(failed) + ".")
    headers = ["fault", "framework", "repeat", "on (s)", "sent", "answered", "lost", "by status", "p99 during (ms)",
               "p99 after (ms)", "p99 without fault (ms)", "recovery (s)"]  # fmt: skip
    return Section("Faults", paragraphs, [Table(headers, rows)])
