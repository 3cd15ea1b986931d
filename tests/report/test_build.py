import re

import numpy as np
import pytest

import knowwhen as kw
from knowwhen.classify import evaluate_run
from knowwhen.report.build import build_report
from knowwhen.report.figures import composite

SECTIONS = ["summary", "training", "per-class", "calibration", "uncertainty", "novelty", "selective", "galleries",
            "inside"]


def _section(html: str, sid: str) -> str:
    return re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S).group(1)


def test_report_has_every_section_and_embeds_its_figures(held_out_eval):
    html = (held_out_eval / "report.html").read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    assert html.count("data:image/png;base64,") >= 10
    assert "http://" not in html and "https://" not in html  # nothing to fetch: opens offline
    assert "ROC" in _section(html, "novelty") and "AUROC" in _section(html, "novelty")
    assert (held_out_eval / "report.html").stat().st_size < 5_000_000


def test_report_rebuilds_from_saved_numbers_and_takes_the_run_from_its_caller(held_out_eval, tmp_path):
    import shutil

    (held_out_eval / "report.html").unlink()
    assert build_report(held_out_eval, network=kw.load_run(held_out_eval.parent / "run")).exists()
    assert _section((held_out_eval / "report.html").read_text(), "inside").count("<img") == 3
    copy = shutil.copytree(held_out_eval, tmp_path / "eval")
    inside = _section(build_report(copy).read_text(), "inside")  # no run given: the page says how to add it
    assert "<img" not in inside and "network=knowwhen.load_run(RUN)" in inside


def test_report_without_novel_images_says_why(tmp_path):
    cfg = kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("mlp"), epochs=1, progress=False)
    run = kw.load_run(kw.train(cfg, tmp_path / "run"))
    evaluate_run(run, kw.open_dataset("digits"), tmp_path / "eval", kw.EvaluateOptions(mc=5, progress=False))
    novelty = _section(build_report(tmp_path / "eval", network=run).read_text(), "novelty")
    assert "No novel images" in novelty and "--holdout-class" in novelty and "<img" not in novelty


def test_two_channel_images_become_a_colour_composite():
    img = np.zeros((2, 4, 4))
    img[0, :, :2] = 1.0   # channel 0 on the left
    img[1, :, 2:] = 1.0   # channel 1 on the right
    rgb = composite(img)
    assert rgb.shape == (4, 4, 3)
    assert rgb[0, 0, 0] == 1 and rgb[0, 0, 1] == 0     # left: magenta (red + blue)
    assert rgb[0, 3, 1] == 1 and rgb[0, 3, 0] == 0     # right: green


def test_report_command(held_out_eval):
    from typer.testing import CliRunner

    from knowwhen.cli import app

    r = CliRunner().invoke(app, ["report", str(held_out_eval)])
    assert r.exit_code == 0 and "report.html" in r.output
    r = CliRunner().invoke(app, ["report", str(held_out_eval / "nope")])
    assert r.exit_code == 2 and "no metrics.json" in r.stderr


def test_per_class_figure_tolerates_intervals_rounded_below_the_accuracy():
    from knowwhen.report.figures import per_class_accuracy

    rows = [{"class": "a", "accuracy": "1.0", "ci_low": "0.8", "ci_high": "0.9999999999"}]
    per_class_accuracy(rows)


def test_inside_section_for_a_conv_model(held_out_eval):
    inside = _section((held_out_eval / "report.html").read_text(), "inside")
    assert inside.count("<img") == 3  # filters, activation maps, class-maximising inputs


def test_explain_command_writes_pngs(held_out_eval, tmp_path):
    import json

    from typer.testing import CliRunner

    from knowwhen.cli import app

    run = json.loads((held_out_eval / "metrics.json").read_text())["run"]
    r = CliRunner().invoke(app, ["explain", run, "--index", "3", "--data", "digits", "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "x").iterdir())
    assert {"filters.png", "activations.png", "class_inputs.png", "class_input_0_0.png"} <= set(names)
    r = CliRunner().invoke(app, ["explain", run, "--index", "3", "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "--data" in r.stderr


def test_class_maximising_input_raises_its_class_logit():
    import torch

    from knowwhen.report.explain import class_maximising_inputs

    torch.manual_seed(0)
    net = kw.create_model("cnn", (1, 12, 12), 3)
    x = torch.from_numpy(class_maximising_inputs(net, (1, 12, 12), [0, 1, 2], steps=60))
    noise = 0.1 * torch.randn(3, 1, 12, 12)
    net.eval()
    with torch.no_grad():
        gained = net(x).diagonal() - net(noise).diagonal()
    assert (gained > 0).all()


@pytest.mark.skipif(not __import__("_fakes").DEEPLOC.exists(), reason="../shared/data/deeploc is absent")
def test_a_deeploc_report_names_its_channels_classes_and_a_small_evaluation(tmp_path):
    from _fakes import DEEPLOC

    ds = kw.open_dataset(DEEPLOC)
    assert ds.channel_names == ("RFP", "DIC")                        # from the file's data1_columns
    cfg = kw.TrainConfig(kw.DataConfig(str(DEEPLOC)), kw.ModelConfig("mlp", {"hidden": 16}), epochs=1, progress=False)
    run = kw.load_run(kw.train(cfg, tmp_path / "run"))
    assert run.channel_names == ("RFP", "DIC")
    summary = evaluate_run(run, ds, tmp_path / "e", kw.EvaluateOptions(mc=10, progress=False))
    html = build_report(tmp_path / "e", network=run).read_text()
    assert "magenta = RFP, green = DIC" in _section(html, "galleries")
    assert "entropy_mc is the predictive entropy" in _section(html, "galleries")
    assert f"Only {summary['images']} known images were evaluated" in _section(html, "summary")
    assert f"{len(run.class_names)} classes; 2 channel(s) (RFP, DIC), 64x64 pixels" in _section(html, "summary")


def test_channel_names_option_is_checked_against_the_channels():
    assert kw.open_dataset("digits", options={"channel_names": "DAPI"}).channel_names == ("DAPI",)
    with pytest.raises(kw.DataError, match="channel_names gives 2 name.*for 1 channel"):
        kw.open_dataset("digits", options={"channel_names": ("GFP", "RFP")})


def test_histograms_of_few_images_show_counts_not_density():
    from knowwhen.report.figures import measure_distributions

    v = {"entropy_mc": np.linspace(0, 1, 200)}
    few = measure_distributions(v, {"known": np.arange(200) < 197, "novel": np.arange(200) >= 197}, "t")
    many = measure_distributions(v, {"known": np.arange(200) < 100, "novel": np.arange(200) >= 100}, "t")
    assert few.axes[0].get_ylabel() == "images" and many.axes[0].get_ylabel() == "density"


def test_composite_legend():
    from knowwhen.report.figures import composite_legend

    assert composite_legend(["RFP", "DIC"], 2) == "magenta = RFP, green = DIC"
    assert composite_legend([], 3) == "red = channel 1, green = channel 2, blue = channel 3"
    assert composite_legend(["a", "b", "c", "d"], 4).endswith("(channels d not shown)")
