"""`reclab report --compare OLD NEW`: the regression gate; exit 1 when a variant regressed, is missing
or failed in NEW, or cannot be judged; exit 2 for sets that are not like for like."""

from __future__ import annotations

import sys
from pathlib import Path

from reclab.analysis.compare import Change, baseline_note, compare
from reclab.report.document import Table, table_markdown
from reclab.results.file import read_folder


def change_table(changes: list[Change], threshold: float) -> Table:
    headers = ["variant", "metric", "old / baseline", "new / baseline", "change [95% CI]", f"verdict (threshold {threshold:.0%})"]
    rows = [
        [c.key, c.metric.name, c.old.text(3) if c.old else "–", c.new.text(3) if c.new else "–",
         c.change.text(3) if c.change else "–", f"FAILED: {c.why}" if c.regressed else "ok"]
        for c in changes
    ]  # fmt: skip
    return Table(headers, rows)


def compare_sets(old_folder: Path, new_folder: Path, threshold: float) -> int:
    old, new = read_folder(old_folder), read_folder(new_folder)
    changes = compare(old, new, threshold)
    print("\n".join(table_markdown(change_table(changes, threshold))))
    note = baseline_note(old, new)
    if note:
        print(note)
    failed = sorted({c.key for c in changes if c.regressed})
    if failed:
        print(f"{len(failed)} variant(s) failed the gate: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"no regression beyond {threshold:.0%} in {len({c.key for c in changes})} variant(s)")
    return 0
