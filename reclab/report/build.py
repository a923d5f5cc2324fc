"""`reclab report DIR`: DIR/report.md and a self-contained DIR/index.html (plots in DIR/plots/),
rendered from what analysis found in DIR/results.jsonl: environment, one section per factor with
ratios to the baseline and 95% intervals, the talk's claims, network delay, every variant, warnings."""

from __future__ import annotations

from pathlib import Path

from reclab.analysis.findings import FactorFinding, Findings, VariantRow, analyse
from reclab.report import plots
from reclab.report.document import Section, Table, to_html, to_markdown
from reclab.results.config import key_slug
from reclab.results.file import read_folder

ENGINE_NOTE = (
    "Database timings come from the engine named here. An embedded engine (mongoeco is a MongoDB "
    "wire-protocol server written in Python) is not MongoDB: its database timings are not MongoDB's, "
    "and effects that depend on the database (grouping, round trips) can differ on a real server."
)
HEADERS = [
    "variant", "req/s (mean [95% CI])", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "errors", "server CPU ms/req",
    "db ops/req", "round trips/req", "cache hit ratio", "throughput vs baseline [95% CI]", "verdict",
]  # fmt: skip


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value / 1000:.2f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row(row: VariantRow) -> list[str]:
    failed = len(row.summary.failed)
    return [
        row.label + (" (baseline)" if row.is_baseline else ""),
        row.throughput.text(1) if row.throughput else "failed",
        *[_ms(v) for v in row.latency_us.values()],
        str(row.summary.errors()) + (f" + {failed} failed runs" if failed else ""),
        _num(row.server_cpu_ms, 2),
        _num(row.db_ops),
        _num(row.round_trips),
        _num(row.cache_hit_ratio, 3),
        "1" if row.is_baseline else (row.ratio.text() if row.ratio else "–"),
        row.verdict,
    ]


def environment(f: Findings) -> Section:
    bench = f.bench
    machine, load, engines = bench.machine, bench.load, bench.engines
    paragraphs = [
        f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores, {machine.get('memory_gib')} GiB), "
        f"{machine.get('arch')}, Linux {machine.get('kernel')}. Commit `{bench.commit}`.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in bench.versions.items()) + ".",
        f"Database: **{engines.mongo}**; cache: **{engines.redis}**. {ENGINE_NOTE}",
        f"Spec `{bench.spec.path}`, dataset `{bench.dataset_hash}`, request stream `{bench.stream_hash}`. "
        f"Load: {load.mode} loop, {load.users} users"
        + (f", {load.rate} req/s {load.arrival}" if load.mode == "open" else "")
        + f", {load.processes} locust process(es), warm-up {load.warmup_s} s, measured {load.duration_s} s; "
        f"{f.repeats} repeat(s), variants interleaved.",
        "Ratios are paired by repeat (geometric mean of per-repeat ratios, 95% t interval); a verdict is "
        "given only when the interval excludes 1. Latency percentiles are medians over repeats.",
    ]
    if f.speeds:
        low, high = min(f.speeds), max(f.speeds)
        paragraphs.append(
            f"Machine speed index (a fixed pure-Python loop, taken before every run): {low:.1f} to {high:.1f} "
            f"iterations/µs ({high / low - 1:.0%} spread). Drift of the machine itself moves every variant alike; "
            "ratios within one result set are what to compare."
        )
    for ceiling in f.ceilings:
        paragraphs.append(
            f"Generator ceiling: {ceiling.throughput_rps:.0f} req/s against Sanic's `/health` "
            f"({load.processes} locust process(es) at {ceiling.generator_cpu_share:.0%} CPU)."
        )
    return Section("Environment", paragraphs)


def factor_section(f: Findings, factor: FactorFinding) -> Section:
    return Section(
        f"Factor: {factor.factor}",
        [f"Each row differs from the baseline `{f.base_key}` in {factor.factor} only."],
        [Table(HEADERS, [_row(r) for r in factor.rows])],
    )


def claims(f: Findings) -> Section:
    rows = [
        [c.claim.text, f"{c.what}: {c.ratio.text() if c.ratio else '–'}" if c.measured else "not measured in this result set",
         c.verdict]
        for c in f.claims
    ]  # fmt: skip
    return Section(
        "The talk's claims vs what we measured",
        [
            "Each claim of the PyCon Korea 2018 talk, tested on this result set. A ratio below 1 means the first "
            "variant needed less (latency, time); above 1, it did more (throughput). " + ENGINE_NOTE
        ],
        [Table(["claim", "measured (ratio [95% CI])", "verdict"], rows)],
    )


def network(f: Findings, folder: Path) -> Section | None:
    if not f.network:
        return None
    points: dict[str, list[tuple[float, float]]] = {}
    for r in f.network:
        if r.p50_us is not None:
            points.setdefault(r.strategy, []).append((r.delay_ms, r.p50_us / 1000))
    plots.network(points, _plot_path(folder, "network.png"))
    rows = [[r.strategy, f"{r.delay_ms:g}", _ms(r.p50_us), _num(r.round_trips), f"{r.added_ms:.2f}", f"{r.expected_ms:.1f}",
             _num(r.observed_ms)] for r in f.network]  # fmt: skip
    headers = ["strategy", "delay ms", "p50 ms", "round trips/req", "measured added delay ms (MongoDB)",
               "expected added ms", "observed added p50 ms"]  # fmt: skip
    return Section(
        "Network delay: sequential vs gather",
        [
            "A user-space proxy adds the delay to every exchange with the database (and cache). Expected: added "
            "latency ≈ round trips per request × measured added delay: k for sequential calls, about one per "
            "dependent step when gathered. Observed added p50 also contains queueing under load."
        ],
        [Table(headers, rows)],
        [("plots/network.png", "p50 latency against emulated delay")],
    )


def all_variants(f: Findings, folder: Path) -> Section:
    measured = {k: s for k, s in f.summaries.items() if s.runs}
    plots.throughput({k: s.throughput() for k, s in measured.items()}, _plot_path(folder, "throughput.png"))  # type: ignore[misc]
    plots.latency_curves({k: s.latency_curve() for k, s in measured.items()}, _plot_path(folder, "latency.png"))
    plots.server_timing({k: {st: s.stage_ms(st) for st in ("db", "cache", "app")} for k, s in measured.items()},
                        _plot_path(folder, "server_timing.png"))  # fmt: skip
    images = [
        ("plots/throughput.png", "Throughput per variant (mean, 95% interval over repeats)"),
        ("plots/latency.png", "Latency by percentile (all repeats merged, HDR)"),
        ("plots/server_timing.png", "Server-Timing breakdown per request"),
    ]
    links = [link for key in f.summaries for link in flamegraph_links(folder, key)]
    return Section("All variants", [], [Table(HEADERS, [_row(r) for r in f.variants])], images, links)


def warnings(f: Findings) -> Section:
    if not f.warnings:
        return Section("Warnings", ["No run was flagged: no errors, no saturated generator, no high variance."])
    return Section(
        "Warnings",
        ["Flagged runs are listed here and are still included above; read their numbers with care."],
        [Table(["run", "why"], [[what, why] for what, why in f.warnings])],
    )


def flamegraph_links(folder: Path, key: str) -> list[tuple[str, str]]:
    found = []
    for suffix, label in ((".svg", "flamegraph (SVG)"), (".speedscope.json", "speedscope profile")):
        path = folder / "flamegraphs" / f"{key_slug(key)}{suffix}"
        if path.exists():
            found.append((f"flamegraphs/{path.name}", f"{key}: {label}"))
    return found


def _plot_path(folder: Path, name: str) -> Path:
    (folder / "plots").mkdir(exist_ok=True)
    return folder / "plots" / name


def build_report(folder: Path) -> tuple[Path, Path]:
    f = analyse(read_folder(folder))
    sections = [environment(f), *[factor_section(f, factor) for factor in f.factors], claims(f)]
    network_section = network(f, folder)
    if network_section:
        sections.append(network_section)
    sections += [all_variants(f, folder), warnings(f)]
    title = f"reclab report — {folder.resolve().name}"
    md, page = folder / "report.md", folder / "index.html"
    md.write_text(to_markdown(title, sections))
    page.write_text(to_html(title, sections))
    return md, page
