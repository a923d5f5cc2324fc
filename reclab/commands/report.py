"""`reclab report DIR`: write DIR/report.md and DIR/index.html; with --compare, the regression gate (and
its page in NEW/comparisons/); with --index, DIR/index.html and DIR/index.md listing every result set below DIR."""

from __future__ import annotations

from pathlib import Path

from reclab.analysis.verdicts import MARGIN
from reclab.commands.compare import compare_sets
from reclab.errors import UsageError
from reclab.report.build import build_report
from reclab.report.result_sets import build_index


def report(
    *,
    folder: Path | None = None,
    compare: list[Path] | None = None,
    index: Path | None = None,
    threshold: float = 0.05,
    margin: float = MARGIN,
) -> int:
    given = [name for name, value in (("DIR", folder), ("--compare OLD NEW", compare), ("--index DIR", index)) if value]
    if len(given) > 1:
        raise UsageError(f"reclab report: give one of DIR, --compare OLD NEW or --index DIR, not {' and '.join(given)}")
    if compare:
        if not 0 < threshold < 1:
            raise UsageError(f"--threshold {threshold:g}: must be between 0 and 1 (0.05 is 5%)")
        return compare_sets(compare[0], compare[1], threshold)
    if folder is None and index is None:
        raise UsageError("reclab report: give a result folder, --compare OLD NEW, or --index DIR")
    if not 0 < margin < 1:
        raise UsageError(f"--margin {margin:g}: must be between 0 and 1 (0.05 is ±5%)")
    if index is not None:
        md, page, sets = build_index(index, margin)
        unread = sum(1 for s in sets if s.error)
        counts = f"{len(sets)} result set(s)" + (f", {unread} not read or analysed" if unread else "")
        print(f"index: {md}  ({counts})\n       {page.resolve()}")
        return 0
    assert folder is not None
    md, page = build_report(folder, margin)
    print(f"report: {md}\n        {page.resolve()}")
    return 0
