"""The one table writer: a column's kind is decided by its content, the same in CSV and Parquet, and a table
written in parts and merged is the table written at once."""
from __future__ import annotations

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest

from knowwhen.tables import TableWriter, column_kind, merge_parts, read_batches, write_part


def _batches():
    rng = np.random.default_rng(0)
    return [{"id": np.array([f"img:{i}" for i in range(n)]), "score": rng.random(n).astype(np.float32),
             "count": np.arange(n), "flag": np.arange(n) % 2 == 0, "group": np.array(["a", "b"] * (n // 2), object)}
            for n in (6, 4)]


def test_kinds_come_from_content_not_names():
    assert [column_kind(v) for v in _batches()[0].values()] == ["text", "number", "int", "bool", "text"]


def test_csv_and_parquet_hold_the_same_values(tmp_path):
    for ext in ("csv", "parquet"):
        with TableWriter(tmp_path / f"t.{ext}") as writer:
            for b in _batches():
                writer.write(b)
    want = {k: np.concatenate([b[k] for b in _batches()]) for k in _batches()[0]}
    schema = pq.read_schema(tmp_path / "t.parquet")
    assert [str(schema.field(k).type) for k in want] == ["string", "double", "int64", "bool", "string"]
    got = next(read_batches(tmp_path / "t.parquet"))
    rows = list(csv.DictReader(open(tmp_path / "t.csv", encoding="utf-8")))
    for k, v in want.items():
        if column_kind(v) == "number":
            # 9 significant digits: a float32 comes back exactly from the CSV
            np.testing.assert_array_equal(np.array([r[k] for r in rows], float).astype(v.dtype), v)
            np.testing.assert_array_equal(got[k], v.astype(np.float64))
        elif column_kind(v) == "int":   # whole numbers stay whole: "3", not "3.0"
            assert [r[k] for r in rows] == [str(x) for x in v]
            np.testing.assert_array_equal(got[k], v)
        else:
            assert [r[k] for r in rows] == [str(x) for x in v]
            assert list(got[k]) == list(v)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_parts_merged_equal_the_table_written_at_once(tmp_path, ext):
    header = list(_batches()[0])
    parts = [tmp_path / f"part{k}.{ext}" for k in range(2)]
    for part, b in zip(parts, _batches()):
        write_part(part, [b], header)
    merge_parts(parts, tmp_path / f"merged.{ext}", header)
    with TableWriter(tmp_path / f"whole.{ext}") as writer:
        for b in _batches():
            writer.write(b)
    if ext == "csv":
        assert (tmp_path / "merged.csv").read_text() == (tmp_path / "whole.csv").read_text()
    else:
        assert pq.read_table(tmp_path / "merged.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with TableWriter(tmp_path / "t.parquet") as writer:
            writer.write(_batches()[0])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
