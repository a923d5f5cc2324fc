"""The faults section of a report: for every fault of the fault matrix, on every framework, what the
requests saw while it was on and after it, next to the same server without a fault; and what became
of the write probe's events (`reclab.run.write_probe`): a write acknowledged and then not found in the
database fails the matrix."""

from __future__ import annotations

from reclab.analysis.findings import Findings
from reclab.report.document import Section, Table
from reclab.report.sections import num
from reclab.results.faults import (
    FAULT_END_S,
    FAULT_START_S,
    FAULTS,
    LOST_WRITES_FLAG,
    PROBE_RATE,
    PROBE_TIMEOUT_S,
    UNCHECKED_WRITES_FLAG,
    WriteTally,
)
from reclab.results.record import RunRecord, excerpt


def _p99_ms(record: RunRecord) -> float | None:
    latency = record.phases[0].latency_us if record.phases else None
    return latency.p99 / 1000 if latency else None


def _writes(record: RunRecord) -> WriteTally | None:
    """The write probe's tally of a fault run, where its record keeps one."""
    writes = record.fault.writes if record.fault is not None else None
    return writes if isinstance(writes, WriteTally) else None


def _writes_table(runs: list[RunRecord]) -> tuple[Table | None, str]:
    """The write probe's figures per run, and the verdict on them."""
    rows, lost, unchecked = [], 0, []
    for r in runs:
        writes = _writes(r)
        if writes is None:
            lost += LOST_WRITES_FLAG in r.flags  # an older record: only its flag says
            continue
        lost += writes.lost or 0
        if writes.lost is None or UNCHECKED_WRITES_FLAG in r.flags:
            unchecked.append(f"{r.config.stack} {r.config.fault or 'no fault'} (repeat {r.repeat + 1})")
        refused = ", ".join(f"{status} x{n}" for status, n in writes.refused.items()) or "0"
        shown_lost = "?" if writes.lost is None else f"**{writes.lost}**" if writes.lost else "0"
        rows.append([
            r.config.fault or "none", r.config.stack, str(r.repeat + 1), str(writes.sent), str(writes.acknowledged),
            refused, str(writes.failed), str(writes.stored_unacknowledged), shown_lost,
        ])  # fmt: skip
    if lost:
        verdict = f"**FAIL: {lost} acknowledged write(s) lost** (answered 200, then not in the database)."
    elif rows:
        verdict = "**No acknowledged write was lost**."
    else:
        verdict = ""
    if unchecked:
        verdict += " Writes not looked up (the database did not answer): " + "; ".join(unchecked) + "."
    headers = ["fault", "framework", "repeat", "writes sent", "acknowledged", "refused", "failed",
               "stored unacknowledged", "lost"]  # fmt: skip
    return (Table(headers, rows) if rows else None), verdict.strip()


def faults_section(f: Findings) -> Section:
    runs = [r for r in f.records if r.kind == "run"]
    controls = {r.config.stack: _p99_ms(r) for r in runs if r.ok and r.config.fault is None}
    rows, lost, failed = [], 0, []
    for r in sorted(runs, key=lambda r: (r.config.fault or "", r.config.stack, r.repeat)):
        if r.config.fault is None:
            continue
        if r.fault is None:
            failed.append(f"{r.config.stack} {r.config.fault} (repeat {r.repeat + 1}): {excerpt(r.error or 'no fault record')}")
            continue
        x = r.fault
        lost += x.lost
        statuses = ", ".join(f"{status} x{n}" for status, n in x.by_status.items())
        rows.append([
            x.name, r.config.stack, str(r.repeat + 1), f"{x.start_s:.2f}–{x.end_s:.2f}", str(x.sent), str(x.answered),
            f"**{x.lost}**" if x.lost else "0", statuses, num(x.p99_during_ms), num(x.p99_after_ms),
            num(controls.get(r.config.stack)), num(x.recovery_s, 2),
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
    writes, writes_verdict = _writes_table([r for r in runs if r.fault is not None or r.config.fault is None])
    if writes is not None or writes_verdict:
        paragraphs.append(
            f"Writes: beside the load, the lab sends unique events (`POST /events`, {PROBE_RATE:g} per second, each "
            f"with a {PROBE_TIMEOUT_S:g} s timeout) for the length of the window, then looks each acknowledged one up "
            "in MongoDB. `refused`: "
            "answered another status (by status); `failed`: no answer; `stored unacknowledged`: not acknowledged but "
            "stored all the same; `lost`: acknowledged and not stored, which must never happen. " + writes_verdict
        )
    headers = ["fault", "framework", "repeat", "on (s)", "sent", "answered", "lost", "by status", "p99 during (ms)",
               "p99 after (ms)", "p99 without fault (ms)", "recovery (s)"]  # fmt: skip
    tables = [Table(headers, rows)] + ([writes] if writes is not None else [])
    return Section("Faults", paragraphs, tables)
