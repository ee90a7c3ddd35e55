"""``s2lc info PRODUCT``: what a Sentinel-2 product (or GeoTIFF) holds, as text or JSON."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from s2lc.cli.main import clouds_option, parse_bands_option

__all__ = ["info", "summary"]


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _time(iso: str | None) -> str:
    return "n/a" if iso is None else datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")


def summary(meta: dict[str, Any]) -> str:
    """A readable summary of :meth:`s2lc.product.Product.info`."""
    grid = meta["grid"]
    resolutions: dict[int, list[str]] = {}
    for band_id, resolution in meta["native_resolution"].items():
        resolutions.setdefault(resolution, []).append(band_id)
    bands = "; ".join(f"{' '.join(ids)} read at {res} m" for res, ids in sorted(resolutions.items()))
    offsets = sorted(set(meta["offsets"].values()))
    if meta["offset_applied"]:
        offset = f"{', '.join(f'{v:+g}' for v in offsets)} applied: values are reflectance x 10000, as before baseline 04.00"
    elif meta["level"] == "GeoTIFF":
        offset = "none: values as stored"
    else:
        offset = "none (baseline before 04.00): values are reflectance x 10000"
    if meta["cloud_source"] is None:
        clouds = "no cloud mask"
    else:
        clouds = f"{_percent(meta['cloud_fraction'])} of valid pixels flagged by {meta['cloud_source']}"
    if meta["cloud_cover"] is not None:
        clouds = f"{meta['cloud_cover']:.1f} % (MTD); {clouds}"
    baseline = f", processing baseline {meta['baseline']}" if meta["baseline"] else ""
    lines = [
        meta["id"],
        f"  level         {meta['level']}{baseline}",
        f"  spacecraft    {meta['spacecraft'] or 'n/a'}",
        f"  sensed        {_time(meta['sensing_time'])}",
        f"  tile          {meta['tile'] or 'n/a'}",
        f"  grid          {grid['width']} x {grid['height']} px of {grid['resolution']:g} m, {grid['crs']}, "
        f"upper-left ({grid['transform'][2]:.0f}, {grid['transform'][5]:.0f})",
        f"  bands         {bands}",
    ]
    warp = meta.get("warped_from")
    if warp:
        lines.insert(-1, f"  warped from   {warp['crs']}, pixels of about {warp['resolution_m']:g} m "
                         f"({warp['resampling']}, on read)")
    if meta["bands_missing"]:
        lines.append(f"  missing       {', '.join(meta['bands_missing'])} (no file)")
    lines += [
        f"  offset        {offset}",
        f"  cloud         {clouds}",
        "  snow or ice   " + (f"{_percent(meta['snow_fraction'])} of valid pixels, from {meta['snow_source']}"
                            if meta["snow_source"] else "not known (no SCL, nor B03, B04, B08 and B11)"),
        f"  saturated     {_percent(meta['saturated_fraction'])}, defective {_percent(meta['defective_fraction'])} "
        "of valid pixels" + (" (MSK_QUALIT)" if meta["quality_masks"] else ""),
        f"  valid data    {_percent(meta['valid_fraction'])} of the grid",
    ]
    return "\n".join(lines)


@click.command()
@click.argument("product", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON on stdout.")
@click.option(
    "--bands",
    callback=parse_bands_option,
    metavar="B04=1,B03=2,...",
    help="GeoTIFF only: which 1-based band holds which Sentinel-2 band, where its descriptions do not say.",
)
@clouds_option
def info(product: Path, as_json: bool, bands: dict[str, int] | None, clouds: str) -> None:
    """Describe PRODUCT: a .SAFE folder, a zipped .SAFE, or a multi-band GeoTIFF.

    Shows the processing level and baseline, the radiometric offset applied, the 10 m grid, the
    bands and the resolution each is read at, and the cloud and valid-data fractions.
    """
    from s2lc.product import open_product

    with open_product(product, bands=bands, clouds=clouds) as opened:
        meta = opened.info()
    click.echo(json.dumps(meta, indent=2) if as_json else summary(meta))
