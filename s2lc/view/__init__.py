"""``s2lc view``: a web map of land cover and change over the dates, from s2lc's own outputs.

- :func:`find_layers` finds the classify and change outputs under some folders;
- :func:`create_view_app` serves them (FastAPI, the ``serve`` extra; tiles by rio-tiler);
- :func:`export_site` writes a static site of pre-rendered tiles that any web server can host.

The page (``static/``) uses Leaflet, vendored with its licence, so it needs no network.
"""

from __future__ import annotations

from s2lc.view.catalogue import Catalogue, Layer, find_layers

__all__ = ["Catalogue", "Layer", "create_view_app", "export_site", "find_layers"]


def __getattr__(name: str):
    # the app needs FastAPI, the site rio-tiler: import them only when asked for
    if name == "create_view_app":
        from s2lc.view.app import create_view_app

        return create_view_app
    if name == "export_site":
        from s2lc.view.export import export_site

        return export_site
    raise AttributeError(name)
