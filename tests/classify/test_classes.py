import csv

import numpy as np
import pytest

import knowwhen as kw
from knowwhen.classify.classes import NOVEL, class_key, class_mapping
from knowwhen.classify.evaluate import evaluate_run

RUN_NAMES = ("T-shirt/top", "Ankle boot", "Bag")


def test_names_match_ignoring_case_spaces_underscores_hyphens_and_slashes():
    assert class_key("T-shirt_top") == class_key("t shirt/TOP") == "tshirttop"
    mapping = class_mapping(["T-shirt_top", "ankle-boot", "Bag"], RUN_NAMES)
    assert mapping == {"T-shirt_top": 0, "ankle-boot": 1, "Bag": 2}


def test_an_unknown_name_is_an_error_unless_declared_novel():
    with pytest.raises(kw.DataError, match=r"'Sandal' match none of the run's classes \(T-shirt/top, Ankle boot, Bag\)"
                                           r".*--novel-classes Sandal"):
        class_mapping(["Bag", "Sandal"], RUN_NAMES)
    assert class_mapping(["Bag", "Sandal"], RUN_NAMES, novel=("sandal",))["Sandal"] == NOVEL


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("named")
    digits = kw.open_dataset("digits")
    idx = np.flatnonzero(digits.labels < 3)
    np.savez(root / "train.npz", x=digits.images(idx), y=digits.labels[idx], class_names=np.array(RUN_NAMES))
    cfg = kw.TrainConfig(kw.DataConfig(str(root / "train.npz")), kw.ModelConfig("mlp", {"hidden": 64}), epochs=20,
                         progress=False)
    return root, kw.load_run(kw.train(cfg, root / "run")), digits


def _other_spelling(root, digits, names, classes=4):
    idx = np.flatnonzero(digits.labels < classes)[::3]
    x = digits.images(idx) + 0.25                        # images the run never trained on
    np.savez(root / "other.npz", x=x, y=digits.labels[idx], class_names=np.array(names))
    return kw.open_dataset(root / "other.npz"), idx


def test_evaluate_scores_classes_spelled_another_way(named_run, tmp_path):
    root, run, digits = named_run
    ds, idx = _other_spelling(tmp_path, digits, ["T-shirt_top", "ankle_boot", "BAG"], classes=3)
    summary = evaluate_run(run, ds, tmp_path / "e", kw.EvaluateOptions(mc=None, progress=False))
    assert summary["images"] == len(idx) and "novelty" not in summary     # nothing became "novel"
    rows = list(csv.DictReader(open(tmp_path / "e" / "per_class.csv")))
    assert [r["class"] for r in rows] == list(RUN_NAMES) and all(int(r["images"]) > 0 for r in rows)
    assert summary["accuracy"]["accuracy"] > 0.7
    labels = {r["label"] for r in csv.DictReader(open(tmp_path / "e" / "predictions.csv"))}
    assert labels == set(RUN_NAMES)                                        # the run's spelling


def test_evaluate_refuses_an_unknown_class_unless_it_is_declared_novel(named_run, tmp_path):
    root, run, digits = named_run
    ds, idx = _other_spelling(tmp_path, digits, ["T-shirt_top", "ankle_boot", "BAG", "Sandal"], classes=4)
    with pytest.raises(kw.DataError, match="Sandal"):
        evaluate_run(run, ds, tmp_path / "e", kw.EvaluateOptions(mc=None, progress=False))
    summary = evaluate_run(run, ds, tmp_path / "e", kw.EvaluateOptions(mc=None, progress=False, novel_classes=("Sandal",)))
    assert summary["novelty"]["novel_images"] == int((digits.labels[idx] == 3).sum())
