"""Data: open images in any common format, split them, normalise and augment them."""
from .dataset import ImageDataset
from .arrays import dataset_from_arrays
from .fields import FieldOptions
from .open import FORMATS, open_dataset

__all__ = ["FORMATS", "FieldOptions", "ImageDataset", "dataset_from_arrays", "open_dataset"]
