import pytest

import knowwhen as kw
from knowwhen.classify import evaluate_run


@pytest.fixture(scope="session")
def held_out_eval(tmp_path_factory):
    """A digits cnn trained without class 9, evaluated with MC dropout: the folder holds report.html."""
    root = tmp_path_factory.mktemp("report")
    cfg = kw.TrainConfig(kw.DataConfig("digits", holdout_classes=("9",)), kw.ModelConfig("cnn"), epochs=3,
                         progress=False)
    run = kw.load_run(kw.train(cfg, root / "run"))
    evaluate_run(run, kw.open_dataset("digits"), root / "eval", kw.EvaluateOptions(mc=10, progress=False))
    from knowwhen.report.build import build_report

    build_report(root / "eval", network=run)
    return root / "eval"
