"""bf16 prediction: `auto` picks bf16 only where it is native (simulated flags), and bf16 agrees with fp32 on every
registered model (autocast emulates bf16 where the CPU lacks it, so these run on any machine)."""
import logging

import numpy as np
import pytest
import torch

import knowwhen as kw
from knowwhen.models import create_model, list_models, model_args
from knowwhen.precision import autocast, native_bf16, resolved_precision
from knowwhen.uncertainty import MCDropout, MCSums, measures_from_sums

CONTINUOUS = ("p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc")
# Measured on random networks and N(0, 1) inputs of 2 x 32 x 32 (docs/uncertainty.md, "Speed"): the convolutional
# models agree within 1e-3; the dense-only ones, whose first product sums 2,048 bf16-rounded inputs, within 4e-3.
TOLERANCE = {"linear": 4e-3, "mlp": 4e-3}


def test_auto_picks_bf16_only_where_the_cpu_has_it(caplog):
    caplog.set_level(logging.INFO, logger="knowwhen")
    assert resolved_precision("auto", "cpu", flags={"avx2", "avx512f"}) == "fp32"
    assert "neither avx512_bf16 nor amx_bf16" in caplog.text
    assert resolved_precision("auto", "cpu", flags={"avx2", "avx512_bf16"}) == "bf16"
    assert resolved_precision("auto", "cpu", flags={"amx_bf16"}) == "bf16"
    assert resolved_precision("fp32", "cpu", flags={"avx512_bf16"}) == "fp32"
    assert native_bf16("cpu", set())[0] is False
    with pytest.raises(kw.KnowwhenError, match="--precision 'fp16'"):
        resolved_precision("fp16")


def _measures(engine, x, precision):
    with torch.no_grad(), autocast(precision):
        _, z = engine.pass_logits(x)
    log_p = torch.log_softmax(z.float(), -1).numpy()
    return measures_from_sums(MCSums.zeros(len(x), z.shape[-1]).add(np.exp(log_p), log_p))


@pytest.mark.parametrize("name", list_models("classify"))
def test_bf16_measures_agree_with_fp32_on_every_registered_model(name):
    torch.manual_seed(0)
    shape = (2, 32, 32)
    args = {"dropout": 0.5} if "dropout" in model_args(name) else {}
    engine = MCDropout(create_model(name, shape, 10, **args).eval(), 20, 0)
    x = torch.randn(64, *shape)
    fp32, bf16 = _measures(engine, x, "fp32"), _measures(engine, x, "bf16")
    for m in CONTINUOUS:
        assert np.abs(fp32[m] - bf16[m]).max() <= TOLERANCE.get(name, 1e-3), m
        assert not np.array_equal(fp32[m], bf16[m])  # bf16 did run


def test_predict_in_bf16_keeps_the_columns_and_the_measures_in_fp32(digits_run, tmp_path):
    from typer.testing import CliRunner

    from knowwhen.cli import app

    outs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.parquet"
        r = CliRunner().invoke(app, ["predict", str(digits_run), "digits", "--mc", "10", "--precision", precision,
                                     "--out", str(out), "--quiet"])
        assert r.exit_code == 0, r.output
        import pyarrow.parquet as pq

        outs[precision] = pq.read_table(out).to_pydict()
    assert list(outs["fp32"]) == list(outs["bf16"])
    p = np.array([outs["bf16"][c] for c in outs["bf16"] if c.startswith("prob_")])
    np.testing.assert_allclose(p.sum(0), 1, atol=1e-6)  # p* is normalised in fp32
    agree = np.mean(np.array(outs["fp32"]["pred_mc"]) == np.array(outs["bf16"]["pred_mc"]))
    assert agree > 0.98
