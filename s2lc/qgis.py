"""Style text for QGIS (QML) and OGC clients (SLD): how s2lc outputs look when opened.

Pure functions: they take a legend and return a string; :mod:`s2lc.writers` puts the text on
disk. QGIS loads ``<raster minus extension>.qml`` as a raster's default style, and the
``layer_styles`` row marked ``useAsDefault`` as a GeoPackage layer's. The QML follows what
QGIS 3.22 LTR writes (and newer versions still read): symbol-layer properties are given both as
an ``<Option type="Map">`` and as the older ``<prop k= v=>`` list.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence

from s2lc.legend import LandCoverClass

__all__ = [
    "CONFIDENCE_RAMP",
    "class_qml",
    "confidence_qml",
    "polygon_qml",
    "polygon_sld",
    "sample_points_qml",
]

#: QGIS version the QML claims to come from: the LTR that s2lc outputs must open cleanly in.
QGIS_VERSION = "3.22.0-Białowieża"
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"

#: Colour stops (value, hex) of the confidence ramp: viridis, readable by colour-blind users.
CONFIDENCE_RAMP: tuple[tuple[float, str], ...] = (
    (0.0, "#440154"),
    (0.25, "#3b528b"),
    (0.5, "#21918c"),
    (0.75, "#5ec962"),
    (1.0, "#fde725"),
)


def _hex(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _document(root: ET.Element, doctype: str = _DOCTYPE) -> str:
    ET.indent(root, space="  ")
    return doctype + ET.tostring(root, encoding="unicode") + "\n"


def _raster_qml(renderer: ET.Element) -> str:
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories")
    pipe = _sub(root, "pipe")
    pipe.append(renderer)
    _sub(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    _sub(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0",
         colorizeRed="255", colorizeGreen="128", colorizeBlue="128", colorizeStrength="100")
    _sub(pipe, "rasterresampler", maxOversampling="2")
    _sub(pipe, "resamplingStage", "resamplingFilter")
    _sub(root, "blendMode", "0")
    return _document(root)


def _renderer(kind: str, **attrib: str) -> ET.Element:
    renderer = ET.Element("rasterrenderer", type=kind, band="1", opacity="1", alphaBand="-1",
                          nodataColor="", **attrib)
    _sub(renderer, "rasterTransparency")
    origin = _sub(renderer, "minMaxOrigin")
    for tag, value in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                       ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"),
                       ("stdDevFactor", "2")):
        _sub(origin, tag, value)
    return renderer


def class_qml(classes: Sequence[LandCoverClass]) -> str:
    """A paletted raster style: one entry per class, its colour and its label.

    Codes absent from ``classes`` (no-data among them) get no entry and are not drawn.
    """
    renderer = _renderer("paletted")
    palette = _sub(renderer, "colorPalette")
    for c in sorted(classes, key=lambda c: c.code):
        _sub(palette, "paletteEntry", value=str(c.code), color=_hex(c.color), alpha="255", label=c.label)
    return _raster_qml(renderer)


def confidence_qml(minimum: float = 0.0, maximum: float = 1.0) -> str:
    """A single-band pseudocolour style for a probability raster: :data:`CONFIDENCE_RAMP`
    interpolated between ``minimum`` and ``maximum``."""
    renderer = _renderer("singlebandpseudocolor", classificationMin=repr(minimum), classificationMax=repr(maximum))
    shader = _sub(_sub(renderer, "rastershader"), "colorrampshader", colorRampType="INTERPOLATED",
                  classificationMode="1", clip="0", minimumValue=repr(minimum), maximumValue=repr(maximum),
                  labelPrecision="2")
    for stop, color in CONFIDENCE_RAMP:
        value = minimum + stop * (maximum - minimum)
        _sub(shader, "item", value=repr(value), color=color, alpha="255", label=f"{value:.2f}")
    return _raster_qml(renderer)


def _symbol_layer(parent: ET.Element, props: dict[str, str]) -> None:
    # "class" is a Python keyword, so the attributes go in as a dict.
    layer = ET.SubElement(parent, "layer", {"class": "SimpleFill", "enabled": "1", "pass": "0", "locked": "0"})
    options = _sub(layer, "Option", type="Map")
    for key, value in props.items():
        _sub(options, "Option", type="QString", name=key, value=value)
    for key, value in props.items():
        _sub(layer, "prop", k=key, v=value)


def polygon_qml(classes: Sequence[LandCoverClass], field: str = "class_code") -> str:
    """A categorized vector style: polygons filled with their class colour, keyed on ``field``
    (an integer column holding the class code), labelled with the class label."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
    renderer = _sub(root, "renderer-v2", type="categorizedSymbol", attr=field, symbollevels="0",
                    enableorderby="0", forceraster="0", referencescale="-1")
    categories = _sub(renderer, "categories")
    symbols = _sub(renderer, "symbols")
    for i, c in enumerate(sorted(classes, key=lambda c: c.code)):
        _sub(categories, "category", render="true", symbol=str(i), value=str(c.code), label=c.label)
        symbol = _sub(symbols, "symbol", type="fill", name=str(i), alpha="1", clip_to_extent="1", force_rhr="0")
        _symbol_layer(symbol, {
            "color": "{},{},{},255".format(*c.color),
            "style": "solid",
            "outline_color": "50,50,50,255",
            "outline_style": "solid",
            "outline_width": "0.1",
            "outline_width_unit": "MM",
            "joinstyle": "bevel",
        })
    return _document(root)


def polygon_sld(classes: Sequence[LandCoverClass], layer: str, field: str = "class_code") -> str:
    """The same categorized polygon style as :func:`polygon_qml`, as OGC SLD 1.1 / SE 1.1."""
    ns = {
        "xmlns": "http://www.opengis.net/sld",
        "xmlns:se": "http://www.opengis.net/se",
        "xmlns:ogc": "http://www.opengis.net/ogc",
        "xmlns:xlink": "http://www.w3.org/1999/xlink",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:schemaLocation": "http://www.opengis.net/sld "
                              "http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd",
        "version": "1.1.0",
    }
    root = ET.Element("StyledLayerDescriptor", ns)
    named = _sub(root, "NamedLayer")
    _sub(named, "se:Name", layer)
    style = _sub(named, "UserStyle")
    _sub(style, "se:Name", layer)
    fts = _sub(style, "se:FeatureTypeStyle")
    for c in sorted(classes, key=lambda c: c.code):
        rule = _sub(fts, "se:Rule")
        _sub(rule, "se:Name", c.label)
        _sub(_sub(rule, "se:Description"), "se:Title", c.label)
        equal = _sub(_sub(rule, "ogc:Filter"), "ogc:PropertyIsEqualTo")
        _sub(equal, "ogc:PropertyName", field)
        _sub(equal, "ogc:Literal", str(c.code))
        symbolizer = _sub(rule, "se:PolygonSymbolizer")
        _sub(_sub(symbolizer, "se:Fill"), "se:SvgParameter", _hex(c.color), name="fill")
        stroke = _sub(symbolizer, "se:Stroke")
        _sub(stroke, "se:SvgParameter", "#323232", name="stroke")
        _sub(stroke, "se:SvgParameter", "0.5", name="stroke-width")
    return _document(root, doctype='<?xml version="1.0" encoding="UTF-8"?>\n')


#: The value QGIS's value-map widget stores as NULL (QgsValueMapFieldFormatter::NULL_VALUE).
VALUE_MAP_NULL = "{2839923C-8B7D-419E-B84B-CA2FE9B80EC7}"


def _marker_symbol(parent: ET.Element, name: str, fill: str, outline: str, size: str) -> None:
    symbol = _sub(parent, "symbol", type="marker", name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleMarker", "enabled": "1", "pass": "0", "locked": "0"})
    props = {"name": "circle", "color": fill, "outline_color": outline, "outline_style": "solid",
             "outline_width": "0.4", "outline_width_unit": "MM", "size": size, "size_unit": "MM",
             "scale_method": "diameter", "joinstyle": "bevel", "angle": "0", "offset": "0,0", "offset_unit": "MM"}
    options = _sub(layer, "Option", type="Map")
    for key, value in props.items():
        _sub(options, "Option", type="QString", name=key, value=value)
    for key, value in props.items():
        _sub(layer, "prop", k=key, v=value)


def _edit_widget(parent: ET.Element, field: str, kind: str) -> ET.Element:
    """A ``<field>`` of ``<fieldConfiguration>`` with an edit widget; returns its config ``Option`` map."""
    widget = _sub(_sub(parent, "field", name=field, configurationFlags="None"), "editWidget", type=kind)
    return _sub(_sub(widget, "config"), "Option", type="Map")


def sample_points_qml(classes: Sequence[LandCoverClass], field: str = "reference",
                      hidden: Sequence[str] = ("map_code", "map_class"),
                      aliases: dict[str, str] | None = None) -> str:
    """A style and attribute form for labelling sample points in QGIS.

    The form gives ``field`` (an integer column) a value map: a drop-down of the classes'
    labels that stores their codes, with "(not labelled)" for NULL. The ``hidden`` fields are
    read-only and left out of the form, so the map's class does not show while labelling (the
    attribute table still shows it). Points are drawn by their label: hollow until labelled,
    then filled with the class colour.

    Args:
        classes: the classes a point may be given.
        field: the column the analyst fills.
        hidden: columns to keep out of the form.
        aliases: column → name shown in the form and the attribute table.
    """
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology|Fields|Forms")
    renderer = _sub(root, "renderer-v2", type="categorizedSymbol", attr=field, symbollevels="0",
                    enableorderby="0", forceraster="0", referencescale="-1")
    categories = _sub(renderer, "categories")
    symbols = _sub(renderer, "symbols")
    ordered = sorted(classes, key=lambda c: c.code)
    for i, c in enumerate(ordered):
        _sub(categories, "category", render="true", symbol=str(i), value=str(c.code), label=c.label)
        _marker_symbol(symbols, str(i), "{},{},{},255".format(*c.color), "35,35,35,255", "3")
    _sub(categories, "category", render="true", symbol=str(len(ordered)), value="", label="Not labelled yet")
    _marker_symbol(symbols, str(len(ordered)), "255,255,255,0", "227,26,28,255", "3.6")

    config = _sub(root, "fieldConfiguration")
    for name in hidden:
        _edit_widget(config, name, "Hidden")
    values = _sub(_edit_widget(config, field, "ValueMap"), "Option", type="List", name="map")
    _sub(_sub(values, "Option", type="Map"), "Option", type="QString", name="(not labelled)", value=VALUE_MAP_NULL)
    for c in ordered:
        _sub(_sub(values, "Option", type="Map"), "Option", type="QString", name=c.label, value=str(c.code))
    alias_el = _sub(root, "aliases")
    for name, alias in (aliases or {}).items():
        _sub(alias_el, "alias", field=name, name=alias)
    editable = _sub(root, "editable")
    for name in hidden:
        _sub(editable, "field", name=name, editable="0")
    _sub(root, "editform", tolerant="1")
    _sub(root, "editforminit")
    _sub(root, "editforminitcodesource", "0")
    _sub(root, "editorlayout", "generatedlayout")
    _sub(root, "layerGeometryType", "0")
    return _document(root)
