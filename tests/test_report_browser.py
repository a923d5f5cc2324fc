"""The report page in a real browser (headless Chromium, network blocked): it loads nothing from the
network and logs no error, answers in its first screen, and its charts hover and toggle."""

from __future__ import annotations

from pathlib import Path

import pytest

from reclab.report.build import build_report
from tests.browser import PageVisit, offline_page
from tests.synthetic import result_set
from tests.test_report import ASYNCIO, MOTOR, NO_CACHE, TALK_TORNADO, TORNADO, write_results

MAX_PAGE_BYTES = 5_000_000

# The page coordinates of a chart's renderer's i-th point: Bokeh's views hold each glyph's screen
# coordinates on the chart's canvas.
POINT = """([chart, prefix, i]) => {
  const plot = [...Bokeh.index.all_views()].find(v => v.model && v.model.name === 'chart:' + chart);
  const glyph = [...plot.renderer_views.values()].find(r => r.model.name && r.model.name.startsWith(prefix));
  const canvas = plot.canvas_view.el.getBoundingClientRect();
  return {x: canvas.x + glyph.glyph.sx[i], y: canvas.y + glyph.glyph.sy[i], name: glyph.model.name};
}"""
VISIBLE = """([chart, name]) => {
  const plot = [...Bokeh.index.all_views()].find(v => v.model && v.model.name === 'chart:' + chart);
  return [...plot.renderer_views.values()].find(r => r.model.name === name).model.visible;
}"""


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser-report")
    records = result_set({TORNADO: 1.3, TALK_TORNADO: 1.5, NO_CACHE: 8.0, ASYNCIO: 1.0, MOTOR: 1.08}, repeats=4, noise=0.004)
    return build_report(write_results(folder, records))[1]


def settle(visit: PageVisit) -> None:
    """Bokeh draws after load: wait until every chart on the page has its canvas."""
    visit.page.wait_for_function(
        "() => document.querySelectorAll('figure.chart').length > 0 && "
        "[...Bokeh.index.all_views()].filter(v => v.model.name && v.model.name.startsWith('chart:')).length === "
        "document.querySelectorAll('figure.chart').length"
    )


def test_the_page_is_self_contained_and_logs_no_error(report_page: Path) -> None:
    assert report_page.stat().st_size <= MAX_PAGE_BYTES
    with offline_page(report_page) as visit:
        settle(visit)
        visit.page.mouse.wheel(0, 20_000)  # every chart scrolled into view and drawn
        visit.page.wait_for_timeout(300)
        assert visit.requests == []
        assert visit.console_errors == []


def test_every_claim_is_in_the_first_screen(report_page: Path) -> None:
    with offline_page(report_page, 1400, 900) as visit:
        rows = visit.page.locator("#answer table").first.locator("tr")
        assert rows.count() >= 10  # a header and the talk's claims
        for i in range(rows.count()):
            box = rows.nth(i).bounding_box()
            assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, rows.nth(i).inner_text()
        assert visit.page.locator("#answer").get_by_text("Sanic gives more than 2x Tornado's throughput").first.is_visible()


def test_a_point_shows_its_values_on_hover(report_page: Path) -> None:
    with offline_page(report_page) as visit:
        settle(visit)
        visit.page.locator('[data-chart="forest"]').scroll_into_view_if_needed()
        point = visit.page.evaluate(POINT, ["forest", "ratios", 0])
        visit.page.mouse.move(point["x"], point["y"])
        tooltip = visit.page.locator(".bk-tooltip-content").filter(has_text="ratio [95% CI]")
        tooltip.first.wait_for(state="visible")
        assert "verdict" in tooltip.first.inner_text()


def test_clicking_a_legend_entry_hides_its_variant(report_page: Path) -> None:
    with offline_page(report_page) as visit:
        settle(visit)
        chart = visit.page.locator('[data-chart="latency"]')
        chart.scroll_into_view_if_needed()
        name = f"variant:{TORNADO.key}"
        assert visit.page.evaluate(VISIBLE, ["latency", name]) is True
        chart.get_by_text(TORNADO.key.replace("/pymongo", ""), exact=True).first.click()
        visit.page.wait_for_function(f"() => ({VISIBLE})(['latency', {name!r}]) === false")
        chart.get_by_text(TORNADO.key.replace("/pymongo", ""), exact=True).first.click()
        visit.page.wait_for_function(f"() => ({VISIBLE})(['latency', {name!r}]) === true")


def test_the_overload_page_and_the_index_of_sets_load_offline(tmp_path: Path) -> None:
    from reclab.report.result_sets import build_index
    from reclab.results.file import ResultsFile
    from tests.test_overload_matrix import _bench, _capacity, _runs

    overload = tmp_path / "sets" / "overload"
    overload.mkdir(parents=True)
    results = ResultsFile(overload / "results.jsonl")
    bench = _bench(False)
    for record in [_capacity(bench, steps=1), *_runs(bench, 2)]:
        results.append(record)
    page = build_report(overload)[1]
    with offline_page(page) as visit:
        settle(visit)
        visit.page.locator('[data-chart="goodput"]').scroll_into_view_if_needed()
        point = visit.page.evaluate(POINT, ["goodput", "points:", 0])  # the goodput curves hover like the others
        visit.page.mouse.move(point["x"], point["y"])
        visit.page.locator(".bk-tooltip-content").filter(has_text="goodput").first.wait_for(state="visible")
        assert visit.requests == [] and visit.console_errors == []
    index = build_index(tmp_path / "sets")[1]
    with offline_page(index) as visit:
        visit.page.get_by_role("link", name="report").first.click()  # the set's row links its report
        visit.page.wait_for_url("**/overload/index.html")
        assert visit.requests == [] and visit.console_errors == []
