"""The locust side of `reclab bench`: replays the deterministic request stream against one server.

Each locust process (index k of W) sends stream entries k, k+W, k+2W, ... . Latency is recorded
by this file, in microseconds, into an HdrHistogram from locust's request events (locust's own
percentiles are whole milliseconds), only for requests completing inside the measurement window.

- closed mode: every user sends its next request as soon as the previous one returns;
- open mode: request n is due at a precomputed arrival time (Poisson or constant rate); its latency
  is measured from that intended time, so a stalled server shows in the tail (no coordinated omission);
  the requests counted are those due inside the window, and any still unanswered when the process
  quits are recorded with the time they have waited so far.

Configured through `workloads.loadplan` (settings file and process index from the environment); writes
its part (counts and histogram) when it quits.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

from workloads.loadplan import LoadPart, LoadSettings, new_histogram, record_us

SETTINGS, INDEX = LoadSettings.from_environment()
PROCESSES = SETTINGS.processes
PATHS = open(SETTINGS.paths_file).read().splitlines()  # noqa: SIM115 (read once at import)
OPEN_LOOP = SETTINGS.mode == "open"
MEASURE_START = SETTINGS.measure_start
MEASURE_END = SETTINGS.measure_end

counter = itertools.count()
histogram = new_histogram()
errors: Counter[str] = Counter()
totals = {"ok": 0, "sent": 0, "late_starts": 0, "unfinished": 0}
in_flight: dict[int, float] = {}  # open loop: request number -> intended send time, while awaiting the reply


def in_window(moment: float) -> bool:
    return MEASURE_START <= moment < MEASURE_END


class Arrivals:
    """Intended send times (seconds after the schedule start) of this process's requests, open mode."""

    def __init__(self) -> None:
        self.rate = SETTINGS.rate / PROCESSES
        self.poisson = SETTINGS.arrival == "poisson"
        self.rng = random.Random(f"{SETTINGS.seed}-{INDEX}")
        self.offsets: list[float] = []

    def due(self, n: int) -> float:
        while len(self.offsets) <= n:
            previous = self.offsets[-1] if self.offsets else 0.0
            step = self.rng.expovariate(self.rate) if self.poisson else 1.0 / self.rate
            self.offsets.append(previous + step)
        return SETTINGS.schedule_start + self.offsets[n]


arrivals = Arrivals() if OPEN_LOOP else None


class StreamUser(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = 10.0
    network_timeout = 10.0

    @task
    def next_request(self) -> None:
        n = next(counter)
        path = PATHS[(INDEX + PROCESSES * n) % len(PATHS)]
        due = None
        late = False
        if arrivals is not None:
            due = arrivals.due(n)
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)
            late = wait < -0.001
        if in_window(due if due is not None else time.monotonic()):
            totals["sent"] += 1
            totals["late_starts"] += late
            if due is not None:
                in_flight[n] = due
        route = path.split("?", 1)[0].rsplit("/", 1)[0] or path  # /recommend/items, /recommend/users, /health
        try:
            self.client.get(path, name=route, context={"due": due})
        finally:
            in_flight.pop(n, None)


@events.request.add_listener
def record(response_time: float, response: Any, context: dict[str, Any], exception: Exception | None, **_: Any) -> None:
    """Closed loop: requests completing inside the window. Open loop: requests *due* inside the
    window, timed from that intended moment, however late they complete."""
    now = time.monotonic()
    due = context.get("due")
    if not in_window(due if due is not None else now):
        return
    if exception is not None:
        status = getattr(response, "status_code", 0) or 0
        errors[f"http_{status}" if status else type(exception).__name__] += 1
        return
    record_us(histogram, (now - due) * 1e6 if due is not None else response_time * 1000.0)
    totals["ok"] += 1


@events.quitting.add_listener
def write_result(environment: Any, **_: Any) -> None:
    # Open loop: requests still unanswered at the end are recorded with the time they have waited
    # so far (a lower bound), so a stall cannot vanish from the tail.
    now = time.monotonic()
    for due in in_flight.values():
        record_us(histogram, (now - due) * 1e6)
        totals["unfinished"] += 1
    part = LoadPart(INDEX, **totals, errors=dict(errors), hdr=histogram.encode().decode("ascii"))
    part.write(SETTINGS.part_path(INDEX))
