import numpy as np
import pytest

from _fakes import write_idx
from knowwhen import DataError, open_dataset
from knowwhen.data.builtin import fashion_mnist_available
from knowwhen.data.idx import read_idx


@pytest.mark.parametrize("gz", [False, True])
def test_idx_pair_roundtrip(tmp_path, gz):
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", x, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.array([0, 1, 2, 1, 0], np.uint8), gz)
    ds = open_dataset(tmp_path / f"train-images-idx3-ubyte{suffix}")
    assert ds.format == "idx" and ds.shape == (1, 4, 3)
    np.testing.assert_array_equal(ds.images([4, 0])[:, 0], x[[4, 0]])
    assert ds.labels.tolist() == [0, 1, 2, 1, 0] and ds.class_names == ("0", "1", "2")


def test_idx_folder_keeps_the_predefined_test_split(tmp_path):
    for prefix, n in (("train", 6), ("t10k", 3)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 4, 4), np.uint8), True)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 2, True)
    ds = open_dataset(tmp_path)
    assert len(ds) == 9 and ds.split.tolist() == ["train"] * 6 + ["test"] * 3


def test_wrong_magic_is_a_clear_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(DataError, match="not an IDX file.*wrong magic"):
        read_idx(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated.*download the file again"):
        read_idx(path)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((100, 4, 4), np.uint8), gz=True)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=str(path.name)):
        read_idx(path)


def test_image_and_label_counts_that_differ(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        open_dataset(tmp_path / "train-images-idx3-ubyte")


@pytest.mark.skipif(not fashion_mnist_available(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_builtin_real_files():
    ds = open_dataset("fashion-mnist")
    assert len(ds) == 70_000 and ds.shape == (1, 28, 28)
    assert ds.class_names[6] == "Shirt" and (ds.split == "test").sum() == 10_000
    assert ds.class_counts().tolist() == [7000] * 10
    x = ds.images([0, 69_999])
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255


def test_a_broken_images_file_is_named_for_what_is_wrong_with_it_even_without_labels(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-7])                  # no label file beside it either
    with pytest.raises(DataError, match=r"truncated: 169 bytes, header says 176"):
        open_dataset(path)
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(DataError, match="not an IDX file"):
        open_dataset(path)


def test_an_images_only_idx_file_is_unlabelled_data_for_predict(tmp_path, digits_run):
    import knowwhen as kw

    x = kw.open_dataset("digits").images(np.arange(6))[:, 0].astype(np.uint8)
    path = write_idx(tmp_path / "screen-images-idx3-ubyte", x)
    ds = open_dataset(path)
    assert len(ds) == 6 and not ds.labelled and ds.shape == (1, 8, 8)
    out = kw.write_predictions(kw.load_run(digits_run), ds, tmp_path / "p.csv", kw.PredictOptions(progress=False))
    assert len(out.read_text().splitlines()) == 7 and out.read_text().startswith("id,pred,")
    with pytest.raises(DataError, match="no labels"):
        kw.train(kw.TrainConfig(kw.DataConfig(str(path)), kw.ModelConfig("mlp"), epochs=1, progress=False),
                 tmp_path / "r")
