"""Offline web assets: the JavaScript and CSS a map page needs, taken from installed packages.

A stock Folium page loads Leaflet, jQuery, Bootstrap, Font Awesome and Leaflet.awesome-markers
from public CDNs, so on an intranet it draws nothing. Here every file a page uses comes from a
declared Python dependency instead:

- ``leaflet``: XStatic-Leaflet (Leaflet 1.9.3, the version Folium 0.20 expects), with images;
- ``jquery``: XStatic-jQuery (3.7.1, as Folium), used by Folium's HTML popups;
- ``folium``: the files Folium ships itself (the Leaflet.heat plugin of ``folium.plugins.HeatMap``).

Bootstrap, Font Awesome, glyphicons and Leaflet.awesome-markers only serve ``folium.Icon`` markers;
the project draws none, and no installable package ships awesome-markers, so those links are
dropped (see :data:`MARKER_ONLY_LINKS`).

Files are addressed as ``<bundle>/<path inside the bundle's folder>``, e.g.
``leaflet/leaflet.css``; CSS refers to its images relatively (``images/layers.png``), so a
bundle is served as a folder.
"""

from __future__ import annotations

import base64
import importlib
import mimetypes
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: bundle name -> (module whose folder holds the files, attribute naming that folder or None)
_BUNDLE_SOURCES: dict[str, tuple[str, str | None]] = {
    "leaflet": ("xstatic.pkg.leaflet", "BASE_DIR"),
    "jquery": ("xstatic.pkg.jquery", "BASE_DIR"),
    "folium": ("folium", None),  # folium/templates/*.js
}


@dataclass(frozen=True)
class Asset:
    """One file of a bundle."""

    bundle: str
    path: str

    @property
    def url_path(self) -> str:
        """Path below the assets root: ``leaflet/leaflet.js``."""
        return f"{self.bundle}/{self.path}"

    @property
    def kind(self) -> str:
        return "css" if self.path.endswith(".css") else "js"


#: Folium's link names (``default_js``/``default_css`` entries) -> the local file.
FOLIUM_LINKS: dict[str, Asset] = {
    "leaflet": Asset("leaflet", "leaflet.js"),
    "leaflet_css": Asset("leaflet", "leaflet.css"),
    "jquery": Asset("jquery", "jquery.min.js"),
    "leaflet-heat.js": Asset("folium", "templates/leaflet_heat.min.js"),
}

#: Folium's links that only style ``folium.Icon`` markers; dropped from offline pages.
MARKER_ONLY_LINKS = frozenset({
    "bootstrap", "bootstrap_css", "glyphicons_css", "awesome_markers", "awesome_markers_css",
    "awesome_markers_font_css", "awesome_rotate_css",
})

_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".map": "application/json",
}


class AssetError(LookupError):
    """An asset the page needs is not available locally."""


@cache
def bundle_dir(bundle: str) -> Path:
    """The folder holding a bundle's files inside its installed package."""
    try:
        module_name, attribute = _BUNDLE_SOURCES[bundle]
    except KeyError:
        raise AssetError(f"unknown asset bundle {bundle!r}") from None
    module = importlib.import_module(module_name)
    if attribute:
        return Path(getattr(module, attribute)).resolve()
    return Path(module.__file__).resolve().parent


def bundle_names() -> tuple[str, ...]:
    return tuple(_BUNDLE_SOURCES)


def resolve(bundle: str, path: str) -> Path:
    """The file of ``bundle`` at ``path``; refuses anything outside the bundle's folder."""
    root = bundle_dir(bundle)
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise AssetError(f"no asset {bundle}/{path}")
    return target


def content_type(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(str(path))[0] or (
        "application/octet-stream")


def asset_for_link(name: str, url: str) -> Asset | None:
    """The local file for one of Folium's links, ``None`` for a marker-only link to drop.

    Raises :class:`AssetError` for a link no installed package provides.
    """
    if name in FOLIUM_LINKS:
        return FOLIUM_LINKS[name]
    if name in MARKER_ONLY_LINKS:
        return None
    raise AssetError(f"no offline copy of {name!r} ({url}); add it to webmap.assets")


# -- inlining -------------------------------------------------------------------------------------
_SOURCE_MAP = re.compile(r"^\s*/[/*]# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")


def inline_js(asset: Asset) -> str:
    """A script's text, safe inside ``<script>`` (no source-map fetches, no ``</script``)."""
    text = resolve(asset.bundle, asset.path).read_text(encoding="utf-8")
    text = _SOURCE_MAP.sub("", text)
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def inline_css(asset: Asset) -> str:
    """A stylesheet's text with every relative ``url(...)`` replaced by a ``data:`` URI."""
    path = resolve(asset.bundle, asset.path)
    base = Path(asset.path).parent

    def embed(match: re.Match[str]) -> str:
        ref = match.group(2).strip()
        if ref.startswith(("data:", "#")) or "://" in ref:
            return match.group(0)
        clean = ref.split("#", 1)[0].split("?", 1)[0]
        target = resolve(asset.bundle, str(base / clean))
        payload = base64.b64encode(target.read_bytes()).decode("ascii")
        return f'url("data:{content_type(target).split(";")[0]};base64,{payload}")'

    text = _SOURCE_MAP.sub("", path.read_text(encoding="utf-8"))
    return re.sub(r"</(style)", r"<\\/\1", _CSS_URL.sub(embed, text), flags=re.IGNORECASE)
