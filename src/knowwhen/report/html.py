"""One self-contained HTML page: inline styles, figures embedded as PNG data URIs, no network requests."""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1100px;margin:0 auto;padding:1rem 1.5rem;
color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:2px solid #0072B2;padding-bottom:.2rem;
margin-top:2.2rem}
p.how{color:#444;font-style:italic;margin:.3rem 0 .8rem}
nav a{margin-right:.8rem;font-size:.9rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem;display:block;overflow-x:auto;max-width:100%}
td,th{border:1px solid #ccc;padding:.25rem .55rem;text-align:right}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;display:block;margin:.5rem 0}
.note{background:#fff6e0;border-left:4px solid #E69F00;padding:.5rem .8rem}
@media print{nav{display:none}h2{break-before:auto}img{break-inside:avoid}}
"""


@dataclass
class Section:
    """One report section: an anchor id, a title, one sentence on how to read it, and HTML blocks."""

    id: str
    title: str
    how_to_read: str
    blocks: list[str] = field(default_factory=list)


def figure_html(fig, alt: str, dpi: int = 80) -> str:
    """A matplotlib figure as an <img> with an embedded PNG; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    """A list of dicts as an HTML table; floats rounded to `digits`."""
    if not rows:
        return ""
    columns = columns or list(rows[0])
    def cell(v):
        v = _number(v)
        if isinstance(v, float):
            return "–" if v != v else f"{v:.{digits}f}"
        return html.escape(str(v))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(v):
    """Numbers read back from CSV are strings: show them as numbers."""
    if isinstance(v, str):
        try:
            return int(v) if v.lstrip("-").isdigit() else float(v)
        except ValueError:
            return v
    return v


def note_html(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def page_html(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page."""
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2><p class="how">{html.escape(s.how_to_read)}'
                   f'</p>{"".join(s.blocks)}</section>' for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p><nav>{nav}</nav>{body}</body></html>")
