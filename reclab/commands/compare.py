"""`reclab report --compare OLD NEW`: the regression gate; exit 1 when a variant regressed, is missing
or failed in NEW, or cannot be judged; exit 2 for sets that are not like for like. Prints the change
table, and writes it as a page into NEW: NEW/comparisons/vs-<OLD>.html and .md (`--index` links them)."""

from __future__ import annotations

import sys
from pathlib import Path

from reclab.analysis.compare import baseline_note, compare
from reclab.report.document import table_markdown
from reclab.report.result_sets import change_table, write_comparison
from reclab.results.file import read_folder


def compare_sets(old_folder: Path, new_folder: Path, threshold: float) -> int:
    old, new = read_folder(old_folder), read_folder(new_folder)
    changes = compare(old, new, threshold)
    print("\n".join(table_markdown(change_table(changes, threshold))))
    note = baseline_note(old, new)
    if note:
        print(note)
    try:
        page = write_comparison(old_folder, new_folder, (old, new), changes, threshold, note)
        print(f"comparison: {page.resolve()}  (and {page.with_suffix('.md').name} beside it)")
    except OSError as error:  # the gate's verdict stands without its page
        print(f"reclab: warning: the comparison page was not written into {new_folder}: {error}", file=sys.stderr)
    failed = sorted({c.key for c in changes if c.regressed})
    if failed:
        print(f"{len(failed)} variant(s) failed the gate: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"no regression beyond {threshold:.0%} in {len({c.key for c in changes})} variant(s)")
    return 0
