"""Rules that carry code: escapes refused when the rule file is read (file, service, line); runaway
code stopped at run time, skipped and counted while the answer still goes out; filters and scores
changing answers as worked out by hand (tests/handmade.py); the price cap and boost written as code
answering exactly as written declaratively, in process and over HTTP on every framework."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from reclab.host.processes import Forker, ProcessGroup
from reclab.run.server import start_server
from reclab.services.start import Endpoints
from servers.core.rule_code import MAX_STEPS, OverBudget, compile_code
from servers.core.rules import PRICED_RULES, SpecError, load_rules
from servers.core.runtime import Runtime
from servers.core.variant import SELF_SERVED, Variant
from tests.conftest import open_core
from tests.handmade import HANDMADE_DB
from tests.requests_sample import answers
from tests.test_parity import BASELINE, REQUESTS, fetch

RULE = '[services.s]\ntype = "similar"\nwhere = {{ status = "ok" }}\nfallback = "none"\n{extra}code = """\n{code}"""\n'


def rule_file(tmp_path: Path, code: str, extra: str = "") -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULE.format(code=code, extra=extra))
    return path


def filter_returning(expression: str) -> str:
    return f"@filter\ndef f(item, ctx):\n    return {expression}\n"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (filter_returning("__import__('os')"), "names starting with '_' are not allowed: '__import__'"),
        (filter_returning("().__class__.__base__.__subclasses__()"), "names starting with '_' are not allowed: '__subclasses__'"),
        (filter_returning("open('/etc/passwd')"), "open() cannot be called"),
        (filter_returning("getattr(item, '__dict__')"), "getattr() cannot be called"),
        (filter_returning("eval('1')"), "eval() cannot be called"),
        (filter_returning("exec('1')"), "exec() cannot be called"),
        (filter_returning("__builtins__"), "names starting with '_'"),
        (filter_returning("item.__class__"), "names starting with '_'"),
        (filter_returning("os"), "name 'os' is not allowed"),
        (filter_returning("'%999999999d' % 1"), "string formatting is not allowed"),
        ("@filter\ndef f(item, ctx):\n    import os\n    return True\n", "import is not allowed"),
        ("@filter\ndef f(item, ctx):\n    while True:\n        pass\n", "while loops are not allowed"),
        ("@filter\ndef f(item, ctx):\n    global x\n    return True\n", "global is not allowed"),
        ("@filter\ndef f(item, ctx):\n    class A:\n        pass\n", "class definitions are not allowed"),
        ("@filter\ndef f(item, ctx):\n    item['price'] = 0\n    return True\n", "only names can be assigned to"),
        ("@filter\ndef f(item, ctx):\n    item.update({})\n    return True\n", "a statement must assign, test, loop or return"),
        ("@filter\ndef f(item, ctx):\n    return item.pop('price')\n", "pop() cannot be called"),
        ("@filter\ndef f(item, ctx):\n    try:\n        return 1\n    finally:\n        pass\n", "Try is not allowed"),
        ("def f(item, ctx):\n    return True\n", "needs exactly one decorator"),
        ("@score\ndef f(item, ctx):\n    return 1.0\n", "takes (item, score, ctx)"),
        ("import os\n", "only @filter and @score functions may be at the top level"),
        ("@filter\ndef f(item, ctx)\n    return True\n", "syntax error"),
    ],
)
def test_code_that_may_not_run_is_refused_with_file_service_and_line(tmp_path: Path, code: str, reason: str) -> None:
    path = rule_file(tmp_path, code)
    with pytest.raises(SpecError) as error:
        load_rules(path)
    message = str(error.value)
    assert message.startswith(f"{path}: services.s.code: line ") and reason in message, message


def test_a_refused_line_is_the_one_at_fault(tmp_path: Path) -> None:
    code = "@filter\ndef f(item, ctx):\n    x = 1\n    y = open('x')\n    return True\n"
    with pytest.raises(SpecError, match=r"code: line 4 of the code \(line 9 of the file\): open\(\) cannot be called"):
        load_rules(rule_file(tmp_path, code))


def test_data_passed_in_cannot_be_changed_and_runaway_code_is_bounded() -> None:
    runaway = [
        "[0] * 10**9",  # a huge allocation
        "10**10**10",
        "'x' * 100000 * 100",
        "[[0] * 50000 for i in range(100)]",
        "sum(1 for i in range(10**6))",
        "max(x for x in range(100000) for y in range(100000))",  # an endless loop, bounded
    ]
    for expression in runaway:
        (function,) = compile_code(f"@filter\ndef f(item, ctx):\n    x = {expression}\n    return True\n", "<test>")
        function.meter.begin(float("inf"))
        with pytest.raises(OverBudget, match=r"above|more than"):
            function.call({}, None)
    assert MAX_STEPS <= 100_000


async def handmade_with(services: Endpoints, tmp_path: Path, code: str, extra: str = "") -> Runtime:
    return await open_core(services, Variant(), rules=rule_file(tmp_path, code, extra), db_name=HANDMADE_DB)


async def ids_of(runtime: Runtime, query: str = "") -> list[int]:
    reply = await runtime.api.recommend_items("1", query)
    assert reply.status == 200, reply.body
    return [item["id"] for item in orjson.loads(reply.body)["items"]]


async def test_a_filter_and_a_score_change_answers_as_expected(services: Endpoints, tmp_path: Path) -> None:
    """Similar to 1: 2 (.9), 3 (.8), 5 (.6) pass `status = ok` (prices are the ids). A filter on the
    price keeps 3 and 5; a score function lifts 5 above both; one that reads the caller's activity
    (user 1 disliked 3 and 5) lifts those two."""
    cases = [
        (filter_returning('item["price"] >= 3'), "", [3, 5]),
        ("@score\ndef lift(item, score, ctx):\n    return score + 1 if item['_id'] == 5 else score\n", "", [5, 2, 3]),
        (
            "@score\ndef up(item, score, ctx):\n    return score + 1 if item['_id'] in ctx.activity.get('dislike', ()) else score\n",  # noqa: E501
            "user=1",
            [3, 5, 2],
        ),
    ]
    for code, query, expected in cases:
        runtime = await handmade_with(services, tmp_path, code)
        try:
            assert await ids_of(runtime, query) == expected, code
        finally:
            await runtime.close()
    plain = await handmade_with(services, tmp_path, filter_returning("True"))
    try:
        assert await ids_of(plain) == [2, 3, 5]
    finally:
        await plain.close()


async def test_code_over_its_budget_is_skipped_and_counted_and_the_answer_goes_out(services: Endpoints, tmp_path: Path) -> None:
    """A filter that runs out of time fails closed: it would keep every candidate, but as it could not
    decide, none is kept. A score function that fails leaves each score as it was."""
    slow = "@filter\ndef slow(item, ctx):\n    return sum(1 for i in range(100000)) > 0\n"
    failing = "@score\ndef broken(item, score, ctx):\n    return score * item['no-such-field']\n"
    runtime = await handmade_with(services, tmp_path, slow, extra="code_budget_ms = 0.5\n")
    try:
        assert await ids_of(runtime) == []
        metrics = runtime.api.metrics.snapshot()
        assert metrics["rule_code_skipped"] == 1  # once per request: then skipped for the rest of it
    finally:
        await runtime.close()
    runtime = await handmade_with(services, tmp_path, failing)
    try:
        assert await ids_of(runtime) == [2, 3, 5]
        assert runtime.api.metrics.snapshot()["rule_code_errors"] == 3  # once per candidate: each keeps its score
    finally:
        await runtime.close()


async def test_price_cap_and_boost_as_code_answer_exactly_as_written(services: Endpoints, tmp_path: Path) -> None:
    """The priced rules as written (a boost: candidates looked up a chunk at a time while one could
    still rise into the answer) and as code (no bound: all at once) give the same bodies."""
    declarative = load_rules(PRICED_RULES)
    assert any(r.max_price is not None and r.boost is not None for r in declarative.rules.values())
    written = await open_core(services, BASELINE, rules=PRICED_RULES)
    as_code = await open_core(services, BASELINE, rules=PRICED_RULES, rules_as_code=True)
    try:
        assert as_code.api.rules.version == written.api.rules.version + "+code"
        assert all(r.max_price is None and r.boost is None for r in as_code.api.rules.rules.values())
        assert await answers(as_code, REQUESTS) == await answers(written, REQUESTS)
        assert as_code.api.metrics.snapshot()["rule_code_errors"] == 0
    finally:
        await written.close()
        await as_code.close()


@pytest.mark.slow
@pytest.mark.parametrize("framework", [*SELF_SERVED, "fastapi@granian"])
async def test_rule_code_answers_identically_on_every_framework(services: Endpoints, framework: str, tmp_path: Path) -> None:
    """The shipped code service (groceries/cheap) and the priced rules as code, over HTTP, against
    the in-process answers of the rules as written."""
    cheap = [("items", str(i), "service=groceries/cheap") for i in (1, 2, 3, 5, 8, 13)]
    cheap += [("items", str(i), f"service=groceries/cheap&user={u}") for i, u in ((1, 1), (4, 2), (9, 3))]
    requests = [*REQUESTS, *cheap]
    written = await open_core(services, BASELINE, rules=PRICED_RULES)
    try:
        expected = [
            await (written.api.recommend_items if r == "items" else written.api.recommend_users)(i, q) for r, i, q in requests
        ]
    finally:
        await written.close()
    assert any(b'"count":0' not in reply.body for reply in expected[len(REQUESTS) :])
    with ProcessGroup() as group:
        coded = start_server(group, framework, BASELINE, services, tmp_path, rules=PRICED_RULES, rules_as_code=True)
        for request, reply in zip(requests, expected, strict=True):
            assert fetch(coded.base_url, *request)[:2] == (reply.status, reply.body), request
        assert coded.get_json("/health")["rules"].endswith("+code")
        assert coded.get_json("/metrics")["rule_code_errors"] == 0


@pytest.mark.parametrize("framework", [*SELF_SERVED, "starlette@uvicorn"])
def test_a_key_callback_cannot_hold_a_worker(services: Endpoints, forker: Forker, framework: str, tmp_path: Path) -> None:
    """The probe's case: a filter whose key= callback walks a long range once held a worker 1.18 s
    (200) and /health waited behind it. It is now stopped at its budget, fails closed, and is counted."""
    walk = "r = range(100000)\n    return len(sorted(range(40), key=lambda x: max(r, key=lambda y: -y))) > 0"
    rules = rule_file(tmp_path, f"@filter\ndef f(item, ctx):\n    {walk}\n")
    with ProcessGroup() as group:
        server = start_server(group, framework, BASELINE, services, tmp_path, rules=rules, forker=forker)
        for item in ("1", "2", "3"):
            status, body, _ = fetch(server.base_url, "items", item, "")
            assert status == 200 and orjson.loads(body)["count"] == 0, body
        assert server.get_json("/health")["status"] == "ok"
        assert server.get_json("/metrics")["rule_code_skipped"] == 3
