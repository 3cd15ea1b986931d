"""Time series from CSV or statsmodels' built-in real series, windowed with a chronological split."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import TRANSFORMS
from ..errors import DataError

BUILTIN_SERIES = {"sunspots": ("sunspots", "YEAR", ["SUNACTIVITY"]), "nile": ("nile", "year", ["volume"]),
                  "co2": ("co2", None, ["co2"])}


@dataclass
class Series:
    """values (T, D) float64 in time order, the time stamps (T,), the column names and where they came from."""

    values: np.ndarray
    time: np.ndarray
    names: tuple[str, ...]
    source: str


def _check_values(values: np.ndarray, names, source: str, fill: str | None) -> np.ndarray:
    missing = ~np.isfinite(values)
    if missing.any() and fill != "interpolate":
        col, row = np.argwhere(missing)[0][::-1]
        raise DataError(f"{source}: {int(missing.sum())} missing or non-finite value(s), first in column "
                        f"{names[col]!r} at row {row}; fill them (fill='interpolate', CLI --fill interpolate) "
                        "or clean the file.")
    for j in range(values.shape[1]):
        bad = missing[:, j]
        if bad.any():
            t = np.arange(len(values))
            values[bad, j] = np.interp(t[bad], t[~bad], values[~bad, j])
    return values


def parse_times(text: np.ndarray) -> np.ndarray:
    """Time stamps as numbers, else as ISO 8601 dates/times (datetime64), else left as text labels."""
    for dtype in (np.float64, "datetime64"):
        try:
            return np.asarray(text).astype(dtype)
        except (TypeError, ValueError):
            pass
    return np.asarray(text)


def _calendar(time: np.ndarray) -> np.ndarray:
    """Dates at the coarsest exact unit, so that monthly or yearly stamps have equal steps (months are not)."""
    for unit in ("Y", "M", "D", "h", "m", "s", "ms", "us"):
        coarse = time.astype(f"datetime64[{unit}]")
        if (coarse == time).all():
            return coarse
    return time


def time_steps(time: np.ndarray) -> np.ndarray | None:
    """The steps between consecutive stamps as numbers (in the dates' own unit), None for text labels."""
    if np.issubdtype(time.dtype, np.datetime64):
        return np.diff(_calendar(time)).astype(np.float64)
    return np.diff(time).astype(np.float64) if np.issubdtype(time.dtype, np.number) else None


def time_step(time: np.ndarray):
    """The median step: a number, or for dates a count and unit ("1 M" is a month); None for text labels."""
    steps = time_steps(time)
    if steps is None or not len(steps):
        return None
    if np.issubdtype(time.dtype, np.datetime64):
        return f"{float(np.median(steps)):g} {np.datetime_data(_calendar(time).dtype)[0]}"
    return float(np.median(steps))


def time_at(time: np.ndarray, index: int):
    """Stamp `index` as a plain number or ISO text, extrapolated on the regular grid past the end ("" for text
    labels there)."""
    if np.issubdtype(time.dtype, np.datetime64):
        cal = _calendar(time)
        stamp = cal[index] if index < len(cal) else cal[-1] + (index - len(cal) + 1) * (cal[-1] - cal[-2])
        return str(np.datetime64(stamp, np.datetime_data(time.dtype)[0]))
    if index < len(time):
        return _plain(time[index].item())
    if np.issubdtype(time.dtype, np.number) and len(time) > 1:
        return _plain(float(time[-1] + (index - len(time) + 1) * (time[-1] - time[-2])))
    return ""


def _plain(v):
    """Whole-number stamps (years, days) print without '.0'."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _check_spacing(time: np.ndarray, source: str, allow_gaps: bool) -> None:
    steps = time_steps(time)
    if steps is None:
        return  # text labels: their spacing cannot be checked (docs/data.md)
    if len(steps) and (steps <= 0).any():
        raise DataError(f"{source}: time stamps are not increasing (row {int(np.argmax(steps <= 0)) + 1}); "
                        "sort the file by time.")
    if len(steps) and not allow_gaps and not np.allclose(steps, steps[0]):
        first = int(np.argmax(~np.isclose(steps, steps[0])))
        raise DataError(f"{source}: irregular time steps ({int((~np.isclose(steps, steps[0])).sum())} gaps, first "
                        f"after row {first}); resample to a regular grid or pass allow_gaps=True.")


def _read_csv(path: Path, time_column: str | None, value_columns):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read as CSV ({e}).") from None
    if not rows:
        raise DataError(f"{path}: no rows; the CSV needs a header and one row per time step.")
    columns = list(rows[0])
    time_column = time_column or columns[0]
    value_columns = list(value_columns or [c for c in columns if c != time_column])
    for c in [time_column, *value_columns]:
        if c not in columns:
            raise DataError(f"{path}: no column {c!r} (columns: {', '.join(columns)}).")
    values = np.empty((len(rows), len(value_columns)))
    for i, row in enumerate(rows):
        for j, c in enumerate(value_columns):
            text = (row[c] or "").strip()
            try:
                values[i, j] = float(text) if text else np.nan
            except ValueError:
                raise DataError(f"{path} line {i + 2}: column {c!r} holds {text!r}, not a number; "
                                "fix the value or leave it empty (a gap).") from None
    stamps = [(row[time_column] or "").strip() for row in rows]
    if "" in stamps:
        raise DataError(f"{path} line {stamps.index('') + 2}: column {time_column!r} (the time) is empty; every "
                        "row needs its time stamp.")
    return values, parse_times(stamps), tuple(value_columns)


def open_series(source: str | Path, time_column: str | None = None, value_columns=None, fill: str | None = None,
                allow_gaps: bool = False) -> Series:
    """A CSV (a time column, then value columns) or a built-in series: sunspots, nile, co2.

    Missing values stop with the column and row unless `fill="interpolate"`; irregular time steps stop
    unless `allow_gaps`.
    """
    name = str(source)
    if name in BUILTIN_SERIES and not Path(name).exists():
        import statsmodels.api as sm

        module, tcol, vcols = BUILTIN_SERIES[name]
        frame = getattr(sm.datasets, module).load_pandas().data
        time = frame[tcol].to_numpy(np.float64) if tcol else np.arange(len(frame), dtype=np.float64)
        values = np.array(frame[vcols], dtype=np.float64)  # a writable copy
        names = tuple(vcols)
    else:
        values, time, names = _read_csv(Path(source), time_column, value_columns)
    _check_spacing(time, name, allow_gaps)
    return Series(_check_values(values, names, name, fill), time, names, name)


def open_configured_series(config, source: str | Path | None = None) -> Series:
    """The series a SeriesConfig names (or `source` instead), read with its time column, columns, fill and gaps
    settings."""
    return open_series(config.source if source is None else source, config.time_column,
                       config.value_columns or None, config.fill, config.allow_gaps)


@dataclass
class Windows:
    """Supervised pairs from a series, chronologically split, scaled with training statistics.

    Attributes:
        x: (N, D, window) inputs; y: (N, horizon) targets of column `target`, both scaled.
        train, val, test: indices into x / y, in time order (every train target precedes every val target,
            and every val target precedes every test target).
        mean, std: (D,) scaling fitted on the training part of the series only.
        target: the column forecast.
        first_target: (N,) the series index of each pair's first target.
        train_end: the series index where the validation part starts (the training part ends).
    """

    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    target: int
    first_target: np.ndarray
    train_end: int

    def unscale(self, y: np.ndarray) -> np.ndarray:
        """Targets back in the series' units."""
        return y * self.std[self.target] + self.mean[self.target]


def last_window(series: Series, window: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(1, D, window) scaled inputs ending at the last observation: the window that forecasts the future."""
    if window > len(series.values):
        raise DataError(f"{series.source}: {len(series.values)} time steps, fewer than the window of {window}.")
    return ((series.values[-window:] - mean) / std).T[None].astype(np.float32)


def make_windows(series: Series, window: int, horizon: int = 1, target: int = 0, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, scaler: tuple[np.ndarray, np.ndarray] | None = None) -> Windows:
    """(window inputs -> next `horizon` values) pairs; the split follows time, never shuffled.

    A pair belongs to the part its first target falls in; its inputs may reach back into earlier parts
    (the past is always known), never forward. `scaler` = (mean, std) of a trained run replaces the
    statistics fitted on this series' training part.
    """
    values, t_len = series.values, len(series.values)
    if window < 1 or horizon < 1 or window + horizon > t_len:
        raise DataError(f"{series.source}: window {window} + horizon {horizon} needs more than the {t_len} "
                        "time steps; shorten them.")
    train_end = int(round(t_len * (1 - val_fraction - test_fraction)))
    val_end = int(round(t_len * (1 - test_fraction)))
    if scaler is None:
        mean, std = values[:train_end].mean(0), values[:train_end].std(0)
        std = np.where(std > 0, std, 1.0)
    else:
        mean, std = (np.asarray(a, dtype=np.float64) for a in scaler)
    scaled = (values - mean) / std
    starts = np.arange(window, t_len - horizon + 1)            # index of the first target
    x = np.stack([scaled[s - window:s].T for s in starts]).astype(np.float32)         # (N, D, window)
    y = np.stack([scaled[s:s + horizon, target] for s in starts]).astype(np.float32)  # (N, horizon)
    idx = np.arange(len(starts))
    return Windows(x, y, idx[starts < train_end], idx[(starts >= train_end) & (starts < val_end)],
                   idx[starts >= val_end], mean, std, target, starts, train_end)


def targets(series: Series, first_target: np.ndarray, target: int, horizon: int) -> np.ndarray:
    """(n, horizon) the true future values in the series' units (float64, unscaled)."""
    return series.values[first_target[:, None] + np.arange(horizon)[None], target]




def transform_series(series: Series, name: str | None) -> Series:
    """The series with a variance-stabilising transform applied to every column (None: unchanged).

    `sqrt` suits counts (sunspots), `log1p` growth and multiplicative noise; both need values >= 0.
    """
    if name is None:
        return series
    if name not in TRANSFORMS:
        raise DataError(f"transform {name!r}: use one of {', '.join(TRANSFORMS)} or none.")
    negative = series.values < 0
    if negative.any():
        row, col = np.argwhere(negative)[0]
        raise DataError(f"{series.source}: the {name} transform needs values >= 0, but column {series.names[col]!r} "
                        f"holds {series.values[row, col]:g} at row {row}; train without --transform.")
    f = np.sqrt if name == "sqrt" else np.log1p
    return Series(f(series.values), series.time, series.names, series.source)


def inverse_transform(name: str | None):
    """The map from transformed values back to the series' units (None for no transform).

    A forecast below 0 on the square-root scale maps to 0 (the transform's range starts there).
    """
    if name is None:
        return None
    return (lambda v: np.square(np.maximum(v, 0.0))) if name == "sqrt" else np.expm1
