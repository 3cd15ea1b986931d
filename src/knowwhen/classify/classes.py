"""Which class of the run each class name of a dataset is: names match after normalising their spelling.

A folder cannot hold "T-shirt/top", so a user writes `T-shirt_top/`; another tool says "ankle boot". Matching
compares names with case, spaces, `_`, `-` and `/` removed; a name that matches no class of the run is novel
only when the user says so (or the run held that class out), never silently.
"""
from __future__ import annotations

import logging
import re

from ..errors import DataError

log = logging.getLogger("knowwhen")
NOVEL = -1


def class_key(name: str) -> str:
    """`name` without case, spaces, `_`, `-` and `/`: "T-shirt_top" and "T-shirt/top" give "tshirttop"."""
    return re.sub(r"[\s_\-/]+", "", str(name)).casefold()


def _run_index(name: str, run_names: tuple[str, ...], keys: dict[str, list[int]]) -> int | None:
    if name in run_names:
        return run_names.index(name)
    same = keys.get(class_key(name), [])
    return same[0] if len(same) == 1 else None


def run_class_names(data_names, run_names) -> list[str]:
    """Each data class name spelled as the run spells it where it matches one, else as it is."""
    keys = _keys(run_names)
    return [n if (i := _run_index(n, tuple(run_names), keys)) is None else run_names[i] for n in data_names]


def _keys(run_names) -> dict[str, list[int]]:
    keys: dict[str, list[int]] = {}
    for i, n in enumerate(run_names):
        keys.setdefault(class_key(n), []).append(i)
    return keys


def class_mapping(data_names, run_names, novel=(), where: str = "data") -> dict[str, int]:
    """{data class name: run class index, or NOVEL (-1) for a class declared novel}.

    Args:
        novel: class names to treat as classes the run never saw (e.g. its held-out classes, --novel-classes).
    Raises DataError naming the run's classes when a data class matches none of them and is not declared novel.
    """
    run_names, keys = tuple(run_names), _keys(run_names)
    novel_keys = {class_key(n) for n in novel}
    out, unmatched, renamed = {}, [], []
    for name in data_names:
        i = _run_index(name, run_names, keys)
        if i is not None:
            out[name] = i
            if name != run_names[i]:
                renamed.append(f"{name!r} -> {run_names[i]!r}")
        elif class_key(name) in novel_keys:
            out[name] = NOVEL
        else:
            unmatched.append(name)
    if unmatched:
        raise DataError(f"{where}: class(es) {', '.join(map(repr, unmatched))} match none of the run's classes "
                        f"({', '.join(run_names)}), even ignoring case, spaces, '_', '-' and '/'; rename them, or "
                        f"declare them novel (--novel-classes {','.join(unmatched)}).")
    if renamed:
        log.info("class names matched to the run's: %s", ", ".join(renamed))
    return out
