"""A small document model (sections of paragraphs, tables and images) rendered to Markdown and to a
self-contained HTML page, so every report table is written once.

Text in the model is plain text with two inline marks, `code` and **bold**. Both renderings read the
marks alike and make everything else inert: HTML escaped in the page, and in Markdown every character
that could make a link, an image, raw HTML, an entity or a code span escaped. Strings from records
(errors, names, notes) can hold anything, so every text is also folded onto one line and cut
(`INLINE_CHARS`, `SHORT_CHARS`; a record's own strings are cut sooner, `reclab.results.record.excerpt`).
A cell can be a judgement (a verdict, a claim's outcome): shown as its text, the page colours it by its tone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from reclab.analysis.verdicts import Tone
from reclab.results.record import excerpt

INLINE_CHARS = 10_000  # a paragraph, at most
SHORT_CHARS = 500  # a title, table cell, caption or link label, at most
# What could open raw HTML, an entity, a code span or emphasis, and the `]` of every link, image or link
# definition (`](`, `][`, `]:`); a bracket anywhere else is plain text
MARKDOWN_SPECIAL = re.compile(r"([\\`*<>&]|\](?=[(\[:]))")


@dataclass(frozen=True)
class Link:
    """A table cell that links: its label, and a path relative to the page."""

    label: str
    path: str

    def __str__(self) -> str:
        return self.label


@runtime_checkable
class Judgement(Protocol):
    """A table cell that judges (`reclab.analysis.verdicts.Verdict`, a claim's outcome): its text and its tone."""

    @property
    def tone(self) -> Tone: ...


type Cell = str | Link | Judgement
TONE_CLASSES = {Tone.GOOD: "faster", Tone.BAD: "slower"}  # the page's classes for a judgement's tone


@dataclass
class Table:
    headers: list[str]
    rows: Sequence[Sequence[Cell]]
    brief: list[int] | None = None  # the columns the page shows at first (the rest behind "all columns"); None: all

    def brief_table(self) -> Table:
        """The table with only its brief columns."""
        if self.brief is None:
            return self
        return Table([self.headers[i] for i in self.brief], [[row[i] for i in self.brief] for row in self.rows])


@dataclass(frozen=True)
class Chart:
    """An interactive chart for the page: markup made by `reclab.report.charts` (trusted, its data
    escaped by Bokeh), with the static image that stands for it in Markdown."""

    name: str
    script: str
    div: str
    caption: str
    image: str | None = None  # relative path of a PNG of the same numbers


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative path, label)
    charts: list[Chart] = field(default_factory=list)  # the page draws these; Markdown shows their images
    anchor: str = ""  # the page's id for the section (a link target); empty: none
    folded: bool = False  # the page shows only its title until opened (method, environment: read after)


def table_markdown(table: Table) -> list[str]:
    """One table as Markdown lines."""
    out = ["| " + " | ".join(_cell(h) for h in table.headers) + " |", "|" + "|".join("---" for _ in table.headers) + "|"]
    return out + ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {markdown_inline(title, SHORT_CHARS)}", ""]
    for section in sections:
        out += [f"## {markdown_inline(section.title, SHORT_CHARS)}", ""]
        for paragraph in section.paragraphs:
            out += [markdown_inline(paragraph), ""]
        for table in section.tables:
            out += [*table_markdown(table), ""]
        for chart in section.charts:
            if chart.image:
                out += [f"![{markdown_inline(chart.caption, SHORT_CHARS)}]({quote(chart.image)})", ""]
        for path, caption in section.images:
            out += [f"![{markdown_inline(caption, SHORT_CHARS)}]({quote(path)})", ""]
        for path, label in section.links:
            out.append(f"- [{markdown_inline(label, SHORT_CHARS)}]({quote(path)})")
        if section.links:
            out.append("")
    return "\n".join(out)


def pieces(text: str, limit: int = INLINE_CHARS) -> list[tuple[str, str]]:
    """`text` cut to `limit` and folded onto one line, as (mark, text) pieces: mark is "code", "bold"
    or "" (plain). A backtick or ** without its pair is plain text."""
    one_line = " / ".join(line.strip() for line in excerpt(str(text), limit).splitlines() if line.strip())
    out: list[tuple[str, str]] = []
    for i, part in enumerate(_paired(one_line, "`")):
        if i % 2:
            out.append(("code", part))
            continue
        out += [("bold" if j % 2 else "", bold) for j, bold in enumerate(_paired(part, "**"))]
    return [(mark, piece) for mark, piece in out if piece]


def _paired(text: str, mark: str) -> list[str]:
    """`text` split at `mark`: odd items were between a pair of marks; an unpaired last mark stays text."""
    parts = text.split(mark)
    if len(parts) % 2 == 0:
        parts[-2:] = [parts[-2] + mark + parts[-1]]
    return parts


def markdown_inline(text: str, limit: int = INLINE_CHARS) -> str:
    """`text` as inert Markdown: its marks as code spans and strong emphasis, everything else escaped."""
    out = []
    for mark, piece in pieces(text, limit):
        if mark == "code":
            out.append(f"`{piece}`")  # a code span shows its text as it is, and holds no backtick
        else:
            escaped = MARKDOWN_SPECIAL.sub(r"\\\1", piece)
            out.append(f"**{escaped}**" if mark == "bold" else escaped)
    return "".join(out)


def _cell(cell: Cell) -> str:
    """A table cell: inert Markdown on one line, pipes escaped (in code spans too, as tables need); a link."""
    text = markdown_inline(str(cell), SHORT_CHARS).replace("|", "\\|")
    return f"[{text}]({quote(cell.path)})" if isinstance(cell, Link) else text


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title | plain }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem auto; max-width: 1360px; color: #222; padding: 0 1rem; }
h1 { border-bottom: 2px solid #4c72b0; padding-bottom: .2rem; margin: .3rem 0 .6rem; font-size: 1.5rem; }
h2 { margin-top: 2rem; color: #2c4a80; font-size: 1.25rem; }
#answer h2 { margin-top: .6rem; }
nav { font-size: .85rem; margin: .3rem 0; } nav a { margin-right: .8rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .85rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }
th { background: #eef2f8; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #ddd; margin: .5rem 0; }
details { margin: .4rem 0; } summary { cursor: pointer; color: #2c4a80; }
.faster { color: #1a7f37; font-weight: 600; } .slower { color: #b42318; font-weight: 600; }
.chart { margin: .8rem 0; }
code { background: #f3f3f3; padding: 0 .2rem; }
</style>
{{ head }}</head><body>
<h1>{{ title | short }}</h1>
{% if nav %}<nav>{% for anchor, label in nav %}<a href="#{{ anchor }}">{{ label | short }}</a>{% endfor %}</nav>{% endif %}
{% for s in sections %}<section{% if s.anchor %} id="{{ s.anchor }}"{% endif %}>
{% if s.folded %}<details><summary><h2 style="display:inline">{{ s.title | short }}</h2></summary>
{% else %}<h2>{{ s.title | short }}</h2>{% endif %}
{% for p in s.paragraphs %}<p>{{ p | inline }}</p>
{% endfor %}{% for t in s.tables %}{{ table(t.brief_table()) }}
{% if t.brief is not none %}<details class="all-columns"><summary>all {{ t.headers | length }} columns</summary>
{{ table(t) }}</details>
{% endif %}{% endfor %}{% for c in s.charts %}<figure class="chart" data-chart="{{ c.name }}">
{{ c.div | trusted }}{{ c.script | trusted }}
<figcaption>{{ c.caption | short }}</figcaption></figure>
{% endfor %}{% for path, caption in s.images %}<figure><img src="{{ path | path }}" alt="{{ caption | plain }}">
<figcaption>{{ caption | short }}</figcaption></figure>
{% endfor %}{% if s.links %}<ul>{% for path, label in s.links %}<li><a href="{{ path | path }}">{{ label | short }}</a></li>
{% endfor %}</ul>{% endif %}{% if s.folded %}</details>{% endif %}
</section>
{% endfor %}</body></html>
"""

TABLE = """{% macro table(t) %}<table><tr>{% for h in t.headers %}<th>{{ h | short }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for cell in row %}<td{{ cell | tone_class }}>{{ cell | cell }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endmacro %}"""


def html_inline(text: str, limit: int = INLINE_CHARS) -> str:
    """`text` as HTML: its marks as <code> and <strong>, everything escaped."""
    tags = {"code": ("<code>", "</code>"), "bold": ("<strong>", "</strong>"), "": ("", "")}
    return "".join(f"{tags[mark][0]}{html.escape(piece)}{tags[mark][1]}" for mark, piece in pieces(text, limit))


def plain(text: str) -> str:
    """`text` without its marks (an image's alternative text, a page title; the page escapes it)."""
    return "".join(piece for _, piece in pieces(text, SHORT_CHARS))


def _tone_class(cell: Cell) -> str:
    """The class attribute of a judgement's cell (none for other cells, and for a neutral judgement)."""
    name = TONE_CLASSES.get(cell.tone) if isinstance(cell, Judgement) else None
    return f' class="{name}"' if name else ""


def to_html(title: str, sections: list[Section], head: str = "") -> str:
    """The page: `head` goes into <head> as it is (the charts' scripts: trusted markup, not text)."""
    env = Environment(autoescape=select_autoescape(default=True))
    env.filters["inline"] = lambda text: Markup(html_inline(str(text)))
    env.filters["short"] = lambda text: Markup(html_inline(str(text), SHORT_CHARS))
    env.filters["plain"] = lambda text: plain(str(text))
    env.filters["path"] = lambda text: quote(str(text))
    env.filters["tone_class"] = lambda cell: Markup(_tone_class(cell))
    env.filters["trusted"] = Markup
    env.filters["cell"] = lambda cell: Markup(
        f'<a href="{html.escape(quote(cell.path))}">{html_inline(str(cell), SHORT_CHARS)}</a>'
        if isinstance(cell, Link)
        else html_inline(str(cell), SHORT_CHARS)
    )
    nav = [(s.anchor, s.title) for s in sections if s.anchor]
    return env.from_string(TABLE + PAGE).render(title=title, sections=sections, head=Markup(head), nav=nav)
