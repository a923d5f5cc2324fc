"""`reclab bench --target URL`: the stream against a server the lab did not start. Only this machine;
what the lab cannot read (the server's CPU and counters) is marked unknown, in the results and in the
report; the rest of the record is what a bench run has."""

from __future__ import annotations

from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from reclab.cli import main
from reclab.commands.bench import BenchArgs, bench
from reclab.errors import UsageError
from reclab.host.ports import free_port
from reclab.host.processes import ProcessGroup
from reclab.report.build import build_report
from reclab.results.file import read_results
from reclab.run.server import start_server
from reclab.run.target import UNKNOWN, target_url
from reclab.services.start import Endpoints
from servers.core.variant import Variant
from tests.conftest import PATIENT, TINY_SPEC
from tests.test_bench import tiny_bench


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.1.2.3:8000", "this machine only"),
        ("http://example.com", "this machine only"),
        ("https://127.0.0.1:8000", "base URL"),
        ("127.0.0.1:8000", "base URL"),
        ("http://127.0.0.1:8000/api", "give no path"),
        ("http://127.0.0.1:{free}", "nothing accepts connections"),  # a port chosen when the test runs
        ("http://127.0.0.1:99999", "not a URL"),
        ("http://127.0.0.1:abc", "not a URL"),
        ("http://[::1", "not a URL"),
    ],
)
def test_a_target_must_be_a_listening_server_on_this_machine(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        target_url(url.format(free=free_port()))


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://[::1"])
def test_a_malformed_target_is_a_one_line_usage_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--target", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"reclab: error: --target {url}: not a URL")


def test_a_target_bench_refuses_flags_about_servers_it_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--target"):
        tiny_bench(tmp_path, target="http://127.0.0.1:1", matrix="frameworks")


@pytest.mark.slow
def test_a_target_bench_measures_the_lab_side_and_marks_the_server_side_unknown(services: Endpoints, tmp_path: Path) -> None:
    with ProcessGroup() as group:
        server = start_server(group, "tornado", Variant(cache="local"), services, tmp_path, limits=PATIENT)
        code = bench(BenchArgs(spec=TINY_SPEC, quick=True, repeats=2, out=tmp_path / "bench", target=server.base_url))
        assert code == 0
    records = read_results(tmp_path / "bench" / "results.jsonl")
    assert [r.kind for r in records] == ["target", "target"] and all(r.status == "ok" for r in records)
    assert {r.bench.target for r in records} == {server.base_url} and records[0].bench.matrix == "target"
    for record in records:
        assert record.warmup is not None and record.warmup.ok == record.warmup.requests
        for phase in record.phases:
            assert phase.ok > 0 and phase.throughput_rps > 0 and phase.error_count == 0
            assert HdrHistogram.decode(phase.hdr).get_total_count() == phase.ok
            assert phase.unknown == list(UNKNOWN)
            assert phase.server_cpu_ms_per_request is None and phase.served == 0 and phase.cache_hit_ratio is None
            assert "server" not in phase.utilisation and "server" not in phase.cpu.processes
            assert phase.cpu.processes["generator.0"] > 0 and "generator" in phase.utilisation
            assert phase.bottleneck != "server"
    md, _ = build_report(tmp_path / "bench")
    text = md.read_text()
    assert f"Target {server.base_url}" in text and "**Unknown:**" in text and "`server_cpu_ms_per_request`" in text
