"""Databases for the tests: real PostGIS, never a stand-in.

The server is the one in use (``DATABASE_URL`` or the embedded PostGIS that ``make test``
starts). The run creates its own databases on it and drops them at the end:

- a migrated, empty template;
- ``liangxi_url``: a copy of the template with the shipped Liangxi generation (read-only tests);
- ``fresh_url``: a new copy of the template per test, for tests that write.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from gis.config import SHIPPED_BOUNDARIES


def _server_url() -> str:
    from gis.database import database_url

    try:
        return database_url()
    except Exception as exc:
        pytest.exit(f"no PostGIS to test against ({exc}); run `make test`", returncode=2)


def _admin_conninfo(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


class DatabaseFactory:
    """Creates (from a template) and drops the run's databases."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.prefix = f"gridgov_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.created: list[str] = []
        self.counter = 0

    def _admin(self, sql: str) -> None:
        with psycopg.connect(_admin_conninfo(self.server_url), autocommit=True) as conn:
            conn.execute(sql)

    def create(self, suffix: str, template: str | None = None) -> str:
        name = f"{self.prefix}_{suffix}"
        clause = f' TEMPLATE "{template}"' if template else ""
        self._admin(f'CREATE DATABASE "{name}"{clause}')
        self.created.append(name)
        return _with_database(self.server_url, name)

    def drop(self, url: str) -> None:
        from gis.database import get_engine

        get_engine(url).dispose()
        name = make_url(url).database
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(_with_database(self.server_url, name))


@pytest.fixture(scope="session")
def database_factory() -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(_server_url())
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def template_name(database_factory: DatabaseFactory) -> str:
    from gis.database import get_engine, upgrade

    url = database_factory.create("template")
    upgrade(url)
    get_engine(url).dispose()
    return make_url(url).database


@pytest.fixture
def fresh_url(database_factory: DatabaseFactory, template_name: str) -> Iterator[str]:
    database_factory.counter += 1
    url = database_factory.create(f"t{database_factory.counter}", template=template_name)
    yield url
    database_factory.drop(url)


@pytest.fixture
def fresh_engine(fresh_url: str) -> Engine:
    from gis.database import get_engine

    return get_engine(fresh_url)


@pytest.fixture(scope="session")
def liangxi_url(database_factory: DatabaseFactory, template_name: str) -> str:
    from gis.boundaries import load_shipped
    from gis.database import get_engine

    if not SHIPPED_BOUNDARIES.exists():
        pytest.fail(f"{SHIPPED_BOUNDARIES} is missing; run `gridgov boundaries generate`")
    url = database_factory.create("liangxi", template=template_name)
    load_shipped(get_engine(url))
    return url


@pytest.fixture(scope="session")
def liangxi_engine(liangxi_url: str) -> Engine:
    from gis.database import get_engine

    return get_engine(liangxi_url)
