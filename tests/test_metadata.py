"""Parsing MTD_MSIL1C.xml / MTD_MSIL2A.xml: the real files, the synthetic ones, damaged ones."""

from datetime import datetime, timezone

import pytest

from s2lc.errors import ProductError
from s2lc.metadata import parse_mtd
from s2lc.testing import make_product

from conftest import REAL_DATA

METADATA = REAL_DATA / "metadata"
#: file -> (level, baseline, spacecraft, sensing time, tile, offset, cloud cover)
REAL_MTD = {
    "S2B_MSIL1C_20200406T101559_N0209_R065_T32UPC_20200406T130159_MTD.xml": (
        "L1C", "02.09", "Sentinel-2B", datetime(2020, 4, 6, 10, 15, 59, 24000, timezone.utc), "T32UPC", 0.0, 0.0079,
    ),
    "S2B_MSIL1C_20220615T101559_N0400_R065_T32UPC_20220615T122549_MTD.xml": (
        "L1C", "04.00", "Sentinel-2B", datetime(2022, 6, 15, 10, 15, 59, 25000, timezone.utc), "T32UPC", -1000.0,
        1.26680402520231,
    ),
    "S2B_MSIL2A_20221127T075159_N0400_R135_T36NXF_20221127T100500_MTD.xml": (
        "L2A", "04.00", "Sentinel-2B", datetime(2022, 11, 27, 7, 51, 59, 24000, timezone.utc), "T36NXF", -1000.0, 67.681426,
    ),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REAL_MTD))
def test_real_metadata_files(name):
    path = METADATA / name
    if not path.is_file():
        pytest.skip(f"real metadata absent: {path}")
    meta = parse_mtd(path.read_bytes(), str(path))
    level, baseline, spacecraft, sensed, tile, offset, cloud = REAL_MTD[name]
    assert (meta.level, meta.baseline, meta.spacecraft, meta.sensing_time, meta.tile) == (
        level, baseline, spacecraft, sensed, tile
    )
    assert meta.id == name.replace("_MTD.xml", "")
    assert meta.quantification_value == 10000.0
    assert set(meta.offsets) == {"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"}
    assert set(meta.offsets.values()) == {offset}
    assert meta.special_values == {"NODATA": 0, "SATURATED": 65535}
    assert meta.cloud_cover == pytest.approx(cloud)
    assert len(meta.image_files) == (14 if level == "L1C" else 36)


@pytest.fixture(scope="module")
def mtd_bytes(tmp_path_factory):
    """MTD bytes of synthetic products, by (level, baseline)."""
    out = {}
    for level in ("L1C", "L2A"):
        for baseline in ("02.09", "04.00", "05.10"):
            safe = make_product(tmp_path_factory.mktemp("mtd"), level, baseline, size=12, cloud_fraction=0)
            out[level, baseline] = (safe / f"MTD_MSI{level}.xml").read_bytes()
    return out


@pytest.mark.parametrize("level", ["L1C", "L2A"])
@pytest.mark.parametrize("baseline, offset", [("02.09", 0.0), ("04.00", -1000.0), ("05.10", -1000.0)])
def test_synthetic_metadata_declare_the_offset_of_their_baseline(mtd_bytes, level, baseline, offset):
    meta = parse_mtd(mtd_bytes[level, baseline], "MTD.xml")
    assert (meta.level == level and meta.baseline == baseline
            and meta.baseline_version == tuple(int(p) for p in baseline.split(".")))
    assert set(meta.offsets.values()) == {offset}
    assert meta.sensing_time.tzinfo is not None and meta.tile == "T33UUU"


def one_line_error(xml, match, source="/data/X.SAFE/MTD_MSIL1C.xml"):
    with pytest.raises(ProductError, match=match) as info:
        parse_mtd(xml, source)
    message = str(info.value)
    assert message.startswith(source + ": ") and "\n" not in message
    return message


def test_truncated_xml_is_malformed(mtd_bytes):
    one_line_error(mtd_bytes["L1C", "02.09"][:1500], "not well-formed XML")


def test_a_missing_baseline_is_named(mtd_bytes):
    xml = mtd_bytes["L1C", "04.00"].replace(b"<PROCESSING_BASELINE>04.00</PROCESSING_BASELINE>", b"")
    one_line_error(xml, "no PROCESSING_BASELINE")


def test_a_garbled_baseline_is_named(mtd_bytes):
    xml = mtd_bytes["L1C", "04.00"].replace(b"<PROCESSING_BASELINE>04.00<", b"<PROCESSING_BASELINE>four<")
    one_line_error(xml, "'four' is not of the form NN.NN")


def test_a_non_numeric_quantification_value_is_named(mtd_bytes):
    xml = mtd_bytes["L2A", "04.00"].replace(b">10000</BOA_QUANTIFICATION_VALUE>", b">lots</BOA_QUANTIFICATION_VALUE>")
    one_line_error(xml, "BOA_QUANTIFICATION_VALUE is 'lots'", "/data/X.SAFE/MTD_MSIL2A.xml")


def test_a_bad_offset_band_is_named(mtd_bytes):
    xml = mtd_bytes["L1C", "04.00"].replace(b'band_id="12"', b'band_id="13"')
    one_line_error(xml, "RADIO_ADD_OFFSET band_id='13'")


def test_another_xml_file_is_not_product_metadata():
    one_line_error(b"<Level-1C_Tile_ID><General_Info/></Level-1C_Tile_ID>", "neither a Level-1C nor a Level-2A")


def test_a_post_04_product_without_offsets_warns_and_assumes_minus_1000(mtd_bytes, caplog):
    xml = mtd_bytes["L1C", "04.00"]
    start, end = (xml.index(b"<Radiometric_Offset_List>"),
                  xml.index(b"</Radiometric_Offset_List>") + len(b"</Radiometric_Offset_List>"))
    with caplog.at_level("WARNING", logger="s2lc.metadata"):
        meta = parse_mtd(xml[:start] + xml[end:], "MTD.xml")
    assert set(meta.offsets.values()) == {-1000.0}
    assert "no RADIO_ADD_OFFSET list" in caplog.text


def test_an_untested_baseline_warns(mtd_bytes, caplog):
    xml = mtd_bytes["L2A", "05.10"].replace(b">05.10</PROCESSING_BASELINE>", b">06.00</PROCESSING_BASELINE>")
    with caplog.at_level("WARNING", logger="s2lc.metadata"):
        assert parse_mtd(xml, "MTD.xml").baseline == "06.00"
    assert "outside" in caplog.text
