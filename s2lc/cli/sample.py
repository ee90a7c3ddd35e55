"""``s2lc sample MAP -o SAMPLES.gpkg``: a stratified random sample of a map's pixels to label in QGIS."""

from __future__ import annotations

import json
from typing import Callable

import click

from s2lc.assessment import ALLOCATIONS, MIN_PER_STRATUM
from s2lc.cli.main import progress_enabled, summary_enabled

__all__ = ["parse_pairs", "sample"]


def parse_pairs(kind: type) -> Callable[[click.Context, click.Parameter, str | None], dict[int, float] | None]:
    """A click callback reading ``CODE=VALUE,CODE=VALUE`` into {code: value}; None when not given."""

    def callback(ctx: click.Context, param: click.Parameter, text: str | None) -> dict[int, float] | None:
        if text is None:
            return None
        out = {}
        for item in text.split(","):
            code, sep, value = item.partition("=")
            try:
                if not sep:
                    raise ValueError
                code_int, number = int(code.strip()), kind(value.strip())
            except ValueError:
                raise click.BadParameter(f"{item.strip()!r} is not CODE={'N' if kind is int else 'VALUE'}; "
                                         f"write e.g. 1=50,2=75", ctx=ctx, param=param) from None
            if code_int in out:
                raise click.BadParameter(f"code {code_int} given twice", ctx=ctx, param=param)
            out[code_int] = number
        return out

    return callback


@click.command(short_help="Draw a stratified random sample of a map, to label for accuracy and area.")
@click.argument("map_path", metavar="MAP", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="The GeoPackage to write (.gpkg).")
@click.option("--n", "n", type=click.IntRange(2), help="Points in all, shared among strata by --allocation.")
@click.option("--allocation", type=click.Choice(list(ALLOCATIONS)), default="proportional", show_default=True,
              help="How --n is shared: by mapped area, equally, or Neyman (by area × sqrt(U(1-U)), U the "
                   "anticipated user's accuracy).")
@click.option("--min-per-stratum", "minimum", type=click.IntRange(2), default=MIN_PER_STRATUM, show_default=True,
              help="Points each stratum gets at least with --n (a smaller stratum gets all its pixels).")
@click.option("--anticipated", callback=parse_pairs(float), metavar="CODE=U,...",
              help="Neyman: anticipated user's accuracy per code (default 0.9 for land-cover classes and "
                   "unchanged, 0.7 for change classes).")
@click.option("--counts", callback=parse_pairs(int), metavar="CODE=N,...",
              help="Points per stratum, for every stratum, instead of --n.")
@click.option("--include-masks", is_flag=True,
              help="Sample cloud, snow or ice and not-compared pixels too (left out by default, and then "
                   "outside the area assessed).")
@click.option("--seed", type=click.IntRange(0), help="Random seed (default: drawn, and recorded in the GeoPackage).")
@click.option("--overwrite", is_flag=True, help="Replace an existing GeoPackage.")
@click.option("--json", "as_json", is_flag=True, help="Print the design as JSON on stdout.")
def sample(map_path, out, n, allocation, minimum, anticipated, counts, include_masks, seed, overwrite, as_json):
    """Draw a stratified random sample of MAP's pixels (a map from `s2lc classify` or
    `s2lc change`), for accuracy and area by good practice (Olofsson et al. 2014).

    The strata are the codes MAP holds (no data and masks left out). -o names the GeoPackage
    to write: points at pixel centres with map_code, map_class and an empty reference field,
    which QGIS opens with a form to pick each point's reference class. Once they are labelled,
    run `s2lc assess MAP SAMPLES.gpkg`.
    """
    from s2lc.sampling import draw_sample

    ctx = click.get_current_context()
    if (n is None) == (counts is None):
        raise click.UsageError("give --n N (with --allocation) or --counts CODE=N,..., one of them")
    given = [f"--{name.replace('_', '-')}" for name in ("allocation", "minimum", "anticipated")
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if counts is not None and given:
        raise click.UsageError(f"{', '.join(given)} go with --n, not --counts")
    if anticipated is not None and allocation != "neyman":
        raise click.UsageError("--anticipated goes with --allocation neyman")
    if not out.lower().endswith(".gpkg"):
        raise click.BadParameter(f"{out} does not end in .gpkg; name the GeoPackage NAME.gpkg", param_hint="'-o'")
    design = draw_sample(map_path, out, n=n, allocation=allocation, counts=counts, anticipated=anticipated,
                         minimum=minimum, include_masks=include_masks, seed=seed, overwrite=overwrite,
                         progress=progress_enabled())
    summary = design.to_dict()
    if as_json:
        summary["out"] = out
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    if not summary_enabled():
        return
    rows = summary["strata"]
    width = max(7, *(len(r["label"]) for r in rows))
    click.echo(f"{'stratum':<{width}}  {'code':>4}  {'pixels':>12}  {'area ha':>13}  {'points':>6}", err=True)
    for r in rows:
        click.echo(f"{r['label']:<{width}}  {r['code']:>4}  {r['pixels']:>12,}  {r['area_ha']:>13,.2f}  {r['n']:>6}",
                   err=True)
    if summary["excluded_masks"]:
        click.echo("left out (masks; --include-masks samples them): "
                   + ", ".join(f"{m['label']} {m['pixels']:,} px" for m in summary["excluded_masks"]), err=True)
    click.echo(f"wrote {summary['n']} points in {len(rows)} strata to {out} ({allocation if counts is None else 'counts'}"
               f", seed {design.seed}); label them in QGIS, then run `s2lc assess {map_path} {out}`", err=True)
