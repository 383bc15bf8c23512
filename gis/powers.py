"""The power list (权力清单), class routes and class powers as data, and the list's summary.

The files under ``data/catalogues`` are checked like the organisation's (see
:mod:`gis.organisation`): a bad row raises ValueError naming file, line and field; each
catalogue has a reader, a writer on a Connection and a loader that is one transaction. Power
items are upserted by code and items no longer listed are removed (with their class links);
class routes and class powers are replaced as a whole.

Validity: an item is in force on day ``d`` when ``valid_from <= d`` and ``valid_to`` is empty or
later than ``d`` (``valid_to`` is the first day it no longer applies), as in
:func:`gis.routing.route_case`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from gis.models.powers import POWER_KINDS, ROUTE_ROLES
from gis.organisation import (
    CATALOGUE_DIR,
    DEPARTMENT_CODE,
    CsvRow,
    check_unique,
    department_ids,
    read_csv,
    resolve_department,
)

POWER_ITEMS_CSV = CATALOGUE_DIR / "power_items.csv"
CLASS_ROUTES_CSV = CATALOGUE_DIR / "class_routes.csv"
CLASS_POWERS_CSV = CATALOGUE_DIR / "class_powers.csv"

POWER_FIELDS = ("code", "name", "legal_basis", "original_department", "executing_department",
                "kind", "valid_from", "valid_to", "demo")
ROUTE_FIELDS = ("class_code", "department", "role")
CLASS_POWER_FIELDS = ("class_code", "power_code")

POWER_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
CLASS_CODE = re.compile(r"[CE][0-9]{4}")
KIND_LABELS = {"penalty": "处罚 penalty", "coercive_measure": "强制 coercive measure"}


# -- power items ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerItemEntry:
    code: str
    name: str
    legal_basis: str
    original_department: str
    executing_department: str
    kind: str
    valid_from: date
    valid_to: date | None
    demo: bool
    row: CsvRow


def _power_item(row: CsvRow) -> PowerItemEntry:
    valid_from = row.day("valid_from")
    valid_to = row.optional_day("valid_to")
    if valid_to is not None and valid_to <= valid_from:
        raise row.error("valid_to", f"{valid_to} is not after valid_from {valid_from}")
    return PowerItemEntry(
        row.text("code", 40, POWER_CODE), row.text("name", 1000),
        row.text("legal_basis", 1000), row.text("original_department", 40, DEPARTMENT_CODE),
        row.text("executing_department", 40, DEPARTMENT_CODE), row.choice("kind", POWER_KINDS),
        valid_from, valid_to, row.flag("demo", False), row)


def read_power_items(path: Path = POWER_ITEMS_CSV) -> list[PowerItemEntry]:
    """Read and check the power list."""
    entries, codes = [], {}
    for row in read_csv(path, POWER_FIELDS):
        entry = _power_item(row)
        check_unique(codes, entry.code, row, "code")
        entries.append(entry)
    return entries


def write_power_items(conn: Connection, entries: list[PowerItemEntry]) -> int:
    """Insert or update every item (by code) and drop items no longer listed; departments
    must be loaded. Returns how many items are listed."""
    ids = department_ids(conn)
    params = [_power_params(ids, e) for e in entries]
    conn.execute(text(
        """
        INSERT INTO power_item (code, name, legal_basis, original_department_id,
            executing_department_id, kind, valid_from, valid_to, demo)
        VALUES (:code, :name, :legal_basis, :original_id, :executing_id, :kind,
                :valid_from, :valid_to, :demo)
        ON CONFLICT (code) DO UPDATE SET name = excluded.name,
            legal_basis = excluded.legal_basis,
            original_department_id = excluded.original_department_id,
            executing_department_id = excluded.executing_department_id,
            kind = excluded.kind, valid_from = excluded.valid_from,
            valid_to = excluded.valid_to, demo = excluded.demo
        """), params)
    conn.execute(text("DELETE FROM power_item WHERE NOT (code = ANY(:codes))"),
                 {"codes": [e.code for e in entries]})
    return len(entries)


def load_power_items(engine: Engine, path: Path = POWER_ITEMS_CSV) -> int:
    """Insert or update every item of the file (see :func:`write_power_items`)."""
    entries = read_power_items(path)
    with engine.begin() as conn:
        return write_power_items(conn, entries)


def _power_params(ids: dict[str, int], entry: PowerItemEntry) -> dict[str, object]:
    return {"code": entry.code, "name": entry.name, "legal_basis": entry.legal_basis,
            "original_id": resolve_department(ids, entry.row, "original_department",
                                              entry.original_department),
            "executing_id": resolve_department(ids, entry.row, "executing_department",
                                               entry.executing_department),
            "kind": entry.kind, "valid_from": entry.valid_from, "valid_to": entry.valid_to,
            "demo": entry.demo}


# -- class routes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassRouteEntry:
    class_code: str
    department: str
    role: str
    row: CsvRow


def read_class_routes(path: Path = CLASS_ROUTES_CSV) -> list[ClassRouteEntry]:
    """Read and check class routes: at most one responsible department per class."""
    entries: list[ClassRouteEntry] = []
    pairs: dict[object, int] = {}
    responsible: dict[object, int] = {}
    for row in read_csv(path, ROUTE_FIELDS):
        entry = ClassRouteEntry(row.text("class_code", 5, CLASS_CODE),
                                row.text("department", 40, DEPARTMENT_CODE),
                                row.choice("role", ROUTE_ROLES), row)
        check_unique(pairs, (entry.class_code, entry.department), row, "department")
        if entry.role == "responsible":
            check_unique(responsible, entry.class_code, row, "class_code",
                         f"{entry.class_code} already has a responsible department")
        entries.append(entry)
    return entries


def _known_classes(conn: Connection) -> set[str]:
    return set(conn.execute(text("SELECT code FROM incident_class")).scalars())


def _check_class(known: set[str], row: CsvRow, code: str) -> None:
    if code not in known:
        raise row.error("class_code", f"unknown class {code!r} (load the classes first)")


def write_class_routes(conn: Connection, entries: list[ClassRouteEntry]) -> int:
    """Replace the class routes with ``entries``; classes and departments must be loaded."""
    classes, ids = _known_classes(conn), department_ids(conn)
    params = []
    for entry in entries:
        _check_class(classes, entry.row, entry.class_code)
        params.append({"c": entry.class_code, "r": entry.role,
                       "d": resolve_department(ids, entry.row, "department",
                                               entry.department)})
    conn.execute(text("DELETE FROM class_route"))
    conn.execute(text("INSERT INTO class_route (class_code, department_id, role) "
                      "VALUES (:c, :d, :r)"), params)
    return len(entries)


def load_class_routes(engine: Engine, path: Path = CLASS_ROUTES_CSV) -> int:
    """Replace the class routes with the file's; classes and departments must be loaded."""
    entries = read_class_routes(path)
    with engine.begin() as conn:
        return write_class_routes(conn, entries)


# -- class powers --------------------------------------------------------------------------------
def read_class_powers(path: Path = CLASS_POWERS_CSV) -> list[tuple[CsvRow, str, str]]:
    """Read and check (row, class code, power item code) triples."""
    out: list[tuple[CsvRow, str, str]] = []
    seen: dict[object, int] = {}
    for row in read_csv(path, CLASS_POWER_FIELDS):
        pair = (row.text("class_code", 5, CLASS_CODE), row.text("power_code", 40, POWER_CODE))
        check_unique(seen, pair, row, "power_code")
        out.append((row, *pair))
    return out


def write_class_powers(conn: Connection, entries: list[tuple[CsvRow, str, str]]) -> int:
    """Replace the class → power item links with ``entries``."""
    classes = _known_classes(conn)
    items = {code: id_ for code, id_ in conn.execute(text("SELECT code, id FROM power_item"))}
    params = []
    for row, class_code, power_code in entries:
        _check_class(classes, row, class_code)
        if power_code not in items:
            raise row.error("power_code", f"unknown power item {power_code!r}")
        params.append({"c": class_code, "p": items[power_code]})
    conn.execute(text("DELETE FROM class_power"))
    conn.execute(text("INSERT INTO class_power (class_code, power_item_id) "
                      "VALUES (:c, :p)"), params)
    return len(entries)


def load_class_powers(engine: Engine, path: Path = CLASS_POWERS_CSV) -> int:
    """Replace the class → power item links with the file's."""
    entries = read_class_powers(path)
    with engine.begin() as conn:
        return write_class_powers(conn, entries)


# -- summary -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerCount:
    """How many items of one kind moved from one department to another, in force on a day."""

    original_code: str
    original_name: str
    executing_code: str
    executing_name: str
    kind: str
    count: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def power_summary(conn: Connection, on: date | None = None) -> list[PowerCount]:
    """Items in force on ``on`` (default today) per original → executing department and kind."""
    rows = conn.execute(text(
        """
        SELECT o.code, o.name, e.code, e.name, p.kind, count(*)
        FROM power_item p
        JOIN department o ON o.id = p.original_department_id
        JOIN department e ON e.id = p.executing_department_id
        WHERE p.valid_from <= :on AND (p.valid_to IS NULL OR p.valid_to > :on)
        GROUP BY o.code, o.name, e.code, e.name, p.kind
        ORDER BY e.code, o.code, p.kind = 'coercive_measure'
        """), {"on": on or date.today()})
    return [PowerCount(*row) for row in rows]


def _width(value: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in value)


def _pad(value: str, width: int) -> str:
    return value + " " * (width - _width(value))


def summary_text(rows: list[PowerCount], on: date) -> str:
    """The summary as an aligned table with totals per kind."""
    table = [(f"{r.original_name} ({r.original_code})", f"{r.executing_name} "
              f"({r.executing_code})", KIND_LABELS.get(r.kind, r.kind), f"{r.count:,}")
             for r in rows]
    header = ("original department", "executing department", "kind", "items")
    widths = [max(_width(cells[i]) for cells in [header, *table]) for i in range(4)]
    lines = [_line(header, widths, "  "), *(_line(cells, widths, " → ") for cells in table)]
    totals = {kind: sum(r.count for r in rows if r.kind == kind) for kind in POWER_KINDS}
    parts = [f"{KIND_LABELS[k]} {n:,}" for k, n in totals.items()]
    lines.append(f"in force on {on}: {', '.join(parts)}; total {sum(totals.values()):,}")
    return "\n".join(lines)


def _line(cells: tuple[str, ...], widths: list[int], arrow: str) -> str:
    first = _pad(cells[0], widths[0]) + arrow + _pad(cells[1], widths[1])
    return f"{first}  {_pad(cells[2], widths[2])}  {cells[3]:>{widths[3]}}"
