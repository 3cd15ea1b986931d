"""The terminal summary compares the default score with the free baseline p_max, and says why when it is behind."""
from knowwhen.report.text import _default_vs_p_max


def _rows(novelty, p_max):
    return [{"measure": "p_max", "auroc": p_max}, {"measure": "novelty", "auroc": novelty}]


def test_the_default_against_p_max():
    assert "ahead by 0.050" in _default_vs_p_max(_rows(0.85, 0.80))[0]
    assert "within 0.03 (behind by 0.020)" in _default_vs_p_max(_rows(0.78, 0.80))[0]
    behind = _default_vs_p_max(_rows(0.74, 0.80))[0]
    assert "behind by 0.060" in behind and "only the classifier's own doubt" in behind
    assert _default_vs_p_max([{"measure": "p_max", "auroc": 0.8}]) == []
