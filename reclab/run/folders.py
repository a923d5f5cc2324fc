"""The result folder of a bench or a capacity search: created with its parents, and named by
reports/latest when it is one of reports/ (for `reclab report` and flamegraphs)."""

from __future__ import annotations

from pathlib import Path

from reclab import REPORTS
from reclab.errors import UsageError


def result_folder(out: Path) -> None:
    """Create the result folder (and its parents); a UsageError if it cannot be."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create the result folder ({error.strerror or error})") from None


def point_latest_at(out: Path) -> None:
    """reports/latest names the newest result folder in reports/ (a bench's or a capacity search's)."""
    if out.resolve().parent != REPORTS.resolve():
        return
    latest = REPORTS / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(out.resolve().name)
