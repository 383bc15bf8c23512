"""Engines and schema upgrades for the database in use: ``DATABASE_URL`` or the embedded PostGIS."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine

from gis.config import get_settings
from gis.embedded import EmbeddedPostgres

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept libpq-style ``postgres://`` / ``postgresql://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def database_url() -> str:
    """The SQLAlchemy URL of the database in use (``DATABASE_URL`` wins over the embedded one)."""
    settings = get_settings()
    if settings.database_url:
        return normalise_url(settings.database_url)
    return EmbeddedPostgres(settings).url()


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, future=True)


def get_engine(url: str | None = None) -> Engine:
    """A pooled engine for ``url`` (default: the database in use), shared per URL."""
    return _engine_for(normalise_url(url) if url else database_url())


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic filter: tables we do not model (PostGIS's spatial_ref_sys, the incident
    partitions) are not ours to manage, nor are the per-partition copies PostgreSQL makes of a
    foreign key that points at the partitioned incident table."""
    from gis.models import Base

    if reflected and compare_to is None:
        if type_ == "table":
            return False
        if type_ == "foreign_key_constraint":
            return obj.referred_table.name in Base.metadata.tables
    return True


def alembic_config(url: str | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
