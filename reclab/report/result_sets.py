"""Result sets side by side. `reclab report --index DIR`: one page (DIR/index.html and DIR/index.md)
listing every result set below DIR, newest first: when it started, commit, matrix, quick or full,
repeats, the A/A calibration, its verdicts counted (or its own summary: faults, overload, capacity,
target), failed runs, and links to its report and to its comparisons. Analysis only: no plot is drawn,
no set is written into, and a set that cannot be read or analysed is listed with its error.

`reclab report --compare OLD NEW` also writes its page here: NEW/comparisons/vs-<OLD>.html and .md
(both sets' identities, the verdict, the change table), and a .json beside them that the index reads.
"""

from __future__ import annotations

import os
import re
import shlex
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from reclab.analysis.compare import Change, Outcome, needs, needs_text, regressed_and_undecided
from reclab.analysis.findings import analyse
from reclab.analysis.overload import overload_findings
from reclab.analysis.verdicts import MARGIN, Kind, Verdict
from reclab.errors import LabError, UsageError
from reclab.report.document import Cell, Link, Section, Table, to_html, to_markdown
from reclab.results.faults import LOST_WRITES_FLAG
from reclab.results.file import RESULTS_NAME, read_folder
from reclab.results.record import RunRecord, excerpt

INDEX_HTML, INDEX_MD = "index.html", "index.md"
REPORT_PAGE = "index.html"  # what `reclab report DIR` writes into a set (beside report.md)
COMPARISONS = "comparisons"  # NEW's folder of `--compare` pages
VERDICT_ORDER = tuple(kind.value for kind in Kind)
MEASURED_KINDS = ("run", "target", "capacity")  # records that make a repeat (not warm-ups, ceilings, capacity steps)
SET_HEADERS = ["started (UTC)", "folder", "commit", "matrix", "run", "repeats", "A/A", "verdicts", "failed runs", "report"]
IDENTITY_HEADERS = ["", "folder", "started (UTC)", "commit", "matrix", "run", "repeats"]


@dataclass
class Identity:
    """What a result set is, from its records alone."""

    started: float | None  # the first run's start (unix seconds); None: not recorded
    commit: str
    matrix: str  # the bench's matrix; `capacity` / `target` for those result sets
    kind: str  # bench | faults | overload | capacity | target: how `reclab report` builds its report
    run: str  # quick | full
    repeats: str  # measured, and "of N" planned when fewer


@dataclass
class SetSummary:
    """One row of the index."""

    folder: Path  # as found below the index's folder
    path: str  # relative to the index's folder
    sort_time: float  # the start, else the results file's time
    identity: Identity | None = None
    aa: str = "–"
    verdicts: str = "–"
    failed: int | None = None
    error: str = ""  # why it could not be read or analysed (empty: it was)
    aliases: list[str] = field(default_factory=list)  # symbolic links naming it (reports/latest)
    report: str | None = None  # its report page, relative to the index's folder (None: not built yet)
    report_stale: bool = False  # the report is older than the results
    comparisons: list[tuple[str, str]] = field(default_factory=list)  # (relative path, label)


# -- identity ---------------------------------------------------------------------------------------


def kind_of(records: list[RunRecord]) -> str:
    """The kind of report `reclab report` builds for these records (as `report.build.build_report` dispatches)."""
    bench = records[0].bench
    if bench.target:
        return "target"
    if bench.matrix != "overload" and any(r.kind in ("capacity", "capacity_step") for r in records):
        return "capacity"
    return bench.matrix if bench.matrix in ("faults", "overload") else "bench"


def short_commit(commit: str) -> str:
    """A git commit shortened to 10 hex digits (and `-dirty` kept); anything else as it is, cut."""
    head = commit.removesuffix("-dirty")
    if re.fullmatch(r"[0-9a-f]{40}", head):
        return head[:10] + commit[len(head) :]
    return excerpt(commit, 60)


def when(started: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)) if started else "–"


def identity(records: list[RunRecord]) -> Identity:
    bench = records[0].bench
    kind = kind_of(records)
    matrix = {"target": "target", "capacity": "capacity" if bench.matrix == "capacity" else f"capacity ({bench.matrix})"}
    measured = len({r.repeat for r in records if r.kind in MEASURED_KINDS and r.status == "ok"})
    return Identity(
        started=min((r.started_at for r in records if r.started_at > 0), default=None),
        commit=short_commit(bench.commit),
        matrix=matrix.get(kind, bench.matrix),
        kind=kind,
        run="quick" if bench.quick else "full",
        repeats=str(measured) if measured >= bench.repeats else f"{measured} of {bench.repeats}",
    )


# -- outcome: the A/A calibration and the verdicts, or a kind's own summary -------------------------


def counted(names: list[str]) -> str:
    """Verdicts counted, in the usual order: `3 slower, 1 equivalent`."""
    counts = Counter(names)
    order = [n for n in VERDICT_ORDER if n in counts] + sorted(n for n in counts if n not in VERDICT_ORDER)
    return ", ".join(f"{counts[n]} {n}" for n in order)


def verdict_name(verdict: Verdict) -> str:
    """A verdict as it is counted: by its kind (`equivalent within ±10%` is `equivalent`, `not judged: why` is
    `not judged`), but an inconclusive one with its reason (`inconclusive (fewer than 2 repeats)`)."""
    return verdict.text if verdict.kind is Kind.INCONCLUSIVE else verdict.kind.value


def outcome(records: list[RunRecord], kind: str, margin: float) -> tuple[str, str]:
    """(A/A status, verdicts or the kind's own summary) of a result set."""
    if kind == "target":
        runs = [r for r in records if r.kind == "target"]
        return "none", f"target: {sum(r.ok for r in runs)} of {len(runs)} repeats measured"
    if kind == "capacity":
        return "none", _capacity_summary(records)
    if kind == "faults":
        return "none", _faults_summary(records)
    if kind == "overload":
        cells = overload_findings(records).cells
        return "none", counted([verdict_name(c.verdict) for c in cells]) if cells else "no overload run finished"
    f = analyse(records, margin)
    aa = "none" if f.aa is None else "equivalent" if f.reliable else f"unreliable ({f.aa.verdict})"
    verdicts = [verdict_name(row.verdict.verdict) for row in f.variants if row.verdict is not None]
    return aa, counted(verdicts) if verdicts else "no verdict"


def _capacity_summary(records: list[RunRecord]) -> str:
    results = [r.capacity for r in records if r.kind == "capacity" and r.capacity is not None]
    if not results:
        return "capacity: no search has ended"
    confirmed = sum(c.confirmed for c in results)
    baseline = [c.capacity_rps for r in records if r.kind == "capacity" and r.role == "baseline"
                and (c := r.capacity) is not None and c.capacity_rps is not None]  # fmt: skip
    text = f"capacity: {len(results)} searches ended, {confirmed} confirmed"
    return text + (f"; baseline {statistics.median(baseline):.4g}/s" if baseline else "")


def _faults_summary(records: list[RunRecord]) -> str:
    runs = [r for r in records if r.kind == "run" and r.config.fault is not None]
    faults = [r.fault for r in runs if r.fault is not None]
    lost = sum(x.lost for x in faults)
    text = f"{lost} request(s) lost" if lost else "no request lost"
    text += f" in {len(faults)} of {len(runs)} fault runs"
    writes = 0
    for r in records:
        tally = r.fault.writes if r.fault is not None else None
        writes += (tally.lost or 0) if tally is not None else int(LOST_WRITES_FLAG in r.flags)
    return text + (f"; {writes} acknowledged write(s) lost" if writes else "")


# -- the index ---------------------------------------------------------------------------------------


def find_result_sets(root: Path) -> tuple[list[Path], dict[Path, list[str]]]:
    """Every folder below `root` holding a results file (any depth; hidden folders and symbolic links
    to folders are not walked), and the symbolic links below `root` naming a folder with one (by the
    folder's resolved path: `reports/latest`). A link to a result set outside `root` is a set of its own."""
    found: list[Path] = []
    links: list[Path] = []
    for top, folders, files in os.walk(root):
        here = Path(top)
        if here != root and RESULTS_NAME in files:
            found.append(here)
        links += [here / name for name in folders if (here / name).is_symlink()]
        folders[:] = sorted(name for name in folders if not name.startswith("."))
    resolved = {folder.resolve() for folder in found}
    aliases: dict[Path, list[str]] = {}
    for link in sorted(links):
        try:
            target = link.resolve()
        except (OSError, RuntimeError):  # a loop of links
            continue
        if target in resolved:
            aliases.setdefault(target, []).append(link.relative_to(root).as_posix())
        elif (link / RESULTS_NAME).is_file():
            found.append(link)
            resolved.add(target)
    return found, aliases


def summarise_set(root: Path, folder: Path, margin: float = MARGIN) -> SetSummary:
    """One result set's row: what it is and what it found, or why that could not be said."""
    results = folder / RESULTS_NAME
    try:
        file_time = results.stat().st_mtime
    except OSError:
        file_time = 0.0
    row = SetSummary(folder=folder, path=folder.relative_to(root).as_posix(), sort_time=file_time)
    report = folder / REPORT_PAGE
    if report.is_file():
        row.report = f"{row.path}/{REPORT_PAGE}"
        row.report_stale = report.stat().st_mtime < file_time
    row.comparisons = comparison_links(folder, row.path)
    try:
        records = read_folder(folder)
    except LabError as error:
        row.error = f"not read: {error}"
        return row
    row.failed = sum(r.status == "failed" for r in records)
    try:
        row.identity = identity(records)
        row.aa, row.verdicts = outcome(records, row.identity.kind, margin)
    except Exception as error:  # one set's odd records must not abort the index of every other set
        row.error = f"not analysed: {type(error).__name__}: {error}"
    if row.identity is not None and row.identity.started:
        row.sort_time = row.identity.started
    return row


def comparison_links(folder: Path, path: str) -> list[tuple[str, str]]:
    """The pages `reclab report --compare OLD <folder>` wrote into the folder, as (relative path, label)."""
    out = []
    for page in sorted((folder / COMPARISONS).glob("vs-*.html")):
        out.append((f"{path}/{COMPARISONS}/{page.name}", f"{path}: {comparison_label(page)}"))
    return out


def comparison_label(page: Path) -> str:
    """What a comparison page found, from the .json beside it (else its file name)."""
    fallback = f"compared with {page.stem.removeprefix('vs-')}"
    try:
        data = msgspec.json.decode(page.with_suffix(".json").read_bytes())
        old, failed, variants, threshold = data["old"], data["failed"], data["variants"], data["threshold"]
        undecided = data.get("undecided", [])  # pages written before the gate had undecided variants have none
        if not (isinstance(old, str) and isinstance(failed, list) and isinstance(undecided, list)
                and isinstance(variants, int) and isinstance(threshold, float)):  # fmt: skip
            return fallback
    except (OSError, ValueError, KeyError, TypeError):
        return fallback
    if failed:
        result = f"{len(failed)} of {variants} variant(s) failed the gate"
    elif undecided:
        result = f"undecided: {len(undecided)} of {variants} variant(s) need more repeats"
    else:
        result = f"passed ({variants} variant(s))"
    return f"compared with {old}: {result} (threshold {threshold:.0%})"


def index_sections(root: Path, rows: list[SetSummary], margin: float) -> list[Section]:
    unread = [r for r in rows if r.error]
    if not rows:
        return [Section("Result sets", [f"No result set (a folder holding `{RESULTS_NAME}`) below `{root}`."])]
    intro = (
        f"{len(rows)} result set(s) below `{root}`, newest first (started: the first run's start; a set without it is "
        f"placed by its results file's time). Verdicts: each variant's server CPU per request against its set's "
        f"baseline (`slower`: more CPU per request; a set that only counted instructions: its instructions per request), "
        f"equivalence margin ±{margin:.0%}; a quick set's verdicts are "
        "indicative, and a set whose A/A calibration is not `equivalent` is unreliable. The fault, overload, capacity "
        "and target sets judge other things: their own summary stands in the verdicts column."
    )
    paragraphs = [intro]
    if unread:
        paragraphs.append(
            f"**{len(unread)} result set(s) could not be read or analysed**: their error is in the verdicts column."
        )
    table = Table(SET_HEADERS, [_row_cells(root, r) for r in rows])
    links = [link for r in rows for link in r.comparisons]
    if links:
        paragraphs.append("Comparisons (`reclab report --compare OLD NEW`, written into NEW):")
    return [Section("Result sets", paragraphs, [table], links=links)]


def _row_cells(root: Path, r: SetSummary) -> list[Cell]:
    folder = r.path + (f" ({', '.join(r.aliases)})" if r.aliases else "")
    report: Cell = f"none: run `reclab report {shlex.quote(str(root / r.path))}`"
    if r.report:
        report = Link("report" + (" (older than its results: rebuild it)" if r.report_stale else ""), r.report)
    i = r.identity
    if i is None:
        return [when(None), folder, "–", "–", "–", "–", "–", r.error, "–" if r.failed is None else str(r.failed), report]
    verdicts = r.error or r.verdicts
    return [when(i.started), folder, i.commit, i.matrix, i.run, i.repeats, r.aa, verdicts, str(r.failed), report]


def build_index(root: Path, margin: float = MARGIN) -> tuple[Path, Path, list[SetSummary]]:
    """ROOT/index.md and ROOT/index.html listing every result set below ROOT (see the module's docstring)."""
    if not root.is_dir():
        raise UsageError(f"--index {root}: no such folder")
    if (root / RESULTS_NAME).exists():
        raise UsageError(
            f"--index {root}: this folder is a result set, and its {REPORT_PAGE} is its report (`reclab report {root}`); "
            "index the folder above it"
        )
    folders, aliases = find_result_sets(root)
    rows = [summarise_set(root, folder, margin) for folder in folders]
    for r in rows:
        r.aliases = aliases.get(r.folder.resolve(), []) if not r.folder.is_symlink() else []
    rows.sort(key=lambda r: (-r.sort_time, r.path))
    title = f"reclab result sets — {root.resolve().name}"
    content = index_sections(root, rows, margin)
    md, page = root / INDEX_MD, root / INDEX_HTML
    md.write_text(to_markdown(title, content))
    page.write_text(to_html(title, content))
    return md, page, rows


# -- one comparison ----------------------------------------------------------------------------------


def change_table(changes: list[Change], threshold: float) -> Table:
    """One row per comparison: the ratios, the change, which measure it is and its outcome."""
    headers = ["variant", "metric", "measure", "old / baseline", "new / baseline", "change [95% CI]",
               f"outcome (threshold {threshold:.0%})"]  # fmt: skip
    rows = [
        [c.key, c.metric.name, "primary" if c.primary else "secondary", c.old.text(3) if c.old else "–",
         c.new.text(3) if c.new else "–", c.change.text(3) if c.change else "–", outcome_text(c)]
        for c in changes
    ]  # fmt: skip
    return Table(headers, rows)


def outcome_text(change: Change) -> str:
    """`ok`, `undecided (needs 7 repeats): why` or `regression — FAILED: why`."""
    if change.outcome is Outcome.REGRESSION:
        return f"regression — FAILED: {change.why}"
    shown = change.outcome.value
    if change.outcome is Outcome.UNDECIDED and change.needs is not None:
        shown += f" ({needs_text(change.needs)})"
    return f"{shown}: {change.why}" if change.why else shown


def comparison_name(old_folder: Path) -> str:
    """The file name (without suffix) of NEW's page comparing it with OLD: vs-<OLD's folder name>."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", old_folder.resolve().name).lstrip(".")
    return f"vs-{name or 'old'}"


def _shown_folder(folder: Path) -> str:
    """A folder as given, and the folder it names when it is a link (reports/latest)."""
    real = folder.resolve().name
    return str(folder) + (f" ({real})" if real != folder.name else "")


def gate_verdict(changes: list[Change], threshold: float) -> str:
    """The comparison's verdict in one paragraph: failed, undecided or passed."""
    failed, undecided = regressed_and_undecided(changes)
    variants = len({c.key for c in changes})
    pending = ", ".join(f"`{key}` ({needs_text(needs(changes, key))})" for key in undecided)
    if failed:
        more = f" Undecided: {pending}." if undecided else ""
        return f"**Failed**: {len(failed)} of {variants} variant(s) failed the gate: {', '.join(f'`{k}`' for k in failed)}.{more}"
    if undecided:
        return (f"**Undecided**: {len(undecided)} of {variants} variant(s) could not be decided at this many repeats: "
                f"{pending}. None regressed.")  # fmt: skip
    return f"**Passed**: no regression beyond {threshold:.0%} in {variants} variant(s)."


def _method(changes: list[Change], threshold: float) -> list[str]:
    """How the gate judged: its outcomes, and which measure was primary."""
    outcomes_text = (
        "Each variant's ratio to its own set's baseline (both labels), OLD against NEW, which cancels drift of the machine "
        f"between the sets. A comparison is a `regression` when that ratio got worse by more than {threshold:.0%} with "
        "significance (one-sided Welch test, Holm across every comparison), or when the variant is missing or failed in "
        f"NEW; `ok` when its 95% interval does not reach past {threshold:.0%} worse; else `undecided`, with the repeats "
        "per set that would decide it at the same change and spreads (Holm aside), and so is a variant with fewer than "
        "3 good repeats in either set. A variant's outcome is the worst of its comparisons."
    )
    primary = sorted({c.metric.name for c in changes if c.primary})
    secondary = sorted({c.metric.name for c in changes if not c.primary})
    if not secondary:
        return [outcomes_text, f"Primary measures: {', '.join(primary)}."]
    return [
        outcomes_text,
        f"Primary measure: {', '.join(primary)} (counted in both sets; its spread is a fraction of a percent). "
        f"Secondary: {', '.join(secondary)}: a secondary comparison still fails as a regression, and is undecided when "
        "its whole 95% interval lies past the threshold without Holm confirming it (a change the instructions do not "
        "show); a secondary interval that is merely wide leaves the variant to its instructions.",
    ]


def comparison_sections(
    folders: tuple[Path, Path],
    records: tuple[list[RunRecord], list[RunRecord]],
    changes: list[Change],
    threshold: float,
    note: str | None,
    here: Path,
) -> list[Section]:
    """The page of one comparison, its links relative to `here` (the folder it is written into)."""
    paragraphs = [gate_verdict(changes, threshold), *_method(changes, threshold)]
    rows, links = [], []
    for role, folder, found in zip(("OLD", "NEW"), folders, records, strict=True):
        i = identity(found)
        rows.append([role, _shown_folder(folder), when(i.started), i.commit, i.matrix, i.run, i.repeats])
        report = folder / REPORT_PAGE
        if report.is_file():
            links.append((Path(os.path.relpath(report.resolve(), here.resolve())).as_posix(), f"{role} {folder}: report"))
    return [
        Section("Verdict", [*paragraphs, *([note] if note else [])]),
        Section("Result sets", tables=[Table(IDENTITY_HEADERS, rows)], links=links),
        Section("Changes", tables=[change_table(changes, threshold)]),
    ]


def write_comparison(
    old_folder: Path,
    new_folder: Path,
    records: tuple[list[RunRecord], list[RunRecord]],
    changes: list[Change],
    threshold: float,
    note: str | None,
) -> Path:
    """NEW/comparisons/vs-<OLD>.html, .md and .json (what the index says of it); returns the page."""
    here = new_folder / COMPARISONS
    here.mkdir(exist_ok=True)
    name = comparison_name(old_folder)
    title = f"reclab comparison — {new_folder.resolve().name} against {old_folder.resolve().name}"
    content = comparison_sections((old_folder, new_folder), records, changes, threshold, note, here)
    failed, undecided = regressed_and_undecided(changes)
    summary: dict[str, Any] = {
        "old": old_folder.resolve().name,
        "old_path": str(old_folder.resolve()),
        "new": new_folder.resolve().name,
        "threshold": float(threshold),
        "variants": len({c.key for c in changes}),
        "failed": failed,
        "undecided": undecided,
        "written": time.time(),
    }
    (here / f"{name}.md").write_text(to_markdown(title, content))
    (here / f"{name}.json").write_bytes(msgspec.json.format(msgspec.json.encode(summary), indent=1) + b"\n")
    page = here / f"{name}.html"
    page.write_text(to_html(title, content))
    return page
