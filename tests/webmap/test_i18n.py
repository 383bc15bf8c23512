"""The interface language: how the locale is chosen, the switch, the catalogues, formatting."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.pofile import read_po
from babel.support import Translations
from sqlalchemy import text

from tests.webmap import test_command as kit
from tests.webmap.test_command import csrf_token, signed_in
from webmap.i18n import TRANSLATIONS_DIR, compile_catalogues, normalise_locale

world = kit.world  # the command-centre test world, one per module
app = kit.app


def test_chinese_is_the_default(app):
    page = app.test_client().get("/login").text
    assert '<html lang="zh-CN">' in page and "<h1>登录</h1>" in page and "用户名" in page


def test_query_language_and_accept_language(app):
    client = app.test_client()
    english = client.get("/login?lang=en").text
    assert '<html lang="en">' in english and "<h1>Sign in</h1>" in english
    assert "<h1>Sign in</h1>" in client.get("/login").text  # remembered in the session
    browser = app.test_client().get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "<h1>Sign in</h1>" in browser.text
    chinese = app.test_client().get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "<h1>登录</h1>" in chinese.text


def test_the_users_setting_comes_first(app, world):
    viewer = signed_in(app, "viewer")  # set to English
    assert "Case queue" in viewer.get("/command/cases?lang=zh_CN").text
    dispatcher = signed_in(app, "dispatcher")  # set to Chinese
    page = dispatcher.get("/command/cases?lang=en").text
    assert "案件列表" in page and "Case queue" not in page


def test_the_switch_saves_the_users_choice(app, world):
    client = signed_in(app, "acceptor")
    token = csrf_token(client, "/command/cases")
    assert client.post("/language", data={"lang": "en"}).status_code == 400  # no CSRF token
    switched = client.post("/language", data={"lang": "en", "next": "/command/cases",
                                              "csrf_token": token})
    assert switched.status_code == 302 and switched.headers["Location"] == "/command/cases"
    assert "Case queue" in client.get("/command/cases").text
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT locale FROM user_account WHERE username = 'acceptor'")
                            ).scalar() == "en"
    client.post("/language", data={"lang": "zh_CN", "csrf_token": token, "next": "//evil"})
    assert "案件列表" in client.get("/command/cases").text


def test_dates_numbers_and_the_calendar_note_follow_the_locale(app, world):
    case_id = world.cases["filed"]
    zh = signed_in(app, "dispatcher").get(f"/command/cases/{case_id}").text
    en = signed_in(app, "viewer").get(f"/command/cases/{case_id}").text
    assert "2019年5月10日" in zh and "May 10, 2019" in en
    assert "按国家法定节假日" in zh and "Chinese calendar" in en
    dashboard = signed_in(app, "viewer").get("/command/dashboard?period=2019").text
    assert "100.0%" in dashboard or "0.0%" in dashboard


@pytest.mark.parametrize(("given", "expected"), [
    ("zh_CN", "zh_CN"), ("zh-cn", "zh_CN"), ("zh", "zh_CN"), ("en_US", "en"), ("EN", "en"),
    ("fr", None), ("", None), (None, None)])
def test_normalise_locale(given, expected):
    assert normalise_locale(given) == expected


# -- catalogues -----------------------------------------------------------------------------------
def test_catalogues_compile_when_missing_or_stale(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(TRANSLATIONS_DIR, source, ignore=shutil.ignore_patterns("*.mo"))
    target = tmp_path / "out"
    written = compile_catalogues(source, target)
    assert sorted(p.relative_to(target).as_posix() for p in written) == [
        "en/LC_MESSAGES/messages.mo", "zh_Hans_CN/LC_MESSAGES/messages.mo"]
    assert compile_catalogues(source, target) == []  # up to date: nothing to do
    po = source / "zh_CN" / "LC_MESSAGES" / "messages.po"
    later = time.time() + 10
    os.utime(po, (later, later))
    assert [p.parent.parent.name for p in compile_catalogues(source, target)] == ["zh_Hans_CN"]
    zh = Translations.load(str(target), [Locale.parse("zh_CN")])
    assert zh.gettext("Trail") == "办理轨迹"


def test_the_app_compiles_outside_the_source_tree(app):
    compiled = Path(app.config["BABEL_TRANSLATION_DIRECTORIES"]).resolve()
    assert not compiled.is_relative_to(TRANSLATIONS_DIR)
    assert (compiled / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo").is_file()


def test_every_chinese_message_is_translated():
    with (TRANSLATIONS_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert not missing


def test_command_pages_render_no_untranslated_message_in_chinese(app, world, monkeypatch):
    """Render every command page in Chinese and record each message the catalogue lacks."""
    misses: set[str] = set()
    original = Translations.ugettext

    def recording(self, message):
        if message not in self._catalog:
            misses.add(message)
        return original(self, message)

    original_p = Translations.upgettext

    def recording_p(self, context, message):
        if f"{context}\x04{message}" not in self._catalog:
            misses.add(f"{context}|{message}")
        return original_p(self, context, message)

    monkeypatch.setattr(Translations, "ugettext", recording)
    monkeypatch.setattr(Translations, "upgettext", recording_p)
    leader = signed_in(app, "shift_leader")
    supervisor = signed_in(app, "supervisor")
    paths = ["/command/map", "/command/cases", "/command/cases?period=2019&overdue=1",
             "/command/dashboard", "/command/dashboard?level=grid&compare=2018",
             "/command/cases?period=bad", "/command/cases/999999"]
    paths += [f"/command/cases/{case_id}" for case_id in world.cases.values()]
    for path in paths:
        assert leader.get(path).status_code in (200, 400, 404), path
    supervisor.get(f"/command/cases/{world.cases['fed_back']}")
    leader.get("/command/dashboard.csv?level=grid")
    assert not misses
