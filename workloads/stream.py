"""Deterministic request streams: the same spec and seed give the same sequence of request paths,
identical across variants and repeats. `stream_hash` fingerprints a stream. A spec whose requests'
`source` is "trace" replays the dataset's events instead (`trace_stream`)."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from servers.core.rules import RuleBook
from servers.core.tomlcheck import SpecError
from workloads.dataset import Dataset
from workloads.loadplan import format_stream
from workloads.spec import RequestMix, WorkloadSpec


@dataclass(frozen=True)
class RequestStream:
    paths: list[str]
    hash: str
    gaps: list[float] | None = None  # replayed in time order: seconds since the entry before, sped up

    def text(self) -> str:
        """The stream's file (workloads.loadplan.parse_stream reads it)."""
        return format_stream(self.paths, self.gaps)


class KeyChooser:
    """Draws ids with the configured popularity: uniform, zipfian(constant) or hotspot."""

    def __init__(self, ids: Sequence[int], mix: RequestMix, rng: random.Random) -> None:
        order = list(ids)
        rng.shuffle(order)  # which ids are popular is itself seeded
        self.ids = order
        if mix.popularity == "zipfian":
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
    mix = spec.requests
    if mix.source == "trace":
        return trace_stream(mix, dataset)
    rng = random.Random(mix.seed)
    items = KeyChooser([d["_id"] for d in dataset.collections["items"]], mix, rng)
    warm_ids = [u["_id"] for u in dataset.collections["users"] if not u["cold"]]
    cold_ids = [u["_id"] for u in dataset.collections["users"] if u["cold"]]
    warm = KeyChooser(warm_ids or cold_ids, mix, rng)
    cold = KeyChooser(cold_ids, mix, rng) if cold_ids else warm
    supernodes = dataset.collections["meta"][0].get("supernodes", []) if mix.supernode_request_share else []
    paths = []
    for _ in range(mix.count):
        if rng.random() < mix.user_share:
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


def trace_stream(mix: RequestMix, dataset: Dataset) -> RequestStream:
    """The dataset's events as requests: in time order (ties by event id), the first `count`, with the
    recorded gaps divided by `speedup`; or `count` of them drawn with the seed (`order = "sample"`).
    Each becomes a personalised request for its user (a `user_share` of them, drawn with the seed),
    else a request for its item naming its user; services are drawn by their weights."""
    rng = random.Random(mix.seed)
    events = sorted(dataset.collections["events"], key=lambda e: (e["ts"], e["_id"]))
    if not events:
        raise SpecError(dataset.params.source, "events", "the dataset holds no events to replay")
    chosen = events[: mix.count] if mix.order == "time" else [rng.choice(events) for _ in range(mix.count)]
    paths = []
    for event in chosen:
        if rng.random() < mix.user_share:
            paths.append(f"/recommend/users/{event['user']}?service={_weighted_choice(rng, mix.user_services)}")
        else:
            service = _weighted_choice(rng, mix.item_services)
            paths.append(f"/recommend/items/{event['item']}?service={service}&user={event['user']}")
    gaps = None
    if mix.order == "time":
        gaps = [0.0] + [(b["ts"] - a["ts"]) / mix.speedup for a, b in itertools.pairwise(chosen)]
    text = format_stream(paths, gaps)
    return RequestStream(paths, hashlib.sha256(text.encode()).hexdigest()[:16], gaps)
