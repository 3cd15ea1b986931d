from pathlib import Path

import numpy as np
import pytest

from _fakes import image_folder, write_image
from knowwhen import DataError, open_dataset


def test_png_folder_grey_8bit(tmp_path):
    ds = open_dataset(image_folder(tmp_path / "root", ("cat", "dog"), 3))
    assert ds.format == "folder" and ds.class_names == ("cat", "dog") and ds.shape == (1, 8, 8)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.item_id(0).endswith("cat/000.png")
    assert ds.images([0, 5]).shape == (2, 1, 8, 8)


def test_16bit_png_keeps_its_range(tmp_path):
    img = np.full((6, 5), 40_000, np.uint16)
    write_image(tmp_path / "r" / "a" / "x.png", img)
    write_image(tmp_path / "r" / "b" / "y.png", img)
    ds = open_dataset(tmp_path / "r")
    assert ds.shape == (1, 6, 5) and ds.images([0]).max() == 40_000


def test_rgb_and_jpeg(tmp_path):
    rgb = np.zeros((7, 9, 3), np.uint8)
    rgb[..., 1] = 200
    for cls in ("a", "b"):
        write_image(tmp_path / "r" / cls / "x.jpg", rgb)
    ds = open_dataset(tmp_path / "r")
    x = ds.images([0])
    assert ds.shape == (3, 7, 9) and x[0, 1].mean() > 150 > x[0, 0].mean()


@pytest.mark.parametrize("layout", ["CYX", "YXC"])
def test_multichannel_tiff(tmp_path, layout):
    chw = np.stack([np.full((10, 12), v, np.uint16) for v in (1, 2, 3, 4, 5)])
    arr = chw if layout == "CYX" else np.moveaxis(chw, 0, -1)
    for cls in ("a", "b"):
        write_image(tmp_path / "r" / cls / "x.tif", arr)
    ds = open_dataset(tmp_path / "r")
    assert ds.shape == (5, 10, 12)
    np.testing.assert_array_equal(ds.images([0])[0, :, 0, 0], [1, 2, 3, 4, 5])


def test_unreadable_image_among_many_names_the_file(tmp_path):
    root = image_folder(tmp_path / "r", ("a", "b"), 20)
    (root / "b" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"broken\.png.*--skip-bad"):
        open_dataset(root)


def test_skip_bad_skips_and_lists_every_bad_file(tmp_path, capsys):
    root = image_folder(tmp_path / "r", ("a", "b"), 5)
    (root / "a" / "bad1.png").write_bytes(b"junk")
    good = (root / "b" / "000.png").read_bytes()
    (root / "b" / "bad2.png").write_bytes(good[: len(good) // 2])  # valid header, truncated pixels
    ds = open_dataset(root, skip_bad=True)
    err = capsys.readouterr().err
    assert len(ds) == 10 and "bad1.png" in err and "bad2.png" in err and "skipped 2 of 12" in err
    assert not any(Path(ds.item_id(i)).name.startswith("bad") for i in range(len(ds)))


def test_truncated_pixels_fail_at_read_with_the_file_name(tmp_path):
    root = image_folder(tmp_path / "r", ("a", "b"), 2)
    good = (root / "b" / "000.png").read_bytes()
    (root / "b" / "000.png").write_bytes(good[: len(good) // 2])
    ds = open_dataset(root)
    with pytest.raises(DataError, match=r"000\.png: cannot decode"):
        ds.images(np.arange(len(ds)))


def test_images_of_different_sizes(tmp_path):
    root = image_folder(tmp_path / "r", ("a", "b"), 2)
    write_image(root / "b" / "big.png", np.zeros((9, 9), np.uint8))
    with pytest.raises(DataError, match=r"big\.png.*one size"):
        open_dataset(root)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        open_dataset(tmp_path / "empty")


def test_class_folder_without_images(tmp_path):
    root = image_folder(tmp_path / "r", ("a", "b"), 2)
    (root / "c").mkdir()
    with pytest.raises(DataError, match="class 'c' has no images"):
        open_dataset(root)


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(3):
        write_image(tmp_path / "u" / f"{i}.png", np.zeros((4, 4), np.uint8))
    ds = open_dataset(tmp_path / "u")
    assert len(ds) == 3 and not ds.labelled and ds.class_names == ()


def test_csv_manifest_relative_paths(tmp_path):
    root = image_folder(tmp_path / "imgs", ("x", "y"), 2)
    lines = ["path,label"] + [f"imgs/{c}/{i:03d}.png,{c}" for c in ("y", "x") for i in range(2)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    ds = open_dataset(tmp_path / "m.csv")
    assert ds.format == "csv" and ds.class_names == ("x", "y") and ds.labels.tolist() == [1, 1, 0, 0]
    assert ds.images([0]).shape == (1, 1, 8, 8) and root.exists()


def test_manifest_missing_file_and_declared_class_without_images(tmp_path):
    image_folder(tmp_path / "imgs", ("x",), 1)
    (tmp_path / "m.csv").write_text("path,label\nimgs/x/000.png,x\nimgs/x/nope.png,x\n")
    with pytest.raises(DataError, match=r"m\.csv line 3: .*nope\.png does not exist"):
        open_dataset(tmp_path / "m.csv")
    (tmp_path / "m2.csv").write_text("path,label\nimgs/x/000.png,x\n")
    with pytest.raises(DataError, match="'z' have no images"):
        open_dataset(tmp_path / "m2.csv", options={"class_names": ["x", "z"]})


def test_manifest_without_path_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\na.png,x\n")
    with pytest.raises(DataError, match="no 'path' column") as e:
        open_dataset(tmp_path / "m.csv")
    # a screen's manifest needs no labels: the message does not ask for 'path,label'
    assert "'label' column only for labelled images" in str(e.value) and "path,label" not in str(e.value)


def test_tiff_channel_names_come_from_imagej_labels(tmp_path):
    import tifffile

    for cls in ("a", "b"):
        (tmp_path / "r" / cls).mkdir(parents=True)
        tifffile.imwrite(tmp_path / "r" / cls / "x.tif", np.zeros((2, 8, 8), np.uint16), imagej=True,
                         metadata={"Labels": ["GFP", "RFP"], "axes": "CYX"})
    ds = open_dataset(tmp_path / "r")
    assert ds.shape == (2, 8, 8) and ds.channel_names == ("GFP", "RFP")
    assert open_dataset(tmp_path / "r", options={"channel_names": ("A", "B")}).channel_names == ("A", "B")


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGB", "RGBA", "P", "I;16", "L+transparency", "P+transparency"])
def test_a_png_headers_shape_is_the_decoded_shape_and_pils(tmp_path, mode):
    """The PNG header is read from its IHDR chunk without PIL: it must say what decoding gives and PIL says."""
    from PIL import Image

    from knowwhen.data.images import png_header_shape, read_image

    pil_mode, _, transparency = mode.partition("+")
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (5, 7, 4), dtype=np.uint8), "RGBA").convert(
        "RGB" if pil_mode == "P" else pil_mode if pil_mode != "I;16" else "L")
    if pil_mode == "P":
        im = im.quantize(16)
    if pil_mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65535, (5, 7), dtype=np.uint16))
    path = tmp_path / "x.png"
    im.save(path, **({"transparency": 0} if transparency else {}))
    with Image.open(path) as reopened:
        assert reopened.mode.startswith(pil_mode if pil_mode != "I;16" else "I")
    shape = png_header_shape(path.read_bytes()[:26])
    assert shape == read_image(path).shape == (shape[0], 5, 7)


def test_a_jpeg_named_png_and_a_cut_png_header_are_read_by_their_content(tmp_path):
    from PIL import Image

    from knowwhen.data.images import checked_file_source, header_shape, png_header_shape, read_image

    Image.fromarray(np.zeros((6, 9, 3), np.uint8)).save(tmp_path / "jpeg.png", format="JPEG")
    assert png_header_shape((tmp_path / "jpeg.png").read_bytes()) is None
    assert header_shape(tmp_path / "jpeg.png") == read_image(tmp_path / "jpeg.png").shape == (3, 6, 9)
    Image.fromarray(np.zeros((6, 9), np.uint8)).save(tmp_path / "x.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "x.png").read_bytes()[:20])
    assert png_header_shape((tmp_path / "cut.png").read_bytes()) is None
    with pytest.raises(DataError, match=r"cut\.png: not a readable image"):  # PIL's own reading names the fault
        checked_file_source([tmp_path / "cut.png"], skip_bad=False)


def test_manifest_paths_resolve_as_pathlib_does_through_linked_folders_and_files(tmp_path):
    from knowwhen.data.folders import manifest_paths

    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "sub" / "a.png").write_bytes(b"")
    (tmp_path / "elsewhere.png").write_bytes(b"")
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "sub" / "link.png").symlink_to(tmp_path / "elsewhere.png")
    csv_path = tmp_path / "linked" / "m.csv"
    names = ["sub/a.png", "./sub/a.png", "sub/../sub/a.png", "sub/link.png", "../elsewhere.png", "sub/missing.png",
             "sub/..", str(tmp_path / "linked" / "sub" / "a.png")]
    assert manifest_paths(csv_path, names) == [str((csv_path.parent / n).resolve()) for n in names]
