"""Mask layers: SCL classes, MSK_CLASSI_B00 bands, GML polygons and their rasterisation."""

import numpy as np
import pytest
from affine import Affine

from s2lc.errors import ProductError
from s2lc.masks import Masks, classi_cloud, parse_gml_mask, rasterize_polygons, scl_cloud, scl_nodata
from s2lc.sentinel2 import SCL, SCL_CLOUD_CLASSES

#: Modelled on a real MSK_CLOUDS_B00.gml (baseline 02.06, tile T31TGJ): an opaque cloud with a
#: hole, a cirrus patch, a non-cloud feature that must be ignored, 3-D coordinates on one.
GML = b"""<?xml version="1.0" encoding="UTF-8"?>
<eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="MSK_CLOUDS_B00">
  <gml:boundedBy>
    <gml:Envelope srsName="urn:ogc:def:crs:EPSG:8.7:32631">
      <gml:lowerCorner>699960 4790220</gml:lowerCorner><gml:upperCorner>809760 4900020</gml:upperCorner>
    </gml:Envelope>
  </gml:boundedBy>
  <eop:maskMembers>
    <eop:MaskFeature gml:id="OPAQUE.0">
      <eop:maskType codeSpace="urn:gs2:S2PDGS:maskType">OPAQUE</eop:maskType>
      <eop:extentOf><gml:Polygon gml:id="OPAQUE.0_Polygon">
        <gml:exterior><gml:LinearRing><gml:posList srsDimension="2">0 100 60 100 60 40 0 40 0 100</gml:posList>\
</gml:LinearRing></gml:exterior>
        <gml:interior><gml:LinearRing><gml:posList srsDimension="2">20 80 40 80 40 60 20 60 20 80</gml:posList>\
</gml:LinearRing></gml:interior>
      </gml:Polygon></eop:extentOf>
    </eop:MaskFeature>
    <eop:MaskFeature gml:id="CIRRUS.0">
      <eop:maskType codeSpace="urn:gs2:S2PDGS:maskType">CIRRUS</eop:maskType>
      <eop:extentOf><gml:Polygon gml:id="CIRRUS.0_Polygon">
        <gml:exterior><gml:LinearRing><gml:posList srsDimension="3">80 20 0 100 20 0 100 0 0 80 0 0 80 20 0</gml:posList>\
</gml:LinearRing></gml:exterior>
      </gml:Polygon></eop:extentOf>
    </eop:MaskFeature>
    <eop:MaskFeature gml:id="DEFECT.0">
      <eop:maskType codeSpace="urn:gs2:S2PDGS:maskType">DEFECTIVE</eop:maskType>
      <eop:extentOf><gml:Polygon gml:id="DEFECT.0_Polygon">
        <gml:exterior><gml:LinearRing><gml:posList>80 100 100 100 100 80 80 80 80 100</gml:posList>\
</gml:LinearRing></gml:exterior>
      </gml:Polygon></eop:extentOf>
    </eop:MaskFeature>
  </eop:maskMembers>
</eop:Mask>
"""
#: A cloudless tile: no features, a null envelope.
EMPTY_GML = b"""<?xml version="1.0" encoding="UTF-8"?>
<eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="MSK_CLOUDS_B00">
  <gml:boundedBy><gml:Null>Inapplicable</gml:Null></gml:boundedBy>
</eop:Mask>
"""
GRID = Affine(10, 0, 0, 0, -10, 100)  # 10 x 10 pixels of 10 m covering x 0-100, y 0-100


def test_scl_cloud_is_exactly_the_declared_classes():
    classes = np.arange(12, dtype=np.uint8).reshape(3, 4)
    cloud = scl_cloud(classes)
    assert {int(c) for c in classes[cloud]} == {int(c) for c in SCL_CLOUD_CLASSES}
    assert {SCL.CLOUD_SHADOWS, SCL.CLOUD_MEDIUM_PROBABILITY, SCL.CLOUD_HIGH_PROBABILITY, SCL.THIN_CIRRUS} <= SCL_CLOUD_CLASSES
    assert SCL.VEGETATION not in SCL_CLOUD_CLASSES and SCL.SNOW not in SCL_CLOUD_CLASSES
    np.testing.assert_array_equal(scl_nodata(classes), classes == 0)


def test_classi_cloud_is_any_flagged_band():
    classi = np.zeros((2, 2, 3), np.uint8)
    classi[0, 0, 0] = 1  # opaque
    classi[1, 1, 2] = 1  # cirrus
    np.testing.assert_array_equal(classi_cloud(classi), [[True, False, False], [False, False, True]])


def test_gml_cloud_polygons_rasterise_by_pixel_centre():
    gml = parse_gml_mask(GML, "MSK_CLOUDS_B00.gml", frozenset({"OPAQUE", "CIRRUS"}))
    assert gml.epsg == 32631
    assert len(gml.polygons) == 2  # the DEFECTIVE feature is left out
    assert len(gml.polygons[0]["coordinates"]) == 2  # exterior and hole
    assert gml.polygons[1]["coordinates"][0][0] == (80.0, 20.0)  # 3-D posList read as x, y
    cloud = rasterize_polygons(gml.polygons, (10, 10), GRID)
    expected = np.zeros((10, 10), bool)
    expected[0:6, 0:6] = True  # opaque: x 0-60, y 40-100
    expected[2:4, 2:4] = False  # its hole: x 20-40, y 60-80
    expected[8:10, 8:10] = True  # cirrus: x 80-100, y 0-20
    np.testing.assert_array_equal(cloud, expected)
    # a window of the same grid rasterises the same pixels
    window = rasterize_polygons(gml.polygons, (4, 5), GRID @ Affine.translation(3, 1))
    np.testing.assert_array_equal(window, expected[1:5, 3:8])


def test_all_features_are_kept_without_a_type_filter():
    assert len(parse_gml_mask(GML, "x.gml").polygons) == 3


def test_a_cloudless_gml_gives_an_empty_mask():
    gml = parse_gml_mask(EMPTY_GML, "MSK_CLOUDS_B00.gml")
    assert gml.polygons == () and gml.epsg is None
    assert not rasterize_polygons(gml.polygons, (4, 4), GRID).any()


@pytest.mark.parametrize(
    "xml, problem",
    [
        (GML[:400], "not well-formed XML"),
        (GML.replace(b"0 100 60 100", b"0 100 sixty 100"), "other than numbers"),
        (GML.replace(b"80 20 0 100 20 0", b"80 20 0 100 20"), "not a multiple of 3"),
    ],
)
def test_a_damaged_gml_is_a_product_error(xml, problem):
    with pytest.raises(ProductError, match=problem) as info:
        parse_gml_mask(xml, "/p/QI_DATA/MSK_CLOUDS_B00.gml")
    assert str(info.value).startswith("/p/QI_DATA/MSK_CLOUDS_B00.gml: ") and "\n" not in str(info.value)


def test_masks_valid_and_clear():
    nodata = np.array([[True, False, False]])
    cloud = np.array([[False, True, False]])
    masks = Masks(nodata=nodata, cloud=cloud, cloud_source="SCL")
    np.testing.assert_array_equal(masks.valid, [[False, True, True]])
    np.testing.assert_array_equal(masks.clear, [[False, False, True]])
    np.testing.assert_array_equal(Masks(nodata, None, None).clear, [[False, True, True]])
