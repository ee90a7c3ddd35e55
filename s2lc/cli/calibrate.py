"""``s2lc calibrate``: fit a checkpoint's temperature on its dataset's validation split and write
a calibrated copy (same weights, new contract)."""

from __future__ import annotations

import json

import click

from s2lc.cli.main import choice, progress_enabled, summary_enabled
from s2lc.options import Device, Precision

__all__ = ["calibrate"]


@click.command(short_help="Calibrate a model's probabilities (temperature scaling).")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", type=click.Path(exists=True))
@click.option("-o", "--out", default=None, type=click.Path(dir_okay=False),
              help="Calibrated checkpoint to write; default: MODEL's name with _calibrated, beside it.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists (it may be MODEL itself).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1))
@click.option("--device", default="auto", show_default=True, type=choice(Device))
@click.option("--precision", default="auto", show_default=True, type=choice(Precision),
              help="As s2lc classify runs the model: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
@click.option("--json", "as_json", is_flag=True, help="Print the temperature, NLL and ECE before and after as JSON on stdout.")
def calibrate(model, data, out, overwrite, batch_size, device, precision, as_json):
    """Fit the temperature of MODEL (an s2lc checkpoint) on the validation split of DATA, the
    EuroSAT-style folder or zip it was trained on, and write a checkpoint with the same weights
    and that temperature in its contract.

    The split is the same deterministic 60/20/20 split that training used; the temperature
    minimises the validation NLL (Guo et al. 2017) and changes no prediction, only how sure the
    probabilities (and the confidence rasters of s2lc classify) say it is. The expected
    calibration error (15 equal-width confidence bins) is shown before and after, on validation
    and test."""
    from s2lc.evaluation import calibrate as run_calibration

    record = run_calibration(model, data, out=out, overwrite=overwrite, batch_size=batch_size, device=device,
                             precision=precision, progress=progress_enabled())
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    if not summary_enabled():
        return
    click.echo(f"temperature {record['temperature']:.4f} (was {record['temperature_before']:g}), "
               f"fitted on {record['val']['after']['n']} validation patches", err=True)
    for split in ("val", "test"):
        before, after = record[split]["before"], record[split]["after"]
        click.echo(f"{'validation' if split == 'val' else 'test':<10}  ECE {100 * before['ece']:5.2f} % -> "
                   f"{100 * after['ece']:5.2f} %, NLL {before['nll']:.4f} -> {after['nll']:.4f}, "
                   f"accuracy {100 * after['accuracy']:.2f} % (unchanged)", err=True)
    click.echo(f"wrote {record['out']} (sha256 {record['out_sha256'][:12]}…)", err=True)
