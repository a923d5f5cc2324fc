"""A small document model (sections of paragraphs, tables and images) rendered to Markdown and to a
self-contained HTML page, so every report table is written once."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from jinja2 import Environment, select_autoescape
from markupsafe import Markup


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative path, label)


def table_markdown(table: Table) -> list[str]:
    """One table as Markdown lines."""
    out = ["| " + " | ".join(table.headers) + " |", "|" + "|".join("---" for _ in table.headers) + "|"]
    return out + ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            out += [paragraph, ""]
        for table in section.tables:
            out += [*table_markdown(table), ""]
        for path, caption in section.images:
            out += [f"![{caption}]({path})", ""]
        for path, label in section.links:
            out.append(f"- [{label}]({path})")
        if section.links:
            out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    """A table cell on one line: pipes escaped, line breaks (e.g. a server log in an error) folded."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip()).replace("|", "\\|")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { border-bottom: 2px solid #4c72b0; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; color: #2c4a80; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .85rem; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: right; }
th { background: #eef2f8; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #ddd; margin: .5rem 0; }
.faster { color: #1a7f37; font-weight: 600; } .slower { color: #b42318; font-weight: 600; }
code { background: #f3f3f3; padding: 0 .2rem; }
</style></head><body>
<h1>{{ title }}</h1>
{% for s in sections %}<h2>{{ s.title }}</h2>
{% for p in s.paragraphs %}<p>{{ p | inline }}</p>
{% endfor %}{% for t in s.tables %}<table><tr>{% for h in t.headers %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for cell in row %}<td{{ cell | verdict_class }}>{{ cell | inline }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% endfor %}{% for path, caption in s.images %}<figure><img src="{{ path }}" alt="{{ caption }}">
<figcaption>{{ caption }}</figcaption></figure>
{% endfor %}{% if s.links %}<ul>{% for path, label in s.links %}<li><a href="{{ path }}">{{ label }}</a></li>
{% endfor %}</ul>{% endif %}
{% endfor %}</body></html>
"""


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** spans (the only Markdown the report uses)."""
    escaped = html.escape(text)
    parts = escaped.split("`")
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    joined = "".join(parts)
    bold = joined.split("**")
    for i in range(1, len(bold), 2):
        bold[i] = f"<strong>{bold[i]}</strong>"
    return "".join(bold)


def _verdict_class(cell: str) -> str:
    if cell in ("faster", "supported"):
        return ' class="faster"'
    if cell in ("slower", "not supported", "contradicted"):
        return ' class="slower"'
    return ""


def to_html(title: str, sections: list[Section]) -> str:
    env = Environment(autoescape=select_autoescape(default=True))
    env.filters["inline"] = lambda text: Markup(_inline(str(text)))
    env.filters["verdict_class"] = lambda text: Markup(_verdict_class(str(text)))
    return env.from_string(PAGE).render(title=title, sections=sections)
