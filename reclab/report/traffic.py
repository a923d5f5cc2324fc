"""The report's section on reads and writes: for a bench whose stream held writes (POST /events), each
variant's read and write throughput, p99 and errors per phase. Nothing for a bench without writes."""

from __future__ import annotations

from reclab.analysis.traffic import KindFigures, TrafficRow
from reclab.report.document import Section, Table
from reclab.report.sections import num

HEADERS = [
    "variant", "phase", "writes", "reads/s", "read p99 ms", "read errors", "writes/s", "write p99 ms", "write errors", "runs",
]  # fmt: skip


def _cells(kind: KindFigures) -> list[str]:
    return [num(kind.rps, 1), num(kind.p99_ms, 2), str(kind.errors)]


def _row(row: TrafficRow) -> list[str]:
    return [row.key, f"`{row.phase}`", f"{row.write_share:.0%}", *_cells(row.reads), *_cells(row.writes), str(row.runs)]


def traffic_section(rows: list[TrafficRow]) -> Section | None:
    if not rows:
        return None
    return Section(
        "Reads and writes",
        [
            "The stream's writes (`POST /events`, answered once the database acknowledged them) and its reads, apart: "
            "successes per second of the window and p99 (medians over runs; open loop: from the due moment), errors "
            "counted over every run (open loop: unsent and unfinished arrivals too). `writes`: their share of the "
            "phase's entries. Both count as arrivals of the phase's rate."
        ],
        [Table(HEADERS, [_row(r) for r in rows])],
    )
