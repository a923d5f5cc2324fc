"""`reclab report --compare OLD NEW`: per-variant changes between two result sets; exit 1 on a regression."""

from __future__ import annotations

import sys
from pathlib import Path

from reclab.analysis.compare import Change, comparability_notes, compare, speed_note
from reclab.report.document import Table, table_markdown
from reclab.results.file import read_folder


def change_table(changes: list[Change], threshold: float) -> Table:
    headers = ["variant", "throughput new/old [95% CI]", "p99 new/old [95% CI]", f"verdict (threshold {threshold:.0%})"]
    rows = [
        [c.key, c.throughput.text(3) if c.throughput else "–", c.p99.text(3) if c.p99 else "–",
         f"REGRESSED: {c.why}" if c.regressed else "ok"]
        for c in changes
    ]  # fmt: skip
    return Table(headers, rows)


def compare_sets(old_folder: Path, new_folder: Path, threshold: float) -> int:
    old, new = read_folder(old_folder), read_folder(new_folder)
    changes = compare(old, new, threshold)
    print("\n".join(table_markdown(change_table(changes, threshold))))
    for note in [*comparability_notes(old, new), speed_note(old, new)]:
        if note:
            print(note)
    regressed = [c.key for c in changes if c.regressed]
    if regressed:
        print(f"{len(regressed)} variant(s) regressed: {', '.join(regressed)}", file=sys.stderr)
        return 1
    return 0
