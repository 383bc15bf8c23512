"""Sign-in, sessions, API tokens, CSRF, login throttling, role checks and the write audit.

Browsers sign in with a password and get a session cookie (HttpOnly, SameSite=Lax, Secure unless
configured off for plain-HTTP local use). Machine clients send ``Authorization: Bearer <token>``
and need no CSRF token, since no cookie rides along. Every other unsafe request must carry the
CSRF token (form field ``csrf_token`` or header ``X-CSRFToken``). Every write is audited. The
rules themselves (passwords, lockout, scopes) live in :mod:`gis.accounts`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from gis import accounts
from gis.config import get_settings

bp = Blueprint("auth", __name__, template_folder="templates")
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", default_limits=[])

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_LIMIT = "10 per minute; 50 per hour"


class SessionUser(UserMixin):
    """Flask-Login's view of a :class:`gis.accounts.User`."""

    def __init__(self, user: accounts.User) -> None:
        self.account = user

    def get_id(self) -> str:
        return str(self.account.id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.account, name)


def _engine():
    from webmap import current_store

    return current_store().engine


def _now() -> datetime:
    return datetime.now(UTC)


@login_manager.user_loader
def _load_session_user(user_id: str) -> SessionUser | None:
    with _engine().connect() as conn:
        user = accounts.load_user(conn, int(user_id))
    return SessionUser(user) if user else None


@login_manager.request_loader
def _load_token_user(req) -> SessionUser | None:
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    with _engine().begin() as conn:
        user = accounts.user_for_token(conn, header[len("Bearer "):].strip(), _now())
    if user is None:
        return None
    g.token_auth = True
    return SessionUser(user)


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/open311/")) or request.accept_mimetypes.best == (
        "application/json")


@login_manager.unauthorized_handler
def _unauthorized():
    if _wants_json():
        return jsonify(error={"status": 401, "message": "sign in or send a bearer token"}), 401
    return redirect(url_for("auth.login", next=request.full_path))


def user() -> accounts.User | None:
    """The signed-in user of this request, or None."""
    return current_user.account if current_user.is_authenticated else None


def roles_required(*roles: str) -> Callable:
    """Allow the view to signed-in users holding one of ``roles`` (admin always passes)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and current_user.role not in roles and current_user.role != "admin":
                message = f"your role ({current_user.role}) may not do this"
                if _wants_json():
                    return jsonify(error={"status": 403, "message": message}), 403
                return render_template("forbidden.html", message=message), 403
            return view(*args, **kwargs)

        return wrapped

    return decorate


login_required = roles_required()


# -- views ---------------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, methods=["POST"])
def login():
    error = None
    if request.method == "POST":
        g.audited = True  # this view writes its own audit rows
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        try:
            with _engine().begin() as conn:
                signed_in = accounts.authenticate(conn, username, password, _now())
                accounts.audit(conn, signed_in, "login", method="POST", path=request.path,
                               status=302, remote_addr=request.remote_addr)
        except accounts.LoginRefused as exc:
            error = str(exc)
            with _engine().begin() as conn:
                accounts.audit(conn, None, "login_failed", method="POST", path=request.path,
                               status=401, remote_addr=request.remote_addr,
                               details={"username": username[:64]})
        else:
            session.clear()
            login_user(SessionUser(signed_in))
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would let a phishing link ride on our login."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("webmap.home")


# -- wiring --------------------------------------------------------------------------------------
def secret_key() -> str:
    """``GRIDGOV_SECRET_KEY``, else a key generated once and kept (0600) under GRIDGOV_HOME."""
    if key := os.environ.get("GRIDGOV_SECRET_KEY"):
        return key
    path = Path(get_settings().home) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def init_app(app: Flask) -> None:
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = secret_key()
    app.config.setdefault("SECURE_COOKIES", True)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(app.config["SECURE_COOKIES"]),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=bool(app.config["SECURE_COOKIES"]),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.setdefault("RATELIMIT_ENABLED", True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    app.register_blueprint(bp)
    app.before_request(_check_csrf)
    app.after_request(_audit_write)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.register_error_handler(429, _throttled)
    app.context_processor(lambda: {"current_account": user()})


def _check_csrf() -> None:
    # A browser cannot attach a bearer token cross-site, so token requests need no CSRF token.
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    routed = request.routing_exception is None  # let a 404/405 answer as itself
    if request.method in UNSAFE_METHODS and routed and not bearer:
        csrf.protect(apply_exemptions=True)


def _csrf_failed(exc: CSRFError):
    if _wants_json():
        return jsonify(error={"status": 400, "message": f"CSRF check failed: {exc.description}"}
                       ), 400
    return render_template("forbidden.html", message=exc.description), 400


def _throttled(exc):
    message = f"too many attempts; wait and try again ({exc.description})"
    if _wants_json():
        return jsonify(error={"status": 429, "message": message}), 429
    return render_template("login.html", error=message), 429


def _audit_write(response):
    """One audit row for every write, whatever its outcome (login records its own)."""
    if request.method not in UNSAFE_METHODS or g.get("audited"):
        return response
    try:
        with _engine().begin() as conn:
            accounts.audit(conn, user(), request.endpoint or "unknown", method=request.method,
                           path=request.path, status=response.status_code,
                           remote_addr=request.remote_addr,
                           details={"token": bool(g.get("token_auth"))})
    except Exception:  # a failing audit must not hide the answer; it is logged
        current_app.logger.exception("audit write failed for %s %s", request.method,
                                     request.path)
    return response
