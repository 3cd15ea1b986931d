"""The run directory every task writes, and the one place its files are read and written: model.safetensors +
config.json (+ metrics.csv, resume.ckpt while training), and the arrays fitted after training (features,
reference, calibration: `write_arrays` / `read_arrays`; what they mean is the task's). Loading never unpickles."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from torch import nn

from ..atomic import atomic_path, write_text_atomic
from ..config import config_from_dict, config_to_dict
from ..errors import CheckpointError, ConfigError

FORMAT = "knowwhen-run"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, METRICS, RESUME = "model.safetensors", "config.json", "metrics.csv", "resume.ckpt"
FEATURES, REFERENCE, CALIBRATION = "features.safetensors", "reference.safetensors", "calibration.safetensors"


def write_arrays(run_dir: str | Path, name: str, arrays: dict, metadata: dict | None = None) -> None:
    """Writes run_dir/name, one of the run's array files (FEATURES, REFERENCE, CALIBRATION), atomically: NumPy
    arrays, with text metadata."""
    import numpy as np
    from safetensors.numpy import save_file

    with atomic_path(Path(run_dir) / name) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), metadata=metadata)


def read_arrays(run_dir: str | Path, name: str, fix: str) -> tuple[dict, dict] | None:
    """(arrays, metadata) of run_dir/name, read once; None when the run has no such file. An unreadable file is a
    CheckpointError that says `fix`."""
    from safetensors import SafetensorError, safe_open

    path = Path(run_dir) / name
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "np") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable ({e}); {fix}.") from None


def save_weights(model: nn.Module, run_dir: Path) -> None:
    """Writes the model's state dict to run_dir/model.safetensors atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(Path(run_dir) / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})


def write_config(run_dir: Path, payload: dict) -> None:
    """Writes run_dir/config.json atomically, stamped with the format and its version."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    write_text_atomic(Path(run_dir) / CONFIG, json.dumps(payload, indent=2) + "\n")


def read_config(run_dir: str | Path, trainer: str = "knowwhen train") -> dict:
    """config.json of a run directory, checked to be a knowwhen run this version can read."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory; train one with `{trainer}`.")
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a knowwhen run (no {CONFIG}); point to a directory made by "
                              f"`{trainer}`.")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable ({e}); the run is damaged, retrain it.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a knowwhen run config (no \"format\": \"{FORMAT}\").")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version!r} is newer than this knowwhen reads "
                              f"({FORMAT_VERSION}); upgrade knowwhen (pip install -U knowwhen).")
    return payload


def _load_state(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the run has no weights (was training interrupted? "
                              "continue it with `knowwhen train ... --resume`).")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); retrain the run.") from None


def load_weights(model: nn.Module, run_dir: Path) -> None:
    """Fills `model` from run_dir/model.safetensors; a mismatch is a CheckpointError, never a partial load."""
    try:
        model.load_state_dict(_load_state(run_dir / WEIGHTS), strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{run_dir / WEIGHTS}: weights do not match the model in {CONFIG} "
                              f"({str(e).splitlines()[0]}); the files come from different runs.") from None


def config_field(payload: dict, key: str, path: Path):
    """payload[key], or a CheckpointError naming config.json and the missing field."""
    if key not in payload:
        raise CheckpointError(f"{path / CONFIG}: missing field `{key}`; the run is damaged, retrain it.")
    return payload[key]


def saved_config(run_dir: str | Path, cls, key: str):
    """The config dataclass `cls` a run saved under `key` in its config.json ("train" or "forecast")."""
    run_dir = Path(run_dir)
    payload = read_config(run_dir)
    return config_from_dict(cls, config_field(payload, key, run_dir), f"{run_dir / CONFIG}: {key}", saved=True)


def resumed_config(run_dir: str | Path, cls, key: str, epochs: int | None, progress: bool):
    """The saved config of an interrupted run, with the settings a resume may change: `progress`, and `epochs`
    when given."""
    config = dataclasses.replace(saved_config(run_dir, cls, key), progress=progress)
    return config if epochs is None else dataclasses.replace(config, epochs=epochs)


def finished_epochs(run_dir: str | Path) -> int:
    """Epochs a run has finished, from its metrics.csv (0 when none)."""
    path = Path(run_dir) / METRICS
    return max(0, len(path.read_text(encoding="utf-8").splitlines()) - 1) if path.exists() else 0


def resume_message(run_dir: Path, has_state: bool, epochs: int) -> str:
    """What resuming `run_dir` will do, for the log: the epoch it continues after, or a fresh start."""
    if not has_state:
        return f"{run_dir}: no epoch had finished; starting its training again"
    return f"resuming {run_dir} after epoch {finished_epochs(run_dir)} of at most {epochs}"


# Fields that may change when a run is resumed: they do not change what is learned.
_RESUMABLE_CHANGES = {"epochs", "progress", "num_workers", "max_minutes", "devices", "num_nodes", "strategy",
                      "calibration_mc"}


def resume_changes(saved, new) -> list[str]:
    """The settings of config `new` that differ from `saved` and would change what is learned."""
    a, b = config_to_dict(saved), config_to_dict(new)
    return [k for k in a if k not in _RESUMABLE_CHANGES and a[k] != b[k]]


def prepare_run_dir(out: Path, config, resume: bool, overwrite: bool, key: str = "train") -> dict | None:
    """Checks `out` for the requested action and clears it for a new run; returns the saved config.json when
    resuming.

    `config` is a TrainConfig (saved under "train") or a ForecastConfig (saved under "forecast").
    """
    exists = (out / CONFIG).exists()
    if resume:
        if not exists:
            raise ConfigError(f"{out}: nothing to resume (no {CONFIG}); drop --resume to start a new run.")
        payload = read_config(out)
        if payload.get("status") == "complete":
            raise ConfigError(f"{out}: the run is complete; nothing to resume (pass --overwrite to retrain).")
        if key not in payload:
            raise ConfigError(f"{out}: holds a different kind of run (no {key!r} settings); choose another --out.")
        saved = config_from_dict(type(config), payload[key], f"{out / CONFIG}: {key}", saved=True)
        for stale in out.glob(".*.tmp"):  # a write the kill interrupted; the real file is intact
            stale.unlink()
        changed = resume_changes(saved, config)
        if changed:
            raise ConfigError(f"{out}: cannot resume with different settings ({', '.join(changed)}); "
                              "repeat the original command with --resume (only --epochs may change).")
        return payload
    if exists and not overwrite:
        status = read_config(out).get("status")
        hint = "add --resume to continue it" if status != "complete" else "choose another --out"
        raise ConfigError(f"{out}: already holds a run (status {status!r}); {hint}, or pass --overwrite.")
    for name in (CONFIG, WEIGHTS, RESUME, "metrics.csv"):
        (out / name).unlink(missing_ok=True)
    return None
