"""The one MC-dropout engine (images and sequences), the uncertainty measures computed from its passes, and
conformal prediction sets."""
from .conformal import ConformalClassifier, class_scores, conformal_quantile
from .ensemble_mc import EnsembleMC, mc_engine, samples_per_image
from .mc import MaskSource, MCDropout, dropout_sites, masks_applied
from .measures import (CONFIDENCE_MEASURES, MEASURES, MCSums, entropy, measures_from_passes, measures_from_sums,
                       uncertainty_scores)

__all__ = ["CONFIDENCE_MEASURES", "ConformalClassifier", "EnsembleMC", "class_scores", "conformal_quantile", "MCDropout", "MCSums", "MEASURES", "MaskSource", "dropout_sites", "entropy",
           "masks_applied", "mc_engine", "measures_from_passes", "measures_from_sums", "samples_per_image",
           "uncertainty_scores"]
