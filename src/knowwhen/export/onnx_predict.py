"""Prediction with an exported `.onnx` file (`knowwhen.export.onnx`): no run directory and no PyTorch network,
only onnxruntime; the same columns as `knowwhen predict --mc T` computes with the masks the file was exported
with, less the feature-space scores and `novelty` (not in the graph)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..atomic import check_output_file
from ..data import ImageDataset
from ..errors import CheckpointError, DataError
from ..tables import TableWriter

COLUMNS = ("pred", "p_max", "pred_mc", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc")


def load_graph(path: str | Path):
    """(onnxruntime session, metadata dict) of an exported file (.onnx, or the model.onnx of a bioimage.io package
    .zip); a CheckpointError naming the file when it is not one knowwhen exported."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(_package_onnx(path) if str(path).lower().endswith(".zip") else str(path))
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for unreadable files
        raise CheckpointError(f"{path}: not a readable ONNX file ({type(e).__name__}); export one with "
                              "`knowwhen export RUN --out model.onnx`.") from None
    meta = session.get_modelmeta().custom_metadata_map
    if "class_names" not in meta or "input_shape" not in meta:
        raise CheckpointError(f"{path}: an ONNX file without knowwhen's metadata (class_names, input_shape); "
                              "export the run with `knowwhen export`.")
    return session, meta


def _package_onnx(path) -> bytes:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return z.read("model.onnx")
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a bioimage.io package with model.onnx ({e}); export one with "
                              "`knowwhen export RUN --out pkg.zip`.") from None


def _columns(got: dict) -> dict:
    """The plain export's outputs from a bioimage.io package's (probs, probs_mc, measures); others as they are."""
    if "measures" not in got:
        return got
    from .bioimageio import MEASURES

    m = {name: got["measures"][:, k] for k, name in enumerate(MEASURES)}
    return {**got, **m, "pred": got["probs"].argmax(1), "pred_mc": got["probs_mc"].argmax(1)}


def write_onnx_predictions(path: str | Path, ds: ImageDataset, out: str | Path, batch_size: int = 512,
                           progress: bool = True) -> Path:
    """Writes one row per image of `ds` (CSV, or Parquet for a .parquet `out`), atomically: id, label (when
    known), the MC columns and prob_<class> (the MC mean), computed by the exported graph `path`.

    Example:
        >>> write_onnx_predictions("fmnist_mc30.onnx", open_dataset("plate.h5"), "p.csv")  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from ..classify.classes import run_class_names

    out = Path(out)
    check_output_file(out, "--out")
    session, meta = load_graph(path)
    classes, shape = json.loads(meta["class_names"]), tuple(json.loads(meta["input_shape"]))
    if tuple(ds.shape) != shape:
        raise DataError(f"{ds.path}: images are {tuple(ds.shape)} (C, H, W) but {path} was exported for {shape}; "
                        "give images of that size and channel count.")
    header = ["id"] + (["label"] if (ds.labels >= 0).any() else []) + list(COLUMNS) + [f"prob_{c}" for c in classes]
    names = np.asarray(run_class_names(ds.class_names, classes) + [""])
    outputs = [o.name for o in session.get_outputs()]
    bar = tqdm(total=len(ds), unit="img", desc=f"predicting (ONNX, MC x{meta.get('mc_passes')})",
               disable=not progress, file=sys.stderr, leave=False)

    def batches():
        for idx, images in ds.batches(np.arange(len(ds)), batch_size):
            got = _columns(dict(zip(outputs, session.run(None, {"images": np.ascontiguousarray(images, np.float32)}))))
            cols = {"id": np.array([ds.item_id(i) for i in idx], dtype=str), "label": names[ds.labels[idx]]}
            cols.update({k: np.asarray(classes, dtype=object)[got[k]].astype(str) if k.startswith("pred")
                         else got[k].astype(np.float64) for k in COLUMNS})
            cols.update({f"prob_{c}": got["probs_mc"][:, k].astype(np.float64) for k, c in enumerate(classes)})
            bar.update(len(idx))
            yield {h: cols[h] for h in header}

    with bar, TableWriter(out, header=header) as writer:
        for cols in batches():
            writer.write(cols)
    return out
