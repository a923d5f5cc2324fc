"""`reclab flamediff A.folded B.folded`: a differential flamegraph of two recordings already made
(for instance one per commit, each with `reclab flamegraph --diff` or py-spy's raw format)."""

from __future__ import annotations

from pathlib import Path

from reclab.errors import UsageError
from reclab.report.flamediff import write_diff


def flamediff(*, before: Path, after: Path, out: Path | None = None) -> int:
    for path in (before, after):
        if not path.is_file():
            raise UsageError(f"{path}: no such folded-stacks file")
    target = out or after.with_name(f"{before.stem}__vs__{after.stem}")
    try:
        written = write_diff(before, after, before.stem, after.stem, target)
    except ValueError as error:
        raise UsageError(str(error)) from None
    for path in written:
        print(path)
    return 0
