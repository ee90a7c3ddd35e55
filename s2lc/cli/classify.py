"""``s2lc classify``: a Sentinel-2 scene to land-cover maps that open styled in QGIS."""

from __future__ import annotations

import json

import click

from s2lc.cli.main import classify_options, output_folder, parse_bands_option, progress_enabled, summary_enabled


@click.command(short_help="Classify a Sentinel-2 product into a land-cover map.")
@click.argument("product", type=click.Path(exists=True), required=False)
@click.option("--demo", is_flag=True, help="Classify the small real scene shipped with s2lc (a Level-1C crop of T33UUU) "
                                          "instead of PRODUCT.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if needed).")
@classify_options()
@click.option("--bands", callback=parse_bands_option, default=None,
              help="For a GeoTIFF: band ids to indexes, e.g. B04=1,B03=2,B02=3.")
@click.option("--date", "sensing_time", default=None, metavar="YYYY-MM-DD",
              help="Acquisition date, where the input carries none (a GeoTIFF without a date tag); "
                   "recorded in the outputs, so `s2lc change` can order the maps.")
@click.option("--no-polygons", is_flag=True, help="Skip the GeoPackage of polygons.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary (provenance, areas, outputs) as JSON on stdout.")
def classify(product, demo, out_dir, model, device, precision, tta, batch_size, stride, max_cloud, clouds, bands, sensing_time,
             no_polygons, overwrite, as_json):
    """Classify PRODUCT (.SAFE folder or zip, or a GeoTIFF), or with --demo the scene shipped with
    s2lc, into OUT: <id>_landcover.tif (+ .qml), <id>_confidence.tif, <id>_landcover.gpkg,
    <id>_quicklook.png and <id>_landcover.json."""
    from s2lc.classify import classify as run
    from s2lc.classify import output_files, output_paths
    from s2lc.files import check_outputs
    from s2lc.product import open_product

    if demo == (product is not None):
        raise click.UsageError("give either PRODUCT or --demo" if demo else "missing PRODUCT (or --demo for the shipped scene)")
    if demo:
        from s2lc.demo import demo_product

        product = demo_product()

    with output_folder(out_dir) as out, open_product(product, bands=bands, clouds=clouds,
                                                         sensing_time=sensing_time) as prod:
        check_outputs(output_files(output_paths(out, prod.id)), overwrite)  # refuse before hours of work
        result = run(prod, model, device=device, batch_size=batch_size, stride=int(stride), max_cloud=max_cloud,
                     precision=precision, tta=tta, progress=progress_enabled())
        paths = result.save(out, overwrite=overwrite, polygons=not no_polygons)
    s = result.stats
    if as_json:
        click.echo(json.dumps({"outputs": {k: str(p) for k, p in paths.items()}, "provenance": result.provenance,
                               "stats": s}, indent=2, default=str))
    elif summary_enabled():  # not with -qq
        label = {c.name: c.label for c in result.legend.classes}  # data files keep names, people read labels
        top = sorted(((a, label.get(n, n)) for n, a in s["area_ha"].items() if a > 0), reverse=True)[:5]
        click.echo(f"{result.product_id}: {s['status']}; {s['patches']['classified']} patches classified, "
                   f"{s['patches']['cloud']} cloud, {s['patches']['snow']} snow or ice, {s['patches']['no_data']} no data "
                   f"in {s['seconds']['total']:.1f} s", err=True)
        if top:
            click.echo("largest classes: " + ", ".join(f"{n} {a:,.0f} ha" for a, n in top), err=True)
        others = [p for p in output_files(paths) if p != paths["map"] and p.exists()]
        click.echo(f"wrote {paths['map']} and {len(others)} more files to {out}", err=True)
