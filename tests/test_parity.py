"""Every variant answers byte-identically: all strategy x grouping x cache x driver combinations in
process over the real embedded servers, and every framework on every server over HTTP for a sample of them."""

from __future__ import annotations

import hashlib
import itertools
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from reclab.host.processes import Forker, ProcessGroup
from reclab.run.server import start_server
from reclab.services.start import Endpoints
from servers.core.variant import CACHES, DRIVERS, GROUPINGS, SELF_SERVED, STRATEGIES, Variant
from tests.conftest import PATIENT, TINY_SPEC, open_core
from tests.requests_sample import answers, sample_requests

REQUESTS = sample_requests(str(TINY_SPEC), count=85)
ALL_VARIANTS = [Variant(*combo) for combo in itertools.product(STRATEGIES, GROUPINGS, CACHES, DRIVERS)]
HTTP_SAMPLE = [  # every switch at each of its values at least once
    Variant("gather", "app", "none", "pymongo"),
    Variant("sequential", "db", "redis", "motor"),
    Variant("gather", "db", "two-level", "pymongo"),
    Variant("sequential", "app", "local", "pymongo"),
    Variant("gather", "app", "two-level", "motor"),
    Variant("sequential", "db", "none", "wire"),
]
BASELINE = Variant("sequential", "app", "none", "pymongo")
# sha256 of the baseline's statuses and bodies for REQUESTS: the answers themselves must not change
# when the server is made faster. Change it only with a change of what the recommender means to say.
ANSWERS_DIGEST = (Path(__file__).parent / "data" / "answers-tiny.sha256").read_text().split()[0]


@pytest.fixture(scope="module")
async def expected(services: Endpoints) -> list[tuple[int, bytes]]:
    runtime = await open_core(services, BASELINE)
    try:
        return await answers(runtime, REQUESTS)
    finally:
        await runtime.close()


def test_the_sample_is_big_and_varied(expected: list[tuple[int, bytes]]) -> None:
    statuses = {status for status, _ in expected}
    assert len(REQUESTS) >= 80
    assert {200, 400, 404} <= statuses
    assert any(b'"reason":"fallback"' in body for _, body in expected)


def test_the_answers_are_the_recorded_ones(expected: list[tuple[int, bytes]]) -> None:
    digest = hashlib.sha256()
    for status, body in expected:
        digest.update(b"%d\n%s\n" % (status, body))
    assert digest.hexdigest() == ANSWERS_DIGEST


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.label())
async def test_every_variant_answers_byte_identically(
    services: Endpoints, expected: list[tuple[int, bytes]], variant: Variant
) -> None:
    runtime = await open_core(services, variant)
    try:
        first = await answers(runtime, REQUESTS)  # cold caches
        second = await answers(runtime, REQUESTS)  # warm caches
    finally:
        await runtime.close()
    for index, request in enumerate(REQUESTS):
        assert first[index] == expected[index], request
        assert second[index] == expected[index], request


def get(url: str) -> tuple[int, bytes, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Server-Timing")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Server-Timing")


def fetch(base_url: str, route: str, raw_id: str, query: str) -> tuple[int, bytes, str | None]:
    return get(f"{base_url}/recommend/{route}/{raw_id}" + (f"?{query}" if query else ""))


@pytest.mark.slow
@pytest.mark.parametrize("framework", SELF_SERVED)  # FastAPI and Starlette on uvicorn and Granian: test_parity_asgi.py
@pytest.mark.parametrize("variant", HTTP_SAMPLE, ids=lambda v: v.label())
def test_frameworks_answer_byte_identically_over_http(
    services: Endpoints,
    forker: Forker,
    expected: list[tuple[int, bytes]],
    framework: str,
    variant: Variant,
    tmp_path: Path,
) -> None:
    check_over_http(services, forker, expected, framework, variant, tmp_path)


def check_over_http(
    services: Endpoints, forker: Forker, expected: list[tuple[int, bytes]], framework: str, variant: Variant, tmp_path: Path
) -> None:
    """Every request of the sample over HTTP to `framework` (a stack name) serving `variant`, forked as a bench forks it."""
    with ProcessGroup() as group:
        server = start_server(group, framework, variant, services, tmp_path, limits=PATIENT, forker=forker)
        for index, request in enumerate(REQUESTS):
            status, body, timing = fetch(server.base_url, *request)
            assert (status, body) == expected[index], request
            assert timing and timing.startswith("db;dur=")
        metrics = server.get_json("/metrics")
        assert metrics["requests"] == len(REQUESTS)
        for path in ("/nope", "/recommend/items", "/recommend/items/7/", "/health/"):
            status, body, _ = get(server.base_url + path)
            assert status == 404 and body == b'{"error":"not_found","detail":"no route for GET %s"}' % path.encode(), path
        assert metrics["framework"] == framework and metrics["variant"] == variant.as_dict()
