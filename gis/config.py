"""Settings from the environment.

Every setting has a default that works on a fresh clone; the environment overrides it:

- ``DATABASE_URL``: use this PostGIS instead of the embedded one (nothing local is started).
- ``GRIDGOV_HOME``: where the embedded PostGIS and its state live (default ``<project>/.gridgov``).
- ``GRIDGOV_PG_PORT``: the embedded server's TCP port on 127.0.0.1 (default 54329, away from 5432).
- ``GRIDGOV_PG_BIN``: the PostgreSQL ``bin`` folder (default: newest /usr/lib/postgresql/N/bin).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
BOUNDARIES_DIR = DATA_DIR / "boundaries"
SHIPPED_BOUNDARIES = BOUNDARIES_DIR / "liangxi.gpkg"

#: Storage datum (CGCS2000) and the metric CRS used for areas and distances in Wuxi.
STORAGE_SRID = 4490
METRIC_SRID = 4549

DEFAULT_PG_PORT = 54329


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    home: Path
    pg_port: int
    pg_bin: Path | None

    @property
    def uses_embedded(self) -> bool:
        return not self.database_url


def find_pg_bin() -> Path | None:
    """The newest PostgreSQL server ``bin`` folder installed from Debian's packages, if any."""
    candidates = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        if (path / "initdb").exists() and path.parent.name.isdigit():
            candidates.append((int(path.parent.name), path))
    return max(candidates)[1] if candidates else None


def get_settings() -> Settings:
    env = os.environ
    pg_bin = env.get("GRIDGOV_PG_BIN")
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        home=Path(env.get("GRIDGOV_HOME", PROJECT_ROOT / ".gridgov")).resolve(),
        pg_port=int(env.get("GRIDGOV_PG_PORT", DEFAULT_PG_PORT)),
        pg_bin=Path(pg_bin) if pg_bin else find_pg_bin(),
    )
