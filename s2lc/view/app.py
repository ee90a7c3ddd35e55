"""The web map behind ``s2lc view``: a FastAPI app over a :class:`~s2lc.view.catalogue.Catalogue`.

Routes:

- ``GET /``: the page (``static/index.html``), with Leaflet vendored under ``/static/vendor``.
- ``GET /index.json``: the dates, layers, legends, areas and bounds the page needs.
- ``GET /tiles/{layer}/{z}/{x}/{y}.png``: a 256-pixel Web Mercator tile, rendered on request
  from the layer's COG by rio-tiler; 404 where the tile does not touch the layer.
- ``GET /point?lon=…&lat=…``: class, confidence and change at a point, for every date.

Layers are addressed by the catalogue's ids, never by a path, and static files come only from
the package's ``static`` folder, so nothing outside the catalogue can be read. Nothing is
written. Errors are JSON: ``{"detail": "…"}`` with a 4xx status.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path
from typing import Any

from s2lc.errors import DependencyError

try:
    from fastapi import FastAPI, Query
    from fastapi import Path as PathParam
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from rasterio.errors import RasterioIOError
    from starlette.exceptions import HTTPException
    from starlette.middleware.trustedhost import TrustedHostMiddleware
except ImportError as exc:  # pragma: no cover - exercised by the CLI test with the extra hidden
    raise DependencyError(f's2lc view needs the "serve" extra ({exc}); pip install "s2lc[serve]"') from exc

from s2lc import __version__
from s2lc.view.catalogue import Catalogue
from s2lc.view.tiles import ZOOM_LIMIT, point_values, render_tile, zoom_range

logger = logging.getLogger(__name__)

__all__ = ["LOOPBACK_HOSTS", "STATIC", "create_view_app", "page_index"]

#: The page, its script and style, and the vendored map library.
STATIC = Path(str(files("s2lc.view") / "static"))
#: The Host headers of a server on the loopback interface (the port does not matter to the check).
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]
#: Browsers may keep a tile this long (seconds): the files behind it do not change while serving.
TILE_MAX_AGE = 300


def page_index(catalogue: Catalogue, *, mode: str, basemap: str | None, attribution: str,
               zoom: tuple[int, int], **extra: Any) -> dict[str, Any]:
    """``index.json``: the catalogue, how the page reads points (``mode``: ``server`` asks
    ``point``, ``static`` reads ``grids/<id>.json``), the basemap and the native zoom range."""
    return catalogue.index(mode=mode, basemap=basemap, attribution=attribution, zoom=list(zoom),
                           version=__version__, **extra)


def create_view_app(catalogue: Catalogue, *, basemap: str | None = None, attribution: str = "",
                    allowed_hosts: list[str] | None = None) -> FastAPI:
    """The app serving ``catalogue``.

    Args:
        catalogue: what :func:`~s2lc.view.catalogue.find_layers` found.
        basemap: an XYZ tile URL template (``https://…/{z}/{x}/{y}.png``) drawn under the maps,
            or None for none (the page then works offline).
        attribution: the basemap's attribution, shown in the map's corner.
        allowed_hosts: the ``Host`` headers answered (others get 400), or None for any. A
            server on the loopback interface should allow only its own names
            (:data:`LOOPBACK_HOSTS`), so that a web page elsewhere cannot reach it through a DNS
            name that points at 127.0.0.1 (DNS rebinding).
    """
    app = FastAPI(title="s2lc view", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    index = page_index(catalogue, mode="server", basemap=basemap, attribution=attribution,
                       zoom=zoom_range(list(catalogue.layers.values())))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/index.json")
    def index_json() -> dict[str, Any]:
        return index

    @app.get("/tiles/{layer}/{z}/{x}/{y}.png", responses={200: {"content": {"image/png": {}}}})
    def tile(layer: str, z: int = PathParam(ge=0, le=ZOOM_LIMIT), x: int = PathParam(ge=0),
             y: int = PathParam(ge=0)) -> Response:
        found = catalogue.layers.get(layer)
        if found is None:
            raise HTTPException(404, f"no layer {layer!r}; index.json lists the layers")
        if x >= 2**z or y >= 2**z:
            raise HTTPException(422, f"tile {z}/{x}/{y} does not exist: x and y must be below 2**z = {2**z}")
        png = render_tile(found, z, x, y, skip_empty=True)
        if png is None:
            raise HTTPException(404, f"tile {z}/{x}/{y} holds no data of {layer}")
        return Response(png, media_type="image/png", headers={"Cache-Control": f"max-age={TILE_MAX_AGE}"})

    @app.get("/point")
    def point(lon: float = Query(ge=-180, le=180), lat: float = Query(ge=-90, le=90)) -> dict[str, Any]:
        return point_values(catalogue, lon, lat)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(HTTPException)
    async def _as_json(request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RasterioIOError)
    async def _gone(request, exc: RasterioIOError) -> JSONResponse:  # a file removed or rewritten while serving
        logger.warning("%s: %s", request.url.path, exc)
        return JSONResponse({"detail": f"a file behind this layer changed or went away ({exc}); restart s2lc view"},
                            status_code=410)

    return app
