"""Deterministic request streams: the same spec and seed give the same sequence of entries, identical
across variants and repeats; a stream's `hash` fingerprints it. An entry is a read (a GET path) or a
write (`POST /events {...}`, workloads.writes). A generated stream holds a `write_share` of writes,
events drawn like the dataset's (`build_stream`). A spec whose requests' `source` is "trace" replays
the dataset's events instead (`trace_stream`), with their recorded gaps: in time order, each one as a
write, a share of them followed by a read (or each as a read only, `trace_writes = false`)."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from servers.core.rules import RuleBook
from servers.core.tomlcheck import SpecError
from workloads.dataset import DATASET_NOW, KIND_WEIGHTS, KINDS, Dataset
from workloads.loadplan import format_stream
from workloads.spec import RequestMix, WorkloadSpec
from workloads.writes import write_entry


@dataclass(frozen=True)
class RequestStream:
    paths: list[str]  # the entries: GET paths, and writes (workloads.writes)
    hash: str
    gaps: list[float] | None = None  # replayed in time order: recorded seconds since the entry before

    def text(self) -> str:
        """The stream's file (workloads.loadplan.parse_stream reads it)."""
        return format_stream(self.paths, self.gaps)


class KeyChooser:
    """Draws ids with the configured popularity: uniform, zipfian(constant) or hotspot."""

    def __init__(self, ids: Sequence[int], mix: RequestMix, rng: random.Random, by: Sequence[float] | None = None) -> None:
        """`by`: a weight per id (in the order of `ids`) instead of the configured popularity."""
        order = list(ids)
        rng.shuffle(order)  # which ids are popular is itself seeded
        self.ids = order
        if by is not None:
            weight = dict(zip(ids, by, strict=True))
            weights = [weight[i] for i in order]
        elif mix.popularity == "zipfian":
            weights = [1.0 / (rank + 1) ** mix.zipf_constant for rank in range(len(order))]
        elif mix.popularity == "hotspot":
            hot = max(1, round(len(order) * mix.hotspot_fraction))
            cold = len(order) - hot
            weights = [mix.hotspot_share / hot] * hot + ([(1 - mix.hotspot_share) / cold] * cold if cold else [])
        else:
            weights = [1.0] * len(order)
        self.cumulative = list(itertools.accumulate(weights))

    def draw(self, rng: random.Random) -> int:
        point = rng.random() * self.cumulative[-1]
        return self.ids[min(bisect.bisect_right(self.cumulative, point), len(self.ids) - 1)]


def _weighted_choice(rng: random.Random, weights: dict[str, float]) -> str:
    names = sorted(weights)
    return rng.choices(names, [weights[n] for n in names])[0]


def check_services(spec: WorkloadSpec, rules: RuleBook) -> None:
    """Every service the stream asks for must exist and match its route."""
    for key, services, kind in (
        ("item_services", spec.requests.item_services, "similar"),
        ("user_services", spec.requests.user_services, "personal"),
    ):
        for service in services:
            rule = rules.rules.get(service)
            if rule is None:
                raise SpecError(spec.path, f"requests.{key}.{service}", f"no such service in {rules.source}")
            if rule.type != kind:
                raise SpecError(spec.path, f"requests.{key}.{service}", f"is a {rule.type!r} service, not {kind!r}")


def build_stream(spec: WorkloadSpec, dataset: Dataset) -> RequestStream:
    """The spec's stream: `count` entries drawn from the request mix. With a `write_share`, whether an
    entry is a write and what it writes are drawn by a generator of their own (`WriteDrawer`); without
    one, the stream is the read-only stream of earlier versions, draw for draw."""
    mix = spec.requests
    if mix.source == "trace":
        return trace_stream(mix, dataset, spec.path)
    rng = random.Random(mix.seed)
    items = KeyChooser([d["_id"] for d in dataset.collections["items"]], mix, rng)
    warm_ids = [u["_id"] for u in dataset.collections["users"] if not u["cold"]]
    cold_ids = [u["_id"] for u in dataset.collections["users"] if u["cold"]]
    activity = None
    if mix.user_popularity == "activity" and warm_ids:
        events = Counter(e["user"] for e in dataset.collections["events"])
        activity = [float(events[u]) for u in warm_ids]
    warm = KeyChooser(warm_ids or cold_ids, mix, rng, activity)
    cold = KeyChooser(cold_ids, mix, rng) if cold_ids else warm
    supernodes = dataset.collections["meta"][0].get("supernodes", []) if mix.supernode_request_share else []
    writes = WriteDrawer(mix, dataset, warm) if mix.write_share else None
    paths = []
    for position in range(mix.count):
        if writes is not None and (entry := writes.entry(position)) is not None:
            paths.append(entry)
        elif rng.random() < mix.user_share:
            user = (cold if rng.random() < mix.cold_user_share else warm).draw(rng)
            service = _weighted_choice(rng, mix.user_services)
            paths.append(f"/recommend/users/{user}?service={service}")
        else:
            item = rng.choice(supernodes) if supernodes and rng.random() < mix.supernode_request_share else items.draw(rng)
            service = _weighted_choice(rng, mix.item_services)
            caller = f"&user={warm.draw(rng)}" if rng.random() < mix.with_user_share else ""
            paths.append(f"/recommend/items/{item}?service={service}{caller}")
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    return RequestStream(paths, digest)


class WriteDrawer:
    """A generated stream's writes, from a generator of their own (seeded from the stream's seed): an
    entry is a write with probability `write_share`; its user is drawn as personalised requests draw
    warm users (`warm`: in proportion to their events under user_popularity = "activity"), its item in
    proportion to the item's events in the dataset, its kind with the generator's kind mix
    (workloads.dataset.KIND_WEIGHTS), and its ts is the dataset's clock (`now`) plus the entry's
    position in seconds: the newest event of every history, and no two writes at the same second."""

    def __init__(self, mix: RequestMix, dataset: Dataset, warm: KeyChooser) -> None:
        self.rng = random.Random(f"{mix.seed}-writes")
        self.share = mix.write_share
        self.warm = warm
        counts = Counter(e["item"] for e in dataset.collections["events"])
        ids = [d["_id"] for d in dataset.collections["items"]]
        weights = [float(counts[i]) for i in ids] if counts else None
        self.items = KeyChooser(ids, mix, self.rng, weights)
        self.now = int(dataset.collections["meta"][0].get("now", DATASET_NOW))

    def entry(self, position: int) -> str | None:
        """The write at `position`, or None if that entry is a read."""
        if self.rng.random() >= self.share:
            return None
        user, item = self.warm.draw(self.rng), self.items.draw(self.rng)
        kind = self.rng.choices(KINDS, KIND_WEIGHTS)[0]
        return write_entry({"user": user, "item": item, "kind": kind, "ts": self.now + position})


def trace_stream(mix: RequestMix, dataset: Dataset, spec_path: str = "") -> RequestStream:
    """The dataset's events as entries: in time order (ties by event id) from `start` (or
    `start_time`), `count` of them, with their recorded gaps (`spread_moments`); or `count` of them
    drawn with the seed (`order = "sample"`). In time order with `trace_writes`, each event is written
    at its recorded moment (its own user, item, kind and ts), and a `read_after_share` of them are
    followed at the same moment (gap 0) by a read; otherwise each event becomes a read. A read is a
    personalised request for the event's user (a `user_share` of them, drawn with the seed), else a
    request for its item naming its user; services are drawn by their weights."""
    rng = random.Random(mix.seed)
    events = sorted(dataset.collections["events"], key=lambda e: (e["ts"], e["_id"]))
    if not events:
        raise SpecError(dataset.params.source, "events", "the dataset holds no events to replay")
    if mix.order == "time":
        first = replay_start(mix, [e["ts"] for e in events], spec_path or dataset.params.source)
        chosen = events[first : first + mix.count]
    else:
        chosen = [rng.choice(events) for _ in range(mix.count)]
    paths: list[str] = []
    owner: list[int] = []  # the event each entry comes from
    for number, event in enumerate(chosen):
        if mix.replays_writes:
            paths.append(write_entry(event))
            owner.append(number)
            if rng.random() >= mix.read_after_share:
                continue
        paths.append(_read_of(rng, mix, event))
        owner.append(number)
    gaps = None
    if mix.order == "time":
        moments = spread_moments([e["ts"] for e in chosen])
        at = [moments[number] for number in owner]
        gaps = [0.0] + [b - a for a, b in itertools.pairwise(at)]
    text = format_stream(paths, gaps)
    return RequestStream(paths, hashlib.sha256(text.encode()).hexdigest()[:16], gaps)


def _read_of(rng: random.Random, mix: RequestMix, event: dict[str, Any]) -> str:
    """The read a replayed event becomes: for its user (a `user_share` of them), else for its item naming the user."""
    if rng.random() < mix.user_share:
        return f"/recommend/users/{event['user']}?service={_weighted_choice(rng, mix.user_services)}"
    service = _weighted_choice(rng, mix.item_services)
    return f"/recommend/items/{event['item']}?service={service}&user={event['user']}"


def replay_start(mix: RequestMix, times: list[int], source: str) -> int:
    """The position of the stream's first event in the time-ordered log: `start`, or the first event
    at or after `start_time`."""
    if mix.start_time:
        first = bisect.bisect_left(times, mix.start_time)
        if first == len(times):
            raise SpecError(source, "requests.start_time", f"is after the log's last event ({times[-1]})")
        return first
    if mix.start >= len(times):
        raise SpecError(source, "requests.start", f"is beyond the log's {len(times)} events")
    return mix.start


def spread_moments(times: list[int]) -> list[float]:
    """Whole-second timestamps as moments: the k events that share a second are spread evenly across
    it, in log order (the j-th at t + j/k), so that a person's burst of ratings stays a burst without
    arriving all at once."""
    moments: list[float] = []
    for second, group in itertools.groupby(times):
        k = len(list(group))
        moments += [second + j / k for j in range(k)]
    return moments
