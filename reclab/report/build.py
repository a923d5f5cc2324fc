"""`reclab report DIR`: DIR/report.md (static plots in DIR/plots/) and DIR/index.html (interactive
charts, their JavaScript inside: no network at view time), rendered from what analysis found in
DIR/results.jsonl. The answer first: the talk's claims vs this run with how far to trust it, a forest
plot of every factor with what limited the run, then one brief table per factor (all columns a click
away), the distributions, the load as offered, reads and writes apart (a stream with writes), the
database's work per request, the cost by history size, network delay, every variant, flamegraphs;
then the caveats, the A/A calibration, the method, the environment and the warnings. The fault and overload
matrices judge behaviour, not cost: their reports are their own sections, the environment and warnings.

A set that counted instructions shows them beside CPU time in the tables, then where the verdicts on the
two disagree and what instructions leave out after the factor tables, and how they were counted before
the caveats; a set that only counted them shows what it has and says what it did not measure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reclab.analysis.findings import Findings, analyse
from reclab.analysis.flags import warnings
from reclab.analysis.stats import Interval
from reclab.analysis.summary import Metric, VariantSummary
from reclab.analysis.traffic import traffic_rows
from reclab.analysis.verdicts import MARGIN
from reclab.report import charts, plots, sections
from reclab.report.capacity import capacity_sections
from reclab.report.document import Chart, Section, to_html, to_markdown
from reclab.report.faults import faults_section
from reclab.report.overload import overload_sections
from reclab.report.shards import shards_section
from reclab.report.target import target_sections
from reclab.report.traffic import traffic_section
from reclab.report.workload import database_section, history_section, offered_section
from reclab.results.config import key_slug
from reclab.results.file import read_folder
from servers.core.history import BUCKETS


def flamegraph_links(folder: Path, key: str) -> list[tuple[str, str]]:
    """The flamegraphs of one variant (`reclab flamegraph`), as (relative path, label)."""
    found = []
    for suffix, label in ((".svg", "flamegraph (SVG)"), (".speedscope.json", "speedscope profile")):
        path = folder / "flamegraphs" / f"{key_slug(key)}{suffix}"
        if path.exists():
            found.append((f"flamegraphs/{path.name}", f"{key}: {label}"))
    return found


def difference_links(folder: Path) -> list[tuple[str, str]]:
    """The differential flamegraphs of `reclab flamegraph --diff` in the folder."""
    out = []
    for path in sorted((folder / "flamegraphs").glob("*__vs__*.diff*.svg")):
        a, _, b = path.name.split(".diff")[0].partition("__vs__")
        what = "A's shape, red where A spends more" if ".diff-reverse" in path.name else "B's shape, red where B spends more"
        out.append((f"flamegraphs/{path.name}", f"differential flamegraph, A = {a}, B = {b} ({what})"))
    return out


def _stage_ms(summary: VariantSummary, phase: str, stage: str) -> float:
    return summary.phase_median(phase, lambda p: getattr(p.server_timing_ms, stage)) or 0.0


def draw_plots(f: Findings, folder: Path) -> list[Chart]:
    """The PNGs of report.md in folder/plots, and the page's interactive charts of the same numbers
    (the forest plot first, then the distributions)."""
    (folder / "plots").mkdir(exist_ok=True)
    measured = {k: s for k, s in f.summaries.items() if s.runs}
    m = f.metrics
    out = []
    if rows := sections.forest_rows(f):
        what = f"{f.primary.name}, each variant / the baseline (mean and 95% interval over repeats)"
        cells = [(f"{r.group}: {r.label}", r.ratio, r.verdict) for r in rows]
        plots.forest(cells, f.margin, what, folder / "plots" / "forest.png")
        out.append(charts.forest(rows, f.margin, f.primary.name, "plots/forest.png"))
    capacity = {k: i for k, s in measured.items() if m.capacity and (i := s.interval(m.capacity)) is not None}
    cpu = {k: i for k, s in measured.items() if (i := s.interval(m.cost)) is not None}
    if cpu:
        plots.interval_bars(cpu, f"{m.cost.name} (ms): mean and 95% interval over repeats", folder / "plots" / "server_cpu.png")
        values = {k: measured[k].values(m.cost) for k in cpu}
        out.append(charts.distributions(values, cpu, f"{m.cost.name} (ms)", "server_cpu", "plots/server_cpu.png"))
    if m.instructions is not None:
        out += draw_instructions(measured, m.instructions, folder)
    if capacity and m.capacity:
        plots.interval_bars(
            capacity, "capacity (req/s), closed loop: mean and 95% interval over repeats", folder / "plots" / "capacity.png"
        )
        values = {k: measured[k].values(m.capacity) for k in capacity}
        out.append(charts.distributions(values, capacity, "capacity (req/s), closed loop", "capacity", "plots/capacity.png"))
    if not f.instructions_only:  # nothing timed: no latency, no Server-Timing
        latency_phase = m.p50.phase if m.p50 else f.bench.load.phases[-1].name
        curves = {k: s.latency_curve(latency_phase) for k, s in measured.items()}
        plots.latency_curves(curves, folder / "plots" / "latency.png")
        out.append(charts.latency_curves(curves, "plots/latency.png"))
        stages = {k: {stage: _stage_ms(s, m.cost.phase, stage) for stage in ("db", "cache", "app")} for k, s in measured.items()}
        plots.server_timing(stages, folder / "plots" / "server_timing.png")  # from the cost phase
    if f.network:
        points: dict[str, list[tuple[float, float]]] = {}
        for r in f.network:
            if r.p50_ms is not None:
                points.setdefault(r.strategy, []).append((r.delay_ms, r.p50_ms))
        plots.network(points, folder / "plots" / "network.png")
    if f.history:
        shown = [label for label in BUCKETS if any(r.history == label for rows in f.history.values() for r in rows)]
        series = {
            k: [(r.history, r.app_ms, r.db_ms) for r in rows] for k, rows in f.history.items() if f.summaries[k].role != "aa"
        }
        plots.history_cost(series, shown, folder / "plots" / "history.png")
    return out


def draw_instructions(measured: dict[str, VariantSummary], metric: Metric, folder: Path) -> list[Chart]:
    """Instructions per request per variant, in millions: the PNG and the page's chart of every repeat."""
    intervals = {k: i for k, s in measured.items() if (i := s.interval(metric)) is not None}
    if not intervals:
        return []
    what = f"{metric.name} (millions)"
    millions = {
        k: Interval(i.value / 1e6, *(None if x is None else x / 1e6 for x in (i.low, i.high))) for k, i in intervals.items()
    }
    plots.interval_bars(millions, f"{what}: mean and 95% interval over repeats", folder / "plots" / "instructions.png")
    values = {k: [v / 1e6 for v in measured[k].values(metric)] for k in intervals}
    return [charts.distributions(values, millions, what, "instructions", "plots/instructions.png")]


def report_sections(f: Findings, folder: Path, drawn: list[Chart] | None = None) -> list[Section]:
    drawn = drawn or []
    if f.bench.matrix == "faults":  # it judges survival, not cost: no verdicts
        shown = [sections.distributions(drawn)] if drawn else []
        return [faults_section(f), *shown, sections.environment(f), sections.all_variants(f), sections.warnings(f)]
    if f.bench.matrix == "overload":  # saturation is its point: only the runs' flags and failures are warned about
        return [*overload_sections(f.records, folder), sections.environment(f),
                sections.warnings(replace(f, warnings=warnings(f.records)))]  # fmt: skip
    forest = [c for c in drawn if c.name == "forest"]
    out = [sections.answer(f), sections.glance(f, forest[0] if forest else None)]
    out += [sections.factor_section(f, factor) for factor in f.factors]
    if ranking := sections.framework_ranking(f):
        out.append(ranking)
    out += [s for s in (sections.disagreements(f), sections.leave_out(f)) if s is not None]
    if others := [c for c in drawn if c.name != "forest"]:
        out.append(sections.distributions(others))
    reads_writes = traffic_section(traffic_rows(f.summaries, [p.name for p in f.bench.load.phases]))
    out += [s for s in (offered_section(f), reads_writes, database_section(f), history_section(f)) if s is not None]
    network = sections.network(f)
    if network:
        out.append(network)
    if shards := shards_section(f.records, folder, f.bench.partition):
        out.append(shards)
    out.append(sections.all_variants(f))
    links = [link for key in f.summaries for link in flamegraph_links(folder, key)] + difference_links(folder)
    if links:
        out.append(Section("Flamegraphs", ["Profiles of the server taken by `reclab flamegraph` in this result set."],
                           links=links, anchor="flamegraphs"))  # fmt: skip
    if counted := sections.counted_how(f):
        out.append(counted)
    if banner := sections.banner(f):
        out.append(Section("Caveats", banner, anchor="caveats"))
    if calibration := sections.calibration(f):
        out.append(calibration)
    method, environment = sections.method(f), sections.environment(f)
    method.folded = environment.folded = True
    out += [method, environment, sections.warnings(f)]
    return out


def build_report(folder: Path, margin: float = MARGIN) -> tuple[Path, Path]:
    records = read_folder(folder)
    title = f"reclab report — {folder.resolve().name}"
    md, page = folder / "report.md", folder / "index.html"
    if records[0].bench.target:  # a server the lab did not start: no variants to compare
        content = target_sections(records)
    elif records[0].bench.matrix != "overload" and any(r.kind in ("capacity", "capacity_step") for r in records):
        content = capacity_sections(records, folder)
    else:
        f = analyse(records, margin)
        drawn = draw_plots(f, folder) if f.bench.matrix != "overload" else []  # its own plots come with its section
        content = report_sections(f, folder, drawn)
    md.write_text(to_markdown(title, content))
    head = charts.page_resources() if any(s.charts for s in content) else ""
    page.write_text(to_html(title, content, head))
    return md, page
