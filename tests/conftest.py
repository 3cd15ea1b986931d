import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/_fakes


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A small cnn trained on digits for 3 epochs, shared by the tests that only read a run."""
    import knowwhen as kw

    out = tmp_path_factory.mktemp("runs") / "digits"
    cfg = kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("cnn"), epochs=3, progress=False, seed=0)
    return kw.train(cfg, out)
