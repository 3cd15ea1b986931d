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


def test_mc_columns_and_batch_size_invariance(digits_run, tmp_path):
    run, ds = kw.load_run(digits_run), kw.open_dataset("digits")
    a = kw.write_predictions(run, ds, tmp_path / "a.csv", batch_size=1000, progress=False, mc=20, seed=1)
    b = kw.write_predictions(run, ds, tmp_path / "b.csv", batch_size=33, progress=False, mc=20, seed=1)
    ra, rb = list(csv.DictReader(open(a))), list(csv.DictReader(open(b)))
    assert list(ra[0])[:11] == ["id", "label", "pred", "p_max", "pred_mc", "p_max_mc", "sigma_mc", "entropy_mc",
                                "mutual_info_mc", "variation_ratio_mc", "prob_0"]
    for col in ("p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc", "prob_3"):
        np.testing.assert_allclose([float(r[col]) for r in ra], [float(r[col]) for r in rb], rtol=1e-4, atol=1e-6)
    probs = np.array([[float(r[f"prob_{c}"]) for c in "0123456789"] for r in ra])
    np.testing.assert_allclose(probs.max(1), [float(r["p_max_mc"]) for r in ra], rtol=1e-5)
    assert np.mean([float(r["variation_ratio_mc"]) > 0 for r in ra]) > 0.01  # dropout really varies


def test_saved_passes_reproduce_the_measures(digits_run, tmp_path):
    from knowwhen.uncertainty import measures_from_passes

    run = kw.load_run(digits_run)
    x = kw.open_dataset("digits").images(np.arange(50))
    ds = kw.dataset_from_arrays(x, None, channels="first")
    out = kw.write_predictions(run, ds, tmp_path / "p.csv", progress=False, mc=15, passes_out=tmp_path / "p.npy")
    passes = np.load(tmp_path / "p.npy")
    assert passes.shape == (15, 50, 10)
    ref = measures_from_passes(passes)
    rows = list(csv.DictReader(open(out)))
    np.testing.assert_allclose([float(r["entropy_mc"]) for r in rows], ref["entropy_mc"], rtol=1e-4)
    with pytest.raises(kw.ConfigError, match="--mc"):
        kw.write_predictions(run, ds, tmp_path / "q.csv", progress=False, passes_out=tmp_path / "q.npy")
