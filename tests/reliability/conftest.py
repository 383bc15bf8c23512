"""Fixtures for the reliability tests: a throwaway embedded PostGIS that a test may stop and
start (the shared test server is never restarted), and a world on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gis.config import Settings, find_pg_bin
from gis.embedded import EmbeddedPostgres

#: First port tried for throwaway servers (tests/gis/test_embedded.py starts at 55433).
THROWAWAY_PORT = 55460


def throwaway_server(home: Path, port: int = THROWAWAY_PORT) -> EmbeddedPostgres:
    """A new embedded PostGIS under ``home``, started, with the schema migrated."""
    from gis.database import upgrade

    server = EmbeddedPostgres(Settings(database_url=None, home=home, pg_port=port,
                                       pg_bin=find_pg_bin()))
    server.start()
    upgrade(server.url())
    return server


def remove_server(server: EmbeddedPostgres, tmp_root: Path) -> None:
    """Stop the server and delete its cluster (also when it lives under /var/lib/gridgov)."""
    from gis.database import get_engine

    get_engine(server.url()).dispose()
    server.stop()
    if server.data_dir.exists() and not server.data_dir.is_relative_to(tmp_root):
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def restartable(tmp_path_factory) -> Iterator[EmbeddedPostgres]:
    """A throwaway server for this module's tests to stop and start."""
    if find_pg_bin() is None:
        pytest.skip("no PostgreSQL server binaries")
    root = tmp_path_factory.mktemp("pg")
    server = throwaway_server(root / "home")
    yield server
    remove_server(server, root)
