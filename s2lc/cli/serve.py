"""``s2lc serve``: classify uploaded patches and GeoTIFFs over HTTP (needs the ``serve`` extra)."""

from __future__ import annotations

import importlib.util
import logging

import click

from s2lc.cli.main import choice, progress_enabled
from s2lc.options import Device, Precision

logger = logging.getLogger(__name__)

#: Import names of the ``serve`` extra (python-multipart imports as python_multipart).
SERVE_MODULES = ("fastapi", "uvicorn", "python_multipart")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command(short_help="Serve the classifier over HTTP (POST /classify).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on; 0.0.0.0 for every one.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--model", default=None, type=click.Path(exists=True, dir_okay=False),
              help="s2lc checkpoint; default: the shipped EuroSAT RGB model.")
@click.option("--max-upload-mb", default=20.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Largest request body in MB (10^6 bytes); larger ones get 413.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1),
              help="Patches per model batch; concurrent requests are batched together up to this.")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0),
              help="How long a request waits for others to share its batch; 0 batches only what is already queued.")
@click.option("--device", default="auto", show_default=True, type=choice(Device))
@click.option("--precision", default="auto", show_default=True, type=choice(Precision),
              help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")
def serve(host, port, model, max_upload_mb, batch_size, max_wait_ms, device, precision):
    """Serve POST /classify (multipart field 'file': an 8-bit RGB PNG/JPEG patch or a GeoTIFF of
    Sentinel-2 DN), GET /health, GET /model and the OpenAPI document at /openapi.json and /docs.

    The model is loaded once, before the server starts. Ctrl-C stops it.
    """
    missing = [m for m in SERVE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f's2lc serve needs {", ".join(missing)}: pip install "s2lc[serve]"')
    import uvicorn

    from s2lc.server import create_app

    app = create_app(model, max_upload_mb=max_upload_mb, batch_size=batch_size, max_wait_ms=max_wait_ms,
                     device=device, precision=precision)
    if host not in _LOOPBACK:
        logger.warning("listening on %s: the server has no authentication; put it behind a proxy that has", host)
    if progress_enabled():
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"serving {app.state.loaded.contract.name or app.state.loaded.path.name} on http://{shown}:{port} "
                   "(API docs at /docs); Ctrl-C stops", err=True)
    # log_config=None: uvicorn's messages go through the s2lc logging set up by the group (stderr, -v/-q)
    uvicorn.run(app, host=host, port=port, log_config=None)
