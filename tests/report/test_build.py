import re

import numpy as np

import knowwhen as kw
from knowwhen.evaluate import evaluate_run
from knowwhen.report.build import build_report
from knowwhen.report.figures import composite

SECTIONS = ["summary", "training", "per-class", "calibration", "uncertainty", "novelty", "selective", "galleries"]


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


def test_report_rebuilds_from_saved_numbers(held_out_eval):
    (held_out_eval / "report.html").unlink()
    assert build_report(held_out_eval).exists()


def test_report_without_novel_images_says_why(tmp_path):
    cfg = kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("mlp"), epochs=1, progress=False)
    run = kw.load_run(kw.train(cfg, tmp_path / "run"))
    evaluate_run(run, kw.open_dataset("digits"), tmp_path / "eval", mc=5, progress=False)
    novelty = _section((tmp_path / "eval" / "report.html").read_text(), "novelty")
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
