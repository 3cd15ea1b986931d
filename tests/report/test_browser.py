"""Opens report.html in Debian's Chromium (headless) through chromedriver."""
import json
from pathlib import Path


from _fakes import NO_BROWSER

pytestmark = NO_BROWSER
SECTIONS = ["summary", "training", "per-class", "calibration", "uncertainty", "novelty", "selective", "galleries",
            "inside"]


def _check_page(browser, page: Path, sections: list[str], min_images: int) -> None:
    """Every section in order, every image decoded, no console error, no request leaving the file."""
    from selenium.webdriver.common.by import By

    browser.get_log("performance")  # drop what the browser's own start-up page requested
    browser.get(page.as_uri())
    ids = [s.get_attribute("id") for s in browser.find_elements(By.CSS_SELECTOR, "section")]
    assert ids == sections
    images = browser.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= min_images and all(done and width > 0 for done, width in images)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    requests = []
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            requests.append(msg["params"]["request"]["url"])
    external = [u for u in requests if not (u.startswith(("data:", "chrome:", "chrome-untrusted:"))
                                            or u == page.as_uri())]
    assert external == [] and page.as_uri() in requests
    shot = page.parent / "report-screenshot.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_report_opens_offline_with_every_section_and_image(browser, held_out_eval):
    _check_page(browser, held_out_eval / "report.html", SECTIONS, 10)


def test_forecast_report_opens_offline_with_every_section_and_image(browser, tmp_path):
    import knowwhen as kw

    cfg = kw.ForecastConfig(kw.SeriesConfig("sunspots"), kw.ModelConfig("tcn"), window=16, horizon=2, epochs=3,
                            progress=False)
    run = kw.load_forecaster(kw.train_forecaster(cfg, tmp_path / "run"))
    kw.evaluate_forecaster(run, tmp_path / "eval", options=kw.ForecastOptions(passes=20, progress=False))
    from knowwhen.report.build import build_report

    build_report(tmp_path / "eval")
    _check_page(browser, tmp_path / "eval" / "report.html", ["summary", "training", "forecast"], 4)
