"""Demo accounts, one per role, linked to real demo staff so scoping works in the demo."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from gis.accounts import create_user

#: username, role, display name, how to find the staff member / department it acts for
DEMO_ACCOUNTS = (
    ("admin", "admin", "系统管理员", None),
    ("acceptor", "acceptor", "受理员", None),
    ("shift", "shift_leader", "值班长", None),
    ("dispatcher", "dispatcher", "派遣员", None),
    ("squadron", "handler", "崇安寺中队队员", "squadron"),
    ("leader", "grid_leader", "网格长", "grid_leader"),
    ("worker", "grid_worker", "网格员", "grid_worker"),
    ("supervisor", "supervisor", "监督员", None),
    ("viewer", "viewer", "只读用户", None),
)


def _link(conn, how: str | None) -> dict:
    if how == "squadron":
        department = conn.execute(text(
            "SELECT d.id FROM department d WHERE d.kind = 'squadron' AND d.street_code IS NOT NULL "
            "ORDER BY d.name LIKE '%崇安寺%' DESC, d.id LIMIT 1")).scalar()
        return {"department_id": department}
    if how in ("grid_leader", "grid_worker"):
        role = "leader" if how == "grid_leader" else "worker"
        staff = conn.execute(text(
            "SELECT s.id FROM staff s JOIN staff_grid sg ON sg.staff_id = s.id "
            "WHERE sg.role = :r ORDER BY sg.grid_code, s.id LIMIT 1"), {"r": role}).scalar()
        return {"staff_id": staff}
    return {}


def create_demo_users(engine: Engine, home: Path) -> tuple[Path, list[tuple[str, str, str]]]:
    """Create the missing demo accounts; returns the password file and what was created.

    The file (mode 0600) gathers the passwords of every database this home has made demo
    accounts in, so each block opens with a comment naming the database (never its password).
    """
    created = []
    with engine.begin() as conn:
        for username, role, name, how in DEMO_ACCOUNTS:
            if conn.execute(text("SELECT 1 FROM user_account WHERE username = :u"),
                            {"u": username}).first():
                continue
            link = _link(conn, how)
            if how and not any(link.values()):
                raise LookupError(f"demo account {username}: load the catalogues first "
                                  "(gridgov catalogues load)")
            password = f"{secrets.token_urlsafe(9)}-{secrets.randbelow(90) + 10}"
            create_user(conn, username, password, role, display_name=name, **link)
            created.append((username, role, password))
    path = Path(home) / "demo-users.txt"
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"# {_database_name(engine)}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
            for row in created:
                handle.write("\t".join(row) + "\n")
        path.chmod(0o600)
    return path, created


def _database_name(engine: Engine) -> str:
    url = engine.url
    return f"database {url.database} on {url.host or 'localhost'}:{url.port or 5432}"
