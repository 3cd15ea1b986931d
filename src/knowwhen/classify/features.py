"""A run's post-hoc novelty parts: feature statistics of its training split (features.safetensors) and the
scores of its validation images (reference.safetensors) against which the fused `novelty` score is measured.

Both are fitted at the end of training and by `knowwhen refit` (`knowwhen.classify.posthoc`); `load_run` loads them when present, and
`predict_dataset` then adds the feature scores and `novelty` to every batch. The methods are
`knowwhen.uncertainty.features` and `knowwhen.uncertainty.fusion`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..training.rundir import FEATURES, REFERENCE, read_arrays, write_arrays
from ..uncertainty.features import FeatureScorer
from ..uncertainty.fusion import FUSED, UNION, Reference, member_scores

log = logging.getLogger("knowwhen")
FEATURES_FILE, REFERENCE_FILE = FEATURES, REFERENCE  # the run directory's names (training.rundir)
# How the reference's own `novelty` scores were made: p-values linear between reference scores (see fusion.py).
# Files without it were made with the step p-value, whose fused scores sit up to a rank above today's.
P_VALUE_RULE = "interpolated"


def save_features(run_dir: str | Path, scorer: FeatureScorer) -> None:
    """Writes features.safetensors atomically."""
    write_arrays(run_dir, FEATURES, scorer.arrays())


def load_features(run_dir: str | Path) -> FeatureScorer | None:
    """The run's feature statistics, or None when it has none (trained before them; `knowwhen refit` adds them)."""
    return _load(run_dir, FEATURES, lambda arrays, _metadata, _path: FeatureScorer.from_arrays(arrays))


def save_reference(run_dir: str | Path, reference: Reference, info: dict) -> None:
    """Writes reference.safetensors atomically, `info` (images, MC passes) and the fused measures in its metadata.
    A reference without recorded fused measures (an old one, loaded) is refused: saving it would record a rule
    it was not made with; `reference_scores` makes a new one."""
    if reference.fused is None:
        raise ValueError("this reference does not record which measures its novelty fuses (made before knowwhen "
                         "recorded them); refit it (`knowwhen refit RUN --parts reference`) instead of saving it")
    write_arrays(run_dir, REFERENCE, {k: np.asarray(v, np.float64) for k, v in reference.items()},
                 {"info": json.dumps(info), "fused": json.dumps(list(reference.fused)), "p_values": P_VALUE_RULE})


def load_reference(run_dir: str | Path) -> Reference | None:
    """The run's validation reference scores, or None when it has none."""
    return _load(run_dir, REFERENCE, _reference_from)


def _reference_from(scores: dict, metadata: dict, path: Path) -> Reference:
    fused = metadata.get("fused")
    if metadata.get("p_values") != P_VALUE_RULE and FUSED in scores:
        log.warning("%s: its validation `novelty` scores were made with the step p-value of an older knowwhen, "
                    "while predictions now use p-values linear between reference scores; thresholds set on them "
                    "(the screen without controls) are slightly conservative. Refresh them with `knowwhen refit %s "
                    "--parts reference`.", path, path.parent)
    if fused is None:
        log.info("%s: made before knowwhen recorded which measures its novelty fuses, so it fuses every measure "
                 "(%d), as when it was made; `knowwhen refit %s --parts reference` fuses one per family instead.",
                 path, len([k for k in scores if k != FUSED]), path.parent)
        return Reference(scores, None)
    try:
        names = json.loads(fused)
    except ValueError:
        names = None
    if not isinstance(names, list) or not names or any(
            not isinstance(n, str) or not set(member_scores(n)) <= set(scores) for n in names):
        raise ValueError(f"metadata 'fused' = {fused!r} is not a list of the measures the file holds "
                         f"(a member a{UNION}b: two of them)")
    return Reference(scores, names)


def _load(run_dir: str | Path, name: str, build):
    """build(arrays, metadata, path) of the run's file `name`; None when the run has none."""
    path, fix = Path(run_dir) / name, f"delete it and run `knowwhen refit {run_dir}`"
    got = read_arrays(run_dir, name, fix)
    if got is None:
        return None
    try:
        return build(*got, path)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable ({e}); {fix}.") from None


