"""The HTML of a report: sections, tables whose numbers carry their exact values, figures as inline PNG, one page.

Nothing here reaches the network: the CSS is inline, figures are `data:` URIs, and the numbers a reader (or a test)
wants exactly are in a `<script type="application/json" id="report-data">` block and in `data-value` attributes.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

DATA_ID = "report-data"
# Section keys and titles, in page order.
TITLES = {"summary": "Summary and totals", "frontier": "Frontier: cost against the metric",
          "fit": "Scaling-law fit", "isoflop": "IsoFLOP curves",
          "parallel": "Parallel coordinates: swept parameters and the metric", "importance": "Parameter importance",
          "energy": "Energy and cost", "failures": "Failures"}


@dataclass(frozen=True)
class Section:
    """One part of the report: its HTML body and its numbers, or the one-line reason it is not there."""

    key: str
    title: str
    body: str = ""
    # JSON-ready numbers of the section, embedded under `key` in the report's data block.
    data: Mapping[str, Any] = field(default_factory=dict)
    # Why the section is not shown (None: it is).
    reason: str | None = None
    # Whether it is missing because building it raised (a bug or data nobody foresaw), not for want of data.
    error: bool = False

    @property
    def shown(self) -> bool:
        return self.reason is None


def skipped(key: str, title: str, reason: str, *, error: bool = False) -> Section:
    return Section(key, title, reason=reason, error=error)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 4) -> str:
    """A number as people read it ('1.234e+09', '0.3412'), '–' for missing."""
    value = plain(value)
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}g}"


def cell(value: Any, key: str | None = None) -> str:
    """A table cell; a number also carries its exact value in `data-value` (and its name in `data-key`)."""
    value = plain(value)
    attrs = f' data-key="{esc(key)}"' if key else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num" data-value="{value!r}"{attrs}>{esc(number(value))}</td>'
    return f"<td{attrs}>{esc('–' if value is None else value)}</td>"


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, headers: Mapping[str, str] | None = None,
          keys: str | None = None, css: str = "") -> str:
    """An HTML table of `rows` in `columns`; with `keys`, each number's data-key is '<row[keys]>.<column>'."""
    headers = headers or {}
    head = "".join(f"<th>{esc(headers.get(c, c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(cell(row.get(c), f"{row[keys]}.{c}" if keys else None) for c in columns) + "</tr>"
        for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def facts(pairs: Mapping[str, Any], prefix: str) -> str:
    """A two-column table of named values, each number keyed '<prefix>.<name>'."""
    rows = "".join(f"<tr><th>{esc(name)}</th>{cell(value, f'{prefix}.{name}')}</tr>" for name, value in pairs.items())
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def figure(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{encoded}"></figure>'


def notes(lines: Iterable[str], css: str = "note") -> str:
    return "".join(f'<p class="{css}">{esc(line)}</p>' for line in lines)


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python values, NaN and infinities as None, containers recursively."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and not isinstance(value, (str, int, float, bool)):
        return str(value)
    return value


def render(title: str, subtitle: str, sections: Sequence[Section], data: Mapping[str, Any]) -> str:
    """The whole page: title, contents, each section (or its reason), the data block."""
    contents = "".join(
        f'<li><a href="#{s.key}">{esc(s.title)}</a>{"" if s.shown else " <span class=muted>(not shown)</span>"}</li>'
        for s in sections)
    body = "".join(_section(s) for s in sections)
    blob = json.dumps(plain(data), allow_nan=False, sort_keys=False)
    blob = blob.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{_CSS}</style></head><body><header><h1>{esc(title)}</h1><p class=muted>{esc(subtitle)}</p>"
            f"<nav><ol>{contents}</ol></nav></header><main>{body}</main>"
            f'<script type="application/json" id="{DATA_ID}">{blob}</script></body></html>\n')


def _section(s: Section) -> str:
    attrs = f'id="{esc(s.key)}" data-shown="{str(s.shown).lower()}"'
    if s.shown:
        return f"<section {attrs}><h2>{esc(s.title)}</h2>{s.body}</section>"
    css = "reason error" if s.error else "reason"
    return f'<section {attrs}><h2>{esc(s.title)}</h2><p class="{css}" data-reason>{esc(s.reason)}</p></section>'


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header .muted{color:#c4c9d4}nav ol{margin:10px 0 0;padding-left:20px;columns:2}nav a{color:#9cc3ff}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:6px;margin:18px 0;padding:8px 20px 16px}
h2{font-size:18px;margin:10px 0}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eceef2;
text-align:left;vertical-align:top}th{background:#f1f3f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.facts th{background:none;font-weight:600}.scroll{max-height:420px;overflow:auto}
figure{margin:8px 0}img{max-width:100%;height:auto}.muted{color:#6b7385}.reason{color:#6b7385;font-style:italic}
.reason.error{color:#b3261e}.note{color:#6b7385;margin:4px 0}.warning{color:#8a5a00;margin:4px 0}
details{margin:6px 0}summary{cursor:pointer;color:#34557a}pre{white-space:pre-wrap;font-size:12px;background:#f6f7f9;
padding:8px;border-radius:4px;max-height:300px;overflow:auto}
"""
