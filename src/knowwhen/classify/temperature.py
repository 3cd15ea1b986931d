"""Temperature scaling of a classifier, in one place: the softmax's temperature fitted on the validation logits
after training, and the MC passes' own temperature fitted on the MC mean (a post-hoc part, `knowwhen refit`).
The methods (`TemperatureScaler`, `fit_mc_temperature`) are `knowwhen.evaluation.calibration`'s."""
from __future__ import annotations

import logging

import numpy as np

from ..data import ImageDataset
from ..data.splits import Split
from ..evaluation import TemperatureScaler, expected_calibration_error, softmax
from ..evaluation.calibration import fit_mc_temperature, mc_mean_nll
from ..uncertainty.ensemble_mc import mc_engine
from .run import Run

log = logging.getLogger("knowwhen")
MAX_MC_TEMPERATURE_IMAGES = 5000  # a seeded sample of validation keeps the (T, n, K) pass logits small

# Below this many validation images a fitted temperature follows the noise of a few images (36 cells: 3
# validation images moved ECE from 0.002 to 0.113), so none is fitted and the plain softmax is used.
MIN_TEMPERATURE_IMAGES = 50


def temperature_note(val_images: int) -> str | None:
    """Why no temperature was fitted, or None when one was."""
    if val_images >= MIN_TEMPERATURE_IMAGES:
        return None
    return (f"not fitted: {val_images} validation image(s), fewer than {MIN_TEMPERATURE_IMAGES}; predictions use "
            "the plain softmax")


def softmax_temperature(logits: np.ndarray, y: np.ndarray) -> dict:
    """Temperature scaling fitted on the validation logits (minimum NLL), with ECE before and after."""
    ts = TemperatureScaler().fit(logits, y)
    return {"temperature": ts.temperature_,
            "val_ece": expected_calibration_error(softmax(logits), y),
            "val_ece_temperature": expected_calibration_error(ts.transform(logits), y)}


def fit_mc_temperature_on_validation(run: Run, ds: ImageDataset, split: Split, mc: int) -> dict:
    """The temperature of the MC passes that minimises the NLL of the MC mean on (a sample of) validation."""
    rng = np.random.default_rng(run.config.seed)
    idx = np.sort(rng.choice(split.val, min(len(split.val), MAX_MC_TEMPERATURE_IMAGES), replace=False))
    engine = mc_engine(run.model, mc, seed=0)
    z = np.concatenate([engine.pass_logits(run.preprocess(images))[1].numpy()
                        for _, images in ds.batches(idx, 500)], axis=1)
    y = split.label_map[ds.labels[idx]]
    tau = fit_mc_temperature(z, y)
    run.info["mc_temperature"] = tau
    fit = {"images": len(idx), "mc_passes": mc, "samples": run.samples(mc), "nll_at_softmax_temperature": mc_mean_nll(z, y, run.temperature),
           "nll": mc_mean_nll(z, y, tau)}
    log.info("MC temperature %.4f fitted on %d validation images (NLL of the MC mean %.4f -> %.4f)", tau, len(idx),
             fit["nll_at_softmax_temperature"], fit["nll"])
    if not 0.0101 < tau < 99:
        log.warning("the MC temperature %.4g lies at the end of its search range [0.01, 100]: no temperature "
                    "calibrates this model's MC mean well (too few epochs?); compare the calibration blocks of "
                    "`knowwhen evaluate`.", tau)
    return {"mc_temperature": tau, "mc_temperature_fit": fit}
