"""The interface language: Flask-Babel with Simplified Chinese by default and English.

- Locale of a request: the signed-in user's setting, else ``?lang=`` (remembered in the
  session), else the browser's Accept-Language, else ``zh_CN``. The language switch posts to
  ``/language``, which saves the choice in the user's setting (or the session when signed out).
- Dates and times are shown in Asia/Shanghai and formatted, like numbers and percentages, by the
  Babel formatters of the locale (filters ``when``, ``number``, ``rate``, ``points``, ``signed``).
- Catalogues: ``webmap/translations/<locale>/LC_MESSAGES/messages.po``. Message ids are English;
  the ``en`` catalogue only adds notes the English reader needs (the working-time calendar is
  the Chinese one whatever the language). :func:`compile_catalogues` turns ``.po`` into ``.mo``
  under ``GRIDGOV_HOME/translations`` when missing or stale; the app factory calls it, so a
  fresh clone works without a build step and no compiled file lands in the source tree.
  To refresh the catalogues after changing strings::

      pybabel extract -F webmap/translations/babel.cfg -k _l --no-location --sort-output \
          -o webmap/translations/messages.pot .
      pybabel update -i webmap/translations/messages.pot -d webmap/translations --no-wrap \
          --ignore-obsolete
"""

from __future__ import annotations

import math
import os
import tempfile
from datetime import datetime
from functools import partial
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, redirect, request, session
from flask_babel import (
    Babel,
    format_datetime,
    format_decimal,
    format_percent,
    get_locale,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from gis.accounts import set_locale
from gis.config import get_settings
from webmap import current_store
from webmap.auth import user

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
DEFAULT_LOCALE = "zh_CN"
LOCALES = {"zh_CN": "中文", "en": "English"}
TIMEZONE = "Asia/Shanghai"
DASH = "—"

bp = Blueprint("i18n", __name__)


# -- catalogues -----------------------------------------------------------------------------------
def catalogue_name(folder: str) -> str:
    """The folder name Babel looks up for a catalogue folder: ``zh_CN`` → ``zh_Hans_CN``."""
    return str(Locale.parse(folder))


def compile_catalogues(source: Path = TRANSLATIONS_DIR, target: Path | None = None
                       ) -> list[Path]:
    """Compile every ``<locale>/LC_MESSAGES/*.po`` under ``source`` into ``.mo`` files under
    ``target`` where the ``.mo`` is missing or older than its ``.po``.

    ``target`` defaults to :func:`compiled_directory`. Folders are named as Babel looks them up
    (``zh_Hans_CN`` for ``zh_CN``). Fuzzy entries are left out; files are written atomically.
    Returns the files written.
    """
    target = target or compiled_directory()
    written = []
    for po_path in sorted(source.glob("*/LC_MESSAGES/*.po")):
        folder = po_path.parent.parent.name
        mo_path = target / catalogue_name(folder) / "LC_MESSAGES" / f"{po_path.stem}.mo"
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=folder, domain=po_path.stem)
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        os.replace(tmp, mo_path)
        written.append(mo_path)
    return written


def compiled_directory() -> Path:
    """Where compiled catalogues go: ``GRIDGOV_HOME/translations`` (outside the source tree,
    so a clone stays clean), or a folder in the temporary directory if that is not writable."""
    home = Path(get_settings().home) / "translations"
    try:
        home.mkdir(parents=True, exist_ok=True)
        if os.access(home, os.W_OK):
            return home
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"gridgov-translations-{os.getuid()}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


# -- locale of a request --------------------------------------------------------------------------
def normalise_locale(value: str | None) -> str | None:
    """``zh_CN`` or ``en`` for any spelling of either (``zh-cn``, ``en_US``…), else None."""
    if not value:
        return None
    primary = value.replace("-", "_").split("_")[0].lower()
    return {"zh": "zh_CN", "en": "en"}.get(primary)


def select_locale() -> str:
    """The signed-in user's setting, ``?lang=``, the session, then Accept-Language."""
    account = user()
    chosen = normalise_locale(account.locale) if account else None
    chosen = chosen or normalise_locale(request.args.get("lang"))
    chosen = chosen or normalise_locale(session.get("lang"))
    if chosen:
        return chosen
    accepted = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    return normalise_locale(accepted) or DEFAULT_LOCALE


def _remember_query_language() -> None:
    asked = normalise_locale(request.args.get("lang"))
    if asked and session.get("lang") != asked:
        session["lang"] = asked


def html_lang() -> str:
    """The ``lang`` attribute of the current locale (``zh-CN``, ``en``)."""
    return (normalise_locale(str(get_locale())) or DEFAULT_LOCALE).replace("_", "-")


@bp.post("/language")
def set_language() -> Response:
    """Save the chosen language (the user's setting, or the session) and go back."""
    chosen = normalise_locale(request.form.get("lang")) or DEFAULT_LOCALE
    session["lang"] = chosen
    account = user()
    if account is not None:
        with current_store().engine.begin() as conn:
            set_locale(conn, account.id, chosen)
    back = request.form.get("next") or "/"
    return redirect(back if back.startswith("/") and not back.startswith("//") else "/")


# -- formatting -----------------------------------------------------------------------------------
def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def when(value: datetime | None, fmt: str = "short") -> str:
    """A moment in Asia/Shanghai, formatted for the locale."""
    return DASH if value is None else format_datetime(value, fmt)


def number(value: float | int | None, digits: int = 0) -> str:
    if _missing(value):
        return DASH
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, pattern)


def rate(value: float | None, digits: int = 1) -> str:
    """``93.7%`` from 0.937."""
    if _missing(value):
        return DASH
    return format_percent(value, "#,##0." + "0" * digits + "%")


def points(value: float | None, digits: int = 1) -> str:
    """A change of a rate in percentage points, signed: ``+1.2 pp``."""
    if _missing(value):
        return DASH
    shown = format_decimal(100 * value, "+#,##0." + "0" * digits + ";-#,##0." + "0" * digits)
    return _("%(value)s pp", value=shown)


def signed(value: float | None, digits: int = 0) -> str:
    if _missing(value):
        return DASH
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, f"+{pattern};-{pattern}")


# -- labels of codes ------------------------------------------------------------------------------
STATE_LABELS = {
    "reported": _l("Reported"), "accepted": _l("Accepted"), "filed": _l("Filed"),
    "dispatched": _l("Dispatched"), "handling": _l("Being handled"),
    "fed_back": _l("Fed back"), "verified": _l("Verified"), "closed": _l("Closed"),
    "evaluated": _l("Evaluated"), "suspended": _l("Suspended"),
    "not_accepted": _l("Not accepted"), "duplicate": _l("Duplicate"), "void": _l("Void"),
    "not_filed": _l("Not filed"),
}
ACTION_LABELS = {
    "report": _l("Report"), "accept": _l("Accept"), "reject": _l("Reject"),
    "mark_duplicate": _l("Mark as duplicate"), "void": _l("Void"), "file": _l("File"),
    "decline_filing": _l("Decline filing"), "dispatch": _l("Dispatch"), "sign": _l("Sign for"),
    "return": _l("Return"), "feedback": _l("Feed back"),
    "verify_pass": _l("Verified on site"), "verify_fail": _l("Verification failed (rework)"),
    "close": _l("Close"), "evaluate": _l("Evaluate"), "suspend": _l("Suspend"),
    "resume": _l("Resume"), "request_extension": _l("Request extension"),
    "approve_extension": _l("Approve extension"), "refuse_extension": _l("Refuse extension"),
    "supervise": _l("Supervise"), "copy_to": _l("Copy to department"),
}
ROLE_LABELS = {
    "admin": _l("Administrator"), "acceptor": _l("Acceptor"), "shift_leader": _l("Shift leader"),
    "dispatcher": _l("Dispatcher"), "handler": _l("Handler"), "grid_leader": _l("Grid leader"),
    "grid_worker": _l("Grid worker"), "supervisor": _l("Supervisor"), "viewer": _l("Viewer"),
}
LEVEL_LABELS = {"district": _l("District"), "street": _l("Street"),
                "community": _l("Community"), "grid": _l("Grid")}
SOURCE_LABELS = {
    "grid_worker": _l("Grid worker"), "hotline": _l("Hotline"),
    "video_patrol": _l("Video patrol"), "bulk_import": _l("Bulk import"), "api": _l("API"),
    "open311": _l("Open311"),
}
INDICATOR_LABELS = {
    "reports": _l("Reports"), "cases": _l("Cases"), "valid_reports": _l("Valid reports"),
    "filed": _l("Filed cases"), "due_to_handle": _l("Due to handle"),
    "handled": _l("Handled cases"), "handled_on_time": _l("Handled on time"),
    "due_to_close": _l("Due to close"), "closed": _l("Closed cases"),
    "closed_on_time": _l("Closed on time"), "reworked": _l("Reworked cases"),
    "overdue": _l("Overdue cases"), "consolidated": _l("Consolidated"),
    "filing_rate": _l("Filing rate"), "handling_rate": _l("Handling rate"),
    "on_time_handling_rate": _l("On-time handling rate"), "closure_rate": _l("Closure rate"),
    "on_time_closure_rate": _l("On-time closure rate"), "rework_rate": _l("Rework rate"),
    "consolidation_rate": _l("Consolidation rate"),
    "occurrence_per_km2_month": _l("Cases per km² per month"),
    "occurrence_per_grid_month": _l("Cases per grid per month"),
    "score": _l("Score"), "passed": _l("Passed"),
}


def label(table: dict, code: str | None) -> str:
    """The label of ``code`` in ``table``, or the code itself when it has none."""
    if code is None:
        return DASH
    return str(table.get(code, code))


# -- wiring ---------------------------------------------------------------------------------------
FILTERS = {"when": when, "number": number, "rate": rate, "points": points,
           "signed": signed}


def _template_helpers() -> dict[str, object]:
    labels = {"state_label": STATE_LABELS, "action_label": ACTION_LABELS,
              "role_label": ROLE_LABELS, "source_label": SOURCE_LABELS,
              "level_label": LEVEL_LABELS, "indicator_label": INDICATOR_LABELS}
    helpers: dict[str, object] = {name: partial(label, table) for name, table in labels.items()}
    return {**helpers, "html_lang": html_lang, "locales": LOCALES}


def init_app(app: Flask) -> None:
    """Compile the catalogues if needed and install Flask-Babel, filters and the switch."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIMEZONE)
    if "BABEL_TRANSLATION_DIRECTORIES" not in app.config:
        target = compiled_directory()
        compile_catalogues(TRANSLATIONS_DIR, target)
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters.update(FILTERS)
    app.before_request(_remember_query_language)
    app.context_processor(_template_helpers)
    app.register_blueprint(bp)

