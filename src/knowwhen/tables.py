"""Tables: columns written as CSV or Parquet part files and merged in order; dict rows as CSV."""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Iterable

import numpy as np

from .atomic import atomic_open, atomic_path, write_text_atomic

TEXT_COLUMNS = ("id", "label", "pred", "pred_mc", "set")


def table_format(path: Path) -> str:
    """"parquet" for a .parquet path, else "csv"."""
    return "parquet" if Path(path).suffix.lower() == ".parquet" else "csv"


def csv_rows(cols: dict[str, np.ndarray]):
    """Rows of text for a CSV writer: text columns as they are, numbers to 9 significant digits (a float32
    round-trips exactly, so metrics recomputed from the file match)."""
    text = [cols[h] if h in TEXT_COLUMNS else np.char.mod("%.9g", cols[h]) for h in cols]
    return zip(*text)


def write_part(path: Path, batches: Iterable[dict[str, np.ndarray]], header: list[str]) -> None:
    """Writes the batches' columns to one part file (no CSV header), atomically."""
    if table_format(path) == "csv":
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            for cols in batches:
                writer.writerows(csv_rows(cols))
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(h, pa.string() if h in TEXT_COLUMNS else pa.float64()) for h in header])
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for cols in batches:
                writer.write_table(pa.table({h: cols[h] for h in header}, schema=schema))


def merge_parts(parts: list[Path], out: Path, header: list[str]) -> None:
    """Concatenates the part files in order into `out` (CSV: header first), atomically."""
    if table_format(out) == "csv":
        with atomic_open(out, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow(header)
            for part in parts:
                with open(part, encoding="utf-8") as src:
                    shutil.copyfileobj(src, f)
        return
    import pyarrow.parquet as pq

    with atomic_path(out) as tmp:
        writer = None
        for part in parts:
            table = pq.read_table(part)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()


def write_rows_csv(path: Path, rows: list[dict], columns=None) -> None:
    """Writes dict rows (header from `columns` or the first row) to a CSV, atomically; nothing for no rows."""
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns or rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    write_text_atomic(path, buf.getvalue())


def _cell(value):
    """A float to 9 significant digits, as every CSV of knowwhen writes numbers; anything else as it is."""
    return f"{value:.9g}" if isinstance(value, (float, np.floating)) else value
