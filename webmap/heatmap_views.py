"""Pages: the indicator heat maps of ``webmap.heatmaps``, served with local assets.

``/maps/indicator?indicator=…&level=…&period=…&scheme=…&k=…&compare=…&layout=…&base=…``
``&class=…&source=…``, every parameter optional (see :func:`webmap.heatmaps.options_from`);
``layout=dual`` shows the two periods side by side. Bad input answers 400 with the reason. A
small form on the map switches indicator, level, period, comparison and scheme.

The page shows the same figures as the command centre's dashboard and ``/api/indicators``, so
it is for the same roles (:data:`webmap.command.READ_ROLES`, and admin): a visitor who is not
signed in is sent to sign in (a JSON client gets 401), another role gets 403.
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

import folium
from flask import Blueprint, Response, current_app, request

from gis.case_summary import default_period
from webmap import current_store
from webmap.auth import roles_required
from webmap.command import READ_ROLES
from webmap.heatmaps import (
    BASES,
    LAYOUTS,
    MAP_LEVELS,
    MAX_K,
    SCHEMES,
    SPECS,
    MapOptions,
    indicator_map,
    options_from,
)
from webmap.maps import LEVEL_LABELS, RawElement, check_offline, compact_json, use_served_assets
from webmap.views import ASSETS_PREFIX, CachedPage

bp = Blueprint("heatmaps", __name__)

#: Built pages are kept this long (app setting ``HEATMAP_CACHE_SECONDS``; 0 turns it off):
#: the Liangxi indicators take seconds to compute, and figures move slowly.
CACHE_SECONDS = 300
CACHE_SIZE = 32

FORM_CSS = """<style>
.gridgov-heat-form{position:fixed;top:10px;left:54px;z-index:1001;max-width:calc(100% - 70px);
background:rgba(255,255,255,.94);padding:4px 8px;border-radius:4px;font:12px/1.6 sans-serif;
box-shadow:0 1px 4px rgba(0,0,0,.3)}
.gridgov-heat-form summary{cursor:pointer;font-weight:bold}
.gridgov-heat-form form{display:flex;flex-wrap:wrap;gap:4px 8px;align-items:center;margin-top:4px}
.gridgov-heat-form input{width:7.5em}
.gridgov-heat-form .gridgov-error{color:#b91c1c}
</style>"""


def _select(name: str, choices: dict[str, str], chosen: str) -> str:
    items = "".join(
        f'<option value="{html.escape(value)}"{" selected" if value == chosen else ""}>'
        f"{html.escape(label)}</option>" for value, label in choices.items())
    return f'<select name="{name}" aria-label="{name}">{items}</select>'


def control_form(options: MapOptions, action: str) -> str:
    """A GET form over the map that reloads it with another indicator, level, period…"""
    indicators = {key: spec.label for key, spec in SPECS.items()}
    levels = {level: LEVEL_LABELS[level] for level in MAP_LEVELS}
    compare = options.compare.label if options.compare else ""
    fields = [
        _select("indicator", indicators, options.indicator),
        _select("level", levels, options.level),
        f'<label>期间 <input name="period" value="{html.escape(options.period.label)}" '
        'placeholder="2019 / 2019Q2 / 2019-05"></label>',
        f'<label>对比期 <input name="compare" value="{html.escape(compare)}" '
        'placeholder="如 2018"></label>',
        _select("layout", LAYOUTS, options.layout),
        _select("scheme", SCHEMES, options.scheme),
        _select("k", {str(k): f"{k} 级" for k in range(2, MAX_K + 1)}, str(options.k)),
        _select("base", BASES, options.base),
        '<button type="submit">显示</button>',
    ]
    return (f'<details class="gridgov-heat-form" open><summary>{html.escape(options.title)}'
            f'</summary><form method="get" action="{html.escape(action)}">{"".join(fields)}'
            "</form></details>")


def render_page(fmap: folium.Map, assets_url: str, title: str, form: str) -> str:
    """The whole page: the map with its assets served from ``assets_url``, and the form."""
    figure = use_served_assets(fmap, assets_url).get_root()
    figure.title = title
    figure.header.add_child(RawElement(FORM_CSS), name="gridgov_heat_form_css")
    figure.html.add_child(RawElement(form), name="gridgov_heat_form")
    with compact_json():
        return check_offline(figure.render())


class PageCache:
    """A small time-limited, least-recently-used cache of built pages (one per app)."""

    def __init__(self, seconds: float, size: int = CACHE_SIZE) -> None:
        self.seconds, self.size = seconds, size
        self._pages: OrderedDict[Hashable, tuple[float, CachedPage]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], CachedPage]) -> CachedPage:
        now = time.monotonic()
        with self._lock:
            hit = self._pages.get(key)
            if hit is not None and now - hit[0] < self.seconds:
                self._pages.move_to_end(key)
                return hit[1]
        page = build()
        if self.seconds > 0:
            with self._lock:
                self._pages[key] = (now, page)
                self._pages.move_to_end(key)
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)
        return page


def _cache() -> PageCache:
    seconds = float(current_app.config.get("HEATMAP_CACHE_SECONDS", CACHE_SECONDS))
    return current_app.extensions.setdefault("gridgov_heatmaps", PageCache(seconds))


def _bad_request(message: str) -> tuple[str, int, dict[str, str]]:
    body = (f'<!DOCTYPE html><html lang="zh-CN"><meta charset="utf-8"><title>参数错误</title>'
            f"<p>参数错误 (bad request): {html.escape(message)}</p>"
            f'<p><a href="{html.escape(request.path)}">默认地图</a></p></html>')
    return body, 400, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/maps/indicator")
@roles_required(*READ_ROLES)  # who may read the dashboard's figures
def indicator_page() -> Response | tuple[str, int, dict[str, str]]:
    """An indicator per street, community and grid (or its change between two periods)."""
    store = current_store()
    generation_id = store.active_id()
    if generation_id is None:
        return ("No active boundary generation: run `gridgov boundaries load`.", 503,
                {"Content-Type": "text/plain; charset=utf-8"})
    with store.engine.connect() as conn:
        today = default_period(conn)
    try:
        options = options_from(request.args, today)
    except ValueError as exc:
        return _bad_request(str(exc))
    assets_url = request.script_root + ASSETS_PREFIX

    def build() -> CachedPage:
        fmap = indicator_map(store.engine, options, store.levels(generation_id))
        form = control_form(options, request.path)
        return CachedPage.of(render_page(fmap, assets_url, options.title, form))

    key = (generation_id, options, assets_url, request.path)
    response = _cache().get(key, build).response()
    response.cache_control.private = True  # for signed-in users: no shared cache keeps it
    return response
