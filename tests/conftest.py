import shutil
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


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2200"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    yield driver
    driver.quit()


