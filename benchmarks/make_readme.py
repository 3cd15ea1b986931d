"""Writes benchmarks/README.md from the result files in benchmarks/results/ (run after a benchmark; the tests
check that the file is current). What each number means, and whether a target is met, is read in docs/results.md.
Run: .venv/bin/python benchmarks/make_readme.py
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"benchmark", "date", "machine", "date_started"}


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return (text[:90] + "...") if len(text) > 93 else text


def _figures(result: dict) -> str:
    """The result's own top-level values (numbers, text and short lists), the ones a reader compares."""
    parts = [f"`{k}`: {_short(v)}" for k, v in result.items()
             if k not in SKIP and (not isinstance(v, (dict, list)) or len(json.dumps(v)) <= 93)]
    return "; ".join(parts).replace("|", "/")


def readme() -> str:
    lines = ["# Benchmarks", "",
             "Run by hand (each script's docstring says how and what its target is); each writes its result to",
             "`results/<name>.json` with the date and the machine. This file is generated from those files by",
             "`make_readme.py`; what the numbers mean and which targets are met: `docs/results.md`.", "",
             "| result file | date | machine | figures |", "|---|---|---|---|"]
    for path in sorted((HERE / "results").glob("*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        m = r.get("machine", {})
        machine = f"{m.get('cpu_count', '?')} CPUs, torch {m.get('torch', '?')}" + (f", {m['cuda']}" if m.get("cuda")
                                                                                     else "")
        lines.append(f"| `{path.name}` | {r.get('date', '?')} | {machine} | {_figures(r)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (HERE / "README.md").write_text(readme(), encoding="utf-8")
    print(f"wrote {HERE / 'README.md'}")
