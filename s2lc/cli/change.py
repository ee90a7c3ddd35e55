"""``s2lc change``: what changed between classification maps of two or more dates."""

from __future__ import annotations

import json

import click

from s2lc.change.evidence import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_MAGNITUDE
from s2lc.change.polygons import DEFAULT_MIN_AREA_HA
from s2lc.cli.main import classify_options, echo_batch, output_folder, parse_bands_option, progress_enabled, summary_enabled


@click.command(short_help="What changed between land-cover maps (or scenes) of two or more dates.")
@click.argument("maps", nargs=-1, required=True, metavar="BEFORE AFTER [MORE ...]",
                type=click.Path(exists=True))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if needed).")
@click.option("--align", is_flag=True, help="Resample maps on another grid onto the first map's (nearest neighbour).")
@click.option("--allow-model-mismatch", is_flag=True,
              help="Compare maps from different models; their difference then mixes algorithm and land change.")
@click.option("--min-confidence", default=DEFAULT_MIN_CONFIDENCE, show_default=True, type=click.FloatRange(0, 1),
              help="Both dates' probability a transition needs to count as change; below, it is uncertain.")
@click.option("--min-magnitude", default=DEFAULT_MIN_MAGNITUDE, show_default=True, type=click.FloatRange(0),
              help="Scenes only: the spectral change (standard deviations) a transition needs; below, it is a "
                   "likely classification flip.")
@click.option("--min-area", "min_area_ha", default=DEFAULT_MIN_AREA_HA, show_default=True, type=click.FloatRange(0),
              help="Minimum mapping unit of the change polygons, hectares.")
@classify_options("Scenes only: ")
@click.option("--bands", callback=parse_bands_option, default=None,
              help="Scenes only, GeoTIFFs: band ids to indexes, e.g. B04=1,B03=2,B02=3.")
@click.option("--cluster", default=None, metavar="local[:N]",
              help="Maps of several tiles: run each tile as a task on a Dask LocalCluster of N worker processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Maps of several tiles: run each tile as a task on a running Dask cluster.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def change(maps, out_dir, align, allow_model_mismatch, min_confidence, min_magnitude, min_area_ha, model, device,
           precision, tta, batch_size, stride, max_cloud, clouds, bands, cluster, scheduler, overwrite, as_json):
    """Compare classification maps written by `s2lc classify` (<id>_landcover.tif), or two
    scenes (.SAFE folders or zips, GeoTIFFs of bands), which are classified first (their maps
    are written to OUT too) and whose bands weigh in: a transition without spectral change is
    a likely classification flip, and a spectral change without a transition is shown too.

    Two maps: BEFORE and AFTER are compared in that order, and OUT gets change_<date>_<date>.tif
    (+ .qml), its transition matrix (_matrix_pixels.csv, _matrix_ha.csv, _matrix.json), change
    polygons (.gpkg), a summary figure (.png) and summary (.json).

    Three or more maps: they are ordered by sensing date; OUT gets those files for each date
    and the next and for the first and the last, plus trajectory_<first>_<last>.tif, .gpkg and
    .png (changes per pixel, flicker flagged) and series_<first>_<last>.json.

    A folder stands for the maps in it (*_landcover.tif, searched recursively). Maps of several
    tiles (from their product ids) are grouped by tile, and each tile's comparison or series is
    one task, into OUT/<tile>/, listed in OUT/batch_summary.csv and .json (--cluster, --scheduler
    run the tasks on Dask).

    A transition counts as change only where both dates' confidence reaches --min-confidence;
    below, it is uncertain. Cloud, snow and no-data pixels claim no change. Maps must share
    legend, model and grid (see --align, --allow-model-mismatch).
    """
    from pathlib import Path

    from s2lc import change as lib

    maps = _expand(maps)
    if len(maps) < 2:
        raise click.UsageError("give at least two maps: BEFORE.tif AFTER.tif [MORE.tif ...]")
    resolved = [Path(m).resolve() for m in maps]
    repeated = sorted({str(m) for m, r in zip(maps, resolved) if resolved.count(r) > 1})
    if repeated:
        raise click.UsageError(f"{', '.join(repeated)} given more than once; give each date once")
    progress = progress_enabled()
    gates = {"min_confidence": min_confidence, "min_area_ha": min_area_ha}
    scenes = [m for m in maps if not lib.is_map(m)]
    made = ()
    if not scenes:
        from s2lc.batch import group_maps

        groups = group_maps(maps)
        if len(groups) > 1:
            _change_batch(groups, out_dir, cluster, scheduler, overwrite, as_json, align=align,
                          allow_model_mismatch=allow_model_mismatch, **gates)
            return
    if scenes:
        if len(maps) > 2:
            raise click.UsageError(f"{scenes[0]} is not a map written by `s2lc classify`; a series takes maps: "
                                   "classify each scene first")
        if align:
            raise click.UsageError("--align applies to maps; scenes are classified on their own grids")
        found = lib.compare_scenes(maps[0], maps[1], model, min_magnitude=min_magnitude, bands=bands, clouds=clouds,
                                   allow_model_mismatch=allow_model_mismatch, progress=progress, device=device,
                                   precision=precision, tta=tta, batch_size=batch_size, stride=int(stride),
                                   max_cloud=max_cloud, **gates)
        result, made = found.change, [c for c in found.classifications if c is not None]
    elif len(maps) == 2:
        result = lib.compare(maps[0], maps[1], align=align, allow_model_mismatch=allow_model_mismatch, **gates)
    else:
        result = lib.time_series(list(maps), align=align, allow_model_mismatch=allow_model_mismatch,
                                 progress=progress, **gates)

    with output_folder(out_dir) as out:
        for c in made:  # the maps of the scenes, beside the change, as `s2lc classify` writes them
            c.save(out, overwrite=overwrite)
        paths = result.save(out, overwrite=overwrite, progress=progress)

    summary = result.summary()
    if as_json:
        summary["outputs"] = {k: str(p) for k, p in paths.items()}
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=_plain))
        return
    if not summary_enabled():  # -qq
        return
    pairs = [result] if len(maps) == 2 else [*result.pairs, result.overall]
    for pair in pairs:
        click.echo(_pair_line(pair), err=True)
    if len(maps) > 2:
        t = summary["trajectory"]
        line = (f"over {len(maps)} dates: {t['changed_at_least_once_ha']:,.2f} ha changed at least once, "
                f"{t['flicker_ha']:,.2f} ha flickered (went back to an earlier class)")
        if summary["overstatement"]:
            line += (f"; the consecutive changes add up to {summary['overstatement']:.1f} times the "
                     "first-to-last change")
        click.echo(line, err=True)
    n_files = sum(3 if p.suffix == ".tif" else 1 for p in paths.values())  # rasters come with .qml and .aux.xml
    click.echo(f"wrote {n_files} files to {out}", err=True)


def _plain(obj):
    """JSON for what the summary may hold besides plain values: numpy numbers and arrays, paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _pair_line(result) -> str:
    s = result.summary()
    area = s["area_ha"]
    top = [t for t in s["transitions"] if t["pixels"]][:3]
    text = (f"{(s['before']['sensing_time'] or '?')[:10]} → {(s['after']['sensing_time'] or '?')[:10]}: "
            f"{area['changed']:,.2f} ha changed of {area['compared']:,.2f} ha compared; "
            f"{area['not_compared_cloud']:,.2f} ha cloud or snow and {area['no_data']:,.2f} ha no data not compared")
    set_apart = [f"{area[k]:,.2f} ha {label}" for k, label in
                 (("uncertain", "uncertain (low confidence)"), ("flip", "likely classification flips"),
                  ("spectral", "spectral change without a class change")) if s["pixels"][k]]
    if set_apart:
        text += "; set apart: " + ", ".join(set_apart)
    if top:
        text += "; largest: " + ", ".join(f"{t['label']} {t['area_ha']:,.2f} ha" for t in top)
    return text


def _expand(inputs) -> list[str]:
    """Inputs as given, a folder that is not a product standing for the maps in it."""
    from pathlib import Path

    out = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not path.name.upper().endswith(".SAFE") and not any(path.glob("MTD_MSI*.xml")):
            found = sorted(str(p) for p in path.rglob("*_landcover.tif"))
            if not found:
                raise click.UsageError(f"{path}: holds no map (*_landcover.tif); give maps, a folder of maps or scenes")
            out += found
        else:
            out.append(str(item))
    return out


def _change_batch(groups, out_dir, cluster, scheduler, overwrite, as_json, **options) -> None:
    """Maps of several tiles: each tile a task; exit 1 when one failed."""
    from s2lc.batch import BATCH_SUMMARY, change_many, dask_client

    with dask_client(cluster, scheduler) as client:
        if client is not None:
            click.echo(f"Dask dashboard: {client.dashboard_link}", err=True)
        with output_folder(out_dir) as out:
            table = change_many(groups, out, client=client, overwrite=overwrite, progress=progress_enabled(), **options)
    echo_batch(table, "tile", "tiles", out / BATCH_SUMMARY[0], as_json)
