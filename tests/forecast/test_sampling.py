import numpy as np
import pytest
import torch

from knowwhen import ConfigError, create_model
from knowwhen.forecast.sampling import ForecastOptions as Opts, Units, mc_forecast
from knowwhen.uncertainty.mc import MaskSource, dropout_sites


def _net(name="gru", channels=1, outputs=1, **kw):
    torch.manual_seed(0)
    return create_model(name, (channels, 12), outputs, **kw).eval()


def _x(n=5, channels=1):
    return np.random.default_rng(0).normal(size=(n, channels, 12)).astype(np.float32)


@pytest.mark.parametrize("name", ["tcn", "rnn", "gru", "lstm"])
def test_mc_passes_differ_are_reproducible_and_summarised_exactly(name):
    net, x = _net(name, outputs=2), _x()
    f = mc_forecast(net, x, 2, Opts(passes=50, seed=3, keep_samples=True), units=Units(mean=10.0, std=2.0))
    g = mc_forecast(net, x, 2, Opts(passes=50, seed=3), units=Units(mean=10.0, std=2.0))
    assert f.samples.shape == (50, 5, 2) and f.samples.std(0).min() > 0       # dropout is on in the passes
    np.testing.assert_array_equal(f.mean, g.mean)                            # same seed, same numbers
    assert not np.allclose(mc_forecast(net, x, 2, Opts(passes=50, seed=4)).mean, f.mean)
    np.testing.assert_allclose(f.mean, f.samples.mean(0))
    np.testing.assert_allclose(f.q05, np.percentile(f.samples, 5, axis=0))
    np.testing.assert_allclose(f.q95, np.percentile(f.samples, 95, axis=0))
    np.testing.assert_array_equal(f.low, f.q05)                             # no noise: the MC interval
    with torch.no_grad():
        np.testing.assert_allclose(f.point, net(torch.from_numpy(x)).numpy() * 2 + 10, rtol=1e-5)
    assert not any(m.training for m in net.modules())                       # left in eval mode
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())  # masks removed


def test_a_pass_is_one_sampled_network_applied_to_every_window():
    net = _net("gru", dropout=0.5, recurrent_dropout=0.5)
    x = np.repeat(_x(1), 4, axis=0)                                          # four identical windows
    f = mc_forecast(net, x, 1, Opts(passes=6, keep_samples=True))
    np.testing.assert_array_equal(f.samples, np.repeat(f.samples[:, :1], 4, axis=1))  # same pass, same numbers
    assert len(np.unique(f.samples[:, 0].round(6))) == 6                    # every pass its own masks


@pytest.mark.parametrize("name,recursive", [("gru", False), ("lstm", True), ("tcn", False), ("tcn", True)])
def test_a_window_gets_the_same_numbers_in_any_batch(name, recursive):
    net, x = _net(name, outputs=1 if recursive else 3), _x(23)
    kw = dict(recursive=recursive, units=Units(mean=2.0, std=3.0, noise_std=np.full(3, 0.7)),
              actual=np.ones((23, 3)), keys=np.arange(100, 123))
    opts = lambda b: Opts(passes=40, seed=5, keep_samples=True, batch_size=b)  # noqa: E731
    small = mc_forecast(net, x, 3, opts(7), **kw)
    large = mc_forecast(net, x, 3, opts(500), **kw)
    alone = mc_forecast(net, x[9:10], 3, opts(1), **{**kw, "actual": kw["actual"][9:10], "keys": kw["keys"][9:10]})
    for name_ in ("point", "mean", "std", "q05", "q95", "low", "high", "crps", "samples"):
        a, b = getattr(small, name_), getattr(large, name_)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name_)
        np.testing.assert_allclose(getattr(alone, name_)[..., 0, :] if name_ == "samples" else getattr(alone, name_)[0],
                                   b[..., 9, :] if name_ == "samples" else b[9], rtol=1e-5, atol=1e-6, err_msg=name_)


def test_recursive_forecast_keeps_each_pass_mask_for_every_step():
    # Independent check: pass t rebuilt by hand, the network's dropout fixed to pass t's masks for all 4 steps.
    net, x = _net("gru", dropout=0.5, recurrent_dropout=0.5), _x(3)
    f = mc_forecast(net, x, 4, Opts(passes=5, seed=2, keep_samples=True), recursive=True)
    sites = dropout_sites(net)
    masks = MaskSource(sites, 5, seed=2)
    for t in range(5):
        for i, site in enumerate(sites):
            site.forward = lambda like, i=i: masks.block(i, tuple(like.shape[1:]))[t].expand(like.shape)
        cur, steps = torch.from_numpy(x), []
        with torch.no_grad():
            for _ in range(4):
                y = net(cur)[:, :1]
                steps.append(y)
                cur = torch.cat([cur[:, :, 1:], y[:, :, None]], dim=2)
        np.testing.assert_allclose(f.samples[t], torch.cat(steps, 1).numpy(), rtol=1e-5, atol=1e-6)
    assert (masks.block(1, (32,)) == 0).any()                                # the state mask does drop units


def test_recursive_point_forecast_feeds_back_its_output():
    net, x = _net("tcn"), _x(2)
    f = mc_forecast(net, x, 3, Opts(passes=0), recursive=True)
    cur = torch.from_numpy(x)
    with torch.no_grad():
        for k in range(3):
            y = net(cur)
            np.testing.assert_allclose(f.point[:, k], y[:, 0].numpy(), rtol=1e-5)
            cur = torch.cat([cur[:, :, 1:], y[:, None]], dim=2)


def test_noise_widens_the_predictive_interval_only():
    net, x = _net("gru"), _x()
    mc = mc_forecast(net, x, 1, Opts(passes=200, seed=0))
    noisy = mc_forecast(net, x, 1, Opts(passes=200, seed=0), units=Units(noise_std=np.array([5.0])))
    off = mc_forecast(net, x, 1, Opts(passes=200, seed=0, noise=False), units=Units(noise_std=np.array([5.0])))
    np.testing.assert_array_equal(off.low, mc.low)                          # noise=False: the MC interval
    np.testing.assert_array_equal(noisy.q05, mc.q05)                        # the MC interval is unchanged
    width = (noisy.high - noisy.low).mean()
    assert 2 * 1.645 * 5 * 0.85 < width < 2 * 1.645 * 5 * 1.3                # ~ N(0, 5) 90% width plus MC spread


def test_refusals():
    with pytest.raises(ConfigError, match="no dropout"):
        mc_forecast(_net("tcn", dropout=0.0), _x(), 1, Opts(passes=10))
    with pytest.raises(ConfigError, match="univariate"):
        mc_forecast(_net("gru", channels=2), _x(channels=2), 2, Opts(passes=0), recursive=True)


def test_a_transform_is_undone_after_the_noise_and_before_the_summaries():
    from knowwhen.data.series import inverse_transform

    net, x = _net("gru"), _x()
    square = inverse_transform("sqrt")
    opts = Opts(passes=100, seed=1, keep_samples=True)
    raw = mc_forecast(net, x, 1, opts, units=Units(mean=3.0, std=1.0, noise_std=np.array([0.5])))
    back = mc_forecast(net, x, 1, opts, units=Units(mean=3.0, std=1.0, noise_std=np.array([0.5]), inverse=square))
    np.testing.assert_allclose(back.point, square(raw.point))
    np.testing.assert_allclose(back.samples, square(raw.samples))
    np.testing.assert_allclose(back.mean, square(raw.samples).mean(0))   # the mean of the squares, not the square
    # quantiles commute with a monotone map, up to the linear interpolation between two order statistics
    np.testing.assert_allclose(back.low, square(raw.low), rtol=1e-3)
    np.testing.assert_allclose(back.q95, np.percentile(back.samples, 95, axis=0))
