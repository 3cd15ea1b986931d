"""Reading a predictions table back in batches, and writing the per-cell table (Parquet or CSV) atomically."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_path

BATCH_ROWS = 100_000


def read_batches(path: Path, columns: list[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[dict]:
    """Yields {column: numpy array} batches of a Parquet table in order (text as str, numbers as float64)."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
        yield {name: _numpy(col) for name, col in zip(batch.schema.names, batch.columns)}


def _numpy(column) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_pylist(), dtype=str)
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


class TableWriter:
    """Writes batches of columns to one Parquet or CSV file (by its suffix), renamed into place on success."""

    def __init__(self, path: Path):
        self.path, self._writer, self._file, self._header = Path(path), None, None, None

    def __enter__(self) -> TableWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, columns: dict[str, np.ndarray]) -> None:
        if self.path.suffix.lower() == ".csv":
            return self._write_csv(columns)
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: pa.array(np.asarray(v).tolist() if np.asarray(v).dtype.kind in "UO" else v)
                          for k, v in columns.items()})
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self._tmp), table.schema)
        self._writer.write_table(table)

    def _write_csv(self, columns: dict[str, np.ndarray]) -> None:
        if self._file is None:
            self._file = open(self._tmp, "w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._file)
            self._header = list(columns)
            self._csv.writerow(self._header)
        text = [np.char.mod("%.9g", columns[h]) if np.asarray(columns[h]).dtype.kind == "f" else columns[h]
                for h in self._header]
        self._csv.writerows(zip(*text))

    def __exit__(self, kind, error, tb) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
        self._atomic.__exit__(kind, error, tb)
