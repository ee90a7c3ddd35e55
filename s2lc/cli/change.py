"""``s2lc change``: what changed between classification maps of two or more dates."""

from __future__ import annotations

import json

import click

from s2lc.cli.main import output_folder, progress_enabled, summary_enabled


@click.command(short_help="What changed between land-cover maps of two or more dates.")
@click.argument("maps", nargs=-1, required=True, metavar="BEFORE.tif AFTER.tif [MORE.tif ...]",
                type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if needed).")
@click.option("--align", is_flag=True, help="Resample maps on another grid onto the first map's (nearest neighbour).")
@click.option("--allow-model-mismatch", is_flag=True,
              help="Compare maps from different models; their difference then mixes algorithm and land change.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def change(maps, out_dir, align, allow_model_mismatch, overwrite, as_json):
    """Compare classification maps written by `s2lc classify` (<id>_landcover.tif).

    Two maps: BEFORE and AFTER are compared in that order, and OUT gets change_<date>_<date>.tif
    (+ .qml), its transition matrix (_matrix_pixels.csv, _matrix_ha.csv, _matrix.json), change
    polygons (.gpkg), a summary figure (.png) and summary (.json).

    Three or more maps: they are ordered by sensing date; OUT gets those files for each date
    and the next and for the first and the last, plus trajectory_<first>_<last>.tif, .gpkg and
    .png (changes per pixel, flicker flagged) and series_<first>_<last>.json.

    Cloud and no-data pixels claim no change. Maps must share legend, model and grid (see
    --align, --allow-model-mismatch).
    """
    from pathlib import Path

    from s2lc import change as lib

    if len(maps) < 2:
        raise click.UsageError("give at least two maps: BEFORE.tif AFTER.tif [MORE.tif ...]")
    resolved = [Path(m).resolve() for m in maps]
    repeated = sorted({str(m) for m, r in zip(maps, resolved) if resolved.count(r) > 1})
    if repeated:
        raise click.UsageError(f"{', '.join(repeated)} given more than once; give each date once")
    progress = progress_enabled()
    if len(maps) == 2:
        result = lib.compare(maps[0], maps[1], align=align, allow_model_mismatch=allow_model_mismatch)
    else:
        result = lib.time_series(list(maps), align=align, allow_model_mismatch=allow_model_mismatch,
                                 progress=progress)

    with output_folder(out_dir) as out:
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
    top = s["transitions"][:3]
    text = (f"{(s['before']['sensing_time'] or '?')[:10]} → {(s['after']['sensing_time'] or '?')[:10]}: "
            f"{area['changed']:,.2f} ha changed of {area['compared']:,.2f} ha compared; "
            f"{area['not_compared_cloud']:,.2f} ha cloud or snow and {area['no_data']:,.2f} ha no data not compared")
    if top:
        text += "; largest: " + ", ".join(f"{t['label']} {t['area_ha']:,.2f} ha" for t in top)
    return text
