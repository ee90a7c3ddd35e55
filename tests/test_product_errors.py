"""Bad input: each gives a one-line ProductError naming the file, and via the CLI a non-zero exit
with one error line and no traceback (unless -v)."""

import os
import zipfile

import pytest
from click.testing import CliRunner

from s2lc.cli.main import cli
from s2lc.errors import ProductError
from s2lc.product import open_product

from conftest import copy_product


def granule(product):
    return next((product / "GRANULE").iterdir())


def nothing_there(tmp_path, fixtures):
    return tmp_path / "S2A_MSIL1C_nothing.SAFE", "no such file or folder"


def folder_not_a_product(tmp_path, fixtures):
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a product")
    return folder, "is not a Sentinel-2 product: it holds no MTD_MSIL1C.xml or MTD_MSIL2A.xml"


def corrupt_zip(tmp_path, fixtures):
    path = tmp_path / "S2B_MSIL1C.zip"
    path.write_bytes(os.urandom(4096))
    return path, "not a readable zip archive"


def truncated_zip(tmp_path, fixtures):
    data = fixtures["l1c_new_zip"].read_bytes()
    path = tmp_path / fixtures["l1c_new_zip"].name
    path.write_bytes(data[: len(data) // 2])
    return path, "not a readable zip archive"


def zip_member_corrupt(tmp_path, fixtures):
    path = copy_product(fixtures["l1c_new_zip"], tmp_path)
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("MTD_MSIL1C.xml"))
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 10
    data[start : start + 40] = bytes(40)  # zeros in the middle of the deflated MTD
    path.write_bytes(bytes(data))
    return path, "MTD_MSIL1C.xml: cannot be read from the zip"


def zip_without_product(tmp_path, fixtures):
    path = tmp_path / "notes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    return path, "is not a Sentinel-2 product"


def missing_band_file(tmp_path, fixtures):
    product = copy_product(fixtures["l1c_old"], tmp_path)
    next((granule(product) / "IMG_DATA").glob("*_B03.jp2")).unlink()
    return product, r"_B03\.jp2: band file missing \(listed in MTD_MSIL1C\.xml\)"


def unreadable_jp2(tmp_path, fixtures):
    product = copy_product(fixtures["l1c_old"], tmp_path)
    next((granule(product) / "IMG_DATA").glob("*_B04.jp2")).write_bytes(os.urandom(5000))
    return product, r"_B04\.jp2: truncated or not a JPEG 2000 file"


def truncated_jp2(tmp_path, fixtures):
    product = copy_product(fixtures["l2a_new"], tmp_path)
    path = next((granule(product) / "IMG_DATA" / "R20m").glob("*_B05_20m.jp2"))
    path.write_bytes(path.read_bytes()[:-500])
    return product, r"_B05_20m\.jp2: truncated or not a JPEG 2000 file"


def jp2_without_an_image(tmp_path, fixtures):
    product = copy_product(fixtures["l1c_old"], tmp_path)
    header = (b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x14ftypjp2 \x00\x00\x00\x00jp2 "
              + b"\x00\x00\x00\x0ejp2c\xff\x4f\xff\x51\xff\xd9")
    next((granule(product) / "IMG_DATA").glob("*_B02.jp2")).write_bytes(header)  # well-formed boxes, no real codestream
    return product, r"_B02\.jp2: cannot be opened as a raster"


def malformed_mtd(tmp_path, fixtures):
    product = copy_product(fixtures["l2a_new"], tmp_path)
    mtd = product / "MTD_MSIL2A.xml"
    mtd.write_bytes(mtd.read_bytes()[:2000])
    return product, r"MTD_MSIL2A\.xml: not well-formed XML"


def mtd_without_baseline(tmp_path, fixtures):
    product = copy_product(fixtures["l1c_old"], tmp_path)
    mtd = product / "MTD_MSIL1C.xml"
    mtd.write_text(mtd.read_text().replace("<PROCESSING_BASELINE>02.09</PROCESSING_BASELINE>", ""))
    return product, r"MTD_MSIL1C\.xml: no PROCESSING_BASELINE element"


def text_file(tmp_path, fixtures):
    path = tmp_path / "scene.tif"
    path.write_text("this is not a GeoTIFF")
    return path, "neither a .SAFE folder, a zipped .SAFE nor a raster GDAL can read"


CASES = [
    nothing_there, folder_not_a_product, corrupt_zip, truncated_zip, zip_member_corrupt, zip_without_product,
    missing_band_file, unreadable_jp2, truncated_jp2, jp2_without_an_image, malformed_mtd, mtd_without_baseline, text_file,
]


@pytest.fixture(scope="module")
def fixtures(l1c_old, l1c_new_zip, l2a_new):
    return {"l1c_old": l1c_old, "l1c_new_zip": l1c_new_zip, "l2a_new": l2a_new}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_bad_input_is_a_one_line_product_error(case, tmp_path, fixtures):
    path, problem = case(tmp_path, fixtures)
    with pytest.raises(ProductError, match=problem) as info:
        open_product(path).close()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)) or str(path.resolve()) in message  # names the file at fault


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_bad_input_via_the_cli_is_one_line_without_traceback(case, tmp_path, fixtures):
    path, problem = case(tmp_path, fixtures)
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and path.name in errors[0]
    if case is not nothing_there:  # click itself refuses a path that does not exist (exit 2)
        assert result.exit_code == 1
        verbose = CliRunner().invoke(cli, ["-v", "info", str(path)])
        assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_a_band_mapping_is_for_geotiffs_only(l1c_old):
    with pytest.raises(ProductError, match="applies to a GeoTIFF only"):
        open_product(l1c_old, bands={"B04": 1})


def test_a_zipped_product_without_the_zip_extension_is_recognised(l1c_new_zip, tmp_path):
    renamed = tmp_path / "download"
    renamed.write_bytes(l1c_new_zip.read_bytes())
    with open_product(renamed) as p:
        assert p.level == "L1C" and p.baseline == "04.00"


# --------------------------------------------------------------------------------------------
# Damage inside a JPEG 2000 file of the right length: it opens, and fails when read


def _damage_a_tile(path):
    """Overwrite the start-of-tile marker of a tile in the middle of the codestream: the file keeps
    its length and its boxes, so only decoding that tile can tell."""
    raw = bytearray(path.read_bytes())
    tiles = [i for i in range(len(raw) - 1) if raw[i:i + 2] == b"\xff\x90"]
    assert len(tiles) >= 4  # the synthetic band files are tiled
    middle = tiles[len(tiles) // 2]
    raw[middle:middle + 2] = b"\x00\x00"
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("read", ["read", "read_averaged", "classify"])
def test_a_tile_damaged_inside_a_jp2_fails_naming_the_file(tmp_path, fixtures, read, monkeypatch):
    """With more than one GDAL thread, GDAL's worker threads return the tile as zeros without an
    error wherever its block cache can hold the tile (64 MB here); s2lc decodes with one GDAL
    thread per band, so the failure reaches it whatever the cache."""
    from s2lc import gdal

    monkeypatch.setitem(gdal.GDAL_OPTIONS, "GDAL_CACHEMAX", 64 * 2**20)
    product = copy_product(fixtures["l1c_old"], tmp_path)
    band = next((granule(product) / "IMG_DATA").glob("*_B04.jp2"))
    _damage_a_tile(band)
    if read != "classify":
        with open_product(product) as p:  # the structure is whole
            with pytest.raises(ProductError, match=rf"{band.name}: cannot read its pixels .*re-download the product$"):
                if read == "read":
                    p.read(["B03", "B04", "B02"])
                else:
                    p.read_averaged(["B02", "B04"], (20, 20), exact=True)
    else:
        out = tmp_path / "out"
        r = CliRunner().invoke(cli, ["classify", str(product), "-o", str(out), "--clouds", "none"])
        errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
        assert r.exit_code == 1 and len(errors) == 1 and band.name in errors[0] and not out.exists()
