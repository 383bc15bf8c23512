"""The embedded PostGIS lifecycle, on a throwaway cluster in a temporary GRIDGOV_HOME."""

from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import create_engine, text

from gis.config import Settings, find_pg_bin
from gis.embedded import EmbeddedPostgres

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="no PostgreSQL server binaries")


@pytest.fixture
def server(tmp_path):
    # pytest's tmp_path is private (0700): as root, the unprivileged server user cannot reach
    # it, which exercises the fallback to /var/lib/gridgov/<hash>.
    instance = EmbeddedPostgres(Settings(database_url=None, home=tmp_path / "home",
                                         pg_port=55433, pg_bin=find_pg_bin()))
    yield instance
    instance.stop()
    if instance.data_dir.exists() and not instance.data_dir.is_relative_to(tmp_path):
        shutil.rmtree(instance.data_dir.parent, ignore_errors=True)


def test_init_start_status_url_stop(server):
    assert not server.status().initialised
    assert server.init() is True
    if os.geteuid() == 0:
        assert str(server.data_dir).startswith("/var/lib/gridgov/")
    assert server.init() is False  # idempotent
    assert oct(server.password_file.stat().st_mode & 0o777) == "0o600"
    assert server.start() is True
    assert server.start() is False  # already running
    status = server.status()
    assert status.running and status.port == server.port
    assert "running on 127.0.0.1" in status.describe()
    engine = create_engine(server.url())
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        assert conn.execute(text("SELECT postgis_lib_version()")).scalar().startswith("3")
        listen = conn.execute(text("SHOW listen_addresses")).scalar()
        auth = conn.execute(text("SHOW password_encryption")).scalar()
    engine.dispose()
    assert listen == "127.0.0.1" and auth == "scram-sha-256"
    assert server.stop() is True
    assert not server.status().running
    assert server.stop() is False


def test_wrong_password_is_refused(server):
    server.start()
    url = server.url().replace(server.password, "not-the-password")
    engine = create_engine(url)
    with pytest.raises(Exception, match="password authentication failed"):
        engine.connect()
    engine.dispose()


def test_url_before_init_says_what_to_do(server):
    with pytest.raises(RuntimeError, match="gridgov db start"):
        server.url()
