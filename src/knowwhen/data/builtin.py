"""Built-in datasets: scikit-learn's `digits` and Debian's `fashion-mnist` package."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .arrays import dataset_from_arrays
from .dataset import ImageDataset
from .idx import FASHION_MNIST_CLASSES, open_idx

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
BUILTINS = ("digits", "fashion-mnist")


def fashion_mnist_available(folder: Path = FASHION_MNIST_DIR) -> bool:
    return (folder / "train-images-idx3-ubyte.gz").exists()


def open_builtin(name: str) -> ImageDataset:
    """Opens a built-in dataset by name."""
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        # Pixel values are 0..16; shape (1797, 8, 8) -> (N, 1, 8, 8).
        ds = dataset_from_arrays(bunch.images, bunch.target, [str(c) for c in bunch.target_names], name="digits")
        ds.format = "builtin"
        return ds
    if name == "fashion-mnist":
        if not fashion_mnist_available():
            raise DataError(f"fashion-mnist: not installed ({FASHION_MNIST_DIR} missing); "
                            "run `apt-get install -y dataset-fashion-mnist` as root, or use 'digits'.")
        ds = open_idx(FASHION_MNIST_DIR, {"class_names": FASHION_MNIST_CLASSES})
        ds.format = "builtin"
        return ds
    raise DataError(f"{name}: no such built-in dataset; use one of {', '.join(BUILTINS)} or a path.")
