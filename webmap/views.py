"""Pages: the full-screen map of the active generation, and the offline assets it loads."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file
from sqlalchemy.exc import OperationalError

from webmap import current_store
from webmap.assets import AssetError, content_type, resolve
from webmap.maps import build_units_map, render_parts, use_served_assets

bp = Blueprint("webmap", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/webmap")

ASSETS_PREFIX = "/assets"
ASSET_MAX_AGE = 24 * 3600


@dataclass(frozen=True)
class CachedPage:
    """A built page, kept both plain and gzip-compressed (map pages compress ~10:1)."""

    body: bytes
    gzipped: bytes

    @classmethod
    def of(cls, html: str) -> CachedPage:
        body = html.encode("utf-8")
        return cls(body, gzip.compress(body, compresslevel=6, mtime=0))

    def response(self) -> Response:
        compress = "gzip" in request.accept_encodings
        response = Response(self.gzipped if compress else self.body, mimetype="text/html")
        if compress:
            response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        return response


@bp.get("/")
def home() -> Response | tuple[str, int]:
    """The active generation's streets, communities and grids on one map."""
    store = current_store()
    generation_id = store.active_id()
    if generation_id is None:
        return _unavailable("No active boundary generation",
                            "尚未加载边界。There are no boundaries to draw yet: load the shipped "
                            "Liangxi grid system with `gridgov boundaries load` (or import and "
                            "activate a generation), then reload this page.")
    assets_url = request.script_root + ASSETS_PREFIX
    osm = bool(current_app.config["OSM_LAYER"])
    page = store.cached(generation_id, ("home", assets_url, osm),
                        lambda: CachedPage.of(_home_page(generation_id, assets_url, osm)))
    return page.response()


def _home_page(generation_id: int, assets_url: str, osm: bool) -> str:
    levels = current_store().levels(generation_id)
    district = levels["district"].iloc[0]
    title = f"{district['name']} · 街道 / 社区 / 网格"
    fmap = build_units_map(levels, online_basemap=osm)
    parts = render_parts(use_served_assets(fmap, assets_url))
    counts = {level: len(frame) for level, frame in levels.items()}
    return render_template("map.html", title=title, parts=parts, counts=counts,
                           generation_id=generation_id)


def _unavailable(heading: str, message: str) -> tuple[str, int]:
    return render_template("unavailable.html", heading=heading, message=message), 503


@bp.errorhandler(OperationalError)
def _database_down(exc: OperationalError) -> Response:
    # not render_template: its context processors would look up the signed-in user in the
    # database that is down, and turn this 503 into a 500
    from webmap import database_unavailable

    return database_unavailable(exc)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The site icon, for pages that do not name one (Folium's map pages, browsers' guesses)."""
    return send_file(Path(bp.static_folder) / "favicon.svg", mimetype="image/svg+xml",
                     max_age=ASSET_MAX_AGE, conditional=True)


@bp.get(f"{ASSETS_PREFIX}/<bundle>/<path:filename>")
def asset(bundle: str, filename: str) -> Response:
    """A JS/CSS/image file from an installed package (see ``webmap.assets``)."""
    try:
        path = resolve(bundle, filename)
    except AssetError:
        abort(404)
    return send_file(path, mimetype=content_type(path), max_age=ASSET_MAX_AGE, conditional=True)
