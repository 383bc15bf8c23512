"""`gridgov users demo`: one account per role, linked to demo staff, passwords kept once."""

from __future__ import annotations

import stat
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from etl.demo_users import DEMO_ACCOUNTS, create_demo_users
from etl.simulate_cases import prepare_district
from gis.accounts import authenticate


def test_one_account_per_role_linked_and_written_once(fresh_engine, tmp_path):
    prepare_district(fresh_engine)
    path, created = create_demo_users(fresh_engine, tmp_path)
    assert [(u, r) for u, r, _ in created] == [(u, r) for u, r, _, _ in DEMO_ACCOUNTS]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text(encoding="utf-8").splitlines()
    database = fresh_engine.url.database
    assert lines[0].startswith(f"# database {database} on ") and "UTC" in lines[0]
    assert fresh_engine.url.password not in path.read_text(encoding="utf-8")
    assert [line.split("\t") for line in lines[1:]] == [list(row) for row in created]
    with fresh_engine.begin() as conn:
        for username, role, password in created:
            assert authenticate(conn, username, password, datetime.now(UTC)).role == role
        links = dict(conn.execute(text(
            "SELECT username, coalesce(staff_id, department_id) FROM user_account "
            "WHERE username IN ('squadron', 'leader', 'worker')")).all())
    assert all(links.values())
    again_path, again = create_demo_users(fresh_engine, tmp_path)
    assert again == [] and again_path.read_text(encoding="utf-8").splitlines() == lines


def test_linked_accounts_need_the_catalogues(fresh_engine, tmp_path):
    with pytest.raises(LookupError, match="gridgov catalogues load"):
        create_demo_users(fresh_engine, tmp_path)
    assert not (tmp_path / "demo-users.txt").exists()
