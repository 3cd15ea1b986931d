"""Cells cut from fields: CellProfiler load_data.csv + object tables and OME-Zarr HCS plates give the crops that
an independent cut of the same fields gives, with the box, rounding and edge rules docs/screens.md states."""
import csv

import numpy as np
import pytest

import knowwhen as kw
from _fakes.fields import make_screen, write_cellprofiler, write_zarr_plate
from knowwhen.data.fields import PADDED
from knowwhen.errors import DataError


@pytest.fixture(scope="module")
def screen():
    return make_screen(channels=("DNA", "GFP"))


@pytest.fixture(scope="module")
def cellprofiler(screen, tmp_path_factory):
    return write_cellprofiler(screen, tmp_path_factory.mktemp("cp"))


def _open(path, **options):
    return kw.open_dataset(path, options={"crop_size": 8, **options})


def _all(ds):
    return ds.images(np.arange(len(ds)))


def test_crops_from_load_data_equal_an_independent_cut(screen, cellprofiler):
    load_data, objects = cellprofiler
    ds = _open(load_data, objects=str(objects))
    assert ds.format == "cellprofiler" and ds.channel_names == ("DNA", "GFP") and ds.shape == (2, 8, 8)
    np.testing.assert_array_equal(_all(ds), screen.crops())  # the 0.5 centre rounds up; the edge crop padded with 0
    assert int(ds.metadata[PADDED].sum()) == 1 and ds.metadata[PADDED][ds.metadata["Location_Center_X"] < 4].all()
    assert ds.metadata["ImageNumber"].dtype.kind == "i" and ds.metadata["Metadata_Site"][0] == "1"
    assert ds.item_id(0) == "img1/obj1"


def test_edge_skip_drops_and_counts_the_object_near_the_border(screen, cellprofiler):
    load_data, objects = cellprofiler
    ds = _open(load_data, objects=str(objects), edge="skip")
    assert len(ds) == len(screen.objects) - 1 and not ds.metadata[PADDED].any()
    assert ds.skipped_objects == {("P1", "A01"): 1}
    keep = screen.crops()[[i for i, o in enumerate(sorted(screen.objects, key=lambda o: o["ImageNumber"]))
                           if o["Location_Center_X"] >= 4]]
    np.testing.assert_array_equal(_all(ds), keep)


def test_a_streamed_pass_reads_each_field_once(cellprofiler):
    load_data, objects = cellprofiler
    ds = _open(load_data, objects=str(objects))
    reads = []
    original = ds.source.fields.read
    ds.source.fields.read = lambda i: reads.append(i) or original(i)
    for _ in ds.batches(np.arange(len(ds)), 16):
        pass
    assert reads == sorted(set(reads)) and len(reads) == len(ds.source.fields)


def test_channels_are_matched_to_the_run_by_name(screen, tmp_path):
    load_data, objects = write_cellprofiler(screen, tmp_path, channel_order=("GFP", "DNA"))
    ds = _open(load_data, objects=str(objects))
    assert ds.channel_names == ("GFP", "DNA")
    np.testing.assert_array_equal(_all(ds.in_channel_order(("DNA", "GFP"))), screen.crops())
    with pytest.raises(DataError, match="RFP missing; DNA not used"):
        ds.in_channel_order(("GFP", "RFP"))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_an_ome_zarr_plate_gives_the_same_cells_from_a_table_and_from_labels(screen, tmp_path, version):
    plate = write_zarr_plate(screen, tmp_path / "plate.ome.zarr", version, labels=True)
    table = tmp_path / "objects.csv"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, ["Metadata_Well", "Metadata_Site", "ObjectNumber", "Location_Center_X",
                               "Location_Center_Y"])
        w.writeheader()
        for o in screen.objects:
            m = screen.meta[o["ImageNumber"] - 1]
            w.writerow({"Metadata_Well": m["Metadata_Well"][0] + str(int(m["Metadata_Well"][1:])),  # A1, not A01
                        "Metadata_Site": m["Metadata_Site"], **{k: o[k] for k in list(o)[1:4]}})
    reference = screen.crops()
    for ds in (_open(plate, objects=str(table)), _open(plate)):  # the table, then the label images
        assert ds.format == "omezarr" and ds.channel_names == ("DNA", "GFP")
        np.testing.assert_array_equal(_all(ds), reference)
        wells = [screen.meta[o["ImageNumber"] - 1]["Metadata_Well"] for o in
                 sorted(screen.objects, key=lambda o: o["ImageNumber"])]
        assert ds.metadata["Metadata_Well"].tolist() == wells and set(ds.metadata["Metadata_Plate"]) == {"P1"}
        assert ds.metadata["ImageNumber"].tolist() == sorted(o["ImageNumber"] for o in screen.objects)


def test_bad_field_input_is_one_clear_error(screen, cellprofiler, tmp_path):
    load_data, objects = cellprofiler
    with pytest.raises(DataError, match="give the object table with --objects"):
        _open(load_data)
    with pytest.raises(DataError, match="apply to fields"):
        kw.open_dataset(_npz(tmp_path), options={"objects": str(objects)})
    far = [dict(o) for o in screen.objects]
    far[5]["Location_Center_X"] = 64.0
    _, moved = write_cellprofiler(screen, tmp_path / "far", objects=far)
    with pytest.raises(DataError, match=r"Nuclei.csv line 7: the centre \(64, .*outside its field"):
        _open(tmp_path / "far" / "load_data.csv", objects=str(moved))
    stray = [dict(o) for o in screen.objects]
    stray[2]["ImageNumber"] = 99
    _, bad = write_cellprofiler(screen, tmp_path / "stray", objects=stray)
    with pytest.raises(DataError, match="line 4: ImageNumber 99 matches no field"):
        _open(tmp_path / "stray" / "load_data.csv", objects=str(bad))
    (tmp_path / "stray" / "images" / "P1_A02_s1_GFP.tif").unlink()
    with pytest.raises(DataError, match=r"line 4, FileName_GFP: .*P1_A02_s1_GFP.tif does not exist"):
        _open(tmp_path / "stray" / "load_data.csv", objects=str(objects))
    import zarr

    zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")
    with pytest.raises(DataError, match="without HCS plate metadata"):
        _open(tmp_path / "empty.zarr")


def _npz(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros((3, 8, 8)), y=np.array([0, 1, 0]))
    return path
