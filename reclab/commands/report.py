"""`reclab report DIR`: write DIR/report.md and DIR/index.html; with --index, DIR/index.html and DIR/index.md
listing every result set below DIR; with --compare OLD NEW, the regression gate (`reclab.analysis.compare`):
exit 0 when every variant is ok (shown not to have got worse by more than the threshold), 1 when a variant
regressed, is missing or failed in NEW, 3 when none did but at least one is undecided (its data do not tell
at this many repeats: the repeats it would need are printed), 2 for sets that are not like for like. The
gate prints the change table, and writes it as a page into NEW: NEW/comparisons/vs-<OLD>.html and .md
(`--index` links them)."""

from __future__ import annotations

import sys
from pathlib import Path

from reclab.analysis.compare import Change, baseline_note, compare, needs, needs_text, regressed_and_undecided
from reclab.analysis.verdicts import MARGIN
from reclab.errors import UsageError
from reclab.report.build import build_report
from reclab.report.document import table_markdown
from reclab.report.result_sets import build_index, change_table, write_comparison
from reclab.results.file import read_folder


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


def compare_sets(old_folder: Path, new_folder: Path, threshold: float) -> int:
    """The regression gate: the change table, the baseline's drift, the page written into NEW, the exit code."""
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
    return gate_exit(changes, threshold)


def gate_exit(changes: list[Change], threshold: float) -> int:
    """The gate's closing lines and exit code: 1 when a variant regressed (or is missing or failed in
    NEW), else 3 when one is undecided, else 0."""
    failed, undecided = regressed_and_undecided(changes)
    if failed:
        print(f"{len(failed)} variant(s) failed the gate: {', '.join(failed)}", file=sys.stderr)
    if undecided:
        which = ", ".join(f"{key} ({needs_text(needs(changes, key))})" for key in undecided)
        print(f"undecided: {len(undecided)} variant(s) could not be decided at this many repeats: {which}", file=sys.stderr)
    if failed:
        return 1
    if undecided:
        return 3
    print(f"ok: no regression beyond {threshold:.0%} in {len({c.key for c in changes})} variant(s), each shown within it")
    return 0
