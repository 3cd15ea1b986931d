"""The index page of a screen of many plates: one row per plate with its numbers and a link to the plate's own
review page (`knowwhen.report.screen`), so that no page grows with the screen."""
from __future__ import annotations

import html


def file_safe(name: str) -> str:
    """A plate name as a file name: letters, digits, -, _ and . kept, anything else _."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "plate"


def index_page(summary: dict, wells: list[dict], plate_col: str, pages: dict) -> str:
    """The index page of a screen of many plates: one row per plate with its numbers and a link to its page."""
    rows = []
    for p in summary["plates"]:
        plate = str(p[plate_col])
        suspects = sum(w.get("hit_artefact_suspect") == "True" for w in wells if w[plate_col] == plate)
        power = p.get("detectable_fraction")
        cells = [html.escape(v) for v in (plate, str(p["cells"]), str(p["wells"]), str(p["hits"]), str(suspects),
                                          "" if power in (None, "") else f"{float(power):.1%} of "
                                          f"{p.get('median_cells')} cells")]
        rows.append(f'<tr><td><a href="{html.escape(pages[plate])}">{cells[0]}</a></td><td>'
                    + "</td><td>".join(cells[1:]) + "</td></tr>")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
            f"{html.escape('knowwhen screen: ' + str(summary['data']))}</title><style>body{{font-family:system-ui,"
            "sans-serif;margin:1.5em} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 8px}"
            "</style></head><body><h1>Screen review: plates</h1>"
            f"<p id='summary'>{summary['cells']} cells in {summary['wells']} wells of {len(pages)} plates; "
            f"{summary['hits']} hit wells at a false discovery rate of {summary['fdr']} by the "
            f"{html.escape(summary.get('hit_test', 'binomial'))} test. One page per plate (a page holds one "
            "plate, so its size does not grow with the screen).</p><table id='plates'><thead><tr><th>plate</th>"
            "<th>cells</th><th>wells</th><th>hits</th><th>artefact suspects</th><th>80% power at (median "
            "cells per well)</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></body></html>\n")
