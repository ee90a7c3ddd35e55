"""``s2lc evaluate``: accuracy, per-class scores and confusion matrix of a model on a dataset split."""

from __future__ import annotations

import json

import click

from s2lc.cli.main import choice, progress_enabled
from s2lc.options import Device, Precision


@click.command(short_help="Evaluate a model on a dataset's test split.")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", type=click.Path(exists=True))
@click.option("--split", default="test", show_default=True, type=click.Choice(["test", "val", "train", "all"]))
@click.option("--tta", is_flag=True, help="Average over the 8 flips/rotations (test-time augmentation).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1))
@click.option("--device", default="auto", show_default=True, type=choice(Device))
@click.option("--precision", default="auto", show_default=True, type=choice(Precision))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON on stdout.")
def evaluate(model, data, split, tta, batch_size, device, precision, as_json):
    """Evaluate MODEL (an s2lc checkpoint) on a split of DATA (EuroSAT-style folder or zip).

    The split is the same deterministic 60/20/20 split that training used."""
    from s2lc.evaluation import evaluate as run_evaluation

    report = run_evaluation(model, data, split=split, tta=tta, batch_size=batch_size, device=device,
                            precision=precision, progress=progress_enabled())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{split} split: {report['n']} patches, accuracy {100 * report['accuracy']:.2f} %, "
               f"macro F1 {100 * report['macro_f1']:.2f} %")
    width = max(len(c) for c in report["classes"])
    click.echo(f"{'class':<{width}}  precision  recall     f1  support")
    for name, s in report["per_class"].items():
        click.echo(f"{name:<{width}}  {100 * s['precision']:8.2f}  {100 * s['recall']:6.2f}  "
                   f"{100 * s['f1']:5.2f}  {s['support']:7d}")
    click.echo("confusion matrix (rows true, columns predicted):")
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        click.echo(f"{name:<{width}}  " + " ".join(f"{v:5d}" for v in row))
