"""`reclab report DIR`: write DIR/report.md and DIR/index.html; with --compare, the regression gate."""

from __future__ import annotations

from pathlib import Path

from reclab.analysis.verdicts import MARGIN
from reclab.commands.compare import compare_sets
from reclab.errors import UsageError
from reclab.report.build import build_report


def report(
    *, folder: Path | None = None, compare: list[Path] | None = None, threshold: float = 0.05, margin: float = MARGIN
) -> int:
    if compare:
        if not 0 < threshold < 1:
            raise UsageError(f"--threshold {threshold:g}: must be between 0 and 1 (0.05 is 5%)")
        return compare_sets(compare[0], compare[1], threshold)
    if folder is None:
        raise UsageError("reclab report: give a result folder, or --compare OLD NEW")
    if not 0 < margin < 1:
        raise UsageError(f"--margin {margin:g}: must be between 0 and 1 (0.05 is ±5%)")
    md, page = build_report(folder, margin)
    print(f"report: {md}\n        {page.resolve()}")
    return 0
