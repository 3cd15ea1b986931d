"""Image folders ROOT/<class>/*.png and CSV manifests `path,label`, read lazily."""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import UNLABELLED, ImageDataset
from .images import IMAGE_SUFFIXES, checked_file_source, tiff_channel_names


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))


def _sorted_names(names) -> list[str]:
    names = sorted(set(names))
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return names


def _dataset_from_files(paths: list[Path], labels: list[int], class_names, root: Path, fmt: str,
                        skip_bad: bool) -> ImageDataset:
    source = checked_file_source(paths, skip_bad)
    if not source.paths:
        raise DataError(f"{root}: none of the {len(paths)} image files could be read; see the list above.")
    label_of = dict(zip(paths, labels))
    kept = np.array([label_of[p] for p in source.paths], dtype=np.int64)
    _check_no_empty_class(kept, class_names, root)
    ds = ImageDataset(source, kept, tuple(class_names), str(root), fmt)
    ds.channel_names = tiff_channel_names(source.paths[0], ds.shape[0])  # the first file speaks for the set
    return ds


def _check_no_empty_class(labels: np.ndarray, class_names, where) -> None:
    if not len(class_names):
        return
    counts = np.bincount(labels[labels >= 0], minlength=len(class_names))
    empty = [c for c, n in zip(class_names, counts) if n == 0]
    if empty:
        raise DataError(f"{where}: class(es) {', '.join(map(repr, empty))} have no images; "
                        "add images for them or remove them from the class list.")


def open_folder(root: str | Path, options: dict | None = None, skip_bad: bool = False) -> ImageDataset:
    """Opens ROOT/<class>/<images>; a folder of images with no class folders is unlabelled."""
    root, options = Path(root), dict(options or {})
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give ROOT with one sub-folder of images per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        paths = _image_files(root)
        if not paths:
            raise DataError(f"{root}: no images found; expected ROOT/<class>/*.png (or .jpg, .tif) files.")
        return _dataset_from_files(paths, [UNLABELLED] * len(paths), (), root, "folder", skip_bad)
    class_names = list(options.get("class_names") or [d.name for d in class_dirs])
    unknown = sorted(set(class_names) - {d.name for d in class_dirs})
    if unknown:
        raise DataError(f"{root}: class(es) {', '.join(unknown)} have no folder; "
                        "create ROOT/<class>/ for each or fix class_names.")
    paths, labels = [], []
    for k, name in enumerate(class_names):
        files = _image_files(root / name)
        if not files:
            raise DataError(f"{root / name}: class {name!r} has no images; "
                            "add images or remove the folder.")
        paths += files
        labels += [k] * len(files)
    return _dataset_from_files(paths, labels, class_names, root, "folder", skip_bad)


def manifest_paths(csv_path: Path, names: list[str]) -> list[str]:
    """`str((csv_path.parent / name).resolve())` for every name, each folder resolved once.

    Resolving a path costs a system call per component; a manifest of a plate lists thousands of files in a few
    folders, so this checks only whether each file itself is a link (then it is resolved whole, as before).
    """
    base, real_folders, out = csv_path.parent, {}, []
    for name in names:
        folder, leaf = os.path.split(os.path.join(base, name))
        if leaf in ("", ".", ".."):
            out.append(os.path.realpath(os.path.join(folder, leaf)))
            continue
        if folder not in real_folders:
            real_folders[folder] = os.path.realpath(folder)
        full = os.path.join(real_folders[folder], leaf)
        out.append(os.path.realpath(full) if os.path.islink(full) else full)
    return out


def _manifest_rows(path: Path) -> tuple[list[Path], list[str] | None]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "path" not in fields:
                raise DataError(f"{path}: no 'path' column (columns: {', '.join(fields) or 'none'}); "
                                "the manifest's header line needs a 'path' column (image files relative to the CSV), "
                                "and a 'label' column only for labelled images (training, evaluation).")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read the CSV manifest ({e}).") from None
    if not rows:
        raise DataError(f"{path}: the manifest lists no images; add one line per image under its header.")
    for line, r in enumerate(rows, start=2):
        if not r["path"]:
            raise DataError(f"{path} line {line}: empty path; every line needs a path (relative to the CSV).")
    paths = [Path(p) for p in manifest_paths(path, [r["path"] for r in rows])]
    labels = [(r.get("label") or "").strip() for r in rows] if "label" in fields else None
    if labels is not None:
        for line, lab in enumerate(labels, start=2):
            if not lab:
                raise DataError(f"{path} line {line}: empty label; give every image a label "
                                "or drop the label column for unlabelled data.")
    return paths, labels


def open_manifest(path: str | Path, options: dict | None = None, skip_bad: bool = False) -> ImageDataset:
    """Opens a CSV with columns `path,label` (paths relative to the CSV; `label` optional)."""
    path, options = Path(path), dict(options or {})
    paths, labels = _manifest_rows(path)
    is_file = [p.is_file() for p in paths]
    missing = [(i, p) for i, (p, ok) in enumerate(zip(paths, is_file)) if not ok]
    if missing and not skip_bad:
        i, p = missing[0]
        raise DataError(f"{path} line {i + 2}: {p} does not exist ({len(missing)} missing in all); "
                        "fix the paths (relative to the CSV's folder) or pass --skip-bad.")
    if labels is None:
        class_names, label_ids = (), [UNLABELLED] * len(paths)
    else:
        class_names = list(options.get("class_names") or _sorted_names(labels))
        index = {c: k for k, c in enumerate(class_names)}
        stray = sorted(set(labels) - set(index))
        if stray:
            raise DataError(f"{path}: label(s) {', '.join(stray[:5])} are not in class_names; add them.")
        label_ids = [index[lab] for lab in labels]
    keep = [i for i, ok in enumerate(is_file) if ok]
    for i, p in missing:
        print(f"skipped {p}: listed in {path} line {i + 2} but does not exist", file=sys.stderr)
    return _dataset_from_files([paths[i] for i in keep], [label_ids[i] for i in keep], class_names,
                               path, "csv", skip_bad)
