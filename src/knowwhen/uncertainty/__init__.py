"""The one MC-dropout engine (images and sequences), the uncertainty measures computed from its passes, and
conformal prediction sets."""
from .conformal import ConformalClassifier, class_scores, conformal_quantile
from .mc import MaskSource, MCDropout, dropout_sites, masks_applied
from .measures import (CONFIDENCE_MEASURES, MEASURES, MCSums, entropy, measures_from_passes, measures_from_sums,
                       uncertainty_scores)

__all__ = ["CONFIDENCE_MEASURES", "ConformalClassifier", "class_scores", "conformal_quantile", "MCDropout", "MCSums", "MEASURES", "MaskSource", "dropout_sites", "entropy",
           "masks_applied", "measures_from_passes", "measures_from_sums", "uncertainty_scores"]
