"""The locust side of `reclab bench`: replays the deterministic request stream against one server per
run, on the timeline of `workloads.loadplan`. A locust process lives as long as a bench and carries
out one run after another, as the driver posts them to its mailbox.

Each locust process runs one user that, for every run:

- warm-up: serves its share of the stream's first `warmup_requests` entries, closed loop (`users` at a time);
- open phase: sends the arrivals of a seeded schedule (Poisson or constant, `rate` per second, all
  processes together), each at its due moment by a greenlet of its own, timed from that moment, so a
  stalled server shows in the tail (and a generator that falls behind, as a late start). Every arrival
  due in the window is accounted for: sent (answered, failed, or still unanswered when the phase
  settles) or unsent (held back by the cap until the window closed, or not reached by the generator
  before the phase settled); an unsent arrival is recorded with the time from its due moment to the
  end of the window (held back) or to the settling, an unanswered one with the time until the phase
  settled, a failed one with its elapsed time. Requests in flight are
  capped only by `max_outstanding`; arrivals held back by it count from their due moment too;
- closed phase: `users` greenlets send back to back; requests completing inside the window count;
- writes its part (`loadplan.LoadPart`).

What a phase records: successes, errors by kind (`shed` for an answer refused by admission control,
a 503 whose body starts `{"error":"overloaded"`; `http_<status>` for any other error status, an
exception's name when there was no reply; open loop: `unsent` and `unfinished`), the latency of
every outcome, of the successes and of the shed answers in HdrHistograms of their own, and `good`:
the successes whose latency (open: from the due moment) was within the run's `objective_ms`.

Clients that retry (`retry_shed`): an entry whose answer was shed is sent again after the reply's
Retry-After (`loadplan.retry_after_s`), up to `max_retries` times; its outcome is its last attempt's,
its latency counts from its due moment (closed: from its first send), and a waiting open-loop arrival
keeps its place under `max_outstanding`. A phase counts the `retries` sent and the entries that
succeeded after one (`retried_ok`); an arrival still waiting or retrying when the phase settles is
unfinished. Every arrival is still accounted for once. The warm-up never retries.

A stream entry is a read (GET of its path) or a write (`workloads.writes`: POST /events with its JSON
body, named "/events" in locust's statistics). A phase that sent writes records reads and writes apart
as well as together.

How runs reach a process and its part goes back is `workloads.channels`: files for the processes the
lab starts, master/worker messages for distributed workers (`reclab loadgen`).

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
from gevent.pool import Group
from hdrh.histogram import HdrHistogram
from locust import User, constant, events, task
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import MasterRunner, WorkerRunner

from workloads.bridge import Bridge
from workloads.channels import FileChannel, Job, WorkerChannel
from workloads.loadplan import (
    SHED,
    SHED_BODY,
    KindRecord,
    LoadPart,
    PhaseRecord,
    PhaseWindow,
    generator_identity,
    new_histogram,
    record_us,
    retry_after_s,
)
from workloads.writes import CONTENT_TYPE, WRITE_ROUTE, is_write, write_body

IDENTITY = generator_identity()  # None in a distributed worker
IDLE_S = 60.0
LATE_S = 0.002  # an open-loop request sent later than this after its due moment, not held back, was late
CHANNEL: FileChannel | WorkerChannel | None = FileChannel(IDENTITY[0], IDENTITY[1]) if IDENTITY else None


def now() -> float:
    return time.monotonic()


def route_of(path: str) -> str:
    """The name of an entry's route in locust's statistics: /recommend/items, /recommend/users, /health, /events."""
    if is_write(path):
        return WRITE_ROUTE
    return path.split("?", 1)[0].rsplit("/", 1)[0] or path


class Tally:
    """One kind of entry (reads or writes) within a phase: successes, errors by kind, latency histogram."""

    def __init__(self) -> None:
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.histogram: HdrHistogram = new_histogram()

    def add(self, error: str | None, latency_s: float) -> None:
        record_us(self.histogram, latency_s * 1e6)
        if error is None:
            self.ok += 1
        else:
            self.errors[error] += 1

    @property
    def count(self) -> int:
        return self.ok + sum(self.errors.values())

    def close(self) -> KindRecord:
        return KindRecord(self.ok, dict(self.errors), self.histogram.encode().decode("ascii"))


class Phase:
    """The counters and histograms of one measured phase of this process, all entries together and
    reads and writes apart; successes within `objective_ms` are good."""

    def __init__(self, window: PhaseWindow, objective_ms: float) -> None:
        self.window = window
        self.record = PhaseRecord(window.name, objective_ms=objective_ms)
        self.objective_s = objective_ms / 1000
        self.all, self.reads, self.writes = Tally(), Tally(), Tally()
        self.ok_histogram, self.shed_histogram = new_histogram(), new_histogram()
        self.shed_sent_histogram = new_histogram()  # shed answers timed from their sending, the generator's lag apart

    def outcome(
        self, error: str | None, latency_s: float, due: float | None = None, status: int = 0, write: bool = False
    ) -> None:
        """One entry's outcome (`write`: the entry was a write); an open-loop arrival (`due` given) also
        enters the phase's trace, with its HTTP status, or the error if there was no reply."""
        self.all.add(error, latency_s)
        (self.writes if write else self.reads).add(error, latency_s)
        if error is None:
            record_us(self.ok_histogram, latency_s * 1e6)
            self.record.good += latency_s <= self.objective_s
        elif error == SHED:
            record_us(self.shed_histogram, latency_s * 1e6)
            self.record.shed += 1
        if due is not None:
            what = str(status) if status else error or "no_reply"
            self.record.trace.append((round(due - self.window.start, 4), round(latency_s, 4), what))

    def close(self) -> PhaseRecord:
        self.record.ok = self.all.ok
        self.record.errors = dict(self.all.errors)
        self.record.hdr = self.all.histogram.encode().decode("ascii")
        self.record.hdr_ok = self.ok_histogram.encode().decode("ascii")
        self.record.hdr_shed = self.shed_histogram.encode().decode("ascii")
        self.record.hdr_shed_sent = self.shed_sent_histogram.encode().decode("ascii")
        if self.writes.count:
            self.record.reads, self.record.writes = self.reads.close(), self.writes.close()
        return self.record


class Run:
    """One run of the plan against one server."""

    def __init__(self, job: Job, request_event: Any) -> None:
        settings = self.settings = job.settings
        self.job = job
        self.index, self.processes = job.index, settings.processes
        self.users = settings.share(settings.users, self.index)
        self.outstanding = settings.share(settings.max_outstanding, self.index)
        self.retries_allowed = settings.retries_allowed
        self.paths = job.paths
        self.greenlets = Group()  # every greenlet of the run, ended with it
        self.part = LoadPart(self.index, settings.run_id)
        self.phase: Phase | None = None  # the measured phase under way (its shed answers' time from sending)
        self.session = FastHttpSession(  # as many connections as requests may be in flight: no silent cap
            base_url=settings.host,
            request_event=request_event,
            user=None,
            insecure=True,
            concurrency=max(
                self.users, self.outstanding if any(p.mode == "open" for p in settings.phases) else 0
            ),  # no silent cap
            network_timeout=settings.timeout_s,
            connection_timeout=settings.timeout_s,
            max_retries=0,
        )

    def carry_out(self, channel: FileChannel | WorkerChannel) -> None:
        settings = self.settings
        try:
            self.warm_up()
            channel.warm(self.job)
            t0 = channel.t0(self.job)
            for number, window in enumerate(settings.phase_windows(t0)):
                phase = Phase(window, settings.objective_ms)
                first = settings.first_position(number)
                gevent.sleep(max(0.0, window.start - now()))
                cpu = time.process_time()
                self.phase = phase
                if window.mode == "open":
                    self.open_phase(phase, first, self.settings.arrival_offsets(number, self.job.gaps))
                else:
                    self.closed_phase(phase, first)
                phase.record.cpu_s = round(time.process_time() - cpu, 4)
                self.phase = None
                self.part.phases.append(phase.close())
        except TimeoutError as error:
            self.part.failure = str(error)
        finally:
            self.greenlets.kill(block=False)
            with contextlib.suppress(Exception):
                self.session.client.close()
        channel.deliver(self.job, self.part)

    def is_write(self, position: int) -> bool:
        return is_write(self.paths[position % len(self.paths)])

    def send(self, position: int) -> str | None:
        """Send one stream entry; None on success, else the kind of error."""
        return self.send_for_status(position)[0]

    def send_retrying(self, position: int, record: PhaseRecord) -> tuple[str | None, int, bool]:
        """Send one stream entry, and again after each shed answer's Retry-After while retries are
        allowed (each counted in `record.retries`): the last attempt's error kind (None on success) and
        HTTP status, and whether it was retried."""
        error, status, wait_s = self.send_for_status(position)
        retried = 0
        while error == SHED and retried < self.retries_allowed:
            gevent.sleep(wait_s)
            retried += 1
            record.retries += 1
            error, status, wait_s = self.send_for_status(position)
        return error, status, retried > 0

    def send_for_status(self, position: int) -> tuple[str | None, int, float]:
        """Send one stream entry: (None on success, else the kind of error; the HTTP status, 0 if no
        reply; for a shed answer the seconds its Retry-After asks to wait, else 0).
        A read is a GET of its path; a write a POST of its event to /events."""
        entry = self.paths[position % len(self.paths)]
        outcome: dict[str, Any] = {}
        context = {"outcome": outcome}
        if is_write(entry):
            headers = {"Content-Type": CONTENT_TYPE}
            self.session.post(WRITE_ROUTE, data=write_body(entry), headers=headers, name=WRITE_ROUTE, context=context)
        else:
            self.session.get(entry, name=route_of(entry), context=context)
        exception, status = outcome.get("exception"), outcome.get("status") or 0
        if exception is None:
            return None, status, 0.0
        if "shed" in outcome:
            if self.phase is not None:
                record_us(self.phase.shed_sent_histogram, outcome["shed_ms"] * 1000)
            return SHED, status, retry_after_s(outcome["shed"])
        return (f"http_{status}" if status else type(exception).__name__), status, 0.0

    def spawn_users(self, work: Callable[[], None]) -> list[gevent.Greenlet]:
        return [self.greenlets.spawn(work) for _ in range(self.users)]

    def warm_up(self) -> None:
        positions = iter(range(self.settings.warmup_start + self.index, self.settings.warmup_requests, self.processes))

        def work() -> None:
            for position in positions:
                error = self.send(position)
                if error is None:
                    self.part.warmup_ok += 1
                else:
                    self.part.warmup_errors[error] = self.part.warmup_errors.get(error, 0) + 1

        gevent.joinall(self.spawn_users(work))

    def closed_phase(self, phase: Phase, first: int) -> None:
        positions = itertools.count(first + self.index, self.processes)
        window = phase.window

        def work() -> None:
            while (started := now()) < window.end:
                position = next(positions)
                error, _, retried = self.send_retrying(position, phase.record)
                done = now()
                if done < window.end:
                    phase.outcome(error, done - started, write=self.is_write(position))
                    phase.record.retried_ok += retried and error is None

        users = self.spawn_users(work)
        gevent.sleep(max(0.0, window.end - now()))
        gevent.killall(users, block=True, timeout=1.0)  # requests still in flight end outside the window

    def open_phase(self, phase: Phase, first: int, offsets: list[float]) -> None:
        window, record = phase.window, phase.record
        mine = [(window.start + offset, first + j) for j, offset in enumerate(offsets) if j % self.processes == self.index]
        record.expected = len(mine)
        cap = BoundedSemaphore(self.outstanding)
        in_flight: dict[int, tuple[float, bool]] = {}

        def arrival(number: int, due: float, position: int) -> None:
            write = self.is_write(position)
            held = not cap.acquire(blocking=False)
            if held:
                record.held_back += 1
                if not cap.acquire(timeout=max(0.0, window.end - now())):
                    record.unsent += 1
                    phase.outcome("unsent", window.end - due, due, write=write)
                    return
            record.sent += 1
            record.late_starts += not held and now() - due > LATE_S
            in_flight[number] = (due, write)
            try:
                error, status, retried = self.send_retrying(position, record)  # a waiting retry keeps its place
            finally:
                cap.release()
            del in_flight[number]
            phase.outcome(error, now() - due, due, status, write=write)
            record.retried_ok += retried and error is None

        greenlets = []
        for number, (due, position) in enumerate(mine):
            gevent.sleep(max(0.0, due - now()))
            if now() >= window.settled:  # a late start is timed from its due moment; past the settling, never sent
                break
            greenlets.append(self.greenlets.spawn(arrival, number, due, position))
        for due, position in mine[len(greenlets) :]:  # the generator fell that far behind: due in the window, never sent
            record.unsent += 1
            phase.outcome("unsent", window.settled - due, due, write=self.is_write(position))
        gevent.joinall(greenlets, timeout=max(0.0, window.settled - now()))
        for due, write in in_flight.values():
            record.unfinished += 1
            phase.outcome("unfinished", window.settled - due, due, write=write)
        gevent.killall(greenlets, block=True, timeout=1.0)


def serve_runs(channel: FileChannel | WorkerChannel, request_event: Any) -> None:
    """Carry out each run the channel brings, one after another."""
    while True:
        run = Run(channel.next_run(), request_event)
        channel.running = gevent.spawn(run.carry_out, channel)
        channel.running.join()


class StreamUser(User):
    """A process the lab started serves its runs in its one user; a distributed worker serves them
    from the moment it attaches (`attach`), whatever users its master gives it, which only idle."""

    wait_time = constant(0)

    @task
    def serve(self) -> None:
        if isinstance(CHANNEL, FileChannel):
            serve_runs(CHANNEL, self.environment.events.request)
        gevent.sleep(IDLE_S)


@events.init.add_listener
def attach(environment: Any, **_: Any) -> None:
    """A master relays the lab's files to its workers; a worker hears of runs from its master."""
    global CHANNEL
    if isinstance(environment.runner, MasterRunner) and IDENTITY is not None:
        Bridge(environment.runner, IDENTITY[0]).start()
    elif isinstance(environment.runner, WorkerRunner):
        CHANNEL = WorkerChannel(environment.runner)
        gevent.spawn(serve_runs, CHANNEL, environment.events.request)


@events.request.add_listener
def keep_outcome(
    context: dict[str, Any], exception: Exception | None, response: Any, response_time: float = 0.0, **_: Any
) -> None:
    """Keep a request's exception and status for `Run.send_for_status`; for a 503 refused by admission
    control (only a 503's body is looked at), its Retry-After under "shed"."""
    box = context.get("outcome")
    if box is not None:
        box["exception"] = exception
        status = box["status"] = getattr(response, "status_code", 0) or 0
        if status == 503 and (response.content or b"").startswith(SHED_BODY):
            box["shed"] = response.headers.get("Retry-After")
            box["shed_ms"] = response_time  # from its sending
