import numpy as np
import pytest
import torch
from torch import nn

import knowwhen as kw
from knowwhen.uncertainty import MCDropout


@pytest.mark.parametrize("name", ["cnn", "mlp", "vgg", "resnet"])
def test_fast_engine_equals_the_reference_with_the_same_masks(name):
    torch.manual_seed(0)
    net = kw.create_model(name, (1, 16, 16), 5, dropout=0.5)
    x = torch.randn(6, 1, 16, 16)
    fast, ref = MCDropout(net, 12, seed=3), MCDropout(net, 12, seed=3, engine="reference")
    assert fast.engine_ == "fast" and ref.engine_ == "reference"
    (d1, p1), (d2, p2) = fast.predict(x), ref.predict(x)
    torch.testing.assert_close(d1, d2)
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(p1[0], p1[1])  # the passes do differ


def test_reference_pass_is_a_full_forward_with_explicit_dropout_masks():
    # Independent check: rebuild pass t by hand from the masks and the layers.
    torch.manual_seed(0)
    net = kw.create_model("mlp", (1, 4, 4), 3, hidden=8, layers=1, dropout=0.5).eval()
    mc = MCDropout(net, 4, seed=1, engine="reference")
    x = torch.randn(2, 1, 4, 4)
    _, passes = mc.predict(x)
    mask = mc.masks.block(0, (8,))
    flat, lin1, relu, _, lin2 = net
    for t in range(4):
        manual = torch.softmax(lin2(relu(lin1(flat(x))) * mask[t]), -1)
        torch.testing.assert_close(passes[t], manual)
    assert set(mask.unique().tolist()) <= {0.0, 2.0}


def test_an_image_gets_the_same_numbers_in_any_batch():
    torch.manual_seed(0)
    net = kw.create_model("cnn", (1, 12, 12), 4)
    x = torch.randn(10, 1, 12, 12)
    mc = MCDropout(net, 30, seed=7)
    _, all_at_once = mc.predict(x)
    _, alone = MCDropout(net, 30, seed=7).predict(x[4:5])
    _, other_batch = MCDropout(net, 30, seed=7).predict(torch.cat([x[9:], x[4:5], x[:2]]))
    torch.testing.assert_close(alone[:, 0], all_at_once[:, 4])
    torch.testing.assert_close(other_batch[:, 1], all_at_once[:, 4])
    _, other_seed = MCDropout(net, 30, seed=8).predict(x[4:5])
    assert not torch.allclose(other_seed[:, 0], all_at_once[:, 4])


def test_batch_norm_statistics_are_unchanged_by_mc_prediction():
    net = kw.create_model("vgg", (1, 16, 16), 3, widths=(4, 8))
    net.train()
    net(torch.randn(8, 1, 16, 16))  # give the running statistics non-default values
    before = {k: v.clone() for k, v in net.state_dict().items()}
    MCDropout(net, 10).predict(torch.randn(5, 1, 16, 16) * 3 + 1)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_model_without_dropout_is_refused():
    with pytest.raises(kw.ConfigError, match="no dropout"):
        MCDropout(kw.create_model("linear", (1, 4, 4), 3), 10)


class _UserNet(nn.Module):  # not a Sequential: takes the reference path
    def __init__(self):
        super().__init__()
        self.a, self.drop, self.b = nn.Linear(16, 8), nn.Dropout(0.3), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.a(x.flatten(1)))))


def test_any_user_module_runs_on_the_reference_path():
    mc = MCDropout(_UserNet(), 5)
    det, passes = mc.predict(torch.randn(3, 1, 4, 4))
    assert mc.engine_ == "reference" and passes.shape == (5, 3, 3)
    np.testing.assert_allclose(passes.sum(-1).numpy(), 1, rtol=1e-5)
    with pytest.raises(kw.ConfigError, match="fast MC engine needs"):
        MCDropout(_UserNet(), 5, engine="fast")


def test_few_passes_are_warned_about(caplog):
    import logging

    net = kw.create_model("mlp", (1, 4, 4), 3)
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        MCDropout(net, 100)
    assert "MC pass" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="knowwhen"):
        MCDropout(net, 2)
    assert "only 2 MC pass(es)" in caplog.text and "--mc 100" in caplog.text


def test_padded_chunks_give_every_row_the_same_numbers_wherever_it_sits():
    from knowwhen.uncertainty.mc import padded_chunks

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 26 * 26, 10)).eval()
    x = torch.randn(700, 1, 28, 28)
    blocks = list(padded_chunks(x, rows=64))
    assert [len(b) for b, _ in blocks] == [64] * 11 and [n for _, n in blocks] == [64] * 10 + [60]
    with torch.no_grad():
        whole = torch.cat([net(b)[:n] for b, n in blocks])
        shifted = torch.cat([net(b)[:n] for s in (0, 13) for b, n in padded_chunks(x[s:s + 13] if s == 0 else x[13:],
                                                                                    rows=64)])
    assert torch.equal(whole, shifted)  # bit for bit, though every row sits at another place in another block
