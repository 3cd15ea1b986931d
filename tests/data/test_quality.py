import numpy as np

from knowwhen.data.quality import image_quality, quality_columns, quality_measures


def _cells(seed=0, n=20):
    rng = np.random.default_rng(seed)
    return rng.uniform(20, 200, (n, 2, 32, 32))


def test_focus_is_the_variance_of_the_laplacian_over_the_squared_mean():
    from scipy.ndimage import laplace

    x = _cells()
    q = image_quality(x)
    lap = laplace(x[3, 1])[1:-1, 1:-1]          # scipy's 4-neighbour Laplacian, interior pixels
    assert q["focus"][3, 1] == np.float64(lap.var() / x[3, 1].mean() ** 2)
    np.testing.assert_allclose(q["intensity"], x.mean(axis=(2, 3)))
    np.testing.assert_allclose(q["p99"], np.percentile(x.reshape(20, 2, -1), 99, axis=2), rtol=1e-12)


def test_a_blurred_copy_scores_lower_focus_and_gain_leaves_focus_alone():
    from scipy.ndimage import gaussian_filter

    x = _cells()
    blurred = gaussian_filter(x, sigma=(0, 0, 1.5, 1.5))
    assert (image_quality(blurred)["focus"] < image_quality(x)["focus"] / 3).all()
    np.testing.assert_allclose(image_quality(0.3 * x)["focus"], image_quality(x)["focus"], rtol=1e-12)
    assert (image_quality(np.zeros((1, 1, 8, 8)))["focus"] == 0).all()


def test_saturation_counts_the_clipped_plateau():
    x = _cells()
    assert (image_quality(x)["saturation"] == 1 / (32 * 32)).all()   # continuous values: one pixel at the max
    clipped = np.minimum(x * 3, 255)
    expected = (x * 3 >= 255).mean(axis=(2, 3))
    np.testing.assert_allclose(image_quality(clipped)["saturation"], expected)


def test_columns_name_the_channels_when_there_are_several():
    assert quality_columns(("GFP",), 1) == ["qc_focus", "qc_intensity", "qc_p99", "qc_saturation"]
    cols = quality_columns(("GFP", "RFP"), 2)
    assert cols[:2] == ["qc_focus_GFP", "qc_focus_RFP"] and quality_columns((), 2)[1] == "qc_focus_ch1"
    m = quality_measures(_cells(), ("GFP", "RFP"))
    assert list(m) == cols and m["qc_intensity_RFP"].shape == (20,)
    np.testing.assert_allclose(m["qc_intensity_RFP"], _cells().mean(axis=(2, 3))[:, 1])
