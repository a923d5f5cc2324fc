"""`reclab report DIR`: write DIR/report.md and DIR/index.html; with --compare, the regression gate."""

from __future__ import annotations

from pathlib import Path

from reclab.commands.compare import compare_sets
from reclab.errors import UsageError
from reclab.report.build import build_report


def report(*, folder: Path | None = None, compare: list[Path] | None = None, threshold: float = 0.05) -> int:
    if compare:
        return compare_sets(compare[0], compare[1], threshold)
    if folder is None:
        raise UsageError("reclab report: give a result folder, or --compare OLD NEW")
    md, page = build_report(folder)
    print(f"report: {md}\n        {page.resolve()}")
    return 0
