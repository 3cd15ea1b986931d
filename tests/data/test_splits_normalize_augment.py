import numpy as np
import pytest
import torch

from knowwhen import AugmentConfig, DataError, dataset_from_arrays, open_dataset
from knowwhen.data.augment import augment_batch
from knowwhen.data.normalize import fit_normalizer
from knowwhen.data.splits import split_dataset


def test_split_is_stratified_disjoint_and_seeded():
    ds = open_dataset("digits")
    s = split_dataset(ds, 0.1, 0.2, seed=3)
    parts = [s.train, s.val, s.test]
    assert sum(map(len, parts)) == len(ds) and len(np.unique(np.concatenate(parts))) == len(ds)
    for part, frac in ((s.test, 0.2),):
        ratio = np.bincount(ds.labels[part], minlength=10) / ds.class_counts()
        assert np.all(np.abs(ratio - frac) < 0.01)
    again = split_dataset(ds, 0.1, 0.2, seed=3)
    assert np.array_equal(again.test, s.test)
    assert not np.array_equal(split_dataset(ds, 0.1, 0.2, seed=4).test, s.test)


def test_holdout_classes_go_to_novel_and_leave_training():
    ds = open_dataset("digits")
    s = split_dataset(ds, holdout_classes=["3", "7"])
    assert set(ds.labels[s.novel]) == {3, 7} and len(s.novel) == ds.class_counts()[[3, 7]].sum()
    assert not set(ds.labels[np.concatenate([s.train, s.val, s.test])]) & {3, 7}
    assert s.class_names == ("0", "1", "2", "4", "5", "6", "8", "9")
    assert s.label_map.tolist() == [0, 1, 2, -1, 3, 4, 5, -1, 6, 7]
    with pytest.raises(DataError, match="no such class"):
        split_dataset(ds, holdout_classes=["cat"])


def test_tiny_classes_keep_an_image_for_training():
    ds = dataset_from_arrays(np.zeros((4, 3, 3)), np.array([0, 1, 1, 1]))
    s = split_dataset(ds, 0.5, 0.5)
    assert 0 in ds.labels[s.train]


def test_normalizer_matches_numpy_on_the_training_images_only():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(5, 2, (50, 2, 4, 4)), rng.normal(100, 1, (10, 2, 4, 4))]).astype(np.float32)
    ds = dataset_from_arrays(x, np.zeros(60, int), channels="first")
    norm = fit_normalizer(ds, np.arange(50))
    np.testing.assert_allclose(norm.mean, x[:50].mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(norm.std, x[:50].std(axis=(0, 2, 3)), rtol=1e-4)
    z = norm(x[:50])
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-4)


def test_percentile_clipping_uses_training_percentiles():
    x = np.arange(1000, dtype=np.float32).reshape(10, 1, 10, 10)
    ds = dataset_from_arrays(x, np.zeros(10, int), channels="first")
    norm = fit_normalizer(ds, np.arange(10), clip_percentiles=(1, 99))
    np.testing.assert_allclose([norm.clip_low[0], norm.clip_high[0]], np.percentile(x, [1, 99]), rtol=1e-6)
    clipped = np.clip(x, norm.clip_low[0], norm.clip_high[0])
    assert norm.mean[0] == pytest.approx(clipped.mean(), rel=1e-6)


def test_augmentation_off_is_identity_and_on_is_reproducible():
    x = torch.rand(4, 2, 12, 12)
    assert augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(0)) is x
    cfg = AugmentConfig(rotation=20, zoom=0.1, shear=10, shift=0.1, hflip=True, vflip=True)
    a = augment_batch(x, cfg, torch.Generator().manual_seed(1))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(1))
    c = augment_batch(x, cfg, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_flip_only_augmentation_flips_exactly():
    x = torch.rand(16, 1, 6, 6)
    out = augment_batch(x, AugmentConfig(hflip=True), torch.Generator().manual_seed(0))
    flipped = [torch.allclose(o, xi.flip(-1), atol=1e-5) for o, xi in zip(out, x)]
    same = [torch.allclose(o, xi, atol=1e-5) for o, xi in zip(out, x)]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)


from hypothesis import given, settings, strategies as st


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.floats(0, 0.5), st.floats(0, 0.45),
       st.integers(0, 10))
def test_split_partitions_every_image_and_keeps_each_class_in_training(labels, val, test, seed):
    labels = np.array(labels)
    ds = dataset_from_arrays(np.zeros((len(labels), 2, 2)), labels, [str(k) for k in range(5)])
    s = split_dataset(ds, val, test, seed=seed)
    together = np.concatenate([s.train, s.val, s.test])
    assert sorted(together.tolist()) == list(range(len(labels)))
    assert set(labels[s.train]) == set(labels)


def test_calibration_split_is_disjoint_stratified_and_leaves_val_and_test_alone():
    ds = open_dataset("digits")
    plain, s = split_dataset(ds, 0.1, 0.2, seed=3), split_dataset(ds, 0.1, 0.2, seed=3, calibration_fraction=0.1)
    np.testing.assert_array_equal(plain.test, s.test)
    np.testing.assert_array_equal(plain.val, s.val)
    parts = [s.train, s.val, s.test, s.calibration]
    assert sum(map(len, parts)) == len(ds) and len(np.unique(np.concatenate(parts))) == len(ds)
    non_test = ds.class_counts() - np.bincount(ds.labels[s.test], minlength=10)
    ratio = np.bincount(ds.labels[s.calibration], minlength=10) / non_test
    assert np.all(np.abs(ratio - 0.1) < 0.01)
    assert s.sizes()["calibration"] == len(s.calibration) and plain.sizes()["calibration"] == 0
