"""Sequence models on (N, channels, length) inputs, registered beside the image models for the task "forecast".

`tcn`: stacked causal dilated 1-D convolutions (no output sees a later input).
`rnn`, `gru`, `lstm`: recurrent nets with variational dropout (Gal & Ghahramani 2016): one dropout mask per
sequence, reused at every time step, on the inputs and on the recurrent state; a fresh mask per sequence and
per forward pass, so MC dropout draws a new one each pass.
Each model predicts `outputs` values (e.g. a horizon of future values) from the last time step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model


def receptive_field(kernel_size: int, levels: int) -> int:
    """Inputs one output of a `levels`-deep stack with dilations 1, 2, 4, ... sees: 1 + (k - 1)(2^levels - 1)."""
    return 1 + (kernel_size - 1) * (2 ** levels - 1)


class CausalConv1d(nn.Conv1d):
    """A Conv1d padded on the left only, so output t depends on inputs <= t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(F.pad(x, (pad, 0)))


class TCN(nn.Module):
    """Causal dilated convolutions, ReLU and dropout per level, then a dense head on the last time step."""

    def __init__(self, channels: int, outputs: int, width: int, levels: int, kernel_size: int, dropout: float):
        super().__init__()
        layers, c = [], channels
        for level in range(levels):
            layers += [CausalConv1d(c, width, kernel_size, dilation=2 ** level), nn.ReLU(), nn.Dropout(dropout)]
            c = width
        self.features = nn.Sequential(*layers)              # (N, width, L)
        self.head = nn.Linear(width, outputs)
        self.receptive_field = receptive_field(kernel_size, levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[:, :, -1])


@register_model("tcn", task="forecast")
def tcn(input_shape, outputs, width: int = 32, levels: int = 4, kernel_size: int = 2,
        dropout: float = 0.1) -> nn.Module:
    """Causal dilated 1-D convolutions; receptive field 1 + (kernel_size - 1)(2^levels - 1) steps."""
    return TCN(input_shape[0], outputs, width, levels, kernel_size, dropout)


class VariationalDropout(nn.Module):
    """Gives one (N, features) inverted-dropout mask per sequence; called once per forward pass of the network.

    In training it draws the mask; in eval mode it returns None (no dropout). MC dropout does not switch it to
    training: the engine (`knowwhen.uncertainty.mc`) hooks its output and supplies the mask of each pass.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, like: torch.Tensor) -> torch.Tensor | None:
        if not self.training or self.p == 0:
            return None
        return torch.bernoulli(torch.full_like(like, 1 - self.p)) / (1 - self.p)


def _gru_step(cell: nn.GRUCell, x: torch.Tensor, h: torch.Tensor, h_masked: torch.Tensor) -> torch.Tensor:
    """One GRU step whose gates read the masked state but whose carry z * h uses the state itself.

    Feeding the masked state to nn.GRUCell would carry z * h * mask / (1 - p): a gain above 1 that compounds
    over long sequences (a stateful pass over 300 steps diverged). With no mask this equals nn.GRUCell.
    """
    gi = F.linear(x, cell.weight_ih, cell.bias_ih).chunk(3, dim=1)
    gh = F.linear(h_masked, cell.weight_hh, cell.bias_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(gi[0] + gh[0]), torch.sigmoid(gi[1] + gh[1])
    n = torch.tanh(gi[2] + r * gh[2])
    return (1 - z) * n + z * h


class VariationalRNN(nn.Module):
    """A recurrent net unrolled over time with the same input and state masks at every step."""

    CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}

    def __init__(self, kind: str, channels: int, outputs: int, hidden: int, dropout: float,
                 recurrent_dropout: float, layer_norm: bool):
        super().__init__()
        self.kind, self.hidden = kind, hidden
        self.cell = self.CELLS[kind](channels, hidden)
        self.input_drop, self.state_drop = VariationalDropout(dropout), VariationalDropout(recurrent_dropout)
        self.norm = nn.LayerNorm(hidden) if layer_norm else nn.Identity()
        self.head = nn.Linear(hidden, outputs)

    def _unroll(self, x: torch.Tensor, state=None):
        """(N, channels, L) from `state` ((h, c); None: zeros) -> hidden states (N, L, hidden), final state."""
        n, _, length = x.shape
        h, c = state if state is not None else (x.new_zeros(n, self.hidden), x.new_zeros(n, self.hidden))
        m_in, m_h = self.input_drop(x[:, :, 0]), self.state_drop(h)  # one mask per sequence
        states = []
        for t in range(length):
            xt = x[:, :, t] if m_in is None else x[:, :, t] * m_in
            ht = h if m_h is None else h * m_h
            if self.kind == "lstm":
                h, c = self.cell(xt, (ht, c))
            elif self.kind == "gru" and m_h is not None:
                h = _gru_step(self.cell, xt, h, ht)
            else:
                h = self.cell(xt, ht)
            h = self.norm(h)
            states.append(h)
        return torch.stack(states, dim=1), (h, c)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """(N, channels, L) -> hidden state at every step (N, hidden, L)."""
        return self._unroll(x)[0].transpose(1, 2)

    def steps(self, x: torch.Tensor, state=None):
        """Outputs at every step (N, L, outputs) and the final state, starting from `state` (stateful use)."""
        hs, state = self._unroll(x, state)
        return self.head(hs), state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._unroll(x)[0][:, -1])


def _recurrent(kind):
    # Input dropout is off by default: its mask blanks an input column for a whole sequence, which on a
    # univariate series blanks the whole input (sunspots benchmark: MAE 18-20 with it, 14.6-15.4 without).
    def factory(input_shape, outputs, hidden: int = 32, dropout: float = 0.0, recurrent_dropout: float = 0.2,
                layer_norm: bool = False) -> nn.Module:
        return VariationalRNN(kind, input_shape[0], outputs, hidden, dropout, recurrent_dropout, layer_norm)
    factory.__doc__ = f"{kind.upper()} with variational dropout on inputs and state (one mask per sequence)."
    return factory


for _kind in ("rnn", "gru", "lstm"):
    register_model(_kind, task="forecast")(_recurrent(_kind))
