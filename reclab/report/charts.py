"""The report page's interactive charts (Bokeh, its JavaScript embedded in the page: no network at view
time): hover values, a legend whose entries hide their series, pan and zoom. Each chart is a
`document.Chart` holding the Bokeh div and script; `report.md` keeps the static PNGs of `plots`.

Every renderer is named after what it draws (`variant:<key>`, `band`, ...) so a browser test can find
it; strings from records reach the page only through Bokeh's JSON, which it escapes for a script."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bokeh.embed import components
from bokeh.models import ColumnDataSource, FactorRange, FixedTicker, HoverTool, Range1d
from bokeh.models.annotations import BoxAnnotation, Legend, LegendItem, Span
from bokeh.models.renderers import DataRenderer, GlyphRenderer
from bokeh.palettes import Category10_10, Category20_20
from bokeh.plotting import figure
from bokeh.resources import Resources

from reclab.analysis.stats import Interval
from reclab.analysis.verdicts import Verdict
from reclab.report.document import Chart
from reclab.report.plots import PERCENTILE_TICKS, short_key, verdict_colour

TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
WIDTH = 1100


def page_resources() -> str:
    """The script tags a page needs before its charts: BokehJS itself, inline (about 1.4 MB)."""
    return Resources(mode="inline", components=["bokeh"]).render_js()


def _chart(name: str, plot: figure, caption: str, image: str | None = None) -> Chart:
    plot.name = f"chart:{name}"
    script, div = components(plot)
    return Chart(name=name, script=script, div=div, caption=caption, image=image)


def _palette(n: int) -> Sequence[str]:
    return Category10_10 if n <= 10 else Category20_20


def _item(label: str, *renderers: GlyphRenderer[Any]) -> LegendItem:
    """A legend entry for these renderers (a click hides them all)."""
    drawn: list[GlyphRenderer[Any]] = list(renderers)
    return LegendItem(label=label, renderers=drawn)


def _legend_outside(plot: figure, items: list[LegendItem]) -> None:
    """A legend right of the plot whose entries hide (click) their series."""
    legend = Legend(click_policy="hide", label_text_font_size="8pt", spacing=0)
    legend.items = items
    plot.add_layout(legend, "right")


@dataclass(frozen=True)
class ForestRow:
    """One comparison for the forest plot: a variant's ratio to the baseline with its interval."""

    group: str  # the factor
    label: str  # the variant
    ratio: Interval
    verdict: Verdict
    detectable: float | None = None


def forest(rows: list[ForestRow], margin: float, metric: str, image: str | None = None) -> Chart:
    """Every factor's ratio to the baseline with its 95% interval, against the band of 1 ± margin:
    a point per comparison coloured by its verdict, a row per comparison grouped by factor."""
    labels = [short_key(r.label) for r in rows]
    if len(set(labels)) < len(labels):  # a variant in two factors: say which
        labels = [f"{r.group}: {label}" for r, label in zip(rows, labels, strict=True)]
    lows = [r.ratio.low if r.ratio.low is not None else r.ratio.value for r in rows]
    highs = [r.ratio.high if r.ratio.high is not None else r.ratio.value for r in rows]
    span = max([margin * 1.5, *(abs(math.log(x)) for x in (*lows, *highs) if x > 0)])
    plot = figure(
        y_range=FactorRange(factors=list(reversed(labels))),
        x_range=Range1d(start=math.exp(-span * 1.1), end=math.exp(span * 1.1)), x_axis_type="log",
        width=WIDTH, height=max(220, 26 * len(rows) + 90), tools=TOOLS, toolbar_location="above",
        title=f"{metric}: each variant / the baseline, mean and 95% interval over repeats (shaded: within ±{margin:.0%})",
    )  # fmt: skip
    plot.add_layout(BoxAnnotation(left=1 - margin, right=1 + margin, fill_color="#4c72b0", fill_alpha=0.12, name="band"))
    plot.add_layout(Span(location=1.0, dimension="height", line_color="black", line_width=1))
    source = ColumnDataSource(
        {
            "label": labels,
            "ratio": [r.ratio.value for r in rows],
            "low": lows,
            "high": highs,
            "text": [r.ratio.text(3) for r in rows],
            "verdict": [r.verdict.text for r in rows],
            "detectable": ["–" if r.detectable is None else f"±{r.detectable:.0%}" for r in rows],
            "colour": [verdict_colour(r.verdict) for r in rows],
        }
    )
    plot.segment(x0="low", x1="high", y0="label", y1="label", source=source, line_color="colour", line_width=2, name="whiskers")
    points = plot.scatter(x="ratio", y="label", source=source, size=9, color="colour", name="ratios")
    plot.add_tools(
        HoverTool(
            renderers=[points],
            tooltips=[
                ("variant", "@label"),
                ("ratio [95% CI]", "@text"),
                ("verdict", "@verdict"),
                ("detectable change", "@detectable"),
            ],
        )
    )
    plot.xaxis.axis_label = "ratio to the baseline (log scale; below 1: less than the baseline)"
    plot.yaxis.major_label_text_font_size = "8pt"
    return _chart("forest", plot, f"Every factor at a glance: {metric} against the baseline", image)


def latency_curves(curves: dict[str, list[tuple[float, float]]], image: str | None = None) -> Chart:
    """HDR-style percentile curves per variant: latency (log) against 1 / (1 - percentile) (log)."""
    shown = {k: points for k, points in curves.items() if points}
    plot = figure(
        width=WIDTH, height=480, x_axis_type="log", y_axis_type="log", tools=TOOLS, toolbar_location="above",
        title="Latency by percentile (all repeats merged, HDR): drag to zoom, click a legend entry to hide it",
    )  # fmt: skip
    colours = _palette(len(shown))
    items = []
    for number, (key, points) in enumerate(shown.items()):
        source = ColumnDataSource(
            {
                "x": [1.0 / (1.0 - p / 100.0) for p, _ in points],
                "ms": [ms for _, ms in points],
                "percentile": [f"{p:.3f}%" for p, _ in points],
                "variant": [short_key(key)] * len(points),
            }
        )
        colour = colours[number % len(colours)]
        line = plot.line("x", "ms", source=source, line_width=1.5, color=colour, name=f"variant:{key}")
        dots = plot.scatter("x", "ms", source=source, size=3, color=colour, name=f"points:{key}")
        items.append(_item(short_key(key), line, dots))
    plot.add_tools(HoverTool(tooltips=[("variant", "@variant"), ("percentile", "@percentile"), ("latency ms", "@ms{0.00}")]))
    plot.xaxis.ticker = FixedTicker(ticks=[1.0 / (1.0 - p / 100.0) for p in PERCENTILE_TICKS])
    plot.xaxis.major_label_overrides = {1.0 / (1.0 - p / 100.0): f"{p:g}%" for p in PERCENTILE_TICKS}
    plot.xaxis.axis_label = "percentile"
    plot.yaxis.axis_label = "latency (ms)"
    _legend_outside(plot, items)
    return _chart("latency", plot, "Latency by percentile, open loop if measured", image)


def distributions(values: dict[str, list[float]], intervals: dict[str, Interval], what: str, name: str,
                  image: str | None = None) -> Chart:  # fmt: skip
    """Per variant: every repeat's value as a dot, and the mean with its 95% interval as a bar."""
    keys = [k for k in values if values[k]]
    labels = [short_key(k) for k in keys]
    plot = figure(
        y_range=FactorRange(factors=list(reversed(labels))), width=WIDTH, height=max(220, 28 * len(keys) + 90), tools=TOOLS,
        toolbar_location="above", title=f"{what}: each repeat (dots), mean and 95% interval (bar)",
    )  # fmt: skip
    colours = _palette(len(keys))
    items = []
    for number, (key, label) in enumerate(zip(keys, labels, strict=True)):
        colour = colours[number % len(colours)]
        interval = intervals.get(key)
        runs = ColumnDataSource(
            {"value": values[key], "label": [label] * len(values[key]), "repeat": [str(i + 1) for i in range(len(values[key]))]}
        )
        dots = plot.scatter("value", "label", source=runs, size=7, color=colour, alpha=0.7, name=f"variant:{key}")
        renderers: list[GlyphRenderer[Any]] = [dots]
        if interval is not None and interval.has_interval:
            bar = ColumnDataSource({"low": [interval.low], "high": [interval.high], "label": [label], "mean": [interval.value]})
            renderers.append(plot.segment("low", "label", "high", "label", source=bar, line_width=3, color=colour, alpha=0.5))
            renderers.append(plot.scatter("mean", "label", source=bar, marker="diamond", size=11, color=colour))
        items.append(_item(label, *renderers))
    plot.add_tools(HoverTool(renderers=[r for item in items for r in item.renderers[:1]],
                             tooltips=[("variant", "@label"), ("repeat", "@repeat"), (what, "@value{0.000}")]))  # fmt: skip
    plot.xaxis.axis_label = what
    plot.yaxis.major_label_text_font_size = "8pt"
    _legend_outside(plot, items)
    return _chart(name, plot, f"{what} per variant, every repeat", image)


def curves(series: dict[str, list[tuple[float, float]]], x_label: str, y_label: str, name: str, caption: str,
           log_y: bool = False, reference: list[tuple[float, float]] | None = None,
           image: str | None = None) -> Chart:  # fmt: skip
    """Lines with points, a line per series (latency against load, goodput against offered load...),
    and an optional dashed reference line."""
    plot = figure(width=WIDTH, height=460, y_axis_type="log" if log_y else "linear", tools=TOOLS,
                  toolbar_location="above", title=caption)  # fmt: skip
    colours = _palette(len(series))
    items: list[LegendItem] = []
    pointed: list[DataRenderer] = []
    if reference:
        xs, ys = zip(*reference, strict=True)
        items.append(_item("reference", plot.line(list(xs), list(ys), line_dash="dashed", color="black")))
    for number, (label, points) in enumerate(series.items()):
        points = sorted(points)
        source = ColumnDataSource({"x": [x for x, _ in points], "y": [y for _, y in points], "series": [label] * len(points)})
        colour = colours[number % len(colours)]
        line = plot.line("x", "y", source=source, color=colour, line_width=1.5, name=f"variant:{label}")
        dots = plot.scatter("x", "y", source=source, color=colour, size=7, name=f"points:{label}")
        items.append(_item(label, line, dots))
        pointed.append(dots)
    plot.add_tools(HoverTool(renderers=pointed, tooltips=[("series", "@series"), (x_label, "@x{0.0}"), (y_label, "@y{0.00}")]))
    plot.xaxis.axis_label = x_label
    plot.yaxis.axis_label = y_label
    _legend_outside(plot, items)
    return _chart(name, plot, caption, image)
