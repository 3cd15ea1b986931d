"""Data: open images in any common format, split them, normalise and augment them."""
from .dataset import ImageDataset
from .arrays import dataset_from_arrays
from .open import FORMATS, open_dataset

__all__ = ["FORMATS", "ImageDataset", "dataset_from_arrays", "open_dataset"]
