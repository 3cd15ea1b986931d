"""MC-dropout prediction and the uncertainty measures computed from its passes."""
from .mc import MCDropout, dropout_sites
from .measures import (CONFIDENCE_MEASURES, MEASURES, MCSums, entropy, measures_from_passes, measures_from_sums,
                       uncertainty_scores)

__all__ = ["CONFIDENCE_MEASURES", "MCDropout", "MCSums", "MEASURES", "dropout_sites", "entropy",
           "measures_from_passes", "measures_from_sums", "uncertainty_scores"]
