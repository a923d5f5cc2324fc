"""asv's published site offline: the CDN tags of asv's index.html pointed to the shipped npm copies, and a
real (headless Chromium) visit of a tiny three-commit asv history, opened from a file with the network
blocked, that draws its flot chart with no console error and no request. Also the browser harness
itself (tests/browser.py): it records what a page asks of the network and the errors it logs.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reclab.report.asv_offline import (
    DATA,
    MANIFEST,
    MARKER,
    SHIM,
    STATIC,
    AsvSiteError,
    localise_tags,
    make_offline,
    vendor_files,
)
from tests.browser import offline_page

ASV_INDEX = Path(str(importlib.resources.files("asv") / "www" / "index.html"))  # asv 0.6's page, as `asv publish` copies it
VALUES = [4.0, 7.0, 12.0]  # the tiny benchmark's value at each of the three commits
BENCHMARK = "bench_tiny.track_value"
TINY_BENCHMARK = """from pathlib import Path


def track_value():
    return float((Path(__file__).parent.parent / "value.txt").read_text())
"""
STEP_TIMEOUT_S = 120


def run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of three commits whose one benchmark tracks a value the commit changes, each
    measured by asv in this interpreter (`--python=same --set-commit-hash`), published, made offline.
    asv's machine file goes to a temporary HOME, so the machine's own asv setup plays no part."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("asv-tiny")
    repo, home = root / "repo", root / "home"
    (repo / "benchmarks").mkdir(parents=True)
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "reclab",
        "GIT_AUTHOR_EMAIL": "reclab@example.invalid",
        "GIT_COMMITTER_NAME": "reclab",
        "GIT_COMMITTER_EMAIL": "reclab@example.invalid",
    }
    config = {
        "version": 1,
        "project": "tiny",
        "project_url": "https://example.invalid/tiny",
        "repo": ".",
        "branches": ["main"],
        "environment_type": "existing",
        "benchmark_dir": "benchmarks",
        "env_dir": ".asv/env",
        "results_dir": ".asv/results",
        "html_dir": ".asv/html",
    }
    (repo / "asv.conf.json").write_text(json.dumps(config))
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / "benchmarks" / "bench_tiny.py").write_text(TINY_BENCHMARK)  # the same source at every commit: one benchmark version
    run(["git", "init", "-q", "-b", "main"], repo, env)
    commits = []
    for day, value in enumerate(VALUES, start=1):
        (repo / "value.txt").write_text(f"{value}\n")
        run(["git", "add", "-A"], repo, env)
        dated = {**env, "GIT_AUTHOR_DATE": f"2024-01-0{day}T12:00:00", "GIT_COMMITTER_DATE": f"2024-01-0{day}T12:00:00"}
        run(["git", "commit", "-q", "-m", f"value {value}"], repo, dated)
        commits.append(subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=repo, env=env, text=True).strip())
    asv_command = [sys.executable, "-m", "asv"]
    run([*asv_command, "machine", "--yes", "--machine", "testbox"], repo, env)
    for commit in commits:
        run(["git", "checkout", "-q", commit], repo, env)
        run([*asv_command, "run", "--python=same", "--set-commit-hash", commit, "--machine", "testbox"], repo, env)
    run([*asv_command, "publish"], repo, env)
    html = repo / ".asv" / "html"
    make_offline(html)
    return html


GRAPH_READY = "() => { const plot = $('#main-graph').data('plot'); return plot && plot.getData().length > 0; }"
NON_BLANK_PIXELS = """() => {
    const canvas = $('#main-graph canvas.flot-base')[0];
    const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    for (let i = 0; i < rgba.length; i += 4) {
        if (rgba[i + 3] && (rgba[i] < 250 || rgba[i + 1] < 250 || rgba[i + 2] < 250)) drawn++;
    }
    return drawn;
}"""


def test_the_published_site_draws_its_chart_offline_from_a_file(tiny_site: Path) -> None:
    with offline_page(tiny_site / "index.html") as visit:
        page = visit.page
        page.wait_for_function(
            "() => window.$ && $.asv && $.asv.main_json && $('#summarygrid-display').is(':visible')", timeout=20_000
        )
        assert page.evaluate("() => Object.keys($.asv.main_json.benchmarks)") == [BENCHMARK]
        page.evaluate(f"() => {{ window.location.hash = '#{BENCHMARK}'; }}")
        page.wait_for_function(GRAPH_READY, timeout=20_000)
        series = page.evaluate("() => $('#main-graph').data('plot').getData().map(s => s.data.map(point => point[1]))")
        assert series == [VALUES]
        assert page.evaluate(NON_BLANK_PIXELS) > 1000
        page.evaluate("() => { window.location.hash = '#summarylist'; }")  # the table that stupidtable sorts
        page.wait_for_selector("#summarylist-display table tbody tr", timeout=20_000)
        page.click("#summarylist-display table thead th:first-child")
        assert visit.console_errors == []
        assert visit.requests == []


def test_asv_page_as_published_asks_the_network_and_the_harness_sees_it(tmp_path: Path) -> None:
    """The harness's own check: asv's untouched index.html tries its CDNs (all blocked and recorded)."""
    shutil.copy(ASV_INDEX, tmp_path / "index.html")
    with offline_page(tmp_path / "index.html") as visit:
        assert "https://code.jquery.com/jquery-3.3.1.min.js" in visit.requests
        assert any(url.startswith("https://cdnjs.cloudflare.com/") for url in visit.requests)
        assert visit.console_errors


def test_the_harness_records_console_errors_and_uncaught_exceptions(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><img src='http://example.invalid/a.png'><script>console.error('told'); notDefined();</script></body></html>"
    )
    with offline_page(page, width=800, height=600) as visit:
        assert visit.page.viewport_size == {"width": 800, "height": 600}
        assert "told" in visit.console_errors
        assert any("notDefined" in error for error in visit.console_errors)
        assert visit.requests == ["http://example.invalid/a.png"]


def test_every_cdn_tag_points_to_a_local_copy() -> None:
    html = localise_tags(ASV_INDEX.read_text(), vendor_files())
    for file in vendor_files():
        if file.replaces:
            assert file.replaces not in html
    for attribute in ("integrity=", "crossorigin=", "referrerpolicy=", "cdn.", "code.jquery.com"):
        assert attribute not in html
    assert html.count('src="vendor/') == 9 and 'href="vendor/bootstrap/css/bootstrap.min.css"' in html
    assert html.index('src="vendor/jquery/jquery.min.js"') < html.index(f'src="{SHIM}"') < html.index('src="asv.js"')
    assert html.count(MARKER) == 1
    assert 'onerror="js_load_failure()"' in html  # the rest of a tag is kept


def test_a_missing_cdn_tag_is_a_clear_error() -> None:
    html = ASV_INDEX.read_text().replace(
        "https://code.jquery.com/jquery-3.3.1.min.js", "https://code.jquery.com/jquery-3.7.1.min.js"
    )
    with pytest.raises(AsvSiteError, match=r"no tag loading https://code\.jquery\.com/jquery-3\.3\.1\.min\.js.*asv 0\.6"):
        localise_tags(html, vendor_files())


def test_a_script_still_loaded_from_the_network_is_an_error() -> None:
    html = ASV_INDEX.read_text().replace("</head>", '<script src="https://cdn.example.invalid/new.js"></script></head>')
    with pytest.raises(AsvSiteError, match=r"still loads https://cdn\.example\.invalid/new\.js"):
        localise_tags(html, vendor_files())


def test_making_a_site_offline_twice_refreshes_its_data_only(tmp_path: Path) -> None:
    shutil.copy(ASV_INDEX, tmp_path / "index.html")
    (tmp_path / "index.json").write_text('{"project": "x"}')
    first = make_offline(tmp_path)
    html = (tmp_path / "index.html").read_text()
    (tmp_path / "index.json").write_text('{"project": "y"}')
    second = make_offline(tmp_path)
    assert first.rewritten and not second.rewritten
    assert (tmp_path / "index.html").read_text() == html
    assert '"index.json":{"project": "y"}' in (tmp_path / DATA).read_text()
    assert (tmp_path / "vendor" / "bootstrap" / "LICENSE").is_file() and (tmp_path / "vendor" / "manifest.json").is_file()


def test_no_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AsvSiteError, match="run `asv publish` first"):
        make_offline(tmp_path)


def test_the_shipped_copies_match_their_manifest_and_carry_their_licence() -> None:
    packages = json.loads(MANIFEST.read_text())["packages"]
    assert {p["npm"] for p in packages} == {"jquery", "flot", "flot-orderbars", "stupid-table-plugin", "blueimp-md5", "bootstrap"}
    for package in packages:
        assert (STATIC / package["license_file"]["path"]).is_file()
        for file in package["files"]:
            assert hashlib.sha256((STATIC / file["path"]).read_bytes()).hexdigest() == file["sha256"], file["path"]
