import csv

import numpy as np
import pytest

import knowwhen as kw
from _fakes import image_folder


def test_prediction_csv_has_one_row_per_image_with_probabilities(digits_run, tmp_path):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    out = kw.write_predictions(run, ds, tmp_path / "p.csv", batch_size=100, progress=False)
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == len(ds)
    assert list(rows[0])[:4] == ["id", "label", "pred", "p_max"] and list(rows[0])[4:] == [f"prob_{c}" for c in "0123456789"]
    probs = np.array([[float(r[f"prob_{c}"]) for c in "0123456789"] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    np.testing.assert_allclose([float(r["p_max"]) for r in rows], probs.max(1), rtol=1e-5)
    assert [r["pred"] for r in rows] == [str(k) for k in probs.argmax(1)]
    assert rows[5]["id"] == "digits:5" and rows[5]["label"] == str(ds.labels[5])
    acc = np.mean([r["pred"] == r["label"] for r in rows])
    assert acc > 0.6
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_batch_size_does_not_change_predictions(digits_run):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    a = np.concatenate([b.probs for b in kw.predict_dataset(run, ds, 7, progress=False)])
    b = np.concatenate([b.probs for b in kw.predict_dataset(run, ds, 1000, progress=False)])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_images_of_the_wrong_shape_are_refused(digits_run, tmp_path):
    ds = kw.open_dataset(image_folder(tmp_path / "r", ("a", "b"), 2, shape=(10, 10)))
    with pytest.raises(kw.DataError, match=r"\(1, 10, 10\).*trained on \(1, 8, 8\)"):
        next(kw.predict_dataset(kw.load_run(digits_run), ds))


def test_unlabelled_images_have_no_label_column(digits_run, tmp_path):
    x = kw.open_dataset("digits").images(np.arange(4))[:, 0].astype(np.uint8)
    np.savez(tmp_path / "u.npz", x=x)
    out = kw.write_predictions(kw.load_run(digits_run), kw.open_dataset(tmp_path / "u.npz"), tmp_path / "p.csv",
                               progress=False)
    assert open(out).readline().startswith("id,pred,p_max,")
