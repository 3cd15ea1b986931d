"""knowwhen screen / predict / train from fields: a CellProfiler load_data.csv with its object table, an OME-Zarr
plate and the same cells as pre-cut crops give identical predictions and wells; bad input is one clear line."""
import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _fakes import NO_BROWSER
from _fakes.fields import make_screen, write_cellprofiler, write_zarr_plate
from knowwhen.cli import app

runner = CliRunner()
WELLS = tuple(f"{r}{c:02d}" for r in "AB" for c in range(1, 7))
NOVEL = ("A04", "B05")


@pytest.fixture(scope="module")
def plates(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fields")
    screen = make_screen(wells=WELLS, channels=("DNA",), novel_wells=NOVEL)
    load_data, objects = write_cellprofiler(screen, tmp / "cp")
    table = tmp / "objects.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Metadata_Well", "Metadata_Site", "ImageNumber", "ObjectNumber", "Location_Center_X",
                    "Location_Center_Y"])
        for o in screen.objects:
            m = screen.meta[o["ImageNumber"] - 1]
            w.writerow([m["Metadata_Well"], m["Metadata_Site"], o["ImageNumber"], o["ObjectNumber"],
                        o["Location_Center_X"], o["Location_Center_Y"]])
    zarr_plate = write_zarr_plate(screen, tmp / "P1.ome.zarr", "0.5")
    crops = tmp / "crops.npz"
    np.savez(crops, x=screen.crops(), **screen.crop_metadata())
    return {"tmp": tmp, "screen": screen, "cellprofiler": [str(load_data), "--objects", str(objects)],
            "zarr": [str(zarr_plate), "--objects", str(table)], "crops": [str(crops)]}


def _screen(run, data, out, *extra):
    r = runner.invoke(app, ["screen", str(run), *data, "--out", str(out), "--mc", "10", "--controls", "A01,B01",
                            "--quiet", *extra])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def screened(digits_run, plates):
    return {k: _screen(digits_run, plates[k], plates["tmp"] / f"out-{k}") for k in ("cellprofiler", "zarr", "crops")}


def _wells(out):
    return list(csv.DictReader(open(out / "wells.csv")))


def test_fields_and_pre_cut_crops_give_identical_cells_and_wells(screened):
    cells = {k: pq.read_table(out / "cells.parquet").to_pydict() for k, out in screened.items()}
    measures = [c for c in cells["crops"] if c.startswith(("prob_", "p_max", "entropy", "mutual", "novelty", "qc_"))]
    for k in ("cellprofiler", "zarr"):
        for c in measures + ["pred_mc", "novel", "Metadata_Well"]:
            assert cells[k][c] == cells["crops"][c], (k, c)
        assert cells[k]["ImageNumber"] == cells["cellprofiler"]["ImageNumber"]
        assert {"ObjectNumber", "Location_Center_X", "Location_Center_Y", "Metadata_Site", "crop_padded"} <= \
            set(cells[k])
        fields, crops = _wells(screened[k]), _wells(screened["crops"])
        assert [{c: w[c] for c in crops[0]} for w in fields] == crops  # every column of the crops' wells.csv
        assert {w["Metadata_Well"]: int(w["edge_padded"]) for w in fields if int(w["edge_padded"])} == {"A01": 1}
        assert json.loads((screened[k] / "screen.json").read_text())["fields"]["objects_beyond_field"] == \
            {"rule": "pad", "padded": 1, "skipped": 0}
    # the novel wells (random glyphs, 18 cells each) lead the plate and every hit is one of them; on this toy run
    # (digits, 2 epochs) `novelty` calls one of the two at FDR 0.05 (the realistic benchmark's far wells: all)
    wells = _wells(screened["cellprofiler"])
    hits = {w["Metadata_Well"] for w in wells if w["hit"] == "True"}
    ranked = sorted(wells, key=lambda w: -float(w["novel_fraction"]))
    assert {w["Metadata_Well"] for w in ranked[:len(NOVEL)]} == set(NOVEL) and hits and hits <= set(NOVEL)


def test_edge_skip_is_counted_per_well(digits_run, plates):
    out = _screen(digits_run, plates["cellprofiler"], plates["tmp"] / "out-skip", "--edge", "skip")
    wells = {w["Metadata_Well"]: w for w in _wells(out)}
    assert wells["A01"]["edge_skipped"] == "1" and wells["A01"]["edge_padded"] == "0"
    assert json.loads((out / "screen.json").read_text())["fields"]["objects_beyond_field"]["skipped"] == 1


def test_predict_from_fields_equals_predict_from_crops(digits_run, plates):
    outs = []
    for k in ("cellprofiler", "crops"):
        out = plates["tmp"] / f"pred-{k}.csv"
        r = runner.invoke(app, ["predict", str(digits_run), *plates[k], "--out", str(out), "--quiet"])
        assert r.exit_code == 0, r.output
        outs.append([row[1:] for row in csv.reader(open(out))])  # all but the id column
    assert outs[0] == outs[1]


def test_train_and_evaluate_on_cells_cut_from_fields(plates, tmp_path):
    data = plates["cellprofiler"] + ["--crop-size", "8", "--label-column", "Metadata_Class"]
    r = runner.invoke(app, ["train", *data, "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet",
                            "--calibration-mc", "0"])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["data"]["options"]
    assert saved["objects"].endswith("Nuclei.csv") and saved["label_column"] == "Metadata_Class"
    r = runner.invoke(app, ["evaluate", str(tmp_path / "run"), *data, "--mc", "0", "--out", str(tmp_path / "ev"),
                            "--quiet"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("case, message", [
    ("missing_file", "line 4, FileName_DNA: .* does not exist"),
    ("stray_image", "ImageNumber 99 matches no field"),
    ("outside", r"the centre \(70, .*outside its field"),
    ("not_a_plate", "without HCS plate metadata"),
    ("missing_channel", "DNA missing"),
])
def test_bad_field_input_exits_2_with_one_line_and_writes_nothing(digits_run, plates, tmp_path, case, message):
    import zarr

    screen = plates["screen"]
    objects = [dict(o) for o in screen.objects]
    if case == "stray_image":
        objects[3]["ImageNumber"] = 99
    if case == "outside":
        objects[3]["Location_Center_X"] = 70.0
    load_data, table = write_cellprofiler(screen, tmp_path / "cp", objects=objects)
    data = [str(load_data), "--objects", str(table)]
    if case == "missing_file":
        (tmp_path / "cp" / "images" / "P1_A02_s1_DNA.tif").unlink()
    if case == "not_a_plate":
        zarr.open_group(str(tmp_path / "x.zarr"), mode="w")
        data = [str(tmp_path / "x.zarr"), "--objects", str(table)]
    if case == "missing_channel":
        rows = list(csv.DictReader(open(load_data)))
        for row in rows:
            row["FileName_RFP"] = row.pop("FileName_DNA")
            row["PathName_RFP"] = row.pop("PathName_DNA")
        with open(load_data, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        run = _named_run(digits_run, tmp_path)
    r = runner.invoke(app, ["screen", str(run if case == "missing_channel" else digits_run), *data, "--out",
                            str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("error")]
    assert len(lines) == 1, r.output
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


def _named_run(digits_run, tmp_path):
    """A copy of the digits run whose one channel is named DNA."""
    import shutil

    run = tmp_path / "named"
    shutil.copytree(digits_run, run)
    config = json.loads((run / "config.json").read_text())
    config.setdefault("data", {})["channel_names"] = ["DNA"]
    (run / "config.json").write_text(json.dumps(config))
    return run


@NO_BROWSER
def test_the_review_page_shows_a_cell_in_its_field(screened, plates, browser):
    from selenium.webdriver.common.by import By

    out = screened["cellprofiler"]
    browser.get((out / "report.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, "table.plate td.well[data-well='A04']").click()
    cell = browser.find_element(By.CSS_SELECTOR, "#novel-cells img.has-field")
    cell.click()
    from selenium.webdriver.support.ui import WebDriverWait

    image = browser.find_element(By.ID, "field-image")
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return arguments[0].complete", image))
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 64
    index = int(cell.get_attribute("data-cell"))
    import pyarrow.parquet as pq

    row = {k: v[index] for k, v in pq.read_table(out / "cells.parquet").to_pydict().items()}
    x0 = np.floor(row["Location_Center_X"] + 0.5) - 4  # the 8 px box, as a fraction of the 64 px field
    import re

    style = dict(re.findall(r"(left|top|width|height): ([-\d.]+)%", browser.find_element(By.ID, "field-box")
                            .get_attribute("style")))
    assert float(style["left"]) == pytest.approx(100 * x0 / 64) and float(style["width"]) == pytest.approx(12.5)
    assert (out / "fields" / f"{row['ImageNumber']}.png").exists()


def test_a_changed_object_table_is_predicted_again_not_recounted(digits_run, plates, tmp_path):
    screen = plates["screen"]
    load_data, objects = write_cellprofiler(screen, tmp_path / "cp")
    out = _screen(digits_run, [str(load_data), "--objects", str(objects)], tmp_path / "out")
    r = runner.invoke(app, ["screen", str(digits_run), str(load_data), "--objects", str(objects), "--out", str(out),
                            "--mc", "10", "--controls", "A01,B01", "--quiet"])
    assert "without predicting again" in r.output  # the same cells: recounted
    moved = [dict(o) for o in screen.objects]
    moved[0]["Location_Center_X"] += 2  # the same number of cells, one crop moved
    write_cellprofiler(screen, tmp_path / "cp", objects=moved)
    r = runner.invoke(app, ["screen", str(digits_run), str(load_data), "--objects", str(objects), "--out", str(out),
                            "--mc", "10", "--controls", "A01,B01", "--quiet"])
    assert r.exit_code == 0 and "without predicting again" not in r.output, r.output
