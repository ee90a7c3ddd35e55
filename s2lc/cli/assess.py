"""``s2lc assess MAP SAMPLES.gpkg``: accuracy and error-adjusted area from a labelled sample."""

from __future__ import annotations

import json

import click

from s2lc.cli.main import output_folder, progress_enabled, summary_enabled

__all__ = ["assess"]


@click.command(short_help="Accuracy and error-adjusted area of a map from a labelled sample.")
@click.argument("map_path", metavar="MAP", type=click.Path(exists=True, dir_okay=False))
@click.argument("samples", metavar="SAMPLES.gpkg", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False),
              help="Also write the report (JSON), the per-class table and error matrix (CSV) and an area "
                   "figure (PNG) into this folder (created if needed).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def assess(map_path, samples, out_dir, overwrite, as_json):
    """Estimate MAP's accuracy and its classes' areas from SAMPLES.gpkg, the sample that
    `s2lc sample` drew from it with each point's reference class filled in.

    Gives the error matrix in area proportions, overall, user's and producer's accuracies and
    the error-adjusted area of each class in hectares, each with a 95 % confidence interval
    (± half-width), by the stratified estimators of Olofsson et al. (2014).
    """
    from s2lc.accuracy import accuracy_paths
    from s2lc.accuracy import assess as run_assess
    from s2lc.files import check_outputs

    if out_dir is not None:  # refuse existing outputs before reading the map
        from pathlib import Path

        if Path(out_dir).is_dir():
            check_outputs(accuracy_paths(out_dir, samples).values(), overwrite)
    report = run_assess(map_path, samples, progress=progress_enabled())
    paths = {}
    if out_dir is not None:
        with output_folder(out_dir) as out:
            paths = report.save(out, overwrite=overwrite)
    if as_json:
        summary = report.summary()
        summary["outputs"] = {k: str(p) for k, p in paths.items()}
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        click.echo(report.text())
    if paths and summary_enabled():
        click.echo(f"wrote {len(paths)} files to {out_dir}", err=True)
