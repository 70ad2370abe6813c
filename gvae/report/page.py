"""HTML for the run report: one self-contained page, inline CSS, every image a base64 ``data:`` URI.

A self-contained file can be mailed, attached to an issue or archived next to the run and still show every
picture; nothing is fetched when it opens, so it also works on machines without network access.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ddd;
     padding-bottom: 0.2em; margin-top: 2em; }
p.sub, p.note, figcaption { color: #666; font-size: 0.92em; }
table { border-collapse: collapse; font-size: 0.92em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f4f4f4; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; image-rendering: pixelated; } figure { margin: 0.8em 0; }
details summary { cursor: pointer; color: #1f5f99; }
"""


@dataclass
class Section:
    """One titled part of the page; ``body`` is HTML made by the helpers below."""

    title: str
    body: str


def esc(text: object) -> str:
    return html.escape(str(text))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(png: bytes, caption: str, alt: str) -> str:
    return (f'<figure><img src="{data_uri(png)}" alt="{esc(alt)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def preformatted(text: str, summary: str | None = None) -> str:
    block = f"<pre>{esc(text)}</pre>"
    return f"<details><summary>{esc(summary)}</summary>{block}</details>" if summary else block


def table(header: list[str], rows: list[list[object]]) -> str:
    """A table; numbers are right-aligned and shown with 4 significant digits (None is blank)."""
    def cell(value: object) -> str:
        if value is None:
            return "<td></td>"
        if isinstance(value, float):
            return f'<td class="num">{value:.4g}</td>'
        if isinstance(value, int) and not isinstance(value, bool):
            return f'<td class="num">{value}</td>'
        return f"<td>{esc(value)}</td>"

    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page: a title, a line under it, a table of contents, then the sections."""
    anchors = [f"s{i}" for i in range(len(sections))]
    toc = " · ".join(f'<a href="#{a}">{esc(s.title)}</a>' for a, s in zip(anchors, sections, strict=True))
    parts = [f'<h2 id="{a}">{esc(s.title)}</h2>\n{s.body}' for a, s in zip(anchors, sections, strict=True)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p><p>{toc}</p>\n"
            + "\n".join(parts) + "\n</body></html>\n")
