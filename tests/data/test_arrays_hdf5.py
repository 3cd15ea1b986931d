import h5py
import numpy as np
import pytest

from _fakes import DEEPLOC
from knowwhen import DataError, dataset_from_arrays, open_dataset


def test_npz_channels_last_with_class_names(tmp_path):
    x = np.random.default_rng(0).random((6, 10, 10, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]), class_names=np.array(["r", "g", "b"]))
    ds = open_dataset(tmp_path / "d.npz")
    assert ds.shape == (3, 10, 10) and ds.class_names == ("r", "g", "b")
    np.testing.assert_allclose(ds.images([2])[0], np.moveaxis(x[2], -1, 0))


def test_npz_ambiguous_layout_asks_for_channels(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3, 5, 3)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="channels='first'"):
        open_dataset(tmp_path / "d.npz")
    ds = open_dataset(tmp_path / "d.npz", options={"channels": "last"})
    assert ds.shape == (3, 3, 5)


def test_nan_or_inf_values_are_rejected(tmp_path):
    x = np.zeros((4, 5, 5), np.float32)
    x[2, 1, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="NaN or infinite.*index 2"):
        open_dataset(tmp_path / "d.npz")


def test_npz_label_count_mismatch(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5)), y=np.array([0, 1, 0]))
    with pytest.raises(DataError, match="4 images but 3 labels"):
        open_dataset(tmp_path / "d.npz")


def _h5(path, x, y, **attrs):
    with h5py.File(path, "w") as f:
        f["images"] = x
        f["labels"] = y
        f.attrs.update(attrs)
    return path


def test_hdf5_integer_labels_read_lazily(tmp_path):
    x = np.arange(50 * 6 * 6, dtype=np.uint16).reshape(50, 6, 6)
    ds = open_dataset(_h5(tmp_path / "d.h5", x, np.arange(50) % 5))
    reads = []
    original = ds.source.read
    ds.source.read = lambda idx: reads.append(len(idx)) or original(idx)
    out = ds.images([49, 3, 3])
    np.testing.assert_array_equal(out[:, 0], x[[49, 3, 3]])
    assert reads == [2]  # only the two distinct rows asked for were read


def test_hdf5_one_hot_labels_and_bad_one_hot(tmp_path):
    y = np.eye(3, dtype=np.uint8)[[0, 2, 1, 2]]
    ds = open_dataset(_h5(tmp_path / "d.h5", np.zeros((4, 5, 5)), y))
    assert ds.labels.tolist() == [0, 2, 1, 2]
    y[1] = [1, 1, 0]
    with pytest.raises(DataError, match="row 1 is not one-hot"):
        open_dataset(_h5(tmp_path / "e.h5", np.zeros((4, 5, 5)), y))


def test_hdf5_with_unknown_keys_asks_for_them(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["foo"], f["bar"] = np.zeros((2, 4, 4)), np.zeros(2)
    with pytest.raises(DataError, match="x_key=NAME"):
        open_dataset(tmp_path / "d.h5")
    ds = open_dataset(tmp_path / "d.h5", options={"x_key": "foo", "y_key": "bar"})
    assert len(ds) == 2


def test_file_that_is_not_hdf5(tmp_path):
    (tmp_path / "fake.h5").write_text("hello")
    with pytest.raises(DataError, match="not an HDF5 file"):
        open_dataset(tmp_path / "fake.h5")


@pytest.mark.skipif(not DEEPLOC.exists(), reason="../shared/data/deeploc is absent")
def test_real_deeploc_file_is_detected_and_planar():
    ds = open_dataset(DEEPLOC)
    assert ds.format == "deeploc" and ds.shape == (2, 64, 64) and len(ds) == 36
    assert ds.class_names[:3] == ("ER", "Bud", "Bud Neck") and len(ds.class_names) == 11
    assert ds.class_counts().tolist() == [6, 1, 0, 7, 5, 1, 3, 0, 4, 6, 3]
    with h5py.File(DEEPLOC) as f:
        row = f["data1"][7]
    x = ds.images([7])[0]
    np.testing.assert_allclose(x[0], row[:4096].reshape(64, 64))  # channel 0 = RFP, row-major
    np.testing.assert_allclose(x[1], row[4096:].reshape(64, 64))
    assert 30_000 < x.mean() < 36_000


def test_arrays_string_labels():
    ds = dataset_from_arrays(np.zeros((3, 4, 4)), np.array(["b", "a", "b"]))
    assert ds.class_names == ("a", "b") and ds.labels.tolist() == [1, 0, 1]


def test_unknown_builtin_and_missing_path():
    with pytest.raises(DataError, match="no such file or folder"):
        open_dataset("no-such-thing")
    with pytest.raises(DataError, match="cannot tell the format"):
        open_dataset(__file__)
