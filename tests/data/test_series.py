import numpy as np
import pytest

from knowwhen import DataError
from knowwhen.data.series import make_windows, open_series


def _csv(path, rows, header="t,a,b"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_csv_series_and_windows_follow_time(tmp_path):
    rows = [f"{t},{t * 1.0},{100 - t}" for t in range(50)]
    s = open_series(_csv(tmp_path / "s.csv", rows))
    assert s.values.shape == (50, 2) and s.names == ("a", "b")
    w = make_windows(s, window=5, horizon=2, target=0, val_fraction=0.2, test_fraction=0.2)
    assert w.x.shape == (44, 2, 5) and w.y.shape == (44, 2)
    # first pair: inputs t = 0..4, targets t = 5, 6 (scaled with the training part's statistics)
    np.testing.assert_allclose(w.unscale(w.y[0]), [5, 6], atol=1e-4)
    np.testing.assert_allclose(w.x[0, 0] * w.std[0] + w.mean[0], [0, 1, 2, 3, 4], atol=1e-4)
    assert w.train.max() < w.val.min() and w.val.max() < w.test.min()
    np.testing.assert_allclose(w.mean, s.values[:30].mean(0))  # training part only (first 60%)


def test_missing_values_are_reported_or_interpolated(tmp_path):
    path = _csv(tmp_path / "s.csv", ["0,1,1", "1,,2", "2,3,3"])
    with pytest.raises(DataError, match=r"1 missing.*column 'a' at row 1.*interpolate"):
        open_series(path)
    np.testing.assert_allclose(open_series(path, fill="interpolate").values[1], [2, 2])


def test_gaps_and_bad_values(tmp_path):
    with pytest.raises(DataError, match="irregular time steps"):
        open_series(_csv(tmp_path / "g.csv", ["0,1,1", "1,2,2", "5,3,3"]))
    assert len(open_series(tmp_path / "g.csv", allow_gaps=True).values) == 3
    with pytest.raises(DataError, match=r"line 3: column 'b' holds 'x'"):
        open_series(_csv(tmp_path / "v.csv", ["0,1,1", "1,2,x"]))


def test_builtin_real_series():
    s = open_series("sunspots")
    assert s.values.shape == (309, 1) and s.time[0] == 1700
    with pytest.raises(DataError, match="missing"):
        open_series("co2")
    assert np.isfinite(open_series("co2", fill="interpolate").values).all()


def test_transforms_round_trip_and_refuse_negative_values(tmp_path):
    from knowwhen.data.series import inverse_transform, transform_series

    s = open_series(_csv(tmp_path / "s.csv", ["0,0,1", "1,4,9", "2,16,0.5"]))
    for name in ("sqrt", "log1p"):
        np.testing.assert_allclose(inverse_transform(name)(transform_series(s, name).values), s.values, atol=1e-12)
    np.testing.assert_allclose(transform_series(s, "sqrt").values[:, 0], [0, 2, 4])
    assert transform_series(s, None) is s
    with pytest.raises(DataError, match=r"sqrt transform needs values >= 0.*column 'b' holds -1 at row 1"):
        transform_series(open_series(_csv(tmp_path / "n.csv", ["0,1,1", "1,2,-1"])), "sqrt")


def test_iso_dates_are_time_stamps_on_a_calendar_grid(tmp_path):
    from knowwhen.data.series import time_at, time_step

    months = _csv(tmp_path / "m.csv", [f"2023-{m:02d}-01,{m},1" for m in range(1, 13)], header="date,a,b")
    s = open_series(months)  # 28-31 days apart, yet one month each: regular
    assert s.time.dtype.kind == "M" and time_step(s.time) == "1 M"
    assert time_at(s.time, 0) == "2023-01-01" and time_at(s.time, 13) == "2024-02-01"  # past the end
    days = [f"2024-01-{d:02d}" for d in (1, 2, 3, 4, 5, 8, 9)]  # a weekend missing
    with pytest.raises(DataError, match=r"irregular time steps \(1 gaps, first after row 4\)"):
        open_series(_csv(tmp_path / "d.csv", [f"{d},1,1" for d in days]))
    s = open_series(tmp_path / "d.csv", allow_gaps=True)
    assert time_step(s.time) == "1 D" and time_at(s.time, 7) == "2024-01-10"
    with pytest.raises(DataError, match="not increasing"):
        open_series(_csv(tmp_path / "u.csv", ["2024-01-02,1,1", "2024-01-01,1,1"]))
    with pytest.raises(DataError, match=r"line 3: column 't' \(the time\) is empty"):
        open_series(_csv(tmp_path / "e.csv", ["2024-01-01,1,1", ",1,1"]))
    hours = open_series(_csv(tmp_path / "h.csv", ["2024-01-01T22:00,1,1", "2024-01-01T23:00,1,1"]))
    assert time_at(hours.time, 2) == "2024-01-02T00:00" and time_step(hours.time) == "1 h"
    labels = open_series(_csv(tmp_path / "l.csv", ["Q1 2024,1,1", "Q2 2024,1,1"]))
    assert time_step(labels.time) is None and time_at(labels.time, 1) == "Q2 2024" and time_at(labels.time, 2) == ""
