"""The web layer: Flask blueprints for the map pages and the JSON API, Folium map builders.

:func:`create_app` is the application factory (``app.py`` at the project root re-exports it for
``flask --app app run`` and WSGI servers; it lives here because ``app.py`` is not an installed
module and ``gridgov serve`` must import it from anywhere). Pages and API call ``gis`` functions
only; what they share per process is a :class:`GenerationStore`.

Settings (``create_app(config)`` wins over the environment, ``GRIDGOV_<NAME>``):

- ``DATABASE_URL``: database to use; default ``gis.database.get_engine()`` (``DATABASE_URL`` or
  the embedded PostGIS);
- ``OSM_LAYER``: offer an OpenStreetMap layer (off until switched on; needs the internet);
- ``CACHE_GENERATIONS``: how many generations' units and pages to keep in memory (default 4);
- ``SECRET_KEY``: signs sessions (default ``GRIDGOV_SECRET_KEY`` or a key kept under GRIDGOV_HOME);
- ``SECURE_COOKIES``: mark cookies Secure (default on; turn off only for plain-HTTP local use);
- ``RATELIMIT_ENABLED``: login throttling and the Open311 filing limit (default on);
- ``OPEN311_…``: the Open311 interface's settings (docs/OPEN311.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import geopandas as gpd
    from flask import Flask
    from sqlalchemy import Engine

T = TypeVar("T")
EXTENSION = "gridgov"


class GenerationStore:
    """Per-process read-through cache of generations for the web layer.

    A generation's units never change once written, so its frames and whatever is built from
    them (map pages) are cached by generation id, least recently used first out. Which generation
    is active is asked of the database on every call.
    """

    def __init__(self, engine: Engine, size: int = 4) -> None:
        self.engine = engine
        self.size = max(1, size)
        self._entries: OrderedDict[int, dict[Hashable, Any]] = OrderedDict()
        self._lock = threading.RLock()

    def active_id(self) -> int | None:
        from gis.boundaries import active_generation_id

        with self.engine.connect() as conn:
            return active_generation_id(conn)

    def cached(self, generation_id: int, key: Hashable, build: Callable[[], T]) -> T:
        """The value stored for ``(generation_id, key)``, built once by ``build()``."""
        with self._lock:
            entry = self._entries.get(generation_id)
            if entry is not None and key in entry:
                self._entries.move_to_end(generation_id)
                return entry[key]
            value = build()
            entry = self._entries.setdefault(generation_id, {})
            entry[key] = value
            self._entries.move_to_end(generation_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return value

    def levels(self, generation_id: int) -> dict[str, gpd.GeoDataFrame]:
        """The generation's units per level; raises ``LookupError`` for an unknown id."""
        from gis.boundaries import read_generation

        return self.cached(generation_id, "levels",
                           lambda: read_generation(self.engine, generation_id))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def current_store() -> GenerationStore:
    """The store of the app handling the current request."""
    from flask import current_app

    return current_app.extensions[EXTENSION]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: pages at ``/``, offline assets at ``/assets``, JSON at ``/api``."""
    from flask import Flask

    from gis.database import get_engine
    from webmap import (
        api,
        api_cases,
        auth,
        command,
        heatmap_views,
        i18n,
        mobile,
        open311,
        photos_views,
        views,
    )

    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DATABASE_URL=None, OSM_LAYER=False, CACHE_GENERATIONS=4)
    app.config.from_prefixed_env("GRIDGOV")
    if config:
        app.config.update(config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    engine = get_engine(app.config["DATABASE_URL"] or None)
    app.extensions[EXTENSION] = GenerationStore(engine, int(app.config["CACHE_GENERATIONS"]))
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api_cases.bp)
    app.register_blueprint(heatmap_views.bp)
    app.register_blueprint(mobile.bp)
    app.register_blueprint(photos_views.bp)
    auth.init_app(app)
    open311.init_app(app)  # after auth: its CSRF check must skip the api_key blueprint
    i18n.init_app(app)
    app.register_blueprint(command.bp)
    register_database_unavailable(app)
    app.before_request(refuse_nul_characters)
    return app


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def refuse_nul_characters():
    """400 for a NUL character in the path, the query string, a form field or a JSON body.

    PostgreSQL text cannot hold NUL, so such a value would otherwise fail deep in a query as a
    500; no legitimate client sends one. (File uploads are not looked at: images hold NULs.)
    """
    from flask import jsonify, request

    fields = [request.path, *request.args.keys(), *request.args.values()]
    if request.mimetype == "application/x-www-form-urlencoded":
        fields += [*request.form.keys(), *request.form.values()]
    elif request.mimetype == "multipart/form-data":
        fields += [*request.form.keys(), *request.form.values()]  # files stay unread here
    body = request.get_json(silent=True) if request.is_json else None
    if not (any(_has_nul(f) for f in fields) or _has_nul(body)):
        return None
    message = "NUL characters are not accepted"
    if request.path.startswith("/open311/"):
        return jsonify([{"code": 400, "description": message}]), 400
    if request.path.startswith("/api/") or request.is_json:
        return jsonify(error={"status": 400, "message": message}), 400
    return message, 400, {"Content-Type": "text/plain; charset=utf-8"}


#: Errors that mean "the database cannot be reached now" rather than a bug: server down or
#: restarting, connection dropped mid-request, or no pooled connection free in time.
RETRY_AFTER_S = 5


def register_database_unavailable(app: Flask) -> None:
    """Answer 503 (JSON under ``/api``, a plain page elsewhere) while the database is away.

    Registered app-wide, so every blueprint is covered; the engine's ``pool_pre_ping`` brings
    the app back by itself once the server is up again.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    for error in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(error, database_unavailable)


def database_unavailable(exc: Exception):
    """The 503 answer for a database outage: no stack trace, no internals, a retry hint.

    The page is rendered from the template alone, without the context processors (which look
    up the signed-in user, i.e. the database that is not there).
    """
    from flask import current_app, jsonify, request

    current_app.logger.warning("database unavailable for %s %s: %s", request.method,
                               request.path, type(exc).__name__)
    message = "the database is not reachable; try again shortly"
    json_wanted = request.path.startswith(("/api/", "/open311/")) or (
        request.accept_mimetypes.best == "application/json")
    if json_wanted:
        response = jsonify(error={"status": 503, "message": message})
    else:
        page = current_app.jinja_env.get_template("unavailable.html").render(
            heading="Database unavailable · 数据库暂不可用",
            message="数据库暂时无法连接，请稍后重试。The database is not reachable right now; "
                    "please try again in a moment (administrators: `gridgov db status`).")
        response = current_app.response_class(page, mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    response.headers["Cache-Control"] = "no-store"
    return response
