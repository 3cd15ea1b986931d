import pytest
import torch

from knowwhen import create_model
from knowwhen.models import receptive_field
from knowwhen.models.sequence import VariationalRNN


def _per_step(net, x):
    return net.features(x) if hasattr(net, "features") else net.sequence(x)


@pytest.mark.parametrize("name", ["tcn", "rnn", "gru", "lstm"])
def test_no_output_sees_the_future(name):
    torch.manual_seed(0)
    net = create_model(name, (2, 30), 3).eval()
    x = torch.randn(4, 2, 30)
    later = x.clone()
    later[:, :, 17:] = torch.randn(4, 2, 13) * 5   # change everything after step 16
    a, b = _per_step(net, x), _per_step(net, later)
    torch.testing.assert_close(a[:, :, :17], b[:, :, :17])
    assert not torch.allclose(a[:, :, 17:], b[:, :, 17:])
    assert net(x).shape == (4, 3)


@pytest.mark.parametrize("kernel, levels", [(2, 4), (3, 3), (2, 1)])
def test_tcn_receptive_field_equals_the_formula(kernel, levels):
    torch.manual_seed(0)
    net = create_model("tcn", (1, 64), 1, kernel_size=kernel, levels=levels, dropout=0.0).eval()
    with torch.no_grad():
        for conv in net.features:
            if isinstance(conv, torch.nn.Conv1d):
                conv.weight.fill_(0.1)
                conv.bias.fill_(0.1)
        base = net.features(torch.zeros(1, 1, 64))[0, :, -1]
        seen = 0
        for t in range(64):  # which inputs change the last output?
            x = torch.zeros(1, 1, 64)
            x[0, 0, t] = 1.0
            seen += int(not torch.allclose(net.features(x)[0, :, -1], base))
    assert seen == receptive_field(kernel, levels) == net.receptive_field == 1 + (kernel - 1) * (2 ** levels - 1)


def test_variational_dropout_reuses_one_mask_over_time_and_draws_a_new_one_per_pass():
    torch.manual_seed(0)
    net = VariationalRNN("lstm", 3, 1, hidden=8, dropout=0.5, recurrent_dropout=0.5, layer_norm=False).train()
    masks = []
    original = net.input_drop.forward
    net.input_drop.forward = lambda like: masks.append(original(like)) or masks[-1]
    seen = []
    cell = net.cell.forward
    net.cell.forward = lambda xt, h: seen.append(xt.clone()) or cell(xt, h)
    x = torch.ones(2, 3, 5)                          # constant input: masked steps must all be equal
    net(x)
    assert len(masks) == 1 and all(torch.equal(s, seen[0]) for s in seen)
    assert (seen[0] == 0).any()                      # something was dropped
    net(x)
    assert len(masks) == 2 and not torch.equal(masks[0], masks[1])
    net.eval()
    assert original(x[:, :, 0]) is None  # dropout off outside training (MC supplies each pass's mask)


def test_layer_norm_option():
    net = create_model("lstm", (1, 10), 2, layer_norm=True)
    assert isinstance(net.norm, torch.nn.LayerNorm) and net(torch.randn(3, 1, 10)).shape == (3, 2)


def test_gru_state_stays_bounded_under_recurrent_dropout_on_long_sequences():
    from knowwhen.models.sequence import _gru_step

    torch.manual_seed(0)
    net = VariationalRNN("gru", 1, 1, hidden=16, dropout=0.0, recurrent_dropout=0.5, layer_norm=False)
    x, h = torch.randn(3, 1), torch.randn(3, 16).tanh()
    torch.testing.assert_close(_gru_step(net.cell, x, h, h), net.cell(x, h))   # no mask: exactly nn.GRUCell
    with torch.no_grad():
        net.cell.bias_ih[16:32] = 5.0                           # update gate z near 1: the state is mostly carried
        states = net.train().sequence(torch.randn(2, 1, 2000))
    assert states.abs().max() <= 1.0                            # a convex mix of tanh values and the last state
