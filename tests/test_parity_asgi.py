"""FastAPI and Starlette on uvicorn and on Granian answer the parity sample (85 requests) byte-identically
for each of the six HTTP sample variants (a file of its own, so that the test runners share the work)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reclab.host.processes import Forker
from reclab.services.start import Endpoints
from servers.core.variant import SELF_SERVED, STACKS, Variant
from tests.test_parity import HTTP_SAMPLE, check_over_http, expected  # noqa: F401  (expected: the fixture)


@pytest.mark.slow
@pytest.mark.parametrize("framework", [s for s in STACKS if s not in SELF_SERVED])
@pytest.mark.parametrize("variant", HTTP_SAMPLE, ids=lambda v: v.label())
def test_asgi_stacks_answer_byte_identically_over_http(
    services: Endpoints,
    forker: Forker,
    expected: list[tuple[int, bytes]],  # noqa: F811
    framework: str,
    variant: Variant,
    tmp_path: Path,
) -> None:
    check_over_http(services, forker, expected, framework, variant, tmp_path)
