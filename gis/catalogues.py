"""Reference catalogues kept as CSV under data/catalogues, and loading all of them at once.

:func:`load_catalogues` is what ``gridgov catalogues load`` runs: every file is read and checked
first, then all of them are written in dependency order in **one** transaction, so a bad file
(or a bad reference found while writing) leaves the database exactly as it was. Errors are
ValueErrors naming the file, the line, the field and the reason
(``…/staff.csv line 30: department: unknown department 'nobody' (load departments first)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DataError, IntegrityError

from gis import deadlines, organisation, powers
from gis.config import DATA_DIR
from gis.organisation import LINES, check_unique, read_csv

CATALOGUE_DIR = DATA_DIR / "catalogues"
CLASSES_CSV = CATALOGUE_DIR / "classes.csv"
CLASS_FIELDS = ("code", "kind", "major_name", "minor_name", "line")
CLASS_LENGTHS = {"major_name": 50, "minor_name": 100}


def read_classes(path: Path = CLASSES_CSV) -> list[dict[str, str]]:
    """Read and check the class catalogue; a bad row raises ValueError naming file, line and
    field."""
    rows: list[dict[str, str]] = []
    seen: dict[object, int] = {}
    for row in read_csv(path, CLASS_FIELDS):
        code = row.text("code", 5, powers.CLASS_CODE)
        check_unique(seen, code, row, "code")
        expected = "component" if code.startswith("C") else "event"
        if row.text("kind", 10) != expected:
            raise row.error("kind", f"{code} is a {expected}")
        names = {f: row.text(f, n) for f, n in CLASS_LENGTHS.items()}
        rows.append({"code": code, "kind": expected, **names,
                     "line": row.choice("line", LINES)})
    return rows


def write_classes(conn: Connection, rows: Sequence[dict[str, str]]) -> int:
    """Insert or update every class (by code); returns how many there are."""
    conn.execute(text(
        """
        INSERT INTO incident_class (code, kind, major_name, minor_name, line)
        VALUES (:code, :kind, :major_name, :minor_name, :line)
        ON CONFLICT (code) DO UPDATE SET kind = excluded.kind,
            major_name = excluded.major_name, minor_name = excluded.minor_name,
            line = excluded.line
        """
    ), list(rows))
    return len(rows)


def load_classes(engine: Engine, path: Path = CLASSES_CSV) -> int:
    """Insert or update every class of the catalogue; returns how many it holds."""
    rows = read_classes(path)
    with engine.begin() as conn:
        return write_classes(conn, rows)


# -- every catalogue -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalogue:
    """One catalogue file: what it holds, where it is, its reader and its writer."""

    what: str
    path: Path
    read: Callable[[Path], Any]
    write: Callable[[Connection, Any], int]


def catalogue_files(folder: Path = CATALOGUE_DIR,
                    classes: Path | None = None) -> tuple[Catalogue, ...]:
    """The catalogues under ``folder`` in dependency order (``classes`` overrides classes.csv)."""
    return (
        Catalogue("incident classes", classes or folder / CLASSES_CSV.name, read_classes,
                  write_classes),
        Catalogue("deadline rules", folder / deadlines.DEADLINES_CSV.name,
                  deadlines.read_rule_rows, deadlines.write_rules),
        Catalogue("departments", folder / organisation.DEPARTMENTS_CSV.name,
                  organisation.read_departments, organisation.write_departments),
        Catalogue("power items", folder / powers.POWER_ITEMS_CSV.name, powers.read_power_items,
                  powers.write_power_items),
        Catalogue("class routes", folder / powers.CLASS_ROUTES_CSV.name,
                  powers.read_class_routes, powers.write_class_routes),
        Catalogue("class powers", folder / powers.CLASS_POWERS_CSV.name,
                  powers.read_class_powers, powers.write_class_powers),
        Catalogue("staff", folder / organisation.STAFF_CSV.name, organisation.read_staff,
                  organisation.write_staff),
        Catalogue("grid staff attachments", folder / organisation.STAFF_GRIDS_CSV.name,
                  organisation.read_staff_grids, organisation.write_staff_grids),
        Catalogue("grid area classes", folder / organisation.AREA_CLASSES_CSV.name,
                  organisation.read_area_classes, organisation.write_area_classes),
    )


def load_catalogues(engine: Engine, catalogues: Sequence[Catalogue] | None = None
                    ) -> list[tuple[str, int]]:
    """Load ``catalogues`` (default: every shipped one) all or nothing.

    Every file is read and checked before anything is written; then all are written in one
    transaction, in order, with references checked against what the earlier files wrote. Any
    error rolls the whole load back and raises ValueError naming file, line, field and reason
    (a file that cannot be opened raises OSError). Returns (what, rows) per catalogue.
    """
    catalogues = catalogue_files() if catalogues is None else catalogues
    entries = [(c, c.read(c.path)) for c in catalogues]
    with engine.begin() as conn:
        return [(c.what, _write(conn, c, rows)) for c, rows in entries]


def _write(conn: Connection, catalogue: Catalogue, rows: Any) -> int:
    try:
        return catalogue.write(conn, rows)
    except (IntegrityError, DataError) as exc:
        # a constraint the readers do not know about: still name the file and the reason
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ValueError(f"{catalogue.path}: rejected by the database: {reason}") from None
