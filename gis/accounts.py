"""Accounts: users, password checks with lockout, API tokens, scopes, and the audit log.

Passwords are hashed with scrypt (werkzeug); tokens are random 32-byte strings shown once and
stored as SHA-256. After ``MAX_FAILED_LOGINS`` wrong passwords an account is locked for
``LOCK_MINUTES``; the web layer adds per-address throttling on top. A user's scope comes from
the staff member it is linked to: grid staff act in their grids, handlers for their department.
:meth:`User.case_scope` states that rule once, as SQL conditions for queries and as a test on
one case, for every front end that reads cases.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from werkzeug.security import check_password_hash, generate_password_hash

from gis.models import USER_ROLES
from gis.workflow import Actor

MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
MIN_PASSWORD_LENGTH = 10
#: Roles that see and act only inside their own grids.
GRID_ROLES = frozenset({"grid_leader", "grid_worker"})
#: Roles that see and act only on the cases routed to or handled by their department.
DEPARTMENT_ROLES = frozenset({"handler"})
#: The interface languages a user may choose.
LOCALES = ("zh_CN", "en")


class AccountError(ValueError):
    """Bad account data; the message says which field and why."""


@dataclass(frozen=True)
class CaseScope:
    """Which cases (and the incidents behind them) a user may see and act on.

    ``grid_codes`` set: only cases in those grids (grid staff); ``department_scoped``: only the
    cases whose responsible department or handling department is ``department_id`` (handlers;
    a handler without a department sees none). Neither: the whole district.
    """

    grid_codes: frozenset[str] | None = None
    department_scoped: bool = False
    department_id: int | None = None

    @property
    def whole_district(self) -> bool:
        return self.grid_codes is None and not self.department_scoped

    def where(self, grid: str = "g", case: str = "c") -> tuple[list[str], dict[str, Any]]:
        """SQL conditions and their parameters, on the grid unit aliased ``grid`` (its
        ``code``) and the case aliased ``case`` (``department_id``, ``handler_id``)."""
        conditions: list[str] = []
        params: dict[str, Any] = {}
        if self.grid_codes is not None:
            conditions.append(f"{grid}.code = ANY(:scope_grids)")
            params["scope_grids"] = sorted(self.grid_codes)
        if self.department_scoped:
            conditions.append(f":scope_department IN ({case}.department_id, {case}.handler_id)")
            params["scope_department"] = self.department_id
        return conditions, params

    def sql(self, grid: str = "g", case: str = "c") -> tuple[str, dict[str, Any]]:
        """:meth:`where` as one condition (``TRUE`` for the whole district)."""
        conditions, params = self.where(grid, case)
        return " AND ".join(conditions) or "TRUE", params

    def allows(self, grid_code: str | None, department_id: int | None = None,
               handler_id: int | None = None) -> bool:
        """Whether one case (its grid's code, its departments) is inside the scope; the same
        answer as :meth:`where` in SQL."""
        if self.grid_codes is not None and grid_code not in self.grid_codes:
            return False
        return not self.department_scoped or (
            self.department_id is not None and self.department_id in (department_id,
                                                                       handler_id))


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    staff_id: int | None
    department_id: int | None
    locale: str
    grid_codes: frozenset[str] = field(default_factory=frozenset)

    @property
    def grid_scoped(self) -> bool:
        return self.role in GRID_ROLES

    def actor(self) -> Actor:
        """The workflow actor this user acts as."""
        return Actor(self.role, self.display_name, self.staff_id, self.department_id,
                     self.grid_codes)

    def can_see_grid(self, grid_code: str | None) -> bool:
        return not self.grid_scoped or grid_code in self.grid_codes

    def case_scope(self) -> CaseScope:
        """The cases this user may see and act on: grid staff their grids' cases, handlers
        their department's, everyone else every case."""
        return CaseScope(
            grid_codes=self.grid_codes if self.grid_scoped else None,
            department_scoped=self.role in DEPARTMENT_ROLES,
            department_id=self.department_id)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if password.isdigit() or password.isalpha():
        raise AccountError("password: mix letters with digits or symbols")


def create_user(conn: Connection, username: str, password: str, role: str, *,
                display_name: str | None = None, staff_id: int | None = None,
                department_id: int | None = None, locale: str = "zh_CN") -> int:
    """Create an account; returns its id."""
    if role not in USER_ROLES:
        raise AccountError(f"role: {role!r} is not one of {', '.join(USER_ROLES)}")
    if not username or len(username) > 64 or not username.replace("_", "").replace(
            "-", "").replace(".", "").isalnum():
        raise AccountError("username: 1-64 letters, digits, '.', '-' or '_'")
    if role == "handler" and department_id is None:
        raise AccountError("department_id: a handler belongs to a department")
    if role in GRID_ROLES and staff_id is None:
        raise AccountError("staff_id: grid staff are linked to their staff record")
    check_locale(locale)
    check_password_strength(password)
    exists = conn.execute(text("SELECT 1 FROM user_account WHERE username = :u"),
                          {"u": username}).first()
    if exists:
        raise AccountError(f"username: {username!r} is taken")
    return conn.execute(text(
        """INSERT INTO user_account (username, display_name, password_hash, role, staff_id,
               department_id, locale)
           VALUES (:u, :d, :h, :r, :s, :dep, :l) RETURNING id"""),
        {"u": username, "d": display_name or username, "h": generate_password_hash(password),
         "r": role, "s": staff_id, "dep": department_id, "l": locale}).scalar_one()


def set_password(conn: Connection, user_id: int, password: str) -> None:
    check_password_strength(password)
    conn.execute(text("UPDATE user_account SET password_hash = :h, failed_logins = 0, "
                      "locked_until = NULL WHERE id = :id"),
                 {"h": generate_password_hash(password), "id": user_id})


def check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise AccountError(f"locale: {locale!r} is not one of {', '.join(LOCALES)}")
    return locale


def set_locale(conn: Connection, user_id: int, locale: str) -> None:
    """Save the user's interface language (one of :data:`LOCALES`)."""
    conn.execute(text("UPDATE user_account SET locale = :l WHERE id = :id"),
                 {"l": check_locale(locale), "id": user_id})


def load_user(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(text(
        """SELECT id, username, display_name, role, staff_id, department_id, locale
           FROM user_account WHERE id = :id AND active"""), {"id": user_id}).first()
    if row is None:
        return None
    grids = frozenset(conn.execute(text(
        "SELECT grid_code FROM staff_grid WHERE staff_id = :s"), {"s": row.staff_id}).scalars()
    ) if row.staff_id is not None else frozenset()
    return User(*row, grid_codes=grids)


class LoginRefused(Exception):
    """Wrong credentials or a locked account; the message is safe to show."""


def authenticate(conn: Connection, username: str, password: str, now: datetime) -> User:
    """Check a password. Wrong passwords count towards a temporary lock; the message does not
    say whether the username exists."""
    row = conn.execute(text(
        """SELECT id, password_hash, failed_logins, locked_until FROM user_account
           WHERE username = :u AND active FOR UPDATE"""), {"u": username}).first()
    if row is None:
        check_password_hash(_DUMMY_HASH, password)  # same work either way: no timing oracle
        raise LoginRefused("wrong username or password")
    if row.locked_until is not None and row.locked_until > now:
        raise LoginRefused("account locked after repeated failures; try again later")
    if not check_password_hash(row.password_hash, password):
        failures = row.failed_logins + 1
        locked = now + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILED_LOGINS else None
        conn.execute(text("UPDATE user_account SET failed_logins = :f, locked_until = :l "
                          "WHERE id = :id"),
                     {"f": 0 if locked else failures, "l": locked, "id": row.id})
        raise LoginRefused("wrong username or password")
    conn.execute(text("UPDATE user_account SET failed_logins = 0, locked_until = NULL, "
                      "last_login_at = :now WHERE id = :id"), {"now": now, "id": row.id})
    return load_user(conn, row.id)


_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: Connection, user_id: int, name: str,
                expires_at: datetime | None = None) -> str:
    """A new API token for the user; the plain token is returned once and never stored."""
    token = "ggv_" + secrets.token_urlsafe(32)
    conn.execute(text("INSERT INTO api_token (user_id, name, token_hash, expires_at) "
                      "VALUES (:u, :n, :h, :e)"),
                 {"u": user_id, "n": name, "h": _token_hash(token), "e": expires_at})
    return token


def user_for_token(conn: Connection, token: str, now: datetime) -> User | None:
    row = conn.execute(text(
        """UPDATE api_token SET last_used_at = :now
           WHERE token_hash = :h AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > :now)
           RETURNING user_id"""), {"h": _token_hash(token), "now": now}).first()
    return load_user(conn, row.user_id) if row else None


def revoke_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(text("UPDATE api_token SET revoked_at = :now WHERE id = :id"),
                 {"now": now, "id": token_id})


def audit(conn: Connection, user: User | None, action: str, *, method: str | None = None,
          path: str | None = None, target: str | None = None, status: int | None = None,
          remote_addr: str | None = None, details: dict | None = None) -> None:
    """Append one entry to the audit log."""
    import json

    conn.execute(text(
        """INSERT INTO audit_log (user_id, username, action, method, path, target, status,
               remote_addr, details)
           VALUES (:uid, :un, :a, :m, :p, :t, :s, :r, CAST(:d AS jsonb))"""),
        {"uid": user.id if user else None, "un": user.username if user else None, "a": action,
         "m": method, "p": path, "t": target, "s": status, "r": remote_addr,
         "d": json.dumps(details or {}, ensure_ascii=False, default=str)})
