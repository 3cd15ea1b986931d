"""Every table knowwhen writes or reads back: columns in batches to one CSV or Parquet file (by its suffix), part
files merged in order, dict rows as CSV, and Parquet tables read back in batches.

One rule decides how a column is written, from its content: text (str or object arrays) as text, booleans as
booleans (CSV: True/False), integers as int64 (object and image numbers stay whole), every other number as float64
(CSV: 9 significant digits, so that a float32 round-trips exactly and metrics recomputed from the file match)."""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .atomic import atomic_open, atomic_path, write_text_atomic

# The text columns of a predictions table: only for an empty Parquet table, whose column kinds no batch shows.
TEXT_COLUMNS = ("id", "label", "pred", "pred_mc", "set")
BATCH_ROWS = 100_000


def table_format(path: Path) -> str:
    """"parquet" for a .parquet path, else "csv"."""
    return "parquet" if Path(path).suffix.lower() == ".parquet" else "csv"


def column_kind(values) -> str:
    """"text", "bool", "int" or "number": how a column is written (module note)."""
    kind = np.asarray(values).dtype.kind
    return {"U": "text", "S": "text", "O": "text", "b": "bool", "i": "int", "u": "int"}.get(kind, "number")


def csv_rows(cols: dict[str, np.ndarray]):
    """Rows of text for a CSV writer, each column written by its kind (module note)."""
    return zip(*(np.char.mod("%.9g", v) if column_kind(v) == "number" else v for v in cols.values()))


class TableWriter:
    """Writes batches of columns ({name: (n,) array}, every batch the same names) to one CSV or Parquet file,
    renamed into place on success. `csv_header=False` leaves out the CSV header (a part file for `merge_parts`);
    `header` names the columns of an empty table (no batch written).

    Example:
        >>> with TableWriter(Path("cells.parquet")) as writer:  # doctest: +SKIP
        ...     writer.write({"id": np.array(["a", "b"]), "score": np.array([0.5, 1.5])})
    """

    def __init__(self, path: Path, csv_header: bool = True, header: list[str] | None = None):
        self.path, self.csv_header, self.header = Path(path), csv_header, header
        self._parquet = self._file = self._csv = None

    def __enter__(self) -> TableWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, columns: dict[str, np.ndarray]) -> None:
        if table_format(self.path) == "csv":
            if self._csv is None:
                self._open_csv(list(columns))
            self._csv.writerows(csv_rows(columns))
            return
        import pyarrow as pa

        kinds = {name: column_kind(v) for name, v in columns.items()}
        table = pa.table({name: _arrow(v, kinds[name]) for name, v in columns.items()})
        if self._parquet is None:
            self._open_parquet(table.schema)
        self._parquet.write_table(table)

    def _open_csv(self, header: list[str]) -> None:
        self._file = open(self._tmp, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        if self.csv_header:
            self._csv.writerow(header)

    def _open_parquet(self, schema) -> None:
        import pyarrow.parquet as pq

        self._parquet = pq.ParquetWriter(str(self._tmp), schema)

    def __exit__(self, kind, error, tb) -> None:
        if error is None and self._parquet is None and self._csv is None:
            self._write_empty()
        if self._parquet is not None:
            self._parquet.close()
        if self._file is not None:
            self._file.close()
        self._atomic.__exit__(kind, error, tb)

    def _write_empty(self) -> None:
        header = list(self.header or [])
        if table_format(self.path) == "csv":
            self._open_csv(header)
            return
        import pyarrow as pa

        self._open_parquet(pa.schema([(h, pa.string() if h in TEXT_COLUMNS else pa.float64()) for h in header]))


def _arrow(values, kind: str):
    import pyarrow as pa

    if kind == "text":
        return pa.array(np.asarray(values).tolist(), pa.string())
    return pa.array(np.asarray(values, dtype={"bool": bool, "int": np.int64}.get(kind, np.float64)))


def write_part(path: Path, batches: Iterable[dict[str, np.ndarray]], header: list[str]) -> None:
    """Writes the batches' columns to one part file (no CSV header), atomically."""
    with TableWriter(path, csv_header=False, header=header) as writer:
        for cols in batches:
            writer.write({h: cols[h] for h in header})


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


def read_batches(path: Path, columns: list[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[dict]:
    """Yields {column: numpy array} batches of a Parquet table in order (text as str, numbers as float64)."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
        yield {name: _numpy(col) for name, col in zip(batch.schema.names, batch.columns)}


def _numpy(column) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_pylist(), dtype=str)
    if pa.types.is_boolean(column.type):
        return column.to_numpy(zero_copy_only=False).astype(bool)
    if pa.types.is_integer(column.type):
        return column.to_numpy(zero_copy_only=False).astype(np.int64)
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


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
