"""The report's sections on the measured work: the load as offered (against the nominal rates), the
database's work per request in portable units, and the cost of a request by its user's history."""

from __future__ import annotations

from reclab.analysis.findings import Findings
from reclab.analysis.workload import HistoryRow, OfferedLoad
from reclab.report.document import Section, Table
from reclab.report.sections import num
from servers.core.history import BUCKETS

PORTABLE_NOTE = (
    "Documents and bytes are what the database returned to the server (counted in the server's store "
    "layer, whatever the driver; bytes as BSON, measured exactly on every 8th database call and scaled to "
    "all of them), and documents examined are the engine's own count where it keeps one (a real MongoDB's "
    "`serverStatus`; the embedded mongoeco does not say). Unlike the engine's time and CPU, these carry over "
    "to any MongoDB: a real server spends one to two orders of magnitude less CPU per document than mongoeco."
)


def _spread(values: tuple[float, float, float] | None, digits: int = 1) -> str:
    if values is None:
        return "–"
    low, median, high = values
    if round(low, digits) == round(high, digits):
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _offered_row(load: OfferedLoad) -> list[str]:
    return [
        f"`{load.phase}`",
        f"{load.nominal_rps:g}",
        _spread(load.offered_rps, 2),
        _spread(load.speedup, 3 if load.speedup and load.speedup[1] < 10 else 1),
        str(load.pauses_shortened) if load.speedup else "–",
        str(load.runs),
    ]


def offered_section(f: Findings) -> Section | None:
    if not f.offered:
        return None
    arrival = f.bench.load.arrival
    how = {
        "poisson": "Poisson arrivals, exactly rate x duration of them per window (a Poisson process given its count), "
        "on a seeded schedule that every variant shares.",
        "constant": "one arrival every 1/rate seconds.",
        "trace": "the log's entries at their recorded gaps, one scale per window so that it offers the nominal rate "
        "(bursts stay bursts; events sharing a timestamp second are spread across it; a pause is cut to at most 10 "
        "mean gaps of its window). Speedup: recorded seconds per replayed second. A write and the read after it are "
        "two arrivals at one moment.",
    }[arrival]
    return Section(
        "Load as offered",
        [f"Each open phase against its nominal rate, over every run (median, lowest–highest): {how}"],
        [
            Table(
                ["phase", "nominal /s", "offered /s", "speedup", "pauses shortened", "runs"], [_offered_row(o) for o in f.offered]
            )
        ],
    )


def database_section(f: Findings) -> Section | None:
    rows = [
        [w.key, num(w.ops), num(w.round_trips), num(w.docs), num(None if w.bytes is None else w.bytes / 1024, 2),
         num(w.examined), num(w.db_ms, 2), num(w.engine_cpu_ms, 2)]
        for w in f.database
    ]  # fmt: skip
    if not rows:
        return None
    headers = ["variant", "db ops/req", "round trips/req", "docs returned/req", "KiB returned/req", "docs examined/req",
               "db wait ms/req", "database CPU ms/req"]  # fmt: skip
    return Section(
        "Database work per request",
        [
            f"From `{f.primary.phase}`, medians over repeats. {PORTABLE_NOTE} `db wait` is the server's time with a "
            f"database call in flight (Server-Timing); `database CPU` the database processes' CPU over the phase per "
            f"request, on **{f.bench.engines.mongo}**."
        ],
        [Table(headers, rows)],
    )


def _bucket_table(f: Findings, read: str, what: str, digits: int = 2) -> Table:
    """Every variant's `read` per request (a row each) by history size (a column each); `what` heads it."""
    shown = [label for label in BUCKETS if any(r.history == label for rows in f.history.values() for r in rows)]
    rows = []
    for key, history in f.history.items():
        by_label: dict[str, HistoryRow] = {r.history: r for r in history}
        rows.append([key, *(num(getattr(by_label[label], read), digits) if label in by_label else "–" for label in shown)])
    return Table([f"{what}, by history (events)", *shown], rows)


def history_section(f: Findings) -> Section | None:
    if not f.history or not f.baseline or f.baseline.key not in f.history:
        return None
    base = f.history[f.baseline.key]
    total = sum(r.requests for r in base) or 1
    detail = Table(
        ["history (events)", "requests", "share", "docs returned/req", "db wait ms/req", "app ms/req", "total ms/req"],
        [[r.history, str(r.requests), f"{r.requests / total:.0%}", num(r.docs, 1), num(r.db_ms, 3), num(r.app_ms, 3),
          num(r.total_ms, 3)] for r in base],
    )  # fmt: skip
    return Section(
        "Cost by history size",
        [
            "Every request reads its user's whole history and groups it (in MongoDB or in the app) before the rules "
            "work through it, so its cost grows with the history. Requests are grouped by the number of events in the "
            "history of the user they name (`none`: an item's similar items without a caller; `0`: a user without "
            f"history, served through similar users). From `{f.history_phase}`, every run together, per request: "
            "`db wait`, the server's time with a database call in flight; `app`, its time outside any database or cache "
            "call (at the open loop's low concurrency, close to its CPU time); `total`, the handler's time.",
            f"The baseline `{f.baseline.key}`:",
        ],
        [
            detail,
            _bucket_table(f, "app_ms", "variant: app ms/req", 3),
            _bucket_table(f, "db_ms", "variant: db wait ms/req", 3),
            _bucket_table(f, "docs", "variant: docs returned/req", 1),
        ],
        [("plots/history.png", "Time per request by the size of the user's history (app: outside database and cache calls)")],
    )
