"""QGIS and SLD style text: well-formed XML with the legend's codes, colours and labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from s2lc.legend import LandCoverClass, default_legend
from s2lc.qgis import CONFIDENCE_RAMP, class_qml, confidence_qml, polygon_qml, polygon_sld

CLASSES = default_legend().classes
TRICKY = (LandCoverClass(3, "A&B", 'Fields & "woods" <mixed>', (1, 2, 3)),
          LandCoverClass(1, "Forest->Residential", "Forest → Residential", (255, 0, 16)))


def _parse(text: str) -> ET.Element:
    assert text.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
    root = ET.fromstring(text)
    assert root.tag == "qgis" and root.get("version").startswith("3.22")
    return root


def test_class_qml_has_one_palette_entry_per_class():
    renderer = _parse(class_qml(CLASSES)).find("pipe/rasterrenderer")
    assert renderer.attrib["type"] == "paletted" and renderer.attrib["band"] == "1"
    entries = [(e.get("value"), e.get("color"), e.get("alpha"), e.get("label")) for e in renderer.iter("paletteEntry")]
    assert entries[0] == ("1", "#e6c700", "255", "Annual crop")
    assert entries[-2:] == [("11", "#f0f0f0", "255", "Cloud"), ("12", "#96dcf5", "255", "Snow or ice")]
    assert [int(e[0]) for e in entries] == list(range(1, 13))


def test_labels_are_escaped_and_entries_sorted_by_code():
    entries = list(_parse(class_qml(TRICKY)).iter("paletteEntry"))
    assert [(e.get("value"), e.get("label")) for e in entries] == [
        ("1", "Forest → Residential"), ("3", 'Fields & "woods" <mixed>')]
    assert entries[0].get("color") == "#ff0010"


def test_confidence_qml_interpolates_the_ramp_between_bounds():
    renderer = _parse(confidence_qml(0.2, 0.8)).find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor"
    shader = renderer.find("rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    assert (float(shader.get("minimumValue")), float(shader.get("maximumValue"))) == (0.2, 0.8)
    items = [(float(i.get("value")), i.get("color")) for i in shader.iter("item")]
    assert [c for _, c in items] == [c for _, c in CONFIDENCE_RAMP]
    assert items[0][0] == 0.2 and items[-1][0] == 0.8 and abs(items[2][0] - 0.5) < 1e-12


def test_polygon_qml_categorizes_on_the_code_column():
    renderer = _parse(polygon_qml(CLASSES)).find("renderer-v2")
    assert (renderer.get("type"), renderer.get("attr")) == ("categorizedSymbol", "class_code")
    symbols = {s.get("name"): s for s in renderer.iter("symbol")}
    for category, c in zip(renderer.iter("category"), CLASSES):
        assert (category.get("value"), category.get("label")) == (str(c.code), c.label)
        layer = symbols[category.get("symbol")].find("layer")
        assert layer.get("class") == "SimpleFill"
        option = {o.get("name"): o.get("value") for o in layer.find("Option").iter("Option") if o.get("name")}
        prop = {p.get("k"): p.get("v") for p in layer.iter("prop")}
        assert option == prop  # the same properties, new and old form
        assert option["color"] == "{},{},{},255".format(*c.color)
    assert polygon_qml(CLASSES, field="to_code").count('attr="to_code"') == 1


def test_polygon_sld_has_a_rule_per_class():
    ns = {"sld": "http://www.opengis.net/sld", "se": "http://www.opengis.net/se",
          "ogc": "http://www.opengis.net/ogc"}
    root = ET.fromstring(polygon_sld(TRICKY, "change"))
    assert root.tag == "{http://www.opengis.net/sld}StyledLayerDescriptor" and root.get("version") == "1.1.0"
    assert root.find("sld:NamedLayer/se:Name", ns).text == "change"
    rules = root.findall(".//se:Rule", ns)
    assert [r.find("se:Name", ns).text for r in rules] == ["Forest → Residential", 'Fields & "woods" <mixed>']
    assert [r.find("ogc:Filter/ogc:PropertyIsEqualTo/ogc:Literal", ns).text for r in rules] == ["1", "3"]
    assert rules[0].find("se:PolygonSymbolizer/se:Fill/se:SvgParameter", ns).text == "#ff0010"
