"""Every flag threshold of the lab: what limited a phase (its bottleneck), the flags a phase gets, and
the warnings a result set gives.

Utilisation is the share of what a resource can use: a process (server, database, cache, each
generator process, each delay proxy) can use one core, so its share is CPU seconds per second of the
window; the shared core is the core (or cores) everything but the server runs on, busy or stolen.
"""

from __future__ import annotations

from collections import Counter

from reclab.results.record import CpuRecord, PhaseResult, RunRecord, excerpt

SATURATED = 0.85  # utilisation above which a resource is said to limit a phase
SCHEDULE_LAG = 0.01  # open loop: share of requests the generator sent late above which the phase is flagged ...
SCHEDULE_LAG_MIN = 3  # ... when at least this many were
STEAL = 0.05  # share of a core the hypervisor took for something else, above which a phase is flagged
HIGH_VARIANCE_CV = 0.10  # coefficient of variation over repeats above which a variant's figure is flagged
MACHINE_DRIFT = 0.10  # spread of the machine speed index above which the report warns
RATE_SHARE = 0.6  # open loop: offered rate above this share of a variant's capacity is not "below saturation"
PROCESS_RESOURCES = ("server", "database", "cache", "generator", "proxy")


def utilisation(cpu: CpuRecord, shared_cores: list[int]) -> dict[str, float]:
    """Each resource's share of what it can use over a phase (generator and proxy: the busiest process)."""
    out: dict[str, float] = {}
    for name in cpu.processes:
        resource = name.split(".", 1)[0]
        if resource in PROCESS_RESOURCES:
            out[resource] = max(out.get(resource, 0.0), round(cpu.share(name), 4))
    if shared_cores and all(core in cpu.core_busy for core in shared_cores):
        out["shared-core"] = round(sum(cpu.core_busy[c] for c in shared_cores) / len(shared_cores), 4)
    return out


def bottleneck(used: dict[str, float]) -> str:
    """The busiest process if it is saturated; else the shared core if it is; else none."""
    processes = {name: share for name, share in used.items() if name in PROCESS_RESOURCES}
    if processes:
        busiest = max(processes, key=processes.__getitem__)
        if processes[busiest] >= SATURATED:
            return busiest
    return "shared-core" if used.get("shared-core", 0.0) >= SATURATED else "none"


def phase_flags(phase: PhaseResult) -> list[str]:
    """What to read with care in one phase: errors, a saturated resource other than the server,
    a lagging generator, a cap that held requests back, stolen CPU."""
    flags = []
    if phase.error_count:
        flags.append("errors")
    if not phase.ok:
        flags.append("no_success")
    flags += [f"saturated:{name}" for name, share in phase.utilisation.items() if name != "server" and share >= SATURATED]
    sent = phase.arrivals.sent if phase.arrivals else 0
    if sent and phase.late_starts >= SCHEDULE_LAG_MIN and phase.late_starts / sent > SCHEDULE_LAG:
        flags.append("schedule_lag")
    if phase.held_back:
        flags.append("held_back")
    if phase.unfinished:
        flags.append("unfinished_requests")
    if any(steal > STEAL for steal in phase.cpu.core_steal.values()):
        flags.append("cpu_steal")
    return flags


def saturation(phase: PhaseResult, capacity: float | None) -> list[str]:
    """Why an open phase was not measured below saturation (empty: it was): requests that failed,
    were left unsent or unanswered, or waited for the outstanding cap, or an offered rate not well
    below the run's own capacity (`capacity`: its closed phase's throughput, if it has one)."""
    reasons = []
    if phase.error_count:
        reasons.append("errors")
    if phase.unfinished:
        reasons.append("unfinished requests")
    if phase.held_back:
        reasons.append("requests held back")
    offered = phase.offered_rps
    if offered is not None and capacity and offered > RATE_SHARE * capacity:
        reasons.append(f"offered rate above {RATE_SHARE:.0%} of capacity")
    return reasons


def warnings(records: list[RunRecord]) -> list[tuple[str, str]]:
    """(what, why) for failed runs, and for each variant the flags its runs got, counted over repeats."""
    out = []
    counts: dict[str, Counter[str]] = {}
    runs: Counter[str] = Counter()
    for record in records:
        if record.kind != "run":
            if record.status != "ok":
                out.append((record.kind, f"failed: {excerpt(str(record.error))}"))
            continue
        runs[record.key] += 1
        if record.status != "ok":
            out.append((f"{record.key} (repeat {record.repeat + 1})", f"failed: {excerpt(str(record.error))}"))
            continue
        counts.setdefault(record.key, Counter()).update(set(record.flags))
    for key, flags in counts.items():
        for flag, n in sorted(flags.items()):
            out.append((key, f"{flag} in {n} of {runs[key]} runs"))
    return out
