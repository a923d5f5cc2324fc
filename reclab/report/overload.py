"""The overload section of a report (`reclab bench --matrix overload`): where the capacity came from,
goodput against offered load for each admission control (chart and table, with a verdict per mode and
multiple), the tail latencies of the 2xx and of the shed answers, what admission control costs below
capacity, and with clients that retry, how many attempts each arrival took. Numbers from
`reclab.analysis.overload`."""

from __future__ import annotations

from pathlib import Path

from reclab.analysis.overload import (
    COLLAPSE_SHARE,
    COST_MARGIN,
    HOLD_SHARE,
    OVERLOAD_FROM,
    QUICK_HOLD_SHARE,
    SHED_P99_MS,
    AdmissionCost,
    Capacity,
    Cell,
    OverloadFindings,
    overload_findings,
)
from reclab.analysis.verdicts import Kind
from reclab.report import charts, plots
from reclab.report.document import Cell as TableCell
from reclab.report.document import Chart, Section, Table
from reclab.report.sections import limited_by, num, ratio
from reclab.results.record import RunRecord, excerpt

MOST_REPEATS_SHOWN = 100  # repeats needed to decide, beyond which the figure is only "over" it
GOODPUT_PLOT = "plots/overload-goodput.png"
TAILS_PLOT = "plots/overload-tails.png"
GOODPUT_CAPTION = (
    "Goodput against offered load per admission control (mean, 95% interval over repeats, cut at the top of the chart: "
    "the table has them whole); dashed: the ideal, min(offered, capacity)"
)
TAILS_CAPTION = (
    "p99 of the 2xx answers (from their due moment) and of the shed answers (from their sending) against the "
    "offered multiple (median over repeats)"
)
HEADERS = [
    "admission", "offered", "offered req/s", "goodput req/s [95% CI]", "goodput / capacity", "shed share",
    "p99 2xx ms", "p99 shed ms (from due / sent)", "errors other than shed", "server CPU ms/req", "limited by", "verdict", "why",
]  # fmt: skip


def overload_sections(records: list[RunRecord], folder: Path) -> list[Section]:
    """The overload section, clients' retries (when they retried), and the capacity search's steps."""
    found = overload_findings(records)
    section = Section("Overload: goodput against offered load", [_capacity_text(found.capacity, records)])
    if found.cells:
        section.paragraphs += [*_method(found, records), _verdicts(found), *_costs(found)]
        section.tables.append(Table(HEADERS, [_row(c) for c in found.cells]))
        images, drawn = _plots(found, folder)
        section.images += images
        section.charts += drawn
    else:
        section.paragraphs.append("No overload run finished: nothing to judge.")
    out = [section]
    if found.retry_shed and found.cells:
        out.append(_retries(found))
    if steps := _search(records):
        out.append(steps)
    return out


def _capacity_text(capacity: Capacity | None, records: list[RunRecord]) -> str:
    if capacity is None:
        failed = next((r for r in records if r.kind == "capacity" and r.status != "ok"), None)
        why = f" ({excerpt(failed.error or '')})" if failed else ""
        return f"**No capacity**: the search found no rate meeting the objective{why}, so no overload run was made."
    if not capacity.searched:
        return f"Capacity: **{capacity.rps:g} req/s**, given with `--capacity-rps` (not searched)."
    return (
        f"Capacity: **{capacity.rps:.1f} req/s**, searched at the start of the bench on `{capacity.key}` (admission "
        f"none): the highest open-loop rate whose p99 stayed within {capacity.objective_ms:g} ms, in {capacity.steps} "
        f"short window(s) ({'confirmed' if capacity.confirmed else 'unconfirmed'}; above it, limited by "
        f"{capacity.limited_by}{', so the server’s own capacity is higher' if capacity.at_least else ''}; steps below)."
    )


def _method(found: OverloadFindings, records: list[RunRecord]) -> list[str]:
    hold = QUICK_HOLD_SHARE if found.quick else HOLD_SHARE
    runs = [r for r in records if r.kind == "run"]
    phases = runs[0].bench.load.phases if runs else ()
    warmup, users = (runs[0].bench.load.warmup_requests, runs[0].bench.load.users) if runs else (0, 0)
    shape = ", ".join(f"`{p.name}` {p.rate:g}/s" for p in phases)
    seconds = f"{phases[0].duration_s:g} s each, then {phases[0].drain_s:g} s to drain" if phases else ""
    repeats = len({r.repeat for r in runs if r.ok})
    paragraphs = [
        "Each run is a fresh server of the baseline with one admission control (`none`, `fixed`, `adaptive`), a "
        f"warm-up of {warmup} requests (as the search's server had; {users} in flight), then open-loop phases at "
        f"multiples of the capacity ({shape}; {seconds}, so that a backlog is over before the next phase), "
        f"{repeats} repeat(s) in an order drawn afresh per repeat. **Goodput**: 2xx answers within "
        f"{found.objective_ms:g} ms of their due moment, per second of the window; a shed answer is a 503 of the "
        "server's admission control (`overloaded`, with Retry-After), counted apart from other errors.",
        f"Verdicts: at {OVERLOAD_FROM:g}x and above, `holds` when goodput is at least {hold:.0%} of the capacity, "
        f"the p99 of the 2xx answers within {found.objective_ms:g} ms and the p99 of the shed answers within "
        f"{SHED_P99_MS:g} ms from their sending (how fast the server refuses; the p99 from their due moment, beside "
        "it, adds the generator's own lag, see its late starts); "
        f"`collapses` when goodput is below {COLLAPSE_SHARE:.0%} of the capacity; otherwise "
        f"`degrades`, with the condition that failed. Below {OVERLOAD_FROM:g}x, against the offered rate: `holds` at "
        f"{hold:.0%} of it or more (`collapses` below {COLLAPSE_SHARE:.0%}). Goodput is the mean over repeats, "
        "latencies the median of the repeats' p99.",
    ]
    if found.quick:
        paragraphs.append(f"**Quick run: indicative only** (short phases, few repeats; `holds` from {hold:.0%}).")
    refused = sum(r.warmup.errors.get("shed", 0) for r in runs if r.warmup is not None)
    if refused:
        paragraphs.append(f"**Admission control refused {refused} of the warm-ups' requests**: those servers started "
                          "the phases with colder caches than the others.")  # fmt: skip
    held = sum(c.held_back for c in found.cells)
    if held:
        paragraphs.append(f"**The outstanding-requests cap held {held} arrival(s) back**: the load the server saw was "
                          "less than offered where it did (they count from their due moment).")  # fmt: skip
    return paragraphs


def _verdicts(found: OverloadFindings) -> str:
    lines = []
    for mode in found.modes:
        cells = [c for c in found.cells if c.mode == mode]
        lines.append(f"`{mode}`: " + ", ".join(f"{c.multiple:g}x **{c.verdict}**" for c in cells))
    return "In short — " + "; ".join(lines) + "."


def _row(c: Cell) -> list[TableCell]:
    errors = ", ".join(f"{kind} x{n}" for kind, n in c.other_errors.items()) or "0"
    return [
        c.mode,
        f"{c.multiple:g}x",
        num(c.offered_rps),
        ratio(c.goodput, 1),
        "–" if c.goodput_share is None else f"{c.goodput_share:.0%}",
        "–" if c.shed_share is None else f"{c.shed_share:.0%}",
        num(c.p99_ok_ms),
        f"{num(c.p99_shed_ms, 2)} / {num(c.p99_shed_sent_ms, 2)}",
        errors,
        num(c.cpu_ms, 2),
        limited_by(c.limited_by),
        c.verdict,
        "; ".join(c.why),
    ]


def _plots(found: OverloadFindings, folder: Path) -> tuple[list[tuple[str, str]], list[Chart]]:
    """The static plots, and the page's interactive goodput chart (its PNG stands for it in Markdown)."""
    (folder / "plots").mkdir(exist_ok=True)
    images: list[tuple[str, str]] = []
    drawn = []
    capacity = found.capacity
    goodput = {
        f"admission {mode}": [(c.offered_rps, c.goodput) for c in found.cells if c.mode == mode and c.offered_rps and c.goodput]
        for mode in found.modes
    }
    if capacity is not None and any(goodput.values()):
        plots.goodput_curves(goodput, capacity.rps, found.multiples, folder / GOODPUT_PLOT)
        means = {mode: [(x, i.value) for x, i in points] for mode, points in goodput.items()}
        top = max([capacity.rps * max(found.multiples, default=1.0), *(x for points in means.values() for x, _ in points)])
        ideal = [(0.0, 0.0), (capacity.rps, capacity.rps), (top, capacity.rps)]
        drawn.append(charts.curves(means, "offered load (req/s, open loop)", "goodput (req/s)", "goodput",
                                   GOODPUT_CAPTION + " (dashed: the ideal, min(offered, capacity))", reference=ideal,
                                   image=GOODPUT_PLOT))  # fmt: skip
    tails = {
        f"admission {mode}": [(c.multiple, c.p99_ok_ms, _refusal_ms(c)) for c in found.cells if c.mode == mode]
        for mode in found.modes
    }
    plots.tail_latencies(tails, found.objective_ms, SHED_P99_MS, folder / TAILS_PLOT)
    images.append((TAILS_PLOT, TAILS_CAPTION))
    return images, drawn


def _refusal_ms(cell: Cell) -> float | None:
    """How fast the server refused: the shed answers' p99 from their sending (older records: from their due moment)."""
    return cell.p99_shed_ms if cell.p99_shed_sent_ms is None else cell.p99_shed_sent_ms


def _cost_text(cost: AdmissionCost) -> str:
    text = (
        f"`{cost.mode}` vs `none` at `{cost.phase}`: server CPU per request ratio {ratio(cost.ratio, 3)} over "
        f"{cost.repeats} repeat(s): **{cost.verdict}**"
    )
    if cost.verdict.kind is Kind.INCONCLUSIVE:
        if cost.needed is not None:
            needed = f"about {cost.needed}" if cost.needed <= MOST_REPEATS_SHOWN else f"over {MOST_REPEATS_SHOWN}"
            text += f"; the interval is too wide to decide: {needed} repeats would, if the ratio and spread stay so"
        elif cost.outside:
            text += (f"; the ratio so far lies outside ±{COST_MARGIN:.0%}: if it stays there, more repeats would show a "
                     "difference, not equivalence")  # fmt: skip
    if cost.detectable is not None:
        text += f" (smallest detectable change ±{cost.detectable:.0%})"
    return text + "."


def _costs(found: OverloadFindings) -> list[str]:
    if not found.costs:
        return []
    return [
        f"**The cost of admission below capacity**: server CPU per request (at one pace) in the lowest phase, each "
        f"mode against `none`, paired by repeat, Holm across the modes; the target is `equivalent within "
        f"±{COST_MARGIN:.0%}`. " + " ".join(_cost_text(c) for c in found.costs)
    ]


def _retries(found: OverloadFindings) -> Section:
    rows = [
        [c.mode, f"{c.multiple:g}x", num(c.attempts, 2), str(c.retried_ok), ratio(c.goodput, 1)]
        for c in found.cells
        if c.attempts is not None
    ]
    return Section(
        "Overload: clients that retry",
        [
            f"The clients retried each shed request after its Retry-After, up to {found.max_retries} times "
            "(`retry_shed`): attempts per arrival sent (1 + retries / sent) is how much the retries amplified the "
            "load. Whether goodput fell with retries is read against a result set of the same bench without them."
        ],
        [Table(["admission", "offered", "attempts per arrival", "succeeded after a retry", "goodput req/s [95% CI]"], rows)],
    )


def _search(records: list[RunRecord]) -> Section | None:
    steps = sorted((r for r in records if r.kind == "capacity_step" and r.step is not None), key=lambda r: r.order)
    if not steps:
        return None
    rows = []
    for r in steps:
        assert r.step is not None
        latency = r.phases[0].latency_us if r.phases else None
        outcome = "met the objective" if r.step.passed else "broke it: " + "; ".join(r.step.broke)
        rows.append([str(r.order + 1), r.step.stage, f"{r.step.rate:g}", num(latency.p99 / 1000 if latency else None),
                     outcome, r.phases[0].bottleneck if r.phases else "–"])  # fmt: skip
    how = (
        "Each step is one open-loop window on the same server (warmed up once), at the spec's arrival process: the "
        "rate doubles until a window breaks the objective, is bisected to within 5%, then confirmed."
    )
    headers = ["step", "stage", "rate /s", "p99 ms", "outcome", "limited by"]
    return Section("Overload: the capacity search", [how], [Table(headers, rows)])
