"""Accounts: hashing, lockout, tokens, scope, locale, audit; and masking of personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gis.accounts import (
    LOCALES,
    LOCK_MINUTES,
    MAX_FAILED_LOGINS,
    AccountError,
    CaseScope,
    LoginRefused,
    User,
    audit,
    authenticate,
    create_user,
    issue_token,
    load_user,
    revoke_token,
    set_locale,
    user_for_token,
)
from gis.masking import mask_id_number, mask_name, mask_phone

NOW = datetime(2019, 5, 6, 9, 0, tzinfo=UTC)
GOOD = "correct horse 42"


@pytest.fixture
def conn(fresh_engine):
    with fresh_engine.begin() as connection:
        yield connection


def test_password_is_hashed_and_checked(conn):
    user_id = create_user(conn, "zhang.san", GOOD, "acceptor", display_name="张三")
    stored = conn.execute(text("SELECT password_hash FROM user_account")).scalar()
    assert GOOD not in stored and stored.startswith("scrypt:")
    user = authenticate(conn, "zhang.san", GOOD, NOW)
    assert user.id == user_id and user.role == "acceptor" and not user.grid_scoped
    with pytest.raises(LoginRefused, match="wrong username or password"):
        authenticate(conn, "zhang.san", "wrong password 1", NOW)
    with pytest.raises(LoginRefused, match="wrong username or password"):
        authenticate(conn, "nobody", GOOD, NOW)


def test_lockout_after_repeated_failures(conn):
    create_user(conn, "li", GOOD, "dispatcher")
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(LoginRefused):
            authenticate(conn, "li", "bad password 9", NOW)
    with pytest.raises(LoginRefused, match="locked"):
        authenticate(conn, "li", GOOD, NOW + timedelta(minutes=1))
    assert authenticate(conn, "li", GOOD, NOW + timedelta(minutes=LOCK_MINUTES + 1))


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"password": "short1"}, "password"),
    ({"password": "onlyletterslong"}, "password"),
    ({"role": "emperor"}, "role"),
    ({"username": "bad name!"}, "username"),
    ({"role": "handler"}, "department_id"),
    ({"role": "grid_worker"}, "staff_id"),
])
def test_bad_accounts_are_refused_with_the_field(conn, kwargs, field):
    values = {"username": "u1", "password": GOOD, "role": "viewer", **kwargs}
    with pytest.raises(AccountError, match=field):
        create_user(conn, values.pop("username"), values.pop("password"), values.pop("role"))


def test_grid_staff_scope(conn):
    staff = conn.execute(text("INSERT INTO staff (code, name, post) VALUES ('G1', '王五', "
                              "'grid_worker') RETURNING id")).scalar()
    conn.execute(text("INSERT INTO staff_grid VALUES (:s, '320213001001001', 'worker')"),
                 {"s": staff})
    user = load_user(conn, create_user(conn, "wang", GOOD, "grid_worker", staff_id=staff))
    assert user.grid_scoped and user.can_see_grid("320213001001001")
    assert not user.can_see_grid("320213001001002")
    assert user.actor().grid_codes == frozenset({"320213001001001"})


def _user(role: str, grids=(), department_id=None) -> User:
    return User(1, "u", "u", role, 7, department_id, "zh_CN", frozenset(grids))


@pytest.mark.parametrize(("role", "grids", "department", "scope"), [
    ("grid_worker", {"G1"}, None, CaseScope(frozenset({"G1"}), False, None)),
    ("grid_leader", {"G1", "G2"}, None, CaseScope(frozenset({"G1", "G2"}), False, None)),
    ("grid_worker", (), None, CaseScope(frozenset(), False, None)),  # no grids: sees nothing
    ("handler", (), 3, CaseScope(None, True, 3)),
    ("supervisor", {"G1"}, None, CaseScope()),  # grids of a supervisor do not narrow the view
    ("acceptor", (), None, CaseScope()),
    ("viewer", (), None, CaseScope()),
    ("admin", (), None, CaseScope()),
])
def test_case_scope_per_role(role, grids, department, scope):
    assert _user(role, grids, department).case_scope() == scope


def test_case_scope_as_sql_and_as_a_test_on_one_case():
    worker = _user("grid_worker", {"G2", "G1"}).case_scope()
    assert worker.where() == (["g.code = ANY(:scope_grids)"], {"scope_grids": ["G1", "G2"]})
    assert worker.sql("gr", "cf")[0] == "gr.code = ANY(:scope_grids)"
    assert worker.allows("G1") and not worker.allows("G3") and not worker.allows(None)
    handler = _user("handler", department_id=3).case_scope()
    assert handler.sql() == (":scope_department IN (c.department_id, c.handler_id)",
                             {"scope_department": 3})
    assert handler.allows("G9", department_id=3) and handler.allows("G9", 4, handler_id=3)
    assert not handler.allows("G9", 4, 5) and not handler.allows("G9")
    everyone = _user("dispatcher").case_scope()
    assert everyone.whole_district and everyone.sql() == ("TRUE", {})
    assert everyone.allows(None) and everyone.allows("G9", 4, 5)
    orphan = CaseScope(department_scoped=True)  # a handler without a department sees nothing
    assert not orphan.allows("G1", None, None) and not orphan.allows("G1", 3, 3)


def test_set_locale_keeps_to_the_known_languages(conn):
    assert LOCALES == ("zh_CN", "en")
    user_id = create_user(conn, "lang", GOOD, "viewer")
    assert load_user(conn, user_id).locale == "zh_CN"
    set_locale(conn, user_id, "en")
    assert load_user(conn, user_id).locale == "en"
    for bad in ("fr", "EN", "zh-CN", ""):
        with pytest.raises(AccountError, match="locale"):
            set_locale(conn, user_id, bad)
    assert load_user(conn, user_id).locale == "en"
    with pytest.raises(AccountError, match="locale"):
        create_user(conn, "lang2", GOOD, "viewer", locale="de")


def test_tokens_are_stored_hashed_expire_and_revoke(conn):
    user_id = create_user(conn, "robot", GOOD, "viewer")
    token = issue_token(conn, user_id, "sync", expires_at=NOW + timedelta(days=1))
    assert token not in str(conn.execute(text("SELECT * FROM api_token")).all())
    assert user_for_token(conn, token, NOW).id == user_id
    assert user_for_token(conn, token, NOW + timedelta(days=2)) is None
    assert user_for_token(conn, token + "x", NOW) is None
    token_id = conn.execute(text("SELECT id FROM api_token")).scalar()
    revoke_token(conn, token_id, NOW)
    assert user_for_token(conn, token, NOW) is None


def test_audit_log_is_append_only(fresh_engine):
    with fresh_engine.begin() as conn:
        user = load_user(conn, create_user(conn, "auditor", GOOD, "admin"))
        audit(conn, user, "case.accept", method="POST", path="/api/cases/1", status=200,
              details={"case": 1})
    with pytest.raises(Exception, match="append-only"), fresh_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))


def test_masking():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "861******5678"
    assert mask_id_number("320211199001011234") == "320211********1234"
    assert mask_name("张三") == "张*" and mask_name("欧阳修文") == "欧阳**"
    assert mask_phone(None) is None and mask_name("") == ""
