"""Screens: plates and wells of cells, each cell flagged novel or not, hit wells called with a false discovery
rate. Above `classify` (it predicts with a run) and below the report and the CLI."""
from .metadata import PLATE, WELL, screen_metadata
from .screen import ScreenOptions, screen_run

__all__ = ["PLATE", "WELL", "ScreenOptions", "screen_metadata", "screen_run"]
