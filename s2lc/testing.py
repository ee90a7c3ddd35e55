"""Fake Sentinel-2 products for tests, and the yardsticks s2lc measures its real test crop with.

**Synthetic products.** :func:`make_product` writes a small, seeded Level-1C or Level-2A product
laid out like a real one, as a ``.SAFE`` folder or a zip, so that code which reads Sentinel-2 can
be tested without downloading a scene (as torchgeo's ``tests/data/sentinel2/data.py`` does)::

    from s2lc.product import open_product
    from s2lc.testing import make_product, make_scene

    def test_my_reader(tmp_path):
        path = make_product(tmp_path, level="L2A", baseline="04.00", size=240, seed=0)
        truth = make_scene(240, seed=0)          # the same ground: DN, land cover, SCL
        with open_product(path) as p:
            assert (p.read(["B04"])[0] == truth.band_dn10("B04")).all()  # the +1000 of 04.00 removed

The product follows the PSD 14 compact naming, modelled on real ``MTD_MSIL1C.xml`` /
``MTD_MSIL2A.xml`` files: lossless JPEG 2000 bands at 10/20/60 m on a UTM grid (:data:`CRS`,
upper-left corner :data:`ORIGIN`, as tile T33UUU), the metadata file, the SCL (L2A), the cloud
mask (``MSK_CLASSI_B00.jp2`` from baseline 04.00, ``MSK_CLOUDS_B00.gml`` before), detector
footprints (``MSK_DETFOO_Bxx``, ``.jp2`` from 04.00, ``.gml`` before) and, for a Level-1C product
from 04.00, quality masks (``MSK_QUALIT_Bxx.jp2``). A snow field, saturated rows and defective
rows can be asked for.

The ground is a land-cover-like mosaic (:data:`CLASSES`, spectra in :data:`SPECTRA`) with
clouds and a swath-edge no-data strip; :func:`make_scene` returns it (DN in the pre-04.00
convention, labels, SCL at 20 m) for the same arguments, so tests know the truth. A product of
baseline 04.00 or later stores DN + 1000, as real ones do; reading either gives the same numbers.
To build a product of your own layout (other bands, other tiling), write the bands with
:func:`write_jp2` at the paths :func:`image_file` names and the metadata :func:`metadata_xml`
gives.

File names, special values and the offset are spelled out here rather than taken from
:mod:`s2lc.sentinel2`: the generator is a second transcription of the ESA format, so a slip in
the reader's declarations shows up as a failing test instead of being written both ways.

Everything depends only on the arguments (``seed`` included): the same call writes the same bytes.
Bands are generated one at a time, so a full tile (``size=10980``) needs about 3 GB of memory;
at ``size=1830`` an L2A product takes about 8 s to write on 2 cores, mostly JPEG 2000 encoding.

**The real T33UUU crop.** s2lc's own tests and benchmarks also measure the shipped model on a
real Level-1C crop kept outside the repository, at :data:`T33UUU` in :data:`SHARED_DATA` (the
``shared/data`` folder beside a development checkout). That path is a convenience of s2lc's own
tests and benchmarks: it exists only there, not in a fresh clone nor in an installed package, so
check ``T33UUU.exists()`` (the tests skip without it). The functions take any open product or
path. What the crop's own near-infrared band says about it, which the RGB model never sees:
water is dark in NIR (B08 < 1000, reflectance × 10 000), and forest is dark in red but not in NIR
(B04 < 900 and B08 ≥ 1000); :func:`nir_proxies` gives both per 64 × 64 patch, and
:func:`agreement` how a model's map agrees with them.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from affine import Affine
from rasterio.features import shapes

from s2lc.errors import ArgumentError
from s2lc.gdal import gdal_env
from s2lc.sentinel2 import BAND_IDS, BANDS, SCL, band

if TYPE_CHECKING:
    pass

__all__ = [
    "CLASSES",
    "CLOUD_SPECTRUM",
    "CRS",
    "L2A_LAYOUT",
    "ORIGIN",
    "PAINTED_CLOUD",
    "SNOW_SPECTRUM",
    "SPECTRA",
    "Scene",
    "granule_folder",
    "image_file",
    "make_product",
    "make_scene",
    "metadata_xml",
    "product_name",
    "write_jp2",
]

#: Grid of every synthetic product: UTM 33N, a tile-like upper-left corner.
CRS = "EPSG:32633"
ORIGIN = (300000.0, 5900040.0)
TILE = "T33UUU"
SENSING = "20200406T101559"
GENERATION = "20200406T130159"

#: Ground classes of the synthetic scene.
CLASSES: tuple[str, ...] = ("water", "forest", "crop", "bare soil", "built-up")
#: Top-of-atmosphere DN (pre-04.00 convention) per class, 13 bands in ESA order.
SPECTRA = np.array(
    [
        [1250, 950, 750, 520, 470, 420, 400, 370, 350, 160, 10, 110, 80],  # water
        [1300, 1000, 900, 720, 1200, 2300, 2700, 2800, 2900, 900, 15, 1400, 700],  # forest
        [1320, 1050, 1050, 820, 1450, 2800, 3300, 3500, 3600, 1100, 20, 2000, 1000],  # crop
        [1400, 1300, 1500, 1800, 2000, 2200, 2400, 2500, 2600, 800, 30, 3200, 2600],  # bare soil
        [1500, 1500, 1600, 1700, 1800, 1900, 2000, 2100, 2150, 700, 25, 2500, 2100],  # built-up
    ],
    dtype=np.float64,
)
#: Top-of-atmosphere DN of a bright cloud, 13 bands in ESA order, painted where the SCL says cloud.
CLOUD_SPECTRUM = np.array([5200, 5400, 5500, 5600, 5700, 5750, 5800, 5800, 5850, 2500, 400, 4000, 3000], np.float64)
#: Top-of-atmosphere DN of fresh snow, 13 bands in ESA order: bright in the visible and near
#: infrared, dark in the short-wave infrared (NDSI about 0.87).
SNOW_SPECTRUM = np.array([9000, 8800, 8500, 8300, 8200, 8000, 7900, 7700, 7500, 4000, 50, 600, 500], np.float64)
#: The SATURATED special value, stored as is at every baseline (no offset added).
_SATURATED = 65535
#: SCL classes painted as bright cloud into the DN (shadows halve the DN instead).
PAINTED_CLOUD = [SCL.CLOUD_MEDIUM_PROBABILITY, SCL.CLOUD_HIGH_PROBABILITY, SCL.THIN_CIRRUS]
_NODATA = 0
#: Offset (DN) that baselines from 04.00 add.
_OFFSET = 1000
#: Band images of a Level-2A product per resolution folder (as the real MTD_MSIL2A.xml lists them).
L2A_LAYOUT: dict[int, tuple[str, ...]] = {
    10: ("B02", "B03", "B04", "B08"),
    20: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"),
    60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"),
}
#: Detector numbers across the tile, left to right (real ones run 1-12).
_DETECTORS = (3, 4, 5)


#: Size of the land-cover patches' cells and of the texture, in 10 m pixels (a 60 m pixel).
_CELL = 6


@dataclass(frozen=True)
class Scene:
    """The ground truth of a synthetic product. Band DN are computed on demand, one band at a time,
    so that a full 10980 x 10980 tile fits in memory."""

    size: int  #: grid size in 10 m pixels
    seed: int
    cells: np.ndarray  #: (size/6, size/6) uint8, land-cover class (index into CLASSES) per 60 m cell
    texture: np.ndarray  #: (size/6, size/6) float32, brightness factor 0.9-1.1 per 60 m cell
    scl20: np.ndarray  #: (size/2, size/2) uint8, Level-2A scene classification at 20 m
    nodata_cols: int  #: columns of no data on the left (the swath edge)
    custom: dict[str, np.ndarray]  #: band -> (size, size) DN given by the caller
    snow_cols: int = 0  #: columns of snow on the right (SNOW_SPECTRUM), under any cloud
    saturated_rows: int = 0  #: rows at the top where B04 holds the SATURATED value

    @property
    def snow(self) -> np.ndarray:
        """(size,) bool per 10 m column: under snow (where no cloud covers it)."""
        return np.arange(self.size) >= self.size - self.snow_cols

    @property
    def labels(self) -> np.ndarray:
        """(size, size) uint8, land-cover class per 10 m pixel."""
        return np.kron(self.cells, np.ones((_CELL, _CELL), np.uint8))

    @property
    def dn(self) -> np.ndarray:
        """(13, size, size) uint16: every band's 10 m DN (1.5 GB for a full tile; prefer :meth:`band_dn10`)."""
        return np.stack([self.band_dn10(b) for b in BAND_IDS])

    def band_dn10(self, band_id: str) -> np.ndarray:
        """(size, size) uint16: pre-04.00 DN of a band at 10 m, clouds and shadows painted in, 0 = no data."""
        index = BAND_IDS.index(band_id)
        rng = np.random.default_rng([self.seed, index])  # per band: any subset, any order, same numbers
        if band_id in self.custom:
            dn = np.array(self.custom[band_id], dtype=np.float32)
        else:
            cell = (SPECTRA[self.cells, index] * self.texture).astype(np.float32)
            dn = np.repeat(np.repeat(cell, _CELL, axis=0), _CELL, axis=1)
            dn += 25 * rng.standard_normal(dn.shape, dtype=np.float32)
        if self.snow_cols:
            snow = dn[:, self.snow]
            dn[:, self.snow] = SNOW_SPECTRUM[index] + 60 * rng.standard_normal(snow.shape, dtype=np.float32)
        shadow = np.kron(self.scl20 == SCL.CLOUD_SHADOWS, np.ones((2, 2), bool))
        dn[shadow] *= 0.5
        cloud = np.kron(np.isin(self.scl20, PAINTED_CLOUD), np.ones((2, 2), bool))
        dn[cloud] = CLOUD_SPECTRUM[index] + 60 * rng.standard_normal(int(cloud.sum()), dtype=np.float32)
        dn = np.clip(np.rint(dn), 1, 65535 - _OFFSET).astype(np.uint16)
        if band_id == "B04":
            dn[: self.saturated_rows] = _SATURATED
        dn[:, : self.nodata_cols] = _NODATA
        return dn

    def coarse_valid(self, factor: int) -> np.ndarray:
        """(size/factor,) bool per column of a grid ``factor`` times coarser: False where the
        coarse pixel's centre lies in the no-data strip."""
        n = self.size // factor
        return (np.arange(n) + 0.5) * factor >= self.nodata_cols

    def band_dn(self, band_id: str, resolution: int | None = None) -> np.ndarray:
        """(size*10/res, size*10/res) uint16: the band's file content at a resolution (its native one
        by default), pre-04.00 DN: the 10 m DN averaged over each coarse pixel, 0 in the no-data strip."""
        factor = (resolution or band(band_id).resolution) // 10
        dn = self.band_dn10(band_id)
        n = self.size // factor
        total = dn.reshape(n, factor, n, factor).sum(axis=(1, 3), dtype=np.uint32)
        coarse = np.rint(total / (factor * factor)).astype(np.uint16)
        coarse[(dn == _SATURATED).reshape(n, factor, n, factor).any(axis=(1, 3))] = _SATURATED
        coarse[:, ~self.coarse_valid(factor)] = _NODATA
        return coarse


def _smooth_field(rng: np.random.Generator, n: int, blobs: int, radius: tuple[float, float]) -> np.ndarray:
    """(n, n) float32: a sum of random Gaussian blobs (separable, so cheap at any size)."""
    centres = np.arange(n) + 0.5
    field = np.zeros((n, n), np.float32)
    for _ in range(blobs):
        cy, cx = rng.uniform(0, n, 2)
        r = rng.uniform(*radius) * n
        amplitude = rng.uniform(0.5, 1.0)
        across = np.exp(-((centres - cx) ** 2) / (2 * r * r))
        down = np.exp(-((centres - cy) ** 2) / (2 * r * r))
        field += (amplitude * np.outer(down, across)).astype(np.float32)
    return field


def _voronoi(rng: np.random.Generator, n: int, patches: int) -> np.ndarray:
    """(n, n) uint8: land-cover classes of a Voronoi mosaic of ``patches`` random patches, row-chunked."""
    seeds = rng.uniform(0, n, (patches, 2)).astype(np.float32)
    kinds = rng.integers(0, len(CLASSES), patches).astype(np.uint8)
    centres = np.arange(n, dtype=np.float32) + 0.5
    out = np.empty((n, n), np.uint8)
    rows = max(1, 2**22 // (n * patches))
    for r0 in range(0, n, rows):
        y = centres[r0 : r0 + rows, None, None]
        distance = (y - seeds[:, 0]) ** 2 + (centres[None, :, None] - seeds[:, 1]) ** 2
        out[r0 : r0 + rows] = kinds[np.argmin(distance, axis=-1)]
    return out


def make_scene(
    size: int = 240, seed: int = 0, cloud_fraction: float = 0.2, nodata_cols: int = 0, scene: np.ndarray | None = None,
    snow_cols: int = 0, saturated_rows: int = 0,
) -> Scene:
    """The ground of a synthetic product.

    Args:
        size: grid size in 10 m pixels, a multiple of 6 (10980 for a full tile).
        seed: the random seed.
        cloud_fraction: share of the tile under (medium/high probability) cloud; shadows and some
            cirrus come on top.
        nodata_cols: width of a no-data strip on the left, in 10 m columns.
        scene: optional pre-04.00 DN to use instead of the mosaic: (13, size, size) in ESA order, or
            (3, size, size) holding B04, B03, B02 (the other bands come from the mosaic).
        snow_cols: width of a snow field on the right, in 10 m columns (SCL class 11 where no
            cloud covers it; a multiple of 2 keeps the 20 m SCL exact).
        saturated_rows: rows at the top where B04 is saturated (the SATURATED value; SCL class 1).

    Returns:
        The scene; clouds are painted into the DN (unless ``cloud_fraction`` is 0).

    Raises:
        ArgumentError: a ``size`` that is not a multiple of 6, a ``scene`` of another shape.
    """
    if size % _CELL or size < 2 * _CELL:
        raise ArgumentError(f"size must be a multiple of 6 (60 m pixels), at least 12; got {size}")
    rng = np.random.default_rng(seed)
    n20, cells = size // 2, size // _CELL

    # land cover: a Voronoi mosaic of random patches on 60 m cells, with a smooth brightness texture
    labels = _voronoi(rng, cells, max(8, size // 20))
    texture = _smooth_field(rng, cells, 6, (0.05, 0.2))
    texture = 0.9 + 0.2 * texture / max(float(texture.max()), 1e-9)
    custom: dict[str, np.ndarray] = {}
    if scene is not None:
        scene = np.asarray(scene)
        if scene.shape == (3, size, size):
            custom = dict(zip(("B04", "B03", "B02"), scene))
        elif scene.shape == (13, size, size):
            custom = dict(zip(BAND_IDS, scene))
        else:
            raise ArgumentError(f"scene must be (3, {size}, {size}) or (13, {size}, {size}); got {scene.shape}")

    # clouds, at 20 m: medium/high probability by thresholds on a smooth field, cirrus elsewhere, shadows beside
    labels20 = np.repeat(np.repeat(labels, _CELL // 2, axis=0), _CELL // 2, axis=1)
    scl = np.full((n20, n20), SCL.VEGETATION, np.uint8)
    scl[labels20 == CLASSES.index("water")] = SCL.WATER
    scl[np.isin(labels20, [CLASSES.index("bare soil"), CLASSES.index("built-up")])] = SCL.NOT_VEGETATED
    if cloud_fraction > 0:
        field = _smooth_field(rng, n20, 5, (0.05, 0.15))
        cloud = field >= np.quantile(field, 1 - cloud_fraction)
        high = field >= np.quantile(field, 1 - cloud_fraction / 2)
        cirrus_field = _smooth_field(rng, n20, 2, (0.03, 0.06))
        cirrus = ~cloud & (cirrus_field >= np.quantile(cirrus_field, 0.97))
        shadow = ~cloud & ~cirrus & np.roll(cloud, (3, 3), axis=(0, 1))
        scl[shadow] = SCL.CLOUD_SHADOWS
        scl[cirrus] = SCL.THIN_CIRRUS
        scl[cloud] = SCL.CLOUD_MEDIUM_PROBABILITY
        scl[high] = SCL.CLOUD_HIGH_PROBABILITY
    centres = (np.arange(n20) + 0.5) * 2  # of the 20 m pixels, in 10 m pixels
    snowy = scl[:, centres >= size - snow_cols]
    snowy[np.isin(snowy, PAINTED_CLOUD, invert=True)] = SCL.SNOW
    scl[:, centres >= size - snow_cols] = snowy
    scl[centres < saturated_rows] = SCL.SATURATED_OR_DEFECTIVE
    scl[:, centres < nodata_cols] = SCL.NO_DATA
    return Scene(size, seed, labels, texture.astype(np.float32), scl, nodata_cols, custom, snow_cols, saturated_rows)


def write_jp2(path: str | os.PathLike, data: np.ndarray, resolution: float, crs: str = CRS,
              origin: tuple[float, float] = ORIGIN, block: int = 64) -> None:
    """Write a lossless JPEG 2000 on the synthetic grid, creating its folder.

    Args:
        path: the ``.jp2`` to write.
        data: (h, w) or (bands, h, w), any integer dtype GDAL takes (uint16 DN, uint8 masks).
        resolution: pixel size in metres.
        crs, origin: the grid's CRS and upper-left corner.
        block: tile size in pixels (real products use 1024).
    """
    path = Path(path)
    data = data[None] if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="JP2OpenJPEG", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype,
        crs=crs, transform=Affine(resolution, 0, origin[0], 0, -resolution, origin[1]),
        QUALITY=100, REVERSIBLE="YES", YCC="NO", BLOCKXSIZE=block, BLOCKYSIZE=block, NUM_THREADS="ALL_CPUS",
    )
    with gdal_env(), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def product_name(level: str, baseline: str) -> str:
    """``S2B_MSIL1C_20200406T101559_N0209_R065_T33UUU_20200406T130159`` (no ``.SAFE``)."""
    return f"S2B_MSI{level}_{SENSING}_N{baseline.replace('.', '')}_R065_{TILE}_{GENERATION}"


def granule_folder(level: str) -> str:
    """The granule folder inside the ``.SAFE``: ``GRANULE/L1C_T33UUU_A016107_20200406T101807``."""
    return f"GRANULE/{level}_{TILE}_A016107_20200406T101807"


def image_file(level: str, band_id: str, resolution: int | None = None) -> str:
    """A band image's path inside the ``.SAFE``, without ``.jp2``, as the MTD's ``IMAGE_FILE`` names it.

    Args:
        level: ``"L1C"`` (one file per band, ``…/IMG_DATA/T33UUU_<sensing>_B04``) or ``"L2A"``
            (one per band and resolution folder, ``…/IMG_DATA/R10m/T33UUU_<sensing>_B04_10m``).
        band_id: ``"B04"``, or ``"SCL"`` for the Level-2A scene classification.
        resolution: the Level-2A resolution folder, 10, 20 or 60; ignored for Level-1C.
    """
    if level == "L1C":
        return f"{granule_folder(level)}/IMG_DATA/{TILE}_{SENSING}_{band_id}"
    return f"{granule_folder(level)}/IMG_DATA/R{resolution}m/{TILE}_{SENSING}_{band_id}_{resolution}m"


def _gml(name: str, features: list[tuple[str, list[list[tuple[float, float]]]]], dimension: int = 2) -> str:
    """A Sentinel-2 GML mask (eop:Mask) with one feature per (mask type, polygon rings)."""
    members = []
    for i, (kind, rings) in enumerate(features):
        parts = []
        for j, ring in enumerate(rings):
            coords = " ".join(" ".join(f"{v:.0f}" for v in (x, y, 0.0)[:dimension]) for x, y in ring)
            tag = "exterior" if j == 0 else "interior"
            parts.append(
                f"<gml:{tag}><gml:LinearRing><gml:posList srsDimension=\"{dimension}\">{coords}</gml:posList>"
                f"</gml:LinearRing></gml:{tag}>"
            )
        members.append(
            f"""    <eop:MaskFeature gml:id="{kind}.{i}">
      <eop:maskType codeSpace="urn:gs2:S2PDGS:maskType">{kind}</eop:maskType>
      <eop:extentOf>
        <gml:Polygon gml:id="{kind}.{i}_Polygon">{''.join(parts)}</gml:Polygon>
      </eop:extentOf>
    </eop:MaskFeature>"""
        )
    body = f"  <eop:maskMembers>\n{chr(10).join(members)}\n  </eop:maskMembers>\n" if members else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" gml:id="{name}">
  <gml:name>{name}</gml:name>
  <gml:boundedBy>
    <gml:Envelope srsName="urn:ogc:def:crs:EPSG:8.7:{CRS.split(':')[1]}">
      <gml:lowerCorner>{ORIGIN[0]:.0f} {ORIGIN[1] - 109800:.0f}</gml:lowerCorner>
      <gml:upperCorner>{ORIGIN[0] + 109800:.0f} {ORIGIN[1]:.0f}</gml:upperCorner>
    </gml:Envelope>
  </gml:boundedBy>
{body}</eop:Mask>
"""


def _polygons(mask: np.ndarray, resolution: float) -> list[list[list[tuple[float, float]]]]:
    transform = Affine(resolution, 0, ORIGIN[0], 0, -resolution, ORIGIN[1])
    return [geom["coordinates"] for geom, _ in shapes(mask.astype(np.uint8), mask=mask, transform=transform)]


def _detectors(scene: Scene, factor: int) -> np.ndarray:
    """Detector numbers per pixel of a band at ``factor``: vertical stripes, 0 in the no-data strip."""
    n = scene.size // factor
    edges = np.arange(n) * factor * len(_DETECTORS) // scene.size
    row = np.array(_DETECTORS, np.uint8)[edges]
    row[~scene.coarse_valid(factor)] = 0
    return np.repeat(row[None], n, axis=0)


def _detfoo_gml(scene: Scene, factor: int, name: str) -> str:
    detectors = _detectors(scene, factor)
    features = [("DETECTOR_FOOTPRINT", rings) for d in _DETECTORS for rings in _polygons(detectors == d, factor * 10)]
    return _gml(name, features, dimension=3)


def metadata_xml(level: str, baseline: str, name: str, image_files: list[str], cloud_cover: float) -> str:
    """The text of ``MTD_MSIL1C.xml`` or ``MTD_MSIL2A.xml``, modelled on real ones.

    Args:
        level: ``"L1C"`` or ``"L2A"``.
        baseline: processing baseline ``"NN.NN"``; from ``"04.00"`` every band declares the
            -1000 offset (``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET``).
        name: the product name (:func:`product_name`).
        image_files: the band images, as :func:`image_file` names them.
        cloud_cover: the cloud cover percentage to declare.
    """
    offset = tuple(int(p) for p in baseline.split(".")) >= (4, 0)
    ns = f"https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-{level[1:]}.xsd"
    files = "\n".join(f"            <IMAGE_FILE>{f}</IMAGE_FILE>" for f in image_files)
    if level == "L1C":
        quantification = '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        offsets = "<Radiometric_Offset_List>{}</Radiometric_Offset_List>"
        tag = "RADIO_ADD_OFFSET"
    else:
        quantification = (
            '<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>'
            '<AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>'
            '<WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
        )
        offsets = "<BOA_ADD_OFFSET_VALUES_LIST>{}</BOA_ADD_OFFSET_VALUES_LIST>"
        tag = "BOA_ADD_OFFSET"
    offsets = offsets.format("".join(f'<{tag} band_id="{i}">-{_OFFSET}</{tag}>' for i in range(13))) if offset else ""
    spectral = "".join(
        f'<Spectral_Information bandId="{i}" physicalBand="{b.id.replace("B0", "B")}"><RESOLUTION>{b.resolution}</RESOLUTION>'
        f'<Wavelength><CENTRAL unit="nm">{b.wavelength_nm}</CENTRAL></Wavelength></Spectral_Information>'
        for i, b in enumerate(BANDS)
    )
    scl_list = ""
    if level == "L2A":
        scl_list = "<Scene_Classification_List>" + "".join(
            f"<Scene_Classification_ID><SCENE_CLASSIFICATION_TEXT>SC_{c.name}</SCENE_CLASSIFICATION_TEXT>"
            f"<SCENE_CLASSIFICATION_INDEX>{c.value}</SCENE_CLASSIFICATION_INDEX></Scene_Classification_ID>"
            for c in SCL
        ) + "</Scene_Classification_List>"
    start = f"{SENSING[:4]}-{SENSING[4:6]}-{SENSING[6:8]}T{SENSING[9:11]}:{SENSING[11:13]}:{SENSING[13:15]}.024Z"
    n = baseline.replace(".", "")
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{level[1:]}_User_Product xmlns:n1="{ns}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="{ns}">
    <n1:General_Info>
        <Product_Info>
            <PRODUCT_START_TIME>{start}</PRODUCT_START_TIME>
            <PRODUCT_STOP_TIME>{start}</PRODUCT_STOP_TIME>
            <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
            <PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>
            <PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>
            <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
            <GENERATION_TIME>2020-04-06T13:01:59.000000Z</GENERATION_TIME>
            <PREVIEW_IMAGE_URL>Not applicable</PREVIEW_IMAGE_URL>
            <PREVIEW_GEO_INFO>Not applicable</PREVIEW_GEO_INFO>
            <Datatake datatakeIdentifier="GS2B_{SENSING}_016107_N{baseline}">
                <SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
                <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
                <DATATAKE_SENSING_START>{start}</DATATAKE_SENSING_START>
                <SENSING_ORBIT_NUMBER>65</SENSING_ORBIT_NUMBER>
                <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
            </Datatake>
            <Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>
            <Product_Organisation>
                <Granule_List>
                    <Granule datastripIdentifier="S2B_OPER_MSI_{level}_DS_EPAE_{GENERATION}_S20200406T101807_N{n[:2]}.{n[2:]}" \
granuleIdentifier="S2B_OPER_MSI_{level}_TL_EPAE_{GENERATION}_A016107_{TILE}_N{baseline}" imageFormat="JPEG2000">
{files}
                    </Granule>
                </Granule_List>
            </Product_Organisation>
        </Product_Info>
        <Product_Image_Characteristics>
            <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
            <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
            <Image_Display_Order><RED_CHANNEL>3</RED_CHANNEL><GREEN_CHANNEL>2</GREEN_CHANNEL><BLUE_CHANNEL>1</BLUE_CHANNEL></Image_Display_Order>
            {quantification}
            {offsets}
            <Spectral_Information_List>{spectral}</Spectral_Information_List>
            {scl_list}
        </Product_Image_Characteristics>
    </n1:General_Info>
    <n1:Geometric_Info>
        <Coordinate_Reference_System><GEO_TABLES version="1">EPSG</GEO_TABLES>\
<HORIZONTAL_CS_TYPE>GEOGRAPHIC</HORIZONTAL_CS_TYPE></Coordinate_Reference_System>
    </n1:Geometric_Info>
    <n1:Quality_Indicators_Info>
        <Cloud_Coverage_Assessment>{cloud_cover:.4f}</Cloud_Coverage_Assessment>
    </n1:Quality_Indicators_Info>
</n1:Level-{level[1:]}_User_Product>
"""


def _quality(truth: Scene, band_id: str, defective_rows: int) -> np.ndarray:
    """(8, h, w) uint8 MSK_QUALIT content of a band at its resolution: band 8 (saturated in
    Level-1A) where the band is saturated, band 5 (defective) on the bottom rows of B03."""
    flags = np.zeros((8, *truth.band_dn(band_id).shape), np.uint8)
    flags[7] = truth.band_dn(band_id) == _SATURATED
    if band_id == "B03" and defective_rows:
        flags[4, -defective_rows:] = 1
    return flags


def make_product(
    root: Path,
    level: str = "L1C",
    baseline: str = "02.09",
    size: int = 240,
    zipped: bool = False,
    seed: int = 0,
    cloud_fraction: float = 0.2,
    nodata_cols: int = 0,
    scene: np.ndarray | None = None,
    only_r60m: bool = False,
    snow_cols: int = 0,
    saturated_rows: int = 0,
    quality_masks: bool = True,
    defective_rows: int = 0,
) -> Path:
    """Write a synthetic Sentinel-2 product.

    Args:
        root: folder to write into (created if needed).
        level: ``"L1C"`` or ``"L2A"``.
        baseline: processing baseline ``"NN.NN"``; from ``"04.00"`` the DN carry the +1000 offset
            and the MTD declares -1000, the cloud mask is ``MSK_CLASSI_B00.jp2`` and detector
            footprints are rasters.
        size: grid size in 10 m pixels, a multiple of 6.
        zipped: write ``<name>.zip`` holding ``<name>.SAFE/`` (deflated) instead of the folder.
        seed, cloud_fraction, nodata_cols, scene: see :func:`make_scene`.
        only_r60m: L2A only: keep the band images of ``R60m`` only (SCL stays at 20 and 60 m), like
            the cut-down real product.
        snow_cols, saturated_rows: see :func:`make_scene`.
        quality_masks: Level-1C from baseline 04.00: write ``MSK_QUALIT_Bxx.jp2`` for every band
            (eight byte bands; the saturated B04 rows flagged in band 8, QT_SATURATED_PIXELS_L1A).
        defective_rows: rows at the bottom flagged defective (band 5, QT_DEFECTIVE_PIXELS) in
            ``MSK_QUALIT_B03``; their DN are left as they are.

    Returns:
        The ``.SAFE`` folder or the zip.

    Raises:
        ArgumentError: an unknown ``level``; as :func:`make_scene`.
    """
    if level not in ("L1C", "L2A"):
        raise ArgumentError(f"level must be 'L1C' or 'L2A'; got {level!r}")
    truth = make_scene(size, seed, cloud_fraction, nodata_cols, scene, snow_cols, saturated_rows)
    post04 = tuple(int(p) for p in baseline.split(".")) >= (4, 0)
    name = product_name(level, baseline)
    root = Path(root)
    safe = root / f"{name}.SAFE"
    if safe.exists():
        shutil.rmtree(safe)
    offset = _OFFSET if post04 else 0

    def dn_file(band_id: str, resolution: int) -> np.ndarray:
        dn = truth.band_dn(band_id, resolution)
        return np.where((dn == _NODATA) | (dn == _SATURATED), dn, dn + offset).astype(np.uint16)

    image_files = []
    if level == "L1C":
        for b in BANDS:
            rel = image_file(level, b.id)
            image_files.append(rel)
            write_jp2(safe / f"{rel}.jp2", dn_file(b.id, b.resolution), b.resolution)
    else:
        for resolution in (10, 20, 60):
            for band_id in L2A_LAYOUT[resolution]:
                rel = image_file(level, band_id, resolution)
                image_files.append(rel)
                if resolution == 60 or not only_r60m:
                    write_jp2(safe / f"{rel}.jp2", dn_file(band_id, resolution), resolution)
            if resolution > 10:
                rel = image_file(level, "SCL", resolution)
                image_files.append(rel)
                scl = truth.scl20 if resolution == 20 else truth.scl20[1::3, 1::3]
                write_jp2(safe / f"{rel}.jp2", scl, resolution)

    qi = safe / granule_folder(level) / "QI_DATA"
    scl60 = truth.scl20[1::3, 1::3]
    opaque = np.isin(scl60, [SCL.CLOUD_MEDIUM_PROBABILITY, SCL.CLOUD_HIGH_PROBABILITY])
    cirrus = scl60 == SCL.THIN_CIRRUS
    if post04:
        classi = np.stack([opaque, cirrus, np.zeros_like(opaque)]).astype(np.uint8)
        write_jp2(qi / "MSK_CLASSI_B00.jp2", classi, 60)
    else:
        features = [("OPAQUE", rings) for rings in _polygons(opaque, 60)] + [("CIRRUS", rings) for rings in _polygons(cirrus, 60)]
        qi.mkdir(parents=True, exist_ok=True)
        (qi / "MSK_CLOUDS_B00.gml").write_text(_gml("MSK_CLOUDS_B00", features))
    for b in BANDS:
        factor = b.resolution // 10
        if post04:
            write_jp2(qi / f"MSK_DETFOO_{b.id}.jp2", _detectors(truth, factor), b.resolution)
        else:
            (qi / f"MSK_DETFOO_{b.id}.gml").write_text(_detfoo_gml(truth, factor, f"MSK_DETFOO_{b.id}"))

    if post04 and level == "L1C" and quality_masks:
        for b in BANDS:
            write_jp2(qi / f"MSK_QUALIT_{b.id}.jp2", _quality(truth, b.id, defective_rows), b.resolution)

    valid20 = truth.scl20 != SCL.NO_DATA
    cloudy = np.isin(truth.scl20, [SCL.CLOUD_MEDIUM_PROBABILITY, SCL.CLOUD_HIGH_PROBABILITY, SCL.THIN_CIRRUS])
    cloud_cover = 100.0 * cloudy[valid20].mean() if valid20.any() else 0.0
    (safe / f"MTD_MSI{level}.xml").write_text(metadata_xml(level, baseline, name, image_files, cloud_cover))
    (safe / "manifest.safe").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"/>\n'
    )
    if not zipped:
        return safe
    archive = root / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(safe.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    shutil.rmtree(safe)
    return archive
