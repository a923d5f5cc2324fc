"""The report's sections, rendered from what analysis found: numbers in, document sections out."""

from __future__ import annotations

from collections import Counter

from reclab.analysis.claims import ClaimFinding
from reclab.analysis.findings import Disagreement, Discord, FactorFinding, Findings, VariantRow
from reclab.analysis.flags import RATE_SHARE, SATURATED
from reclab.analysis.stats import Interval
from reclab.analysis.verdicts import Comparison, Kind
from reclab.report.charts import ForestRow
from reclab.report.document import Cell, Chart, Section, Table
from workloads.spec import Phase

ENGINE_NOTE = (
    "Database timings come from the engine named here. An embedded engine (mongoeco is a MongoDB "
    "wire-protocol server written in Python) is not MongoDB: its database timings are not MongoDB's, "
    "and effects that depend on the database (grouping, round trips) can differ on a real server."
)
HEADERS = [
    "variant", "capacity req/s [95% CI] (limited by)", "server CPU ms/req [95% CI]", "vs baseline [95% CI]", "verdict",
    "detectable change", "p50 ms (open)", "p99 ms (open)", "p50 vs baseline", "errors", "db ops/req", "round trips/req",
    "cache hit ratio",
]  # fmt: skip
BRIEF = [0, 2, 3, 4, 1, 7]  # what a reader needs first: variant, CPU, ratio, verdict, capacity, p99
INSTRUCTION_HEADERS = [
    "instructions/req [95% CI]", "instructions vs baseline [95% CI]", "instructions verdict",
    "instructions detectable change",
]  # fmt: skip
BOTH_HEADERS = HEADERS[:6] + INSTRUCTION_HEADERS + HEADERS[6:]  # a set that timed and counted: CPU, then instructions
BOTH_BRIEF = [0, 2, 3, 4, 6, 7, 8, 1, 11]  # ... and instructions, ratio and verdict beside CPU's
COUNTED_HEADERS = [
    "variant", "instructions/req [95% CI]", "vs baseline [95% CI]", "verdict", "detectable change", "requests/window",
    "errors",
]  # fmt: skip
SCALES = ((1e9, "G"), (1e6, "M"), (1e3, "k"))  # instruction counts are shown in these units
COUNTED_DIGITS = 3  # a ratio of instruction counts: their spread is a few tenths of a percent


def num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def ratio(interval: Interval | None, digits: int = 2) -> str:
    return "–" if interval is None else interval.text(digits)


def limited_by(counts: Counter[str]) -> str:
    if not counts:
        return ""
    total = sum(counts.values())
    return ", ".join(f"{name} {n}/{total}" if n < total else name for name, n in counts.most_common())


def detectable(comparison: Comparison | None) -> str:
    """The smallest detectable change: in whole percent, a tenth of one for a counted metric (instructions)."""
    if comparison is None or comparison.detectable is None:
        return "–"
    return f"±{comparison.detectable:.{1 if comparison.metric.counted else 0}%}"


def scale(value: float) -> tuple[float, str]:
    """The unit an instruction count is shown in: (its size, its name)."""
    return next(((size, unit) for size, unit in SCALES if abs(value) >= size), (1.0, ""))


def count(interval: Interval | None) -> str:
    """Instructions per request with their 95% interval, four significant digits: `30.52 M [30.47, 30.58]`."""
    if interval is None:
        return "–"
    size, unit = scale(interval.value)
    digits = max(0, 3 - len(str(int(abs(interval.value) / size))) + 1)
    text = f"{interval.value / size:.{digits}f}" + (f" {unit}" if unit else "")
    if interval.low is None or interval.high is None:
        return text
    return f"{text} [{interval.low / size:.{digits}f}, {interval.high / size:.{digits}f}]"


def counted_ratio(comparison: Comparison | None) -> str:
    """A variant's ratio to the baseline on instructions: `1.003 [0.998, 1.008]` (1 for the baseline)."""
    return ratio(comparison.test.ratio, COUNTED_DIGITS) if comparison else "1"


def instruction_cells(row: VariantRow) -> list[Cell]:
    """Instructions per request, ratio, verdict and detectable change: the columns beside CPU time."""
    verdict = row.instructions_verdict
    return [count(row.instructions), counted_ratio(verdict), verdict.verdict if verdict else "", detectable(verdict)]


def counted_cells(row: VariantRow, f: Findings) -> list[Cell]:
    """A row of a set that only counted instructions: the counts, their verdict, the window's requests, errors."""
    failed = len(row.summary.failed)
    window = next((w for w in f.windows if w.key == row.summary.key), None)
    return [
        row.label,
        count(row.instructions) if row.summary.runs else "failed",
        *instruction_cells(row)[1:],
        num(window.requests, 0) if window else "–",
        str(row.instruction_errors) + (f" + {failed} failed runs" if failed else ""),
    ]


def variant_table(f: Findings, rows: list[VariantRow], brief: bool = True) -> Table:
    """The variants' table: server CPU time and the rest of the timed figures, with instructions beside
    them where the set counted them; instructions alone where it timed nothing."""
    if f.instructions_only:
        return Table(COUNTED_HEADERS, [counted_cells(r, f) for r in rows])
    if f.metrics.instructions is None:
        return Table(HEADERS, [row_cells(r) for r in rows], brief=BRIEF if brief else None)
    cells = [(timed := row_cells(r))[:6] + instruction_cells(r) + timed[6:] for r in rows]
    return Table(BOTH_HEADERS, cells, brief=BOTH_BRIEF if brief else None)


def row_cells(row: VariantRow) -> list[Cell]:
    failed = len(row.summary.failed)
    errors = ", ".join(f"{k} x{v}" for k, v in sorted(row.errors.items())) or "0"
    if row.instruction_errors:
        errors += f", {row.instruction_errors} in instruction windows"
    capacity = ratio(row.capacity, 1) + (f" ({limited_by(row.limited_by)})" if row.limited_by else "")
    return [
        row.label,
        capacity if row.summary.runs else "failed",
        ratio(row.server_cpu, 2),
        ratio(row.verdict.test.ratio) if row.verdict else "1",
        row.verdict.verdict if row.verdict else "",
        detectable(row.verdict),
        num(row.p50_ms, 2),
        num(row.p99_ms, 2),
        (ratio(row.p50_ratio) + (" (not judged: not below saturation)" if row.latency_note else "")) if row.verdict else "1",
        errors + (f" + {failed} failed runs" if failed else ""),
        num(row.db_ops),
        num(row.round_trips),
        num(row.cache_hit_ratio, 3),
    ]


def banner(f: Findings) -> list[str]:
    """What to know before reading anything else: an unreliable or indicative result set."""
    out = []
    if f.aa is None:
        out.append("**No A/A calibration in this result set**: its verdicts cannot be checked against noise.")
    elif not f.reliable:
        out.append(
            f"**Unreliable result set**: the baseline, run twice per repeat under two labels, did not come out "
            f"equivalent within ±{f.margin:.0%} ({f.aa.metric.name}: ratio {ratio(f.aa.test.ratio, 3)}, "
            f"{f.aa.verdict}). The machine's run-to-run noise is too large to resolve differences of "
            f"{f.margin:.0%} here: read `faster`/`slower` as holding at the stated family-wise level, and no "
            "`equivalent` as established; rerun, or run more repeats, before acting on close calls."
        )
    counted = f.aa_instructions
    if counted is not None and counted is not f.aa and counted.verdict.kind is not Kind.EQUIVALENT:
        out.append(
            f"**Instruction counts unreliable**: on {counted.metric.name} the baseline's two labels came out "
            f"{counted.verdict} (ratio {ratio(counted.test.ratio, COUNTED_DIGITS)}): read the verdicts on instructions "
            "with care."
        )
    if f.bench.quick and f.instructions_only:
        out.append(
            f"**Quick run: indicative only.** {f.repeats} repeats, windows of {f.bench.window_requests} requests — the "
            "counts agree run to run, but so short a slice of the stream is a small sample of its mix."
        )
    elif f.bench.quick:
        out.append(
            f"**Quick run: indicative only.** {f.repeats} repeats of phases of "
            f"{', '.join(f'{p.duration_s:g}' for p in f.bench.load.phases)} seconds — "
            "enough to see large effects, not to decide small ones."
        )
    return out


def phase_text(phase: Phase, users: int, arrival: str) -> str:
    if phase.mode == "open":
        return f"`{phase.name}`: an open loop at {phase.rate:g} requests/s ({arrival} arrivals) for {phase.duration_s:g} s"
    return f"`{phase.name}`: a closed loop of {users} requests in flight for {phase.duration_s:g} s"


def method(f: Findings) -> Section:
    if f.instructions_only:
        return Section("Method", [*counted_method(f), verdict_method(f)])
    load, m = f.bench.load, f.metrics
    roles = [f"server CPU per request from `{m.cost.phase}`"]
    if m.p50:
        roles.append(f"latency from `{m.p50.phase}`")
    if m.capacity:
        roles.append(f"capacity from `{m.capacity.phase}`")
    return Section(
        "Method",
        [
            f"Every variant ran once per repeat, {f.repeats} repeats, in an order drawn afresh for each repeat (seed "
            f"{f.bench.seed.order}). Each run is a fresh server with empty caches (its own Redis key namespace) that "
            f"first serves the stream's first {load.warmup_requests} requests (a variant without a cache, only the last "
            "few: it has no cache to fill), then its measured phases on the same stream positions for every variant — "
            + "; ".join(phase_text(p, load.users, load.arrival) for p in load.phases)
            + ". Every variant does the same work; open-loop latency counts from each request's due moment, and every "
            "arrival is accounted for.",
            f"Verdicts about the server rest on **{f.primary.name}**, which holds whoever saturates. The host's CPU speed "
            "drifts by tens of percent from second to second here, so each run's figure is taken at one pace: divided "
            "by how long the server's own reference work (a fixed piece of Python run every 50 ms on its event loop) "
            "took over the same window, times that time's median over the result set. Capacity is the throughput of "
            "this whole setup, with what limited "
            f"it (a resource above {SATURATED:.0%} of what it can use). Latency claims are judged only where both "
            "variants' latency phase ran below saturation in every run: no errors, no unfinished or held-back requests, "
            f"and an offered rate below {RATE_SHARE:.0%} of the run's own capacity. Reading: " + ", ".join(roles) + ".",
            verdict_method(f),
            *([COUNTED_BESIDE] if m.instructions is not None else []),
        ],
    )


COUNTED_BESIDE = (
    "Instructions per request were counted as well, under valgrind (see **How instructions were counted**), and judged the "
    "same way in the same family: each variant has a verdict on server CPU time and one on instructions, and the A/A "
    "calibration is judged on each on its own (the result set's reliability rests on the CPU one)."
)


def verdict_method(f: Findings) -> str:
    """How a verdict is reached: paired by repeat, a t test and two one-sided tests, Holm across the family."""
    return (
        f"Each verdict compares a variant with the baseline repeat by repeat (ratios on the log scale; the "
        "baseline's two runs of each repeat, both labels, together): a t test for a difference and two one-sided "
        f"tests for equivalence within ±{f.margin:.0%}, with one run's spread pooled over every variant (repeats "
        f"are blocks), both adjusted with Holm's method across the report's {f.family_size} verdicts (5% "
        "family-wise). `detectable change` is the smallest change the run could have detected (80% power). The "
        "A/A calibration is judged on its own."
    )


def counted_method(f: Findings) -> list[str]:
    """How a set that only counted instructions ran, and what its verdicts rest on."""
    spread = f.spreads.get(f.primary.name)
    return [
        f"Every variant ran once per repeat, {f.repeats} repeats, in an order drawn afresh for each repeat (seed "
        f"{f.bench.seed.order}). Each run is a fresh server with empty caches (its own Redis key namespace) that, after "
        "its warm-up, serves a fixed slice of the stream, at the same stream positions for every variant, with its "
        f"instructions counted (see **How instructions were counted**). {COUNTED_ONLY}",
        f"Verdicts about the server rest on **{f.primary.name}**: counted, not timed, so the host's speed does not "
        "move it and no pace correction applies"
        + (f"; one run's spread in this result set is {spread:.2%}." if spread is not None else "."),
    ]


def environment(f: Findings) -> Section:
    bench = f.bench
    machine, engines = bench.machine, bench.engines
    paragraphs = [
        f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores, {machine.get('memory_gib')} GiB), "
        f"{machine.get('arch')}, Linux {machine.get('kernel')}. Commit `{bench.commit}`.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in bench.versions.items()) + ".",
        f"Database: **{engines.mongo}**; cache: **{engines.redis}**. {ENGINE_NOTE}",
        f"Spec `{bench.spec.path}`, dataset `{bench.dataset_hash}`, request stream `{bench.stream_hash}`, "
        f"{bench.load.processes} locust process(es), matrix `{bench.matrix}`."
        + (f" Rules `{bench.rules}`." if bench.rules else ""),
    ]
    if bench.cores:
        paragraphs.append(
            f"Cores: the server on {bench.cores.server}; database, cache, generator, proxies and the lab "
            f"share {bench.cores.others}."
        )
    if workers := sorted({r.config.workers for r in f.records if r.config.workers > 1}):
        server_cores = len(bench.cores.server) if bench.cores else 0
        on = f"spread over the server's {server_cores} core(s), one worker per core in turn" if bench.cores else "unpinned"
        shared = [n for n in workers if n > server_cores] if bench.cores else workers
        paragraphs.append(
            f"Workers: servers ran {', '.join(map(str, workers))} worker processes on one socket, {on}; CPU per "
            "request counts every worker."
            + (
                f" With {', '.join(map(str, shared))} workers, workers share a core: that adds nothing to its capacity "
                "(each worker has its own event loop, pace work and in-process cache, filled separately), so CPU per "
                "request rises and only the spread of connections changes. Compare worker counts on as many cores as "
                "workers (`--server-cores`)."
                if shared
                else ""
            )
        )
    if f.speeds:
        low, high = min(f.speeds), max(f.speeds)
        paragraphs.append(
            f"Machine speed index (a fixed pure-Python loop, taken before every run): {low:.1f} to {high:.1f} "
            f"iterations/µs ({high / low - 1:.0%} spread). Drift of the machine itself moves every variant alike; "
            "ratios within one result set are what to compare."
        )
    for ceiling in f.ceilings:
        paragraphs.append(
            f"Generator ceiling: {ceiling.throughput_rps:.0f} req/s against Sanic's `/health`, limited by "
            f"{ceiling.bottleneck} (generator at {ceiling.utilisation.get('generator', 0):.0%} of a core)."
        )
    return Section("Environment", paragraphs)


def calibration(f: Findings) -> Section | None:
    if f.aa is None:
        return None
    aa = f.aa
    return Section(
        "A/A calibration",
        [
            f"The baseline ran twice in every repeat, under two labels. {aa.metric.name}, second / first: "
            f"**{ratio(aa.test.ratio, 3)}** over {aa.test.n} repeats: **{aa.verdict}** (smallest detectable change "
            f"{detectable(aa)}). "
            + ("The result set is reliable at this margin." if f.reliable else "The result set is marked unreliable.")
            + instruction_calibration(f)
        ],
    )


def instruction_calibration(f: Findings) -> str:
    """The A/A calibration on instructions, in a set that timed too (empty: none, or it is the calibration)."""
    aa = f.aa_instructions
    if aa is None or aa is f.aa:
        return ""
    return (
        f" On {aa.metric.name}: **{ratio(aa.test.ratio, COUNTED_DIGITS)}** over {aa.test.n} repeats: **{aa.verdict}** "
        f"(smallest detectable change {detectable(aa)}); the result set's reliability rests on the calibration above."
    )


def factor_section(f: Findings, factor: FactorFinding) -> Section:
    return Section(
        f"Factor: {factor.factor}",
        [f"Each row differs from the baseline `{f.base_key}` in {factor.factor} only (unless it says otherwise)."],
        [variant_table(f, factor.rows)],
        anchor=f"factor-{anchor(factor.factor)}",
    )


def anchor(text: str) -> str:
    """`text` as a page id: letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "x"


def status(f: Findings) -> str:
    """One line on how far the verdicts can be trusted: the A/A calibration and a quick run."""
    if f.aa is None:
        out = "**No A/A calibration**: the verdicts cannot be checked against noise."
    elif f.reliable:
        on = " on instructions per request" if f.aa.metric.counted else ""
        out = (f"A/A calibration{on} **{f.aa.verdict}** ({ratio(f.aa.test.ratio, 3)}): the verdicts hold at "
               f"±{f.margin:.0%}.")  # fmt: skip
    else:
        out = (f"**Unreliable result set**: the A/A calibration came out {f.aa.verdict} "
               f"({ratio(f.aa.test.ratio, 3)}); read the caveats below before acting on close calls.")  # fmt: skip
    if f.bench.quick:
        out += f" **Quick run** ({f.repeats} repeats): indicative only."
    return out


def limits(f: Findings) -> str:
    """What limited this run: the closed phase's bottleneck over every run, and what verdicts rest on."""
    counts: Counter[str] = Counter()
    for row in f.variants:
        counts.update(row.limited_by)
    total = sum(counts.values())
    found = ", ".join(f"{name} in {n}" for name, n in counts.most_common())
    capacity = (
        f"What limited the closed-loop capacity, over {total} runs: {found}. " if total else "No closed-loop phase was limited. "
    )
    pinned = f"the server pinned to {f.bench.cores.server}" if f.bench.cores else "unpinned"
    machine = f"machine: {f.bench.machine.get('cores')} cores ({pinned})."
    if f.instructions_only:
        return (
            f"{COUNTED_ONLY} Verdicts rest on **{f.primary.name}**, counted under valgrind (not timed: the host's speed "
            f"does not move it); {machine}"
        )
    out = capacity + f"Verdicts rest on **{f.primary.name}**, which holds whoever saturates; {machine}"
    if f.metrics.instructions is not None:
        out += (
            f" Beside it, every variant is judged on **{f.metrics.instructions.name}** (counted under valgrind); "
            "**Where instructions and CPU time disagree** lists the variants whose two verdicts differ."
        )
    return out


def answer(f: Findings) -> Section:
    """The first screen: the talk's claims vs this run, how far to trust it, what limited it."""
    counted = [f"{COUNTED_ONLY} No claim is measured; the verdicts on instructions are in the factor tables."]
    return Section(
        "The talk's claims vs what this run measured",
        [status(f), *(counted if f.instructions_only else []), CLAIMS_READING],
        [Table(["claim", "measured (ratio [95% CI])", "verdict", "detectable change"], [claim_cells(c) for c in f.claims])],
        anchor="answer",
    )


def forest_rows(f: Findings) -> list[ForestRow]:
    """Every factor's comparisons with the baseline on the primary metric, in the factor tables' order."""
    return [
        ForestRow(factor.factor, row.label, row.verdict.test.ratio, row.verdict.verdict, row.verdict.detectable)
        for factor in f.factors
        for row in factor.rows
        if row.verdict is not None and row.verdict.test.ratio is not None
    ]


def glance(f: Findings, chart: Chart | None) -> Section:
    """The forest plot of every factor, with what limited the run."""
    return Section(
        "Every factor at a glance",
        [limits(f) + ("" if f.instructions_only else " " + ENGINE_NOTE)],
        charts=[chart] if chart else [],
        anchor="glance",
    )


def framework_ranking(f: Findings) -> Section | None:
    """The frameworks side by side on each event loop, least server CPU per request first: only rows that
    differ from the baseline in framework and loop alone (like for like)."""
    baseline = f.baseline
    if baseline is None:
        return None
    by_loop: dict[str, list[VariantRow]] = {}
    for row in f.variants:
        like_for_like = set(row.summary.config.differing_factors(baseline.config)) <= {"framework", "loop"}
        if row.summary.role != "aa" and row.server_cpu is not None and like_for_like:
            by_loop.setdefault(row.summary.config.loop, []).append(row)
    lines = []
    for loop, rows in sorted(by_loop.items()):
        if len({r.summary.config.stack for r in rows}) < 2:
            continue
        ranked = sorted(rows, key=lambda r: r.server_cpu.value)  # type: ignore[union-attr]
        shown = ", ".join(f"{r.summary.config.stack} {ratio(r.server_cpu, 2)} ms" for r in ranked)
        lines.append(f"On {loop}: {shown}.")
    if not lines:
        return None
    intro = (
        "Server CPU per request (mean [95% interval] over repeats), least first; whether two frameworks differ is "
        "the verdict in the framework table, not the order."
    )
    return Section("Frameworks ranked", [intro, *lines])


def claim_cells(c: ClaimFinding) -> list[Cell]:
    if c.verdict is None:
        return [c.claim.text, "not measured in this result set", "–", "–"]
    return [c.claim.text, f"{c.claim.what}: {ratio(c.verdict.test.ratio)}", c.outcome, detectable(c.verdict)]


COUNTED_ONLY = (
    "This result set counted instructions only: nothing was timed, so it has no server CPU time, capacity, latency, "
    "database work or bottleneck."
)
CLAIMS_READING = (
    "Each claim of the PyCon Korea 2018 talk, tested on this result set: the ratio is the variant the talk prefers "
    "over the other (below 1: it needed less; above 1: it did more)."
)


def network(f: Findings) -> Section | None:
    if not f.network:
        return None
    rows = [[r.strategy, f"{r.delay_ms:g}", num(r.p50_ms, 2), num(r.round_trips), num(r.added_idle_ms, 2),
             num(r.added_loaded_ms, 2), num(r.expected_ms), num(r.observed_ms)] for r in f.network]  # fmt: skip
    headers = ["strategy", "target delay ms", "p50 ms (open)", "round trips/req", "added delay ms, idle (MongoDB)",
               "added delay ms, under load", "expected added ms", "observed added p50 ms"]  # fmt: skip
    return Section(
        "Network delay: sequential vs gather",
        [
            "Every point goes through the same user-space proxy, 0 ms included, so the proxy's own cost is in every "
            "point and the difference is the delay. The added round trip is measured idle before the load and again "
            "during the open phase (pings through the proxy and around it). Expected: added latency ≈ round trips per "
            "request × added delay; observed: p50 minus the same strategy's p50 at 0 ms."
        ],
        [Table(headers, rows)],
        [("plots/network.png", "p50 latency against emulated delay")],
    )


def distributions(charts: list[Chart]) -> Section:
    return Section("Distributions", [], charts=charts, anchor="distributions")


def all_variants(f: Findings) -> Section:
    images = [] if f.instructions_only else [("plots/server_timing.png", "Server-Timing breakdown per request")]
    return Section("All variants", [], [variant_table(f, f.variants, brief=False)], images, anchor="variants")


def warnings(f: Findings) -> Section:
    if not f.warnings:
        return Section("Warnings", ["No run was flagged."])
    return Section(
        "Warnings",
        ["Flags, counted over each variant's runs; flagged runs are still included above: read their numbers with care."],
        [Table(["variant", "why"], [[what, why] for what, why in f.warnings])],
    )


DISAGREEMENT_HEADERS = ["variant", "server CPU vs baseline [95% CI]", "instructions vs baseline [95% CI]", "disagreement",
                        "reading"]  # fmt: skip
DISCORD_ORDER = (Discord.OPPOSITE, Discord.EQUIVALENT, Discord.UNDECIDED)  # the strongest first


def judged(comparison: Comparison, digits: int) -> str:
    """A verdict's kind and the ratio it rests on: `slower 1.17 [1.10, 1.25]`."""
    return f"{comparison.verdict.kind.value} {ratio(comparison.test.ratio, digits)}"


def reading(d: Disagreement) -> str:
    """One line on what a disagreement between CPU time and instructions can mean."""
    cpu, counted = d.cpu.verdict.kind, d.instructions.verdict.kind
    if d.discord is Discord.OPPOSITE:
        if cpu is Kind.SLOWER:
            return ("fewer instructions in more time: the time goes outside the instructions (memory traffic, system "
                    "calls, waiting) or into costlier instructions")  # fmt: skip
        return ("more instructions in less time: cheaper instructions, or less time outside them (memory traffic, "
                "system calls, waiting)")  # fmt: skip
    if d.discord is Discord.EQUIVALENT:
        if cpu is Kind.SLOWER:
            return ("the extra time is outside the instructions (system calls, cache misses, waiting) or noise in the "
                    "CPU figure")  # fmt: skip
        if cpu is Kind.FASTER:
            return ("the time saved is outside the instructions (fewer system calls or cache misses, less waiting) or "
                    "noise in the CPU figure")  # fmt: skip
        more = "more" if counted is Kind.SLOWER else "fewer"
        return (f"{more} instructions, by less than CPU time resolves here: a change in the server's own code that "
                "CPU time's noise hides, or one offset by what instructions leave out")  # fmt: skip
    if cpu in (Kind.FASTER, Kind.SLOWER):
        return ("the instruction counts leave it undecided: the change in CPU time may lie outside the instructions, "
                "or the counts need more repeats")  # fmt: skip
    cpu_ratio, counted_ratio = d.cpu.test.ratio, d.instructions.test.ratio
    if cpu_ratio is not None and counted_ratio is not None and (cpu_ratio.value - 1) * (counted_ratio.value - 1) < 0:
        return ("CPU time leans the other way, undecided: work the instructions leave out (system calls and the kernel's "
                "network stack, cache misses, waiting) may outweigh the change they show; more repeats would tell")  # fmt: skip
    return "CPU time's noise leaves undecided the change the instruction counts show"


def disagreements(f: Findings) -> Section | None:
    """The variants whose verdicts on server CPU time and on instructions disagree (a set that has both)."""
    if f.metrics.instructions is None or f.instructions_only:
        return None
    title, where = "Where instructions and CPU time disagree", "disagreements"
    if not f.disagreements:
        line = (f"Server CPU time and instructions per request do not disagree on any of the {f.judged_on_both} "
                "variants judged on both.")  # fmt: skip
        return Section(title, [line], anchor=where)
    found = sorted(f.disagreements, key=lambda d: DISCORD_ORDER.index(d.discord))
    strong = sum(1 for d in found if d.discord is not Discord.UNDECIDED)
    intro = (
        f"Of the {f.judged_on_both} variants judged on both server CPU time and instructions per request: {strong} "
        "whose verdicts disagree (one `faster` or `slower`, the other the opposite direction or `equivalent`), "
        f"{len(found) - strong} whose verdicts disagree more weakly (one decided, the other `inconclusive`). Read them "
        "with **What instructions leave out**."
    )
    rows = [[d.key, judged(d.cpu, 2), judged(d.instructions, COUNTED_DIGITS), d.discord.value, reading(d)] for d in found]
    return Section(title, [intro], [Table(DISAGREEMENT_HEADERS, rows)], anchor=where)


def leave_out(f: Findings) -> Section | None:
    """What instruction counts measure, what they leave out, and how that reads beside CPU time."""
    if f.metrics.instructions is None:
        return None
    spreads = [f"{f.spreads[m.name]:.2%} for {m.name}" for m in (f.metrics.instructions, f.metrics.cost) if m.name in f.spreads]
    measured = f" In this result set, one run's spread is {' against '.join(spreads)}." if spreads else ""
    return Section(
        "What instructions leave out",
        [
            "Instruction counts measure the work the server's processes execute in user space, and nothing else. "
            "Valgrind counts instructions, not what the CPU spends on them: nothing of cache and TLB misses or branch "
            "mispredictions, of system calls and the kernel's work for them (socket I/O, epoll), of time spent waiting "
            "(for the database, the cache, the network), nor of work in other processes (database, cache, generator). "
            "And an instruction of one kind costs more than another (a division more than a move).",
            "So a change that moves memory traffic, system calls or waiting shows in CPU time and not in instructions, "
            "while instructions show small changes in the code that CPU time's noise hides." + measured,
        ],
        anchor="instructions-leave-out",
    )


COUNTED_WINDOW_HEADERS = ["variant", "runs", "from stream position", "requests", "connections", "server processes",
                          "wall s (under valgrind)", "errors"]  # fmt: skip


def counted_how(f: Findings) -> Section | None:
    """How instructions were counted, and each variant's window: its requests, connections and wall time."""
    if not f.windows:
        return None
    rows = [[w.key, str(w.runs), str(w.start), num(w.requests, 0), num(w.connections, 0), str(w.processes),
             num(w.seconds, 1), str(w.errors)] for w in f.windows]  # fmt: skip
    tools = sorted({tool for w in f.windows for tool in w.tools})
    return Section(
        "How instructions were counted",
        [
            "Every process of the server is counted: its master and its workers, each under valgrind (callgrind) "
            "whether forked or spawned, and every thread of each. Instrumentation is switched on only for the measured "
            "window, a fixed slice of the stream after the warm-up at the same stream positions for every variant, and "
            "off outside it; the counts of all the processes are added and divided by the requests answered in the "
            "window (any status)." + (f" Counted with {', '.join(f'`{t}`' for t in tools)}." if tools else ""),
            "The windows, medians over each variant's runs (wall time under valgrind, tens of times slower than "
            "native: not a measure of speed; errors: answered with a status of 400 or more, or not answered, every "
            "run together):",
        ],
        [Table(COUNTED_WINDOW_HEADERS, rows)],
        anchor="instructions-counted",
    )
