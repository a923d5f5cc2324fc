"""The locust side of `reclab bench`: replays the deterministic request stream against one server per
run, on the timeline of `workloads.loadplan`. A locust process lives as long as a bench and carries
out one run after another, as the driver posts them to its mailbox.

Each locust process runs one user that, for every run:

- warm-up: serves its share of the stream's first `warmup_requests` entries, closed loop (`users` at a time);
- open phase: sends the arrivals of a seeded schedule (Poisson or constant, `rate` per second, all
  processes together), each at its due moment by a greenlet of its own, timed from that moment, so a
  stalled server shows in the tail. Every arrival due in the window is accounted for: sent (answered,
  failed, or still unanswered when the phase settles) or unsent (the window closed first); an unsent
  arrival is recorded with the time from its due moment to the end of the window, an unanswered one
  with the time until the phase settled, a failed one with its elapsed time. Requests in flight are
  capped only by `max_outstanding`; arrivals held back by it count from their due moment too;
- closed phase: `users` greenlets send back to back; requests completing inside the window count;
- writes its part (`loadplan.LoadPart`).

Latency goes, in microseconds, into one HdrHistogram per phase (locust's own percentiles are whole
milliseconds).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import gevent
from gevent.lock import BoundedSemaphore
from hdrh.histogram import HdrHistogram
from locust import User, constant, events, task
from locust.contrib.fasthttp import FastHttpSession

from workloads.loadplan import (
    LoadPart,
    LoadSettings,
    PhaseRecord,
    PhaseWindow,
    generator_identity,
    new_histogram,
    record_us,
)

MAILBOX, INDEX, PROCESSES = generator_identity()
LATE_S = 0.002  # an open-loop request sent later than this after its due moment, not held back, was late
SIGNAL_TIMEOUT_S = 120.0  # how long to wait for the driver's t0 signal
MAILBOX_POLL_S = 0.01


def now() -> float:
    return time.monotonic()


def route_of(path: str) -> str:
    return path.split("?", 1)[0].rsplit("/", 1)[0] or path  # /recommend/items, /recommend/users, /health


class Phase:
    """The counters and histogram of one measured phase of this process."""

    def __init__(self, window: PhaseWindow) -> None:
        self.window = window
        self.record = PhaseRecord(window.name)
        self.histogram: HdrHistogram = new_histogram()
        self.errors: Counter[str] = Counter()

    def outcome(self, error: str | None, latency_s: float, due: float | None = None, status: int = 0) -> None:
        """One request's outcome; an open-loop arrival (`due` given) also enters the phase's trace, with
        its HTTP status, or the error if there was no reply."""
        record_us(self.histogram, latency_s * 1e6)
        if error is None:
            self.record.ok += 1
        else:
            self.errors[error] += 1
        if due is not None:
            what = str(status) if status else error or "no_reply"
            self.record.trace.append((round(due - self.window.start, 4), round(latency_s, 4), what))

    def close(self) -> PhaseRecord:
        self.record.errors = dict(self.errors)
        self.record.hdr = self.histogram.encode().decode("ascii")
        return self.record


class Run:
    """One run of the plan against one server."""

    def __init__(self, settings: LoadSettings, user: User) -> None:
        self.settings = settings
        self.users = settings.share(settings.users, INDEX)
        self.outstanding = settings.share(settings.max_outstanding, INDEX)
        with open(settings.paths_file) as stream_file:
            self.paths = stream_file.read().splitlines()
        self.part = LoadPart(INDEX, settings.run_id)
        self.session = FastHttpSession(  # as many connections as requests may be in flight: no silent cap
            base_url=settings.host,
            request_event=user.environment.events.request,
            user=user,
            insecure=True,
            concurrency=max(
                self.users, self.outstanding if any(p.mode == "open" for p in settings.phases) else 0
            ),  # no silent cap
            network_timeout=settings.timeout_s,
            connection_timeout=settings.timeout_s,
            max_retries=0,
        )

    def carry_out(self) -> None:
        settings = self.settings
        try:
            self.warm_up()
            settings.send(f"warm.{INDEX}", {"at": now()})
            t0 = float(settings.wait_for("t0", now() + SIGNAL_TIMEOUT_S)["t0"])
            for number, window in enumerate(settings.phase_windows(t0)):
                phase = Phase(window)
                first = settings.first_position(number)
                gevent.sleep(max(0.0, window.start - now()))
                if window.mode == "open":
                    self.open_phase(phase, first, self.settings.arrival_offsets(number))
                else:
                    self.closed_phase(phase, first)
                self.part.phases.append(phase.close())
        except TimeoutError as error:
            self.part.failure = str(error)
        finally:
            with contextlib.suppress(Exception):
                self.session.client.close()
        self.part.write(settings.part_path(INDEX))

    def send(self, position: int) -> str | None:
        """Send one stream entry; None on success, else the kind of error."""
        return self.send_for_status(position)[0]

    def send_for_status(self, position: int) -> tuple[str | None, int]:
        """Send one stream entry: (None on success, else the kind of error; the HTTP status, 0 if no reply)."""
        path = self.paths[position % len(self.paths)]
        outcome: dict[str, Any] = {}
        self.session.get(path, name=route_of(path), context={"outcome": outcome})
        exception, status = outcome.get("exception"), outcome.get("status") or 0
        if exception is None:
            return None, status
        return (f"http_{status}" if status else type(exception).__name__), status

    def spawn_users(self, work: Callable[[], None]) -> list[gevent.Greenlet]:
        return [gevent.spawn(work) for _ in range(self.users)]

    def warm_up(self) -> None:
        positions = iter(range(self.settings.warmup_start + INDEX, self.settings.warmup_requests, PROCESSES))

        def work() -> None:
            for position in positions:
                error = self.send(position)
                if error is None:
                    self.part.warmup_ok += 1
                else:
                    self.part.warmup_errors[error] = self.part.warmup_errors.get(error, 0) + 1

        gevent.joinall(self.spawn_users(work))

    def closed_phase(self, phase: Phase, first: int) -> None:
        positions = itertools.count(first + INDEX, PROCESSES)
        window = phase.window

        def work() -> None:
            while (started := now()) < window.end:
                error = self.send(next(positions))
                done = now()
                if done < window.end:
                    phase.outcome(error, done - started)

        users = self.spawn_users(work)
        gevent.sleep(max(0.0, window.end - now()))
        gevent.killall(users, block=True, timeout=1.0)  # requests still in flight end outside the window

    def open_phase(self, phase: Phase, first: int, offsets: list[float]) -> None:
        window, record = phase.window, phase.record
        mine = [(window.start + offset, first + j) for j, offset in enumerate(offsets) if j % PROCESSES == INDEX]
        record.expected = len(mine)
        cap = BoundedSemaphore(self.outstanding)
        in_flight: dict[int, float] = {}

        def arrival(number: int, due: float, position: int) -> None:
            held = not cap.acquire(blocking=False)
            if held:
                record.held_back += 1
                if not cap.acquire(timeout=max(0.0, window.end - now())):
                    record.unsent += 1
                    phase.outcome("unsent", window.end - due, due)
                    return
            record.sent += 1
            record.late_starts += not held and now() - due > LATE_S
            in_flight[number] = due
            try:
                error, status = self.send_for_status(position)
            finally:
                cap.release()
            del in_flight[number]
            phase.outcome(error, now() - due, due, status)

        greenlets = []
        for number, (due, position) in enumerate(mine):
            gevent.sleep(max(0.0, due - now()))
            if now() >= window.end:
                break
            greenlets.append(gevent.spawn(arrival, number, due, position))
        for due, _ in mine[len(greenlets) :]:  # the generator fell behind: due in the window, never sent
            record.unsent += 1
            phase.outcome("unsent", window.end - due, due)
        gevent.joinall(greenlets, timeout=max(0.0, window.settled - now()))
        for due in in_flight.values():
            record.unfinished += 1
            phase.outcome("unfinished", window.settled - due, due)
        gevent.killall(greenlets, block=True, timeout=1.0)


class StreamUser(User):
    """Waits for runs in the mailbox and carries each out."""

    wait_time = constant(0)

    @task
    def serve_runs(self) -> None:
        done: set[str] = set()
        while True:
            settings = LoadSettings.read(MAILBOX) if MAILBOX.exists() else None
            if settings is None or settings.run_id in done:
                gevent.sleep(MAILBOX_POLL_S)
                continue
            done.add(settings.run_id)
            Run(settings, self).carry_out()


@events.request.add_listener
def keep_outcome(context: dict[str, Any], exception: Exception | None, response: Any, **_: Any) -> None:
    box = context.get("outcome")
    if box is not None:
        box["exception"] = exception
        box["status"] = getattr(response, "status_code", 0) or 0
