"""``s2lc view``: a web map of land cover and change over the dates (needs the ``serve`` extra)."""

from __future__ import annotations

import importlib.util
import logging
import re
import socket

import click

from s2lc.cli.main import progress_enabled

logger = logging.getLogger(__name__)

#: Import names of what ``s2lc view`` needs from the ``serve`` extra.
VIEW_MODULES = ("fastapi", "uvicorn", "rio_tiler")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _zooms(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise click.BadParameter(f"{value!r}: give MIN-MAX zoom levels, e.g. 10-15")
    return int(match.group(1)), int(match.group(2))


def _check_port(host: str, port: int) -> None:
    """Fail before anything is printed if ``host:port`` cannot be listened on (a port in use
    would otherwise show a URL that another server answers)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                                   "choose another with --port, or stop what uses it") from exc


@click.command(short_help="Show land cover and change over the dates on a web map.")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on; 0.0.0.0 for every one.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--basemap", default=None, metavar="URL",
              help="XYZ tiles under the maps, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (needs a network); "
                   "default: none, the page works offline.")
@click.option("--attribution", default="", help="The basemap's attribution, shown on the map (required by most providers).")
@click.option("--export", "site", default=None, type=click.Path(file_okay=False), metavar="SITE",
              help="Write a static site into SITE (pre-rendered tiles, the page, its data) instead of serving.")
@click.option("--zoom", "zooms", default=None, callback=_zooms, metavar="MIN-MAX",
              help="With --export: the zoom levels to pre-render; default: the data's, two coarser, one finer.")
@click.option("--overwrite", is_flag=True, help="With --export: replace a SITE folder that is not empty.")
def view(folders, host, port, basemap, attribution, site, zooms, overwrite):
    """Serve (or --export) a web map of the s2lc classify and change outputs under FOLDERS:
    the land-cover maps with a date slider, an opacity control and the legend; each date's true
    colour; the change between two dates; a click that shows the class, its confidence and the
    date, with the tile's class areas over the dates.

    It reads the folders and never writes into them. Ctrl-C stops the server.
    """
    missing = [m for m in VIEW_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f's2lc view needs {", ".join(missing)}: pip install "s2lc[serve]"')
    if zooms is not None and site is None:
        raise click.UsageError("--zoom applies to --export; the server renders every zoom level on request")
    from s2lc.view import find_layers

    catalogue = find_layers(folders)
    counts = {k: len(catalogue.of_kind(k)) for k in ("landcover", "change", "truecolour")}
    found = (f"{counts['landcover']} maps on {len(catalogue.dates)} dates, {counts['change']} change maps, "
             f"{counts['truecolour']} true-colour previews")
    if site is not None:
        from s2lc.view import export_site

        done = export_site(catalogue, site, zooms=zooms, basemap=basemap, attribution=attribution,
                           overwrite=overwrite, progress=progress_enabled())
        if progress_enabled():
            lo, hi = done["zooms"]
            click.echo(f"{found}: wrote {done['tiles']} tiles (zoom {lo}-{hi}) to {site}; "
                       f"serve it with any web server, e.g. python -m http.server -d {site}", err=True)
        return
    import uvicorn

    from s2lc.view.app import LOOPBACK_HOSTS, create_view_app

    _check_port(host, port)
    # on the loopback interface, answer only requests addressed to it (no DNS rebinding)
    allowed = LOOPBACK_HOSTS if host in ("127.0.0.1", "localhost") else None
    app = create_view_app(catalogue, basemap=basemap, attribution=attribution, allowed_hosts=allowed)
    if host not in _LOOPBACK:
        logger.warning("listening on %s: anyone who can reach it sees these maps", host)
    if progress_enabled():
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"{found}: http://{shown}:{port}/ ; Ctrl-C stops", err=True)
    uvicorn.run(app, host=host, port=port, log_config=None)
