"""knowwhen screen on a synthetic 96-well plate built from digits, some wells spiked with cells of a phenotype the
run never saw (noise images)."""
import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import knowwhen as kw
from _fakes import NO_BROWSER
from knowwhen.cli import app
from knowwhen.screen.metadata import well_position

runner = CliRunner()
WELLS = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
SPIKED = ["B03", "C07", "D10", "F05", "G08", "H12"]


def _plate(path, plates=("P1",), cells=80, spike=0.4, seed=0):
    rng = np.random.default_rng(seed)
    digits = kw.open_dataset("digits").images(np.arange(1797))[:, 0]
    x, meta = [], {"Metadata_Plate": [], "Metadata_Well": [], "Metadata_Treatment": []}
    for plate in plates:
        for w in WELLS:
            k = int(cells * spike) if w in SPIKED else 0
            x += [digits[rng.integers(0, 1797, cells - k)], rng.uniform(0, 16, (k, 8, 8))]
            meta["Metadata_Plate"] += [plate] * cells
            meta["Metadata_Well"] += [w] * cells
            meta["Metadata_Treatment"] += ["DMSO" if w.endswith("01") else f"cpd{w}"] * cells
    np.savez(path, x=np.concatenate(x), **{k: np.array(v) for k, v in meta.items()})
    return path


@pytest.fixture(scope="module")
def screened(digits_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("screen")
    data = _plate(tmp / "plate.npz")
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--out", str(tmp / "out"), "--quiet"])  # MC 100
    assert r.exit_code == 0, r.output
    return tmp / "out", r.output


def _wells(out):
    return {w["Metadata_Well"]: w for w in csv.DictReader(open(out / "wells.csv"))}


def test_spiked_wells_are_hits_and_clean_wells_are_not(screened):
    out, text = screened
    wells = _wells(out)
    hits = {w for w, row in wells.items() if row["hit"] == "True"}
    assert set(SPIKED) <= hits
    assert len(hits - set(SPIKED)) <= 1  # false hits at FDR 0.05 among 90 clean wells
    assert "6 hit well(s)" in text or "7 hit well(s)" in text
    assert wells["B03"]["Metadata_Treatment"] == "cpdB03"  # metadata constant in a well is carried


def test_well_statistics_equal_scipy_and_statsmodels(screened):
    from scipy.stats import binomtest
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportion_confint

    out, _ = screened
    rows = list(csv.DictReader(open(out / "wells.csv")))
    k, n = np.array([int(r["novel"]) for r in rows]), np.array([int(r["cells"]) for r in rows])
    p = [binomtest(int(a), int(b), 0.05, alternative="greater").pvalue for a, b in zip(k, n)]
    np.testing.assert_allclose([float(r["p_value"]) for r in rows], p, rtol=1e-8)
    np.testing.assert_allclose([float(r["q_value"]) for r in rows], multipletests(p, method="fdr_bh")[1], rtol=1e-8)
    lo, hi = proportion_confint(k, n, 0.05, method="wilson")
    np.testing.assert_allclose([float(r["ci_low"]) for r in rows], lo, rtol=1e-8)
    np.testing.assert_allclose([float(r["ci_high"]) for r in rows], hi, rtol=1e-8)


def test_rank_test_equals_scipys_mann_whitney_and_the_default_test_falls_back_to_the_binomial(screened, digits_run):
    import pyarrow.parquet as pq
    from scipy.stats import mannwhitneyu
    from statsmodels.stats.multitest import multipletests

    out, _ = screened
    rows = list(csv.DictReader(open(out / "wells.csv")))
    cells = pq.read_table(out / "cells.parquet").to_pandas()
    ref = kw.load_run(digits_run).reference["novelty"]              # no controls: the validation images
    p = [mannwhitneyu(cells.loc[cells["Metadata_Well"] == r["Metadata_Well"], "novelty"], ref, alternative="greater",
                      method="asymptotic", use_continuity=False).pvalue for r in rows]
    # scipy shrinks the variance for tied scores (noise cells can share the fused score's largest value); knowwhen
    # leaves ties out, so its p-values are a little larger (the conservative side).
    np.testing.assert_allclose([float(r["p_value_rank"]) for r in rows], p, rtol=1e-3)
    q = multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose([float(r["q_value_rank"]) for r in rows], q, rtol=1e-3)
    summary = json.loads((out / "screen.json").read_text())
    assert summary["hit_test"] == "betabinom"                        # the default; without controls: the binomial
    assert [r["hit"] == "True" for r in rows] == [float(r["q_value_betabinom"]) < 0.05 for r in rows]
    np.testing.assert_allclose([float(r["p_value_betabinom"]) for r in rows], [float(r["p_value"]) for r in rows],
                               rtol=1e-9)
    assert "binomial test against fpr" in summary["plates"][0]["null_from"]


def test_cells_table_carries_metadata_and_the_flag_follows_the_threshold(screened, digits_run):
    import pyarrow.parquet as pq

    out, _ = screened
    cells = pq.read_table(out / "cells.parquet").to_pandas()
    assert {"Metadata_Plate", "Metadata_Well", "Metadata_Treatment", "novelty", "novel", "pred_mc"} <= set(cells)
    assert len(cells) == 96 * 80
    summary = json.loads((out / "screen.json").read_text())
    threshold = summary["plates"][0]["threshold"]
    ref = np.sort(kw.load_run(digits_run).reference["novelty"])     # the finite-sample (1 - fpr) quantile
    assert threshold == ref[int(np.ceil((len(ref) + 1) * 0.95)) - 1]
    assert ((cells["novelty"] > threshold) == (cells["novel"] == 1)).all()
    wells = _wells(out)
    by_well = cells.groupby("Metadata_Well")["novel"].sum()
    assert all(int(wells[w]["novel"]) == by_well[w] for w in WELLS)


def test_controls_set_each_plates_threshold(digits_run, tmp_path):
    data = _plate(tmp_path / "two.npz", plates=("P1", "P2"), cells=20)
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--controls",
                            "Metadata_Treatment=DMSO", "--out", str(tmp_path / "o"), "--cells-format", "csv",
                            "--hit-test", "binomial", "--quiet"])
    assert r.exit_code == 0, r.output
    cells = list(csv.DictReader(open(tmp_path / "o" / "cells.csv")))
    plates = {p["Metadata_Plate"]: p for p in csv.DictReader(open(tmp_path / "o" / "plates.csv"))}
    for plate in ("P1", "P2"):
        control = np.sort([float(c["novelty"]) for c in cells
                           if c["Metadata_Plate"] == plate and c["Metadata_Treatment"] == "DMSO"])
        assert len(control) == 8 * 20
        assert float(plates[plate]["threshold"]) == pytest.approx(control[int(np.ceil(161 * 0.95)) - 1])
        assert "control cells" in plates[plate]["threshold_from"]
    # The binomial test calls the hits when asked; the rank test's reference is each plate's control cells.
    wells = list(csv.DictReader(open(tmp_path / "o" / "wells.csv")))
    assert [w["hit"] == "True" for w in wells] == [float(w["q_value"]) < 0.05 for w in wells]
    from scipy.stats import mannwhitneyu

    w = next(w for w in wells if w["Metadata_Plate"] == "P2" and w["Metadata_Well"] == "C07")
    mine = [float(c["novelty"]) for c in cells if c["Metadata_Plate"] == "P2" and c["Metadata_Well"] == "C07"]
    control = [float(c["novelty"]) for c in cells if c["Metadata_Plate"] == "P2" and c["Metadata_Treatment"] == "DMSO"]
    expected = mannwhitneyu(mine, control, alternative="greater", method="asymptotic", use_continuity=False).pvalue
    assert float(w["p_value_rank"]) == pytest.approx(expected, rel=1e-3)


def test_a_csv_manifest_and_its_errors(digits_run, tmp_path):
    from PIL import Image

    x = kw.open_dataset("digits").images(np.arange(6))[:, 0]
    lines = ["path,Metadata_Plate,Metadata_Well,Metadata_Gene"]
    for i, img in enumerate(x):
        Image.fromarray((img * 15).astype(np.uint8)).save(tmp_path / f"c{i}.png")
        lines.append(f"c{i}.png,P1,{'A01' if i < 3 else 'A02'},G{i // 3}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    r = runner.invoke(app, ["screen", str(digits_run), str(tmp_path / "m.csv"), "--mc", "0", "--out",
                            str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    wells = _wells(tmp_path / "o")
    assert wells["A01"]["cells"] == "3" and wells["A02"]["Metadata_Gene"] == "G1"
    (tmp_path / "bad.csv").write_text("path,Metadata_Plate\nc0.png,P1\n")
    r = runner.invoke(app, ["screen", str(digits_run), str(tmp_path / "bad.csv"), "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "bad.csv" in r.output and "Metadata_Well" in r.output and "--well-column" in r.output


def test_well_positions():
    assert well_position("B07") == (1, 6) and well_position("b7") == (1, 6) and well_position("P24") == (15, 23)
    assert well_position("AF48") == (31, 47) and well_position("x") is None


@NO_BROWSER
def test_the_review_page_shows_the_map_opens_a_hit_well_and_sorts(screened, digits_run, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from knowwhen.report.screen import build_screen_report

    out, text = screened
    assert "review page" in text
    page = out / "report.html"
    browser.get(page.as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.plate td.well")) == 96
    hits = browser.find_elements(By.CSS_SELECTOR, "table.plate td.hit")
    assert {h.get_attribute("data-well") for h in hits} >= set(SPIKED)
    hits[0].click()
    assert "(hit)" in browser.find_element(By.ID, "well-title").text
    images = browser.execute_script("return Array.from(document.querySelectorAll('#novel-cells img'))"
                                    ".map(i => [i.complete, i.naturalWidth])")
    assert len(images) == 6 and all(done and width > 0 for done, width in images)
    rows = lambda: [r.find_elements(By.TAG_NAME, "td")[3].text for r in  # noqa: E731
                    browser.find_elements(By.CSS_SELECTOR, "#hits tbody tr")]
    browser.find_element(By.CSS_SELECTOR, "#hits th[data-key=novel_fraction]").click()
    ascending = [float(t.split("%")[0]) for t in rows()]
    browser.find_element(By.CSS_SELECTOR, "#hits th[data-key=novel_fraction]").click()
    descending = [float(t.split("%")[0]) for t in rows()]
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True) and len(ascending) >= 6
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    # the page is rebuilt from the saved files and the images alone
    assert build_screen_report(out, kw.open_dataset(out.parent / "plate.npz")) == page


def test_a_screen_stopped_while_summarising_does_not_predict_again(digits_run, tmp_path, monkeypatch):
    import knowwhen.screen.screen as screen_module
    from knowwhen.screen import ScreenOptions, screen_metadata, screen_run

    data = _plate(tmp_path / "p.npz", cells=10)
    ds, run = kw.open_dataset(data), kw.load_run(digits_run)
    options = ScreenOptions(mc=0, progress=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the predictions were written

    monkeypatch.setattr(screen_module, "_cells_and_wells", killed)
    with pytest.raises(KeyboardInterrupt):
        screen_run(run, ds, screen_metadata(data, ds), tmp_path / "o", options)
    monkeypatch.undo()
    monkeypatch.setattr(screen_module, "write_predictions", lambda *a, **k: pytest.fail("predicted again"))
    summary = screen_run(run, ds, screen_metadata(data, ds), tmp_path / "o", options)
    assert summary["cells"] == 960 and (tmp_path / "o" / ".predictions.parquet").exists()  # kept for recounting


def test_an_hdf5_screen(digits_run, tmp_path):
    import h5py

    with np.load(_plate(tmp_path / "p.npz", cells=5)) as z, h5py.File(tmp_path / "p.h5", "w") as f:
        f["x"] = z["x"]
        for key in ("Metadata_Plate", "Metadata_Well", "Metadata_Treatment"):
            f[key] = z[key].astype("S")
    r = runner.invoke(app, ["screen", str(digits_run), str(tmp_path / "p.h5"), "--mc", "0", "--option", "x_key=x",
                            "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    wells = _wells(tmp_path / "o")
    assert len(wells) == 96 and wells["A01"]["Metadata_Treatment"] == "DMSO" and wells["A01"]["cells"] == "5"


def test_two_processes_screen_as_one(digits_run, tmp_path):
    import os
    import subprocess
    import sys

    data = _plate(tmp_path / "p.npz", cells=12)
    args = ["-m", "knowwhen", "screen", str(digits_run), str(data), "--mc", "10", "--part-size", "300",
            "--cells-format", "csv", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # float32 sums in one order on both sides (byte comparison)
    subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], check=True, env=env)
    r = subprocess.run([sys.executable, *args, "--devices", "2", "--out", str(tmp_path / "two")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("1152 cells in 96 wells") == 1      # one process summarises
    for name in ("cells.csv", "wells.csv", "plates.csv"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name


def _mixed_plate(path, wells, cells=4):
    x = kw.open_dataset("digits").images(np.arange(len(wells) * cells))[:, 0]
    np.savez(path, x=x, Metadata_Plate=np.array(["P1"] * len(x)),
             Metadata_Well=np.repeat(np.array(wells), cells))
    return path


def test_well_names_are_one_well_however_spelled_and_impossible_wells_are_refused(digits_run, tmp_path, caplog):
    import logging

    # A1 and A01 (and a01) are one well: 64 wells, not 112 halves
    wells = [f"{r}{c}" for r in "ABCDEFGH" for c in range(1, 9)]
    spelled = wells + [f"{w[0]}{int(w[1:]):02d}" for w in wells[:48]] + ["a01"]
    data = _mixed_plate(tmp_path / "m.npz", spelled)
    with caplog.at_level(logging.INFO, logger="knowwhen"):
        r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--out", str(tmp_path / "o"),
                                "--controls", "A1,b01", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "64 wells of 1 plate" in r.output
    assert "96-well plate layout (8 rows x 12 columns); 49 other spelling(s)" in caplog.text
    got = _wells(tmp_path / "o")
    assert set(got) == {f"{w[0]}{int(w[1:]):02d}" for w in wells} and got["A01"]["cells"] == "12"
    assert got["A01"]["control"] == "True" and got["B01"]["control"] == "True"
    summary = json.loads((tmp_path / "o" / "screen.json").read_text())
    assert summary["plate_layout"] == {"wells": 96, "rows": 8, "columns": 12}
    # a well past column 12 or row H makes it a 384-well plate; Z99 is no well of any plate
    data = _mixed_plate(tmp_path / "p.npz", ["A01", "P24"])
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--out", str(tmp_path / "p"),
                            "--quiet"])
    assert r.exit_code == 0 and json.loads((tmp_path / "p" / "screen.json").read_text())["plate_layout"]["wells"] == 384
    data = _mixed_plate(tmp_path / "z.npz", ["A01", "Z99"])
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--out", str(tmp_path / "z")])
    assert "used 100 MC passes and this screen uses no MC dropout" in r.stderr  # was "this screen none"
    assert r.exit_code == 2 and "'Z99' is not a well" in r.stderr and "Metadata_Well" in r.stderr
    assert not (tmp_path / "z").exists()
    r = runner.invoke(app, ["screen", str(digits_run), str(tmp_path / "m.npz"), "--mc", "0", "--out",
                            str(tmp_path / "c"), "--controls", "A01,B01,Z99"])
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "Z99" in errors[0] and "Traceback" not in r.stderr
    r = runner.invoke(app, ["screen", str(digits_run), str(tmp_path / "m.npz"), "--mc", "0", "--out",
                            str(tmp_path / "c"), "--controls", "A01,H12"])
    assert r.exit_code == 2 and "H12" in r.stderr and "hold no image" in r.stderr


@pytest.mark.parametrize("bad", [["--mc", "-1"], ["--part-size", "0"], ["--batch-size", "0"], ["--out-file"]])
def test_a_rejected_screen_writes_nothing_and_the_corrected_command_runs(digits_run, tmp_path, bad):
    data = _plate(tmp_path / "p.npz", cells=3)
    out = tmp_path / "o"
    if bad == ["--out-file"]:
        (tmp_path / "file").write_text("x")
        args, bad_out = [], tmp_path / "file"
    else:
        args, bad_out = bad, out
    before = sorted(p.name for p in tmp_path.iterdir())
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "5", *args, "--out", str(bad_out)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no hidden parts folder
    if bad == ["--out-file"]:
        assert (tmp_path / "file").read_text() == "x" and "is a file" in r.stderr
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "5", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output


def test_cell_flags_are_booleans_and_well_numbers_have_nine_digits(screened):
    import pyarrow.parquet as pq

    out, _ = screened
    schema = pq.read_schema(out / "cells.parquet")
    assert str(schema.field("novel").type) == "bool" and str(schema.field("control").type) == "bool"
    rows = list(csv.DictReader(open(out / "wells.csv")))
    digits = [len(v.lstrip("-").split("e")[0].replace(".", "").lstrip("0")) for r in rows
              for k, v in r.items() if k.startswith(("p_value", "q_value", "mean_", "frac_", "ci_"))]
    assert max(digits) <= 9 and max(digits) >= 8


def _qc_plate(path):
    """The 96-well plate with C05 out of focus, D06 saturated and the spiked well B03 out of focus too."""
    from scipy.ndimage import gaussian_filter

    data = _plate(path, cells=30)
    with np.load(data) as z:
        x, meta = z["x"].astype(np.float64), {k: z[k] for k in z.files if k != "x"}
    wells = meta["Metadata_Well"]
    x[wells == "C05"] = gaussian_filter(x[wells == "C05"], sigma=(0, 1.2, 1.2))
    x[wells == "D06"] = np.minimum(x[wells == "D06"] * 4, 16)
    x[wells == "B03"] = gaussian_filter(x[wells == "B03"], sigma=(0, 1.2, 1.2))
    np.savez(data, x=x, **meta)
    return data


def test_qc_flags_blurred_and_saturated_wells_and_marks_their_hits(digits_run, tmp_path):
    data = _qc_plate(tmp_path / "p.npz")
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--controls",
                            "Metadata_Treatment=DMSO", "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    got = _wells(tmp_path / "o")
    assert {"qc_focus", "qc_intensity", "qc_p99", "qc_saturation", "qc_cells", "qc_flag",
            "hit_artefact_suspect"} <= set(got["A01"])
    assert got["C05"]["qc_flag"] == "1" and got["D06"]["qc_flag"] == "1" and got["B03"]["qc_flag"] == "1"
    assert float(got["C05"]["qc_focus"]) < float(got["C06"]["qc_focus"]) / 2
    assert float(got["D06"]["qc_saturation"]) > float(got["D05"]["qc_saturation"])
    assert sum(w["qc_flag"] == "1" for w in got.values()) <= 6      # plain wells stay inside the controls' range
    for w in got.values():
        assert w["hit_artefact_suspect"] == str(w["hit"] == "True" and w["qc_flag"] == "1")
    assert got["B03"]["hit"] == "True" and got["B03"]["hit_artefact_suspect"] == "True"
    # the per-well median equals the median over the well's cells (30 cells: the sample holds them all)
    import pyarrow.parquet as pq

    cells = pq.read_table(tmp_path / "o" / "cells.parquet").to_pandas()
    assert float(got["C06"]["qc_focus"]) == pytest.approx(cells.loc[cells["Metadata_Well"] == "C06", "qc_focus"]
                                                         .median(), rel=1e-8)


def test_composition_equals_scipys_chi_square_and_finds_a_shifted_mix(digits_run, tmp_path):
    from scipy.stats import chi2_contingency

    rng = np.random.default_rng(3)
    digits = kw.open_dataset("digits")
    x = digits.images(np.arange(1797))[:, 0]
    ones = np.flatnonzero(digits.labels == 1)
    cells, meta = [], {"Metadata_Plate": [], "Metadata_Well": [], "Metadata_Treatment": []}
    for w in WELLS[:24]:
        idx = rng.integers(0, 1797, 60) if w != "B05" else np.r_[rng.choice(ones, 40), rng.integers(0, 1797, 20)]
        cells.append(x[idx])
        meta["Metadata_Plate"] += ["P1"] * 60
        meta["Metadata_Well"] += [w] * 60
        meta["Metadata_Treatment"] += ["DMSO" if w.startswith("A") else "cpd"] * 60
    np.savez(tmp_path / "c.npz", x=np.concatenate(cells), **{k: np.array(v) for k, v in meta.items()})
    r = runner.invoke(app, ["screen", str(digits_run), str(tmp_path / "c.npz"), "--mc", "0", "--controls",
                            "Metadata_Treatment=DMSO", "--cells-format", "csv", "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    got = _wells(tmp_path / "o")
    rows = list(csv.DictReader(open(tmp_path / "o" / "cells.csv")))
    run = kw.load_run(digits_run)

    def counts(selected):
        return np.array([sum(c["pred"] == k for c in selected) for k in run.class_names])

    known = [c for c in rows if c["novel"] == "False"]
    control = counts([c for c in known if c["Metadata_Treatment"] == "DMSO"])
    mine = counts([c for c in known if c["Metadata_Well"] == "B05"])
    table = np.stack([mine, control])[:, (mine + control) > 0]
    assert float(got["B05"]["composition_p"]) == pytest.approx(chi2_contingency(table, correction=False).pvalue,
                                                              rel=1e-6)
    assert float(got["B05"]["composition_q"]) < 1e-6          # 2/3 of its cells are ones
    assert np.median([float(w["composition_q"]) for k, w in got.items() if k != "B05"]) > 0.05


@NO_BROWSER
def test_the_review_page_marks_artefact_suspects_and_controls(digits_run, browser, tmp_path):
    from selenium.webdriver.common.by import By

    data = _qc_plate(tmp_path / "p.npz")
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--controls",
                            "Metadata_Treatment=DMSO", "--hit-test", "binomial", "--out", str(tmp_path / "o"),
                            "--quiet"])
    assert r.exit_code == 0, r.output
    wells = _wells(tmp_path / "o")
    suspects = {w for w, row in wells.items() if row["hit_artefact_suspect"] == "True"}
    assert "B03" in suspects
    browser.get((tmp_path / "o" / "report.html").as_uri())
    shown = browser.find_elements(By.CSS_SELECTOR, "table.plate td.suspect")
    assert {td.get_attribute("data-well") for td in shown} == suspects
    style = browser.execute_script("const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineColor]",
                                   shown[0])
    plain_hit = browser.find_elements(By.CSS_SELECTOR, "table.plate td.hit:not(.suspect)")
    assert style[0] == "dotted" and (not plain_hit or browser.execute_script(
        "return getComputedStyle(arguments[0]).outlineStyle", plain_hit[0]) == "solid")
    controls = browser.find_elements(By.CSS_SELECTOR, "table.plate td.control")
    assert {td.get_attribute("data-well") for td in controls} == {f"{r}01" for r in "ABCDEFGH"}
    row = next(tr for tr in browser.find_elements(By.CSS_SELECTOR, "#hits tbody tr")
               if tr.get_attribute("data-well") == "B03")
    assert "yes" in row.text and "cpdB03" in row.text
    row.click()
    assert "well B03 (hit)" in browser.find_element(By.ID, "well-title").text
    assert "outside the control wells' range" in browser.find_element(By.ID, "well-qc").text
    assert "Artefact suspect" in browser.find_element(By.ID, "panel").text
    assert "binomial test" in browser.find_element(By.ID, "panel").text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_treatments_pool_their_replicate_wells_by_hand(digits_run, tmp_path):
    from scipy.stats import betabinom

    from knowwhen.screen.treatments import treatment_p_value
    from knowwhen.screen.welltest import WellNull

    # the convolution of two wells' beta-binomials, counted by hand
    null = WellNull(0.05, 0.02, 32, "")
    a, b = null.shape
    p1, p2 = betabinom.pmf(np.arange(31), 30, a, b), betabinom.pmf(np.arange(41), 40, a, b)
    by_hand = sum(p1[i] * p2[j] for i in range(31) for j in range(41) if i + j >= 9)
    assert treatment_p_value([4, 5], [30, 40], [null, null]) == pytest.approx(by_hand, rel=1e-10)
    # a plate whose compounds sit in two replicate wells each
    data = _plate(tmp_path / "p.npz", cells=20)
    with np.load(data) as z:
        meta = {k: z[k] for k in z.files}
    compound = {w: "DMSO" if w.endswith("01") else f"c{(WELLS.index(w) // 2)}" for w in WELLS}
    compound.update({"B03": "spiked", "C07": "spiked"})
    meta["Metadata_Compound"] = np.array([compound[w] for w in meta["Metadata_Well"]])
    np.savez(data, **meta)
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--controls",
                            "Metadata_Treatment=DMSO", "--group-by", "Metadata_Compound", "--out",
                            str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = {t["Metadata_Compound"]: t for t in csv.DictReader(open(tmp_path / "o" / "treatments.csv"))}
    wells = _wells(tmp_path / "o")
    spiked = rows["spiked"]
    assert spiked["wells"] == "2" and int(spiked["novel"]) == int(wells["B03"]["novel"]) + int(wells["C07"]["novel"])
    assert spiked["hit"] == "True" and int(spiked["cells"]) == 40
    assert float(spiked["novel_fraction_min"]) == pytest.approx(min(float(wells[w]["novel_fraction"])
                                                                    for w in ("B03", "C07")))
    assert rows["DMSO"]["wells"] == "8" and rows["DMSO"]["control"] == "True"
    # the other spiked wells (D10, F05, G08, H12) each share a compound with a plain replicate: those are hits too
    holding_spike = {compound[w] for w in SPIKED}
    assert {c for c, t in rows.items() if t["hit"] == "True"} == holding_spike
    assert all(rows[c]["wells_called"] == "1" for c in holding_spike - {"spiked"})
    # --group-by a missing column, or one that varies within wells: one error line, nothing written
    for column, said in (("Metadata_Nope", "no such column"), ("Metadata_Plate2", "more than one value")):
        if column == "Metadata_Plate2":
            meta["Metadata_Plate2"] = np.arange(len(meta["x"])).astype(str)
            np.savez(data, **meta)
        r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--group-by", column, "--out",
                                str(tmp_path / column)])
        assert r.exit_code == 2 and said in r.stderr and not (tmp_path / column).exists(), r.output


def test_changing_only_the_summary_settings_recounts_without_predicting(digits_run, tmp_path, monkeypatch):
    import knowwhen.screen.screen as screen_module

    data = _plate(tmp_path / "p.npz", cells=15)
    args = ["screen", str(digits_run), str(data), "--mc", "0", "--out", str(tmp_path / "o"), "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    before = _wells(tmp_path / "o")
    monkeypatch.setattr(screen_module, "write_predictions", lambda *a, **k: pytest.fail("predicted again"))
    r = runner.invoke(app, [*args, "--hit-test", "binomial", "--fdr", "0.2", "--controls", "Metadata_Treatment=DMSO"])
    assert r.exit_code == 0, r.output
    after = _wells(tmp_path / "o")
    assert [w["hit"] == "True" for w in after.values()] == [float(w["q_value"]) < 0.2 for w in after.values()]
    assert json.loads((tmp_path / "o" / "screen.json").read_text())["hit_test"] == "binomial"
    assert before["A01"]["control"] == "False" and after["A01"]["control"] == "True"
    # a recount in the other cell format: the page reads the new table, not the one left beside it
    r = runner.invoke(app, [*args, "--cells-format", "csv", "--controls", "Metadata_Treatment=DMSO"])
    assert r.exit_code == 0 and (tmp_path / "o" / "cells.csv").exists()
    assert json.loads((tmp_path / "o" / "screen.json").read_text())["cells_format"] == "csv"


def test_a_screen_of_many_plates_gets_an_index_and_one_page_per_plate(digits_run, tmp_path):
    from knowwhen.report.screen import PLATES_PER_PAGE

    plates = tuple(f"P{k}" for k in range(PLATES_PER_PAGE + 1))
    data = _plate(tmp_path / "p.npz", plates=plates, cells=3)
    r = runner.invoke(app, ["screen", str(digits_run), str(data), "--mc", "0", "--out", str(tmp_path / "o"),
                            "--quiet"])
    assert r.exit_code == 0, r.output
    index = (tmp_path / "o" / "report.html").read_text()
    for plate in plates:
        assert f'href="report-{plate}.html"' in index
        page = (tmp_path / "o" / f"report-{plate}.html").read_text()
        data_json = json.loads(page.split('id="data">')[1].split("</script>")[0])
        assert {w["Metadata_Plate"] for w in data_json["wells"]} == {plate} and len(data_json["wells"]) == 96
        assert set(data_json["picks"]) == {plate} and 'href="report.html"' in page
    sizes = [(tmp_path / "o" / f"report-{p}.html").stat().st_size for p in plates]
    assert max(sizes) < 1.3 * min(sizes)        # a page holds one plate, whatever the screen's size


def test_a_screen_of_png_files_killed_mid_prediction_resumes_to_the_same_files(digits_run, tmp_path):
    """kill -9 while the read-ahead thread decodes PNG files ahead of the network: the rerun skips the finished
    parts and writes what an uninterrupted screen writes, byte for byte."""
    import signal
    import subprocess
    import sys
    import time

    from PIL import Image

    x = (kw.open_dataset("digits").images(np.arange(96 * 12))[:, 0] * 15).astype(np.uint8)
    lines = ["path,Metadata_Plate,Metadata_Well"]
    for i, img in enumerate(x):
        Image.fromarray(img).save(tmp_path / f"c{i}.png")
        lines.append(f"c{i}.png,P1,{WELLS[i // 12]}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    args = [sys.executable, "-m", "knowwhen", "screen", str(digits_run), str(tmp_path / "m.csv"), "--mc", "50",
            "--part-size", "48", "--cells-format", "csv", "--quiet", "--out"]
    from knowwhen.screen import ScreenOptions

    assert ScreenOptions().prefetch > 0  # the CLI screens with read-ahead
    subprocess.run([*args, str(tmp_path / "whole")], check=True, capture_output=True)
    proc = subprocess.Popen([*args, str(tmp_path / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "killed" / "..predictions.parquet.parts"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(parts.glob("part-*"))) < 4:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (tmp_path / "killed" / "wells.csv").exists():
        pytest.skip("the screen finished before it could be killed")
    assert 4 <= len(list(parts.glob("part-*"))) < 24
    r = subprocess.run([*args, str(tmp_path / "killed")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "skipping" in r.stderr
    for name in ("cells.csv", "wells.csv", "plates.csv"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
