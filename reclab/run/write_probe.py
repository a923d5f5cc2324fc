"""The fault matrix's write probe: does a fault lose a write the server acknowledged?

While a fault run's load goes on, a thread of the lab sends `POST /events` to the server (127.0.0.1
only) at a fixed pace (`RATE` per second, at most `IN_FLIGHT` at once, each bounded by `TIMEOUT_S`),
for the length of the run's window, from the server's start. Every event is unique: a known user and item of the dataset, kind
`view`, and a time no loaded event has (the dataset's clock + `TS_OFFSET` + the run's span + its number).
Each is recorded as acknowledged (200 `{"accepted": 1}`), refused (any other HTTP status) or failed (no
answer). Once the run is over, the acknowledged ones are looked up in MongoDB on the user's shard
(`LiveData.live_times`): one acknowledged and not found is a lost write. The reset after the run
(`reclab.run.live_reset`) deletes the probe's events with the stream's.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec

from reclab.errors import ServiceError
from reclab.results.faults import LOST_WRITES_FLAG, PROBE_RATE, PROBE_TIMEOUT_S, UNCHECKED_WRITES_FLAG, WriteTally
from reclab.results.record import RunRecord
from reclab.run.live_reset import LiveData
from workloads.dataset import DATASET_NOW, Dataset
from workloads.spec import LoadModel
from workloads.writes import CONTENT_TYPE, WRITE_ROUTE

RATE, TIMEOUT_S = PROBE_RATE, PROBE_TIMEOUT_S
IN_FLIGHT = 4  # at most this many writes waiting for an answer; a due write beyond it is skipped
TS_OFFSET = 10_000_000  # after the dataset's clock: no loaded event is that late
RUN_SPAN = 10_000  # event numbers per run: no two runs of a bench write the same event
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ACKNOWLEDGED, FAILED = "ack", "failed"


@dataclass(frozen=True)
class ProbeSubject:
    """Who the probe writes for, and from which time its events are numbered."""

    user: int
    item: int
    first_ts: int

    def for_run(self, sequence: int) -> ProbeSubject:
        """The subject of the bench's `sequence`-th run: its own span of times."""
        return ProbeSubject(self.user, self.item, self.first_ts + sequence * RUN_SPAN)


def probe_subject(dataset: Dataset) -> ProbeSubject:
    """The dataset's first user and item, numbered from its clock + TS_OFFSET."""
    meta = dataset.collections.get("meta") or [{}]
    clock = int(meta[0].get("now", DATASET_NOW))
    user = dataset.collections["users"][0]["_id"]
    item = dataset.collections["items"][0]["_id"]
    return ProbeSubject(user, item, clock + TS_OFFSET)


class WriteProbe:
    """Sends the subject's events to `base_url` from `start()` for `duration_s` (or until `stop()`),
    and keeps what each got: `outcomes` maps an event's ts to `ack`, an HTTP status, or `failed`."""

    def __init__(self, base_url: str, subject: ProbeSubject, duration_s: float, *, rate: float = RATE,
                 timeout_s: float = TIMEOUT_S) -> None:  # fmt: skip
        address = urlsplit(base_url)
        if address.hostname not in LOOPBACK or address.port is None:
            raise ValueError(f"the write probe writes only to a server on this machine's loopback, not {base_url}")
        self.host, self.port = address.hostname, address.port
        self.subject = subject
        self.duration_s = duration_s
        self.rate = rate
        self.timeout_s = timeout_s
        self.outcomes: dict[int, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="write-probe")
        self._in_flight = threading.BoundedSemaphore(IN_FLIGHT)
        self._thread = threading.Thread(target=self._run, name="write-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and wait for the writes in flight (each bounded by its timeout)."""
        self._stop.set()
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout=self.timeout_s + 1)
        self._pool.shutdown(wait=True)

    def _run(self) -> None:
        started = time.monotonic()
        for number in range(min(RUN_SPAN, int(self.duration_s * self.rate) + 1)):
            due = started + number / self.rate
            if self._stop.wait(max(0.0, due - time.monotonic())) or due > started + self.duration_s:
                return
            if self._in_flight.acquire(blocking=False):
                self._pool.submit(self._send, self.subject.first_ts + number)

    def _send(self, ts: int) -> None:
        body = msgspec.json.encode({"user": self.subject.user, "item": self.subject.item, "kind": "view", "ts": ts})
        outcome = FAILED
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            connection.request("POST", WRITE_ROUTE, body, {"Content-Type": CONTENT_TYPE})
            response = connection.getresponse()
            answer = response.read()
            outcome = str(response.status)
            if response.status == 200 and _accepted(answer) == 1:
                outcome = ACKNOWLEDGED
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
            with self._lock:
                self.outcomes[ts] = outcome
            self._in_flight.release()


def _accepted(answer: bytes) -> int | None:
    try:
        reply = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        return None
    return reply.get("accepted") if isinstance(reply, dict) else None


def tally(outcomes: dict[int, str], stored: set[int] | None) -> WriteTally:
    """What the probe saw, against the times of its events found in the database (`stored`; None:
    they could not be looked up)."""
    acknowledged = {ts for ts, outcome in outcomes.items() if outcome == ACKNOWLEDGED}
    refused: dict[str, int] = {}
    for outcome in outcomes.values():
        if outcome not in (ACKNOWLEDGED, FAILED):
            refused[outcome] = refused.get(outcome, 0) + 1
    return WriteTally(
        sent=len(outcomes),
        acknowledged=len(acknowledged),
        refused=dict(sorted(refused.items())),
        failed=sum(outcome == FAILED for outcome in outcomes.values()),
        lost=None if stored is None else len(acknowledged - stored),
        stored_unacknowledged=0 if stored is None else len(stored & (set(outcomes) - acknowledged)),
    )


def check_writes(probe: WriteProbe, live: LiveData) -> WriteTally:
    """Stop the probe, look its acknowledged writes up, and count them."""
    probe.stop()
    subject = probe.subject
    try:
        stored = live.live_times(subject.user, subject.first_ts)
    except ServiceError as error:
        print(f"    write probe: {error}", file=sys.stderr, flush=True)
        return tally(probe.outcomes, None)
    return tally(probe.outcomes, {ts for ts in stored if ts < subject.first_ts + RUN_SPAN})


def probe_duration_s(load: LoadModel) -> float:
    """How long the probe writes: from the server's start, as long as the run's first window (the
    fault's), so that it ends before the server is stopped."""
    return load.phases[0].duration_s


def describe(writes: WriteTally) -> str:
    """The tally in a line."""
    refused = ", ".join(f"{status} x{n}" for status, n in writes.refused.items()) or "none"
    lost = "unknown (not looked up)" if writes.lost is None else str(writes.lost)
    stored = f", {writes.stored_unacknowledged} stored unacknowledged" if writes.stored_unacknowledged else ""
    return (f"{writes.sent} sent, {writes.acknowledged} acknowledged, refused {refused}, {writes.failed} failed, "
            f"lost {lost}{stored}")  # fmt: skip


def with_writes(record: RunRecord, writes: WriteTally) -> RunRecord:
    """The run's record with the probe's tally: in its fault record and in the bench log, and flagged
    when an acknowledged write was lost or not looked up."""
    print(f"    write probe: {describe(writes)}", file=sys.stderr, flush=True)
    flags = set(record.flags)
    if writes.lost:
        flags.add(LOST_WRITES_FLAG)
    if writes.lost is None:
        flags.add(UNCHECKED_WRITES_FLAG)
    fault = record.fault
    if fault is not None:
        fault = msgspec.structs.replace(fault, writes=writes)
    return msgspec.structs.replace(record, flags=sorted(flags), fault=fault)
