"""`reclab report DIR`: DIR/report.md and a self-contained DIR/index.html (plots in DIR/plots/)
from DIR/results.jsonl: environment, one section per factor with ratios to the baseline and 95%
intervals, the talk's claims against what was measured, network delay, warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from reclab import plots
from reclab.analysis import (
    PERCENTILES,
    Interval,
    VariantSummary,
    baseline_key,
    differing_factors,
    flagged,
    machine_speeds,
    paired_ratio,
    summarise,
    verdict,
)
from reclab.document import Section, Table, to_html, to_markdown
from reclab.matrix import FACTORS
from reclab.results import read_results
from workloads.tomlcheck import SpecError

ENGINE_NOTE = (
    "Database timings come from the engine named here. An embedded engine (mongoeco is a MongoDB "
    "wire-protocol server written in Python) is not MongoDB: its database timings are not MongoDB's, "
    "and effects that depend on the database (grouping, round trips) can differ on a real server."
)
MACHINE_DRIFT = 0.10  # spread of the machine speed index above which the report warns
CEILING_SHARE = 0.7  # a variant above this share of the generator's ceiling may be limited by the generator


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value / 1000:.2f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ratio(ratio: Interval | None) -> str:
    return "–" if ratio is None else ratio.text()


def claim_verdict(ratio: Interval | None, higher_is_better: bool, magnitude: float | None) -> str:
    """supported / contradicted / inconclusive; "partly" when the direction holds but not the stated size."""
    said = verdict(ratio, higher_is_better)
    if ratio is None or said not in ("faster", "slower"):
        return "inconclusive" if said == "no significant difference" else said
    if said == "slower":
        return "contradicted"
    if magnitude is not None and (ratio.value < magnitude if higher_is_better else ratio.value > magnitude):
        return "partly: right direction, smaller than claimed"
    return "supported"


def flamegraph_links(folder: Path, key: str) -> list[tuple[str, str]]:
    from reclab.flamegraph import slug

    found = []
    for suffix, label in ((".svg", "flamegraph (SVG)"), (".speedscope.json", "speedscope profile")):
        path = folder / "flamegraphs" / f"{slug(key)}{suffix}"
        if path.exists():
            found.append((f"flamegraphs/{path.name}", f"{key}: {label}"))
    return found


class ReportBuilder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records = read_results(folder / "results.jsonl")
        if not self.records:
            raise SpecError(folder / "results.jsonl", "", "holds no results to report")
        self.summaries = summarise(self.records)
        self.speeds = machine_speeds(self.records)
        self.base_key = baseline_key(self.summaries)
        self.ceilings = [r for r in self.records if r.get("kind") == "ceiling" and r.get("status") == "ok"]

    @property
    def baseline(self) -> VariantSummary | None:
        return self.summaries.get(self.base_key) if self.base_key else None

    def ratio(self, summary: VariantSummary, metric: str = "throughput_rps") -> Interval | None:
        if self.baseline is None or not summary.runs or not self.baseline.runs:
            return None
        return paired_ratio(summary.by_repeat(metric), self.baseline.by_repeat(metric))

    def row(self, label: str, summary: VariantSummary) -> list[str]:
        throughput = summary.throughput()
        ratio = None if summary.key == self.base_key else self.ratio(summary)
        return [
            label + (" (baseline)" if summary.key == self.base_key else ""),
            throughput.text(1) if throughput else "failed",
            *[_ms(summary.median(f"latency_us.{p}")) for p in PERCENTILES[:4]],
            str(summary.errors()) + (f" + {len(summary.failed)} failed runs" if summary.failed else ""),
            _num(summary.median("server_cpu_ms_per_request"), 2),
            _num(summary.median("db_ops_per_request")),
            _num(summary.median("db_round_trips_per_request")),
            _num(summary.median("cache_hit_ratio"), 3),
            "1" if summary.key == self.base_key else _ratio(ratio),
            "" if summary.key == self.base_key else verdict(ratio),
        ]

    HEADERS: ClassVar[list[str]] = [
        "variant", "req/s (mean [95% CI])", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "errors", "server CPU ms/req",
        "db ops/req", "round trips/req", "cache hit ratio", "throughput vs baseline [95% CI]", "verdict",
    ]  # fmt: skip

    def environment(self) -> Section:
        first = self.records[0]
        versions = first.get("versions", {})
        machine = first.get("machine", {})
        load = first.get("load", {})
        engines = first.get("engines", {})
        repeats = {r["repeat"] for r in self.records if r.get("kind") == "run"}
        paragraphs = [
            f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores, {machine.get('memory_gib')} GiB), "
            f"{machine.get('arch')}, Linux {machine.get('kernel')}. Commit `{first.get('commit')}`.",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
            f"Database: **{engines.get('mongo')}**; cache: **{engines.get('redis')}**. {ENGINE_NOTE}",
            f"Spec `{first.get('spec', {}).get('path')}`, dataset `{first.get('dataset_hash')}`, request stream "
            f"`{first.get('stream_hash')}`. Load: {load.get('mode')} loop, {load.get('users')} users"
            + (f", {load.get('rate')} req/s {load.get('arrival')}" if load.get("mode") == "open" else "")
            + f", {load.get('processes')} locust process(es), warm-up {load.get('warmup_s')} s, "
            f"measured {load.get('duration_s')} s; {len(repeats)} repeat(s), variants interleaved.",
            "Ratios are paired by repeat (geometric mean of per-repeat ratios, 95% t interval); a verdict is "
            "given only when the interval excludes 1. Latency percentiles are medians over repeats.",
        ]
        speeds = self.speeds
        if speeds:
            paragraphs.append(
                f"Machine speed index (a fixed pure-Python loop, taken before every run): {min(speeds):.1f} to "
                f"{max(speeds):.1f} iterations/µs ({max(speeds) / min(speeds) - 1:.0%} spread). Drift of the machine "
                "itself moves every variant alike; ratios within one result set are what to compare."
            )
        for ceiling in self.ceilings:
            paragraphs.append(
                f"Generator ceiling: {ceiling['throughput_rps']:.0f} req/s against Sanic's `/health` "
                f"({ceiling['load']['processes']} locust process(es) at {ceiling['generator_cpu_share']:.0%} CPU)."
            )
        return Section("Environment", paragraphs)

    def all_variants(self) -> Section:
        rows = [self.row(key, s) for key, s in self.summaries.items()]
        images = [
            (self._plot("throughput.png", plots.throughput), "Throughput per variant (mean, 95% interval over repeats)"),
            (self._plot("latency.png", plots.latency_curves), "Latency by percentile (all repeats merged, HDR)"),
            (self._plot("server_timing.png", plots.server_timing), "Server-Timing breakdown per request"),
        ]
        links = [link for key in self.summaries for link in flamegraph_links(self.folder, key)]
        return Section("All variants", [], [Table(self.HEADERS, rows)], images, links)

    def _plot(self, name: str, draw: Any) -> str:
        (self.folder / "plots").mkdir(exist_ok=True)
        draw({k: s for k, s in self.summaries.items() if s.runs}, self.folder / "plots" / name)
        return f"plots/{name}"

    def factor_sections(self) -> list[Section]:
        if self.baseline is None:
            return []
        base_config = self.baseline.config
        sections = []
        for factor in FACTORS:
            members = [s for s in self.summaries.values() if differing_factors(s.config, base_config) == [factor]]
            if not members:
                continue
            rows = [self.row(f"{factor}={base_config[factor]}", self.baseline)]
            rows += [self.row(f"{factor}={s.config[factor]}", s) for s in members]
            sections.append(
                Section(
                    f"Factor: {factor}",
                    [f"Each row differs from the baseline `{self.base_key}` in {factor} only."],
                    [Table(self.HEADERS, rows)],
                )
            )
        return sections

    def _level(self, factor: str, level: Any) -> VariantSummary | None:
        if self.baseline is None:
            return None
        if self.baseline.config.get(factor) == level:
            return self.baseline
        for s in self.summaries.values():
            if differing_factors(s.config, self.baseline.config) == [factor] and s.config[factor] == level:
                return s
        return None

    def claims(self) -> Section:
        rows: list[list[str]] = []
        delay = self.baseline.config.get("delay_ms", 0.0) if self.baseline else 0.0
        tests = [  # claim, factor, better level, other level, metric, higher is better, what, magnitude the claim states
            ("Sanic gives more than 2x Tornado's throughput", "framework", "sanic", "tornado", "throughput_rps", True,
             "Sanic / Tornado req/s", 2.0),
            ("Sanic needs at most half of Tornado's server CPU per request (the 2x claim in CPU terms)", "framework",
             "sanic", "tornado", "server_cpu_ms_per_request", False, "Sanic / Tornado server CPU ms per request", 0.5),
            ("gathering independent calls makes requests faster", "strategy", "gather", "sequential", "latency_us.p50", False,
             f"gather / sequential p50 at {delay:g} ms emulated network delay", None),
            ("grouping in the app is several times faster than MongoDB's $group", "grouping", "app", "db",
             "server_timing_ms.db", False, "app / db database time per request", 0.5),
            *[(f"caching ({cache}) makes the server faster than no cache", "cache", cache, "none", "throughput_rps", True,
               f"{cache} / none req/s", None) for cache in ("redis", "local", "two-level")],
        ]  # fmt: skip
        for text, factor, better_level, other_level, metric, higher, what, magnitude in tests:
            better, other = self._level(factor, better_level), self._level(factor, other_level)
            if better is None or other is None or not better.runs or not other.runs:
                rows.append([text, "not measured in this result set", "–"])
                continue
            ratio = paired_ratio(better.by_repeat(metric), other.by_repeat(metric))
            rows.append([text, f"{what}: {_ratio(ratio)}", claim_verdict(ratio, higher, magnitude)])
        return Section(
            "The talk's claims vs what we measured",
            [
                "Each claim of the PyCon Korea 2018 talk, tested on this result set. A ratio below 1 means the first "
                "variant needed less (latency, time); above 1, it did more (throughput). " + ENGINE_NOTE
            ],
            [Table(["claim", "measured (ratio [95% CI])", "verdict"], rows)],
        )

    def network(self) -> Section | None:
        delays = {s.config.get("delay_ms", 0.0) for s in self.summaries.values()}
        if len(delays) < 2:
            return None
        rows: list[list[str]] = []
        points: dict[str, list[tuple[float, float]]] = {}
        by_strategy_zero = {
            s.config["strategy"]: s for s in self.summaries.values() if s.config.get("delay_ms", 0.0) == 0 and s.runs
        }
        for summary in self.summaries.values():
            if not summary.runs:
                continue
            config = summary.config
            p50 = summary.median("latency_us.p50")
            trips = summary.median("db_round_trips_per_request") or 0.0
            added = summary.median("added_delay_ms.mongo") or 0.0
            zero = by_strategy_zero.get(config["strategy"])
            zero_p50 = zero.median("latency_us.p50") if zero else None
            observed = (p50 - zero_p50) / 1000 if p50 is not None and zero_p50 is not None else None
            rows.append(
                [
                    config["strategy"],
                    f"{config.get('delay_ms', 0):g}",
                    _ms(p50),
                    _num(trips),
                    f"{added:.2f}",
                    f"{trips * added:.1f}",
                    _num(observed),
                ]
            )
            if p50 is not None:
                points.setdefault(config["strategy"], []).append((float(config.get("delay_ms", 0.0)), p50 / 1000))
        (self.folder / "plots").mkdir(exist_ok=True)
        plots.network(points, self.folder / "plots" / "network.png")
        return Section(
            "Network delay: sequential vs gather",
            [
                "A user-space proxy adds the delay to every exchange with the database (and cache). Expected: added "
                "latency ≈ round trips per request × measured added delay: k for sequential calls, about one per "
                "dependent step when gathered. Observed added p50 also contains queueing under load."
            ],
            [
                Table(
                    [
                        "strategy",
                        "delay ms",
                        "p50 ms",
                        "round trips/req",
                        "measured added delay ms (MongoDB)",
                        "expected added ms",
                        "observed added p50 ms",
                    ],
                    rows,
                )
            ],
            [("plots/network.png", "p50 latency against emulated delay")],
        )

    def warnings(self) -> Section:
        items = flagged(self.records, self.summaries)
        for ceiling in self.ceilings:
            limit = ceiling["throughput_rps"] * CEILING_SHARE
            for key, summary in self.summaries.items():
                tp = summary.throughput()
                if tp and tp.value > limit:
                    items.append(
                        (
                            key,
                            f"throughput {tp.value:.0f} req/s is above {CEILING_SHARE:.0%} of the generator's "
                            f"ceiling ({ceiling['throughput_rps']:.0f}): the generator may limit it",
                        )
                    )
        speeds = self.speeds
        if speeds and max(speeds) / min(speeds) > 1 + MACHINE_DRIFT:
            items.append(("machine", f"the machine's own speed varied {max(speeds) / min(speeds) - 1:.0%} across runs"))
        if not items:
            return Section("Warnings", ["No run was flagged: no errors, no saturated generator, no high variance."])
        return Section(
            "Warnings",
            ["Flagged runs are listed here and are still included above; read their numbers with care."],
            [Table(["run", "why"], [[what, why] for what, why in items])],
        )

    def sections(self) -> list[Section]:
        sections = [self.environment(), *self.factor_sections(), self.claims()]
        network = self.network()
        if network:
            sections.append(network)
        sections += [self.all_variants(), self.warnings()]
        return sections


def build_report(folder: Path) -> tuple[Path, Path]:
    builder = ReportBuilder(folder)
    sections = builder.sections()
    title = f"reclab report — {folder.resolve().name}"
    md, page = folder / "report.md", folder / "index.html"
    md.write_text(to_markdown(title, sections))
    page.write_text(to_html(title, sections))
    return md, page
