import math

import numpy as np
import pytest

from knowwhen.evaluation.coverage import conformal_summary, set_coverage


def test_conformal_summary_by_hand():
    sets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 1]], dtype=bool)
    y = np.array([0, 1, 2, 0])
    assert set_coverage(sets, y) == 0.5
    s = conformal_summary(sets, y, alpha=0.1)
    assert s["coverage"] == 0.5 and s["target"] == pytest.approx(0.9)
    assert s["mean_size"] == 1.25 and s["median_size"] == 1.5 and s["empty_rate"] == 0.25
    assert s["by_size"] == {0: {"images": 1, "coverage": 0.0}, 1: {"images": 1, "coverage": 1.0},
                            2: {"images": 2, "coverage": 0.5}}
    assert s["per_class"][:2] == [0.5, 1.0] and s["per_class"][2] == 0.0
    assert s["ci_low"] < 0.5 < s["ci_high"]
    assert math.isnan(conformal_summary(sets, np.array([0, 0, 0, 0]), 0.1)["per_class"][1])


def test_refuses_what_is_not_a_set_table():
    with pytest.raises(ValueError, match="sets must be"):
        set_coverage(np.zeros(3, bool), np.zeros(3, int))
