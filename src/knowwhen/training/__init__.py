"""Training: Lightning underneath, a run directory as the result."""
from .fit import train

__all__ = ["train"]
