"""Rendering ready-query results: a terminal table, JSON, and a self-contained HTML file.

The HTML report inlines its CSS and draws its charts as inline SVG, so it opens
anywhere with no network and no JavaScript. Every value is HTML-escaped: session ids,
user ids and agent names are user data.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Any

import orjson

from .queries import QueryResult, jsonable

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def text_table(result: QueryResult) -> str:
    """A plain aligned table; numbers right-aligned."""
    header = [result.title, ""]
    if not result.rows:
        return "\n".join([*header, "  (no data)"])
    cells = [[cell(v) for v in row] for row in result.rows]
    numeric = [
        all(
            isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in result.rows
        )
        for i in range(len(result.columns))
    ]
    widths = [
        max(len(name), *(len(row[i]) for row in cells)) for i, name in enumerate(result.columns)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if numeric[i] else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  " + "  ".join(parts).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([*header, line(result.columns), rule, *(line(row) for row in cells)])


def text_report(results: Sequence[QueryResult]) -> str:
    return "\n\n".join(text_table(r) for r in results)


def json_report(results: Sequence[QueryResult]) -> bytes:
    return orjson.dumps(
        {
            "generated_at": jsonable(datetime.now(timezone.utc)),
            "results": [r.to_json() for r in results],
        },
        option=orjson.OPT_INDENT_2,
    )


# -- HTML ---------------------------------------------------------------------------


def _series(result: QueryResult) -> tuple[list[str], list[tuple[str, list[float]]]]:
    """Labels and numeric series for a chart, summing rows that share a label if asked."""
    chart = result.chart
    x_index = result.columns.index(chart["x"])
    y_indexes = [result.columns.index(y) for y in chart["y"] if y in result.columns]
    labels: list[str] = []
    values: dict[str, list[float]] = {}
    for row in result.rows:
        label = cell(row[x_index])
        if label not in values:
            labels.append(label)
            values[label] = [0.0] * len(y_indexes)
        for j, index in enumerate(y_indexes):
            number = row[index]
            if isinstance(number, (int, float)):
                if chart.get("sum_by"):
                    values[label][j] += float(number)
                else:
                    values[label][j] = float(number)
    series = [
        (result.columns[index], [values[label][j] for label in labels])
        for j, index in enumerate(y_indexes)
    ]
    return labels, series


def svg_chart(result: QueryResult, width: int = 720, height: int = 240) -> str:
    """A bar or line chart as inline SVG, or '' when there is nothing to draw."""
    if not result.chart or not result.rows:
        return ""
    labels, series = _series(result)
    if not labels or not series:
        return ""
    top = max((max(values) for _, values in series if values), default=0.0) or 1.0
    left, plot_h = 60, height - 60
    plot_w = width - left - 20
    step = plot_w / len(labels)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{html.escape(result.title)}">',
        f'<line x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" y2="{20 + plot_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="24" text-anchor="end" class="axis">{html.escape(cell(top))}</text>',
        f'<text x="{left - 6}" y="{20 + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    kind = result.chart.get("kind", "bar")
    for s_index, (name, values) in enumerate(series):
        color = _PALETTE[s_index % len(_PALETTE)]
        if kind == "line":
            points = " ".join(
                f"{left + step * (i + 0.5):.1f},{20 + plot_h - plot_h * v / top:.1f}"
                for i, v in enumerate(values)
            )
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>'
            )
        else:
            bar_w = max(1.0, step * 0.8 / len(series))
            for i, v in enumerate(values):
                h = plot_h * v / top
                x = left + step * i + step * 0.1 + bar_w * s_index
                parts.append(
                    f'<rect x="{x:.1f}" y="{20 + plot_h - h:.1f}" width="{bar_w:.1f}" '
                    f'height="{h:.1f}" fill="{color}"><title>{html.escape(name)} '
                    f"{html.escape(labels[i])}: {html.escape(cell(v))}</title></rect>"
                )
        parts.append(
            f'<text x="{left + 10 + 140 * s_index}" y="{height - 4}" fill="{color}" class="legend">'
            f"■ {html.escape(name)}</text>"
        )
    every = max(1, len(labels) // 12)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{left + step * (i + 0.5):.1f}" y="{36 + plot_h}" text-anchor="middle" '
                f'class="axis">{html.escape(label[:14])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def html_table(result: QueryResult) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in result.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
        for row in result.rows
    )
    if not result.rows:
        body = f'<tr><td colspan="{len(result.columns)}">no data</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.6em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;font-variant-numeric:tabular-nums}
th{background:#f4f4f4}svg{width:100%;height:auto;background:#fafafa}
.axis{font-size:10px;fill:#555}.legend{font-size:12px}.meta{color:#666}
"""


def html_report(results: Sequence[QueryResult], *, title: str = "praisondb analytics") -> str:
    """One self-contained HTML page: inline CSS, inline SVG charts, no scripts."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        f"<section><h2>{html.escape(r.title)}</h2>{svg_chart(r)}{html_table(r)}</section>"
        for r in results
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="meta">generated {generated}</p>'
        + "".join(sections)
        + "</body></html>"
    )
