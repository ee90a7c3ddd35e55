"""``s2lc classify``: a Sentinel-2 scene to land-cover maps that open styled in QGIS."""

from __future__ import annotations

import json

import click

from s2lc.cli.main import classify_options, echo_batch, output_folder, parse_bands_option, progress_enabled, summary_enabled


@click.command(short_help="Classify Sentinel-2 products into land-cover maps.")
@click.argument("products", nargs=-1, metavar="PRODUCT [PRODUCT ...]")
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
@click.option("--skip-existing", is_flag=True, help="Several products: skip a product whose outputs all exist "
                                                     "(a rerun continues where a stopped one ended).")
@click.option("--cluster", default=None, metavar="local[:N]",
              help="Several products: run them on a Dask LocalCluster of N worker processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Several products: run them on a running Dask cluster (tcp://host:8786, or a scheduler file).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary (provenance, areas, outputs) as JSON on stdout.")
def classify(products, demo, out_dir, model, device, precision, tta, batch_size, stride, max_cloud, clouds, bands,
             sensing_time, no_polygons, overwrite, skip_existing, cluster, scheduler, as_json):
    """Classify PRODUCT (.SAFE folder or zip, or a GeoTIFF), or with --demo the scene shipped with
    s2lc, into OUT: <id>_landcover.tif (+ .qml), <id>_confidence.tif, <id>_landcover.gpkg,
    <id>_quicklook.png and <id>_landcover.json.

    Several products (paths, globs such as 'data/*.SAFE', or @list.txt with one a line): each
    goes to OUT/<id>/, one task each, in this process or on a Dask cluster (--cluster,
    --scheduler), and OUT/batch_summary.csv and .json list every product. A product that fails is
    reported and the others go on; the exit status is then 1."""
    from s2lc.classify import classify as run
    from s2lc.classify import output_files, output_paths
    from s2lc.files import check_outputs
    from s2lc.product import open_product

    if demo == bool(products):
        raise click.UsageError("give either PRODUCT or --demo" if demo else "missing PRODUCT (or --demo for the shipped scene)")
    if demo:
        from s2lc.demo import demo_product

        products = (str(demo_product()),)
    from s2lc.batch import expand_inputs
    from s2lc.errors import ArgumentError

    try:
        found = expand_inputs(products)
    except ArgumentError as exc:
        raise click.UsageError(str(exc)) from None
    options = dict(model=model, device=device, batch_size=batch_size, stride=int(stride), max_cloud=max_cloud,
                   precision=precision, tta=tta, bands=bands, clouds=clouds)
    if len(found) > 1:
        if sensing_time is not None:
            raise click.UsageError("--date applies to one product; classify undated GeoTIFFs one at a time")
        _classify_batch(found, out_dir, options, no_polygons=no_polygons, overwrite=overwrite,
                        skip_existing=skip_existing, cluster=cluster, scheduler=scheduler, as_json=as_json)
        return
    product = found[0]

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


def _classify_batch(products, out_dir, options, *, no_polygons, overwrite, skip_existing, cluster, scheduler, as_json):
    """Several products: one task each, and the batch summary (exit 1 when one failed)."""
    from s2lc.batch import BATCH_SUMMARY, classify_many, dask_client

    if options.pop("bands") is not None:
        raise click.UsageError("--bands applies to one GeoTIFF; classify GeoTIFFs with undescribed bands one at a time")
    with dask_client(cluster, scheduler) as client:
        if client is not None:
            click.echo(f"Dask dashboard: {client.dashboard_link}", err=True)
        with output_folder(out_dir) as out:
            table = classify_many(products, out, client=client, skip_existing=skip_existing, overwrite=overwrite,
                                  polygons=not no_polygons, progress=progress_enabled(), **options)
    echo_batch(table, "product", "products", out / BATCH_SUMMARY[0], as_json)
