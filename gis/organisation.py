"""The organisation as data: departments, staff, grid staff and grid area classes.

Each catalogue is a UTF-8 CSV under ``data/catalogues`` (see its README). The files are treated
as untrusted input: readers check columns, types, enumerations, references and duplicates, and
a bad row raises ValueError naming the file, the line and the field. Each catalogue has a
reader (``read_*``: the file's own checks), a writer (``write_*``: references checked against
the database, then written on a Connection, so that :func:`gis.catalogues.load_catalogues` can
write every file in one transaction) and a loader (``load_*``: one file in its own
transaction). A failed load writes nothing; loading the same file twice changes nothing.

Departments and staff are upserted by code (their ids stay stable for the cases that refer to
them); staff missing from the file are set inactive, never deleted. Grid attachments and area
classes are replaced as a whole.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from gis.config import DATA_DIR
from gis.models.organisation import DEPARTMENT_KINDS, GRID_ROLES, POSTS
from gis.partition import DISTRICT_CODE, STREETS

CATALOGUE_DIR = DATA_DIR / "catalogues"
DEPARTMENTS_CSV = CATALOGUE_DIR / "departments.csv"
STAFF_CSV = CATALOGUE_DIR / "staff.csv"
STAFF_GRIDS_CSV = CATALOGUE_DIR / "staff_grids.csv"
AREA_CLASSES_CSV = CATALOGUE_DIR / "grid_area_classes.csv"

DEPARTMENT_FIELDS = ("code", "name", "kind", "parent", "street_code", "line", "demo")
STAFF_FIELDS = ("code", "name", "post", "department", "phone", "active", "demo")
STAFF_GRID_FIELDS = ("staff_code", "grid_code", "role")
AREA_CLASS_FIELDS = ("grid_code", "area_class")

#: Lines of work (the ``line`` of incident classes).
LINES = ("urban_management", "comprehensive_governance", "public_security", "environment",
         "water", "production_safety", "food_drug", "market_regulation")
AREA_CLASSES = ("A", "B", "C")
STREET_CODES = frozenset(s.full_code for s in STREETS)
#: Kinds stationed in one street (routing picks them by street code).
STATIONED_KINDS = ("squadron", "street_office")
POST_OF_ROLE = {"leader": "grid_leader", "worker": "grid_worker"}

DEPARTMENT_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
STAFF_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
PHONE = re.compile(r"[0-9+() -]{3,30}")
GRID_CODE = re.compile(r"[0-9]{15}")
TRUE, FALSE = ("true", "t", "yes", "y", "1"), ("false", "f", "no", "n", "0")


# -- reading CSVs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CsvRow:
    """One data row of a catalogue CSV; accessors check a field and name file, line and field."""

    path: Path
    line: int
    values: dict[str, str]

    def error(self, field: str, message: str) -> ValueError:
        return ValueError(f"{self.path} line {self.line}: {field}: {message}")

    def optional(self, field: str, max_length: int = 200,
                 pattern: re.Pattern[str] | None = None,
                 choices: tuple[str, ...] | None = None) -> str | None:
        value = self.values[field]
        if not value:
            return None
        if len(value) > max_length:
            raise self.error(field, f"longer than {max_length} characters")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(field, f"{value!r} is not a valid {field}")
        if choices is not None and value not in choices:
            raise self.error(field, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def text(self, field: str, max_length: int = 200,
             pattern: re.Pattern[str] | None = None) -> str:
        value = self.optional(field, max_length, pattern)
        if value is None:
            raise self.error(field, "is empty")
        return value

    def choice(self, field: str, choices: tuple[str, ...]) -> str:
        value = self.optional(field, choices=choices)
        if value is None:
            raise self.error(field, f"is empty (one of {', '.join(choices)})")
        return value

    def flag(self, field: str, default: bool) -> bool:
        value = self.values[field].lower()
        if not value:
            return default
        if value not in TRUE + FALSE:
            raise self.error(field, f"{self.values[field]!r} is not true or false")
        return value in TRUE

    def optional_day(self, field: str) -> date | None:
        value = self.values[field]
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.error(field, f"{value!r} is not a date (YYYY-MM-DD)") from None

    def day(self, field: str) -> date:
        value = self.optional_day(field)
        if value is None:
            raise self.error(field, "is empty")
        return value


def read_csv(path: Path, fields: tuple[str, ...]) -> list[CsvRow]:
    """The data rows of a UTF-8 CSV that has at least ``fields`` (values stripped)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [f for f in fields if f not in (reader.fieldnames or ())]
            if missing:
                raise ValueError(f"{path} line 1: {', '.join(missing)}: missing column")
            rows = []
            for values in reader:
                row = CsvRow(path, reader.line_num,
                             {f: (values.get(f) or "").strip() for f in fields})
                if None in values:
                    raise row.error(fields[-1], "more values than columns")
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return rows


def check_unique(seen: dict[object, int], key: object, row: CsvRow, field: str,
                 what: str | None = None) -> None:
    """Record ``key`` for ``row``; a key seen before raises naming the earlier line."""
    if key in seen:
        raise row.error(field, f"{what or repr(key) + ' is repeated'} (line {seen[key]})")
    seen[key] = row.line


def grid_code_problem(code: str) -> str | None:
    """Why ``code`` cannot be a grid code of the district (None when it can)."""
    if not GRID_CODE.fullmatch(code):
        return f"{code!r} is not a 15-digit grid code"
    if not code.startswith(DISTRICT_CODE):
        return f"{code!r} is not in district {DISTRICT_CODE}"
    if code[:9] not in STREET_CODES:
        return f"{code!r} is in no known street ({code[:9]})"
    return None


def _grid_code(row: CsvRow, field: str = "grid_code") -> str:
    code = row.text(field, 20)
    problem = grid_code_problem(code)
    if problem:
        raise row.error(field, problem)
    return code


def active_grid_codes(conn: Connection) -> set[str] | None:
    """Grid codes of the active generation, or None when no generation is active."""
    if conn.execute(text("SELECT 1 FROM generation WHERE active")).first() is None:
        return None
    return set(conn.execute(text(
        """SELECT u.code FROM unit u JOIN generation g ON g.id = u.generation_id
           WHERE g.active AND u.level = 'grid'""")).scalars())


def _check_active_grids(conn: Connection, rows: list[tuple[CsvRow, str]]) -> None:
    known = active_grid_codes(conn)
    if known is None:
        return
    for row, code in rows:
        if code not in known:
            raise row.error("grid_code", f"{code} is not a grid of the active generation")


def department_ids(conn: Connection) -> dict[str, int]:
    return {code: id_ for code, id_ in conn.execute(text("SELECT code, id FROM department"))}


def resolve_department(ids: dict[str, int], row: CsvRow, field: str, code: str) -> int:
    if code not in ids:
        raise row.error(field, f"unknown department {code!r} (load departments first)")
    return ids[code]


# -- departments ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DepartmentEntry:
    code: str
    name: str
    kind: str
    parent: str | None
    street_code: str | None
    line: str | None
    demo: bool
    row: CsvRow


def _department(row: CsvRow) -> DepartmentEntry:
    kind = row.choice("kind", DEPARTMENT_KINDS)
    street = row.optional("street_code", 9)
    if street is not None and street not in STREET_CODES:
        raise row.error("street_code", f"{street!r} is not one of the {len(STREET_CODES)} "
                        "streets")
    if street is not None and kind not in STATIONED_KINDS:
        raise row.error("street_code", f"only a {' or '.join(STATIONED_KINDS)} has a street")
    if street is None and kind == "street_office":
        raise row.error("street_code", "a street office needs its street")
    return DepartmentEntry(row.text("code", 40, DEPARTMENT_CODE), row.text("name"), kind,
                           row.optional("parent", 40, DEPARTMENT_CODE), street,
                           row.optional("line", choices=LINES), row.flag("demo", False), row)


def read_departments(path: Path = DEPARTMENTS_CSV) -> list[DepartmentEntry]:
    """Read and check the departments; returned parents first."""
    entries: dict[str, DepartmentEntry] = {}
    codes: dict[object, int] = {}
    stations: dict[object, int] = {}
    for row in read_csv(path, DEPARTMENT_FIELDS):
        entry = _department(row)
        check_unique(codes, entry.code, row, "code")
        if entry.street_code is not None:
            check_unique(stations, (entry.kind, entry.street_code), row, "street_code",
                         f"street {entry.street_code} already has a {entry.kind}")
        entries[entry.code] = entry
    for entry in entries.values():
        if entry.parent is not None and entry.parent not in entries:
            raise entry.row.error("parent", f"unknown department {entry.parent!r}")
    return _parents_first(entries)


def _parents_first(entries: dict[str, DepartmentEntry]) -> list[DepartmentEntry]:
    ordered: dict[str, DepartmentEntry] = {}
    for entry in entries.values():
        chain: dict[str, DepartmentEntry] = {}
        current: DepartmentEntry | None = entry
        while current is not None and current.code not in ordered:
            if current.code in chain:
                raise current.row.error("parent", f"{current.code} is its own ancestor")
            chain[current.code] = current
            current = entries[current.parent] if current.parent else None
        for item in reversed(chain.values()):
            ordered[item.code] = item
    return list(ordered.values())


def write_departments(conn: Connection, entries: list[DepartmentEntry]) -> int:
    """Insert or update every department (by code); returns how many there are."""
    conn.execute(text(
        """
        INSERT INTO department (code, name, kind, parent_id, street_code, line, demo)
        VALUES (:code, :name, :kind, (SELECT id FROM department WHERE code = :parent),
                :street_code, :line, :demo)
        ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind,
            parent_id = excluded.parent_id, street_code = excluded.street_code,
            line = excluded.line, demo = excluded.demo
        """), [_params(e) for e in entries])
    return len(entries)


def load_departments(engine: Engine, path: Path = DEPARTMENTS_CSV) -> int:
    """Insert or update every department (by code); returns how many the file holds."""
    entries = read_departments(path)
    with engine.begin() as conn:
        return write_departments(conn, entries)


def _params(entry: DepartmentEntry | StaffEntry) -> dict[str, object]:
    values = dict(entry.__dict__)
    values.pop("row")
    return values


# -- staff ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffEntry:
    code: str
    name: str
    post: str
    department: str
    phone: str | None
    active: bool
    demo: bool
    row: CsvRow


def read_staff(path: Path = STAFF_CSV) -> list[StaffEntry]:
    """Read and check the staff list."""
    entries, codes = [], {}
    for row in read_csv(path, STAFF_FIELDS):
        entry = StaffEntry(row.text("code", 40, STAFF_CODE), row.text("name", 100),
                           row.choice("post", POSTS), row.text("department", 40, DEPARTMENT_CODE),
                           row.optional("phone", 30, PHONE), row.flag("active", True),
                           row.flag("demo", False), row)
        check_unique(codes, entry.code, row, "code")
        entries.append(entry)
    return entries


def write_staff(conn: Connection, entries: list[StaffEntry]) -> int:
    """Insert or update every member of staff (by code); staff not listed become inactive.
    Departments must be loaded. Returns how many are listed."""
    ids = department_ids(conn)
    params = [{**_params(e), "department_id": resolve_department(ids, e.row, "department",
                                                                   e.department)}
              for e in entries]
    conn.execute(text(
        """
        INSERT INTO staff (code, name, post, department_id, phone, active, demo)
        VALUES (:code, :name, :post, :department_id, :phone, :active, :demo)
        ON CONFLICT (code) DO UPDATE SET name = excluded.name, post = excluded.post,
            department_id = excluded.department_id, phone = excluded.phone,
            active = excluded.active, demo = excluded.demo
        """), params)
    conn.execute(text("UPDATE staff SET active = false WHERE NOT (code = ANY(:codes))"),
                 {"codes": [e.code for e in entries]})
    return len(entries)


def load_staff(engine: Engine, path: Path = STAFF_CSV) -> int:
    """Insert or update every member of staff (by code); staff not in the file become
    inactive. Returns how many the file holds."""
    entries = read_staff(path)
    with engine.begin() as conn:
        return write_staff(conn, entries)


# -- grid staff ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffGridEntry:
    staff_code: str
    grid_code: str
    role: str
    row: CsvRow


def read_staff_grids(path: Path = STAFF_GRIDS_CSV) -> list[StaffGridEntry]:
    """Read and check grid attachments: one leader per grid, a leader's grids in one community,
    a worker in one grid, one role per person."""
    entries: list[StaffGridEntry] = []
    pairs: dict[object, int] = {}
    leaders: dict[object, int] = {}
    first: dict[str, StaffGridEntry] = {}
    for row in read_csv(path, STAFF_GRID_FIELDS):
        entry = StaffGridEntry(row.text("staff_code", 40, STAFF_CODE), _grid_code(row),
                               row.choice("role", GRID_ROLES), row)
        check_unique(pairs, (entry.staff_code, entry.grid_code), row, "grid_code")
        if entry.role == "leader":
            check_unique(leaders, entry.grid_code, row, "grid_code",
                         f"grid {entry.grid_code} already has a leader")
        _check_same_person(first.setdefault(entry.staff_code, entry), entry)
        entries.append(entry)
    return entries


def _check_same_person(first: StaffGridEntry, entry: StaffGridEntry) -> None:
    if entry is first:
        return
    if entry.role != first.role:
        raise entry.row.error("role", f"{entry.staff_code} is a {first.role} at line "
                              f"{first.row.line}")
    if entry.role == "worker":
        raise entry.row.error("grid_code", f"worker {entry.staff_code} already works in grid "
                              f"{first.grid_code} (line {first.row.line})")
    if entry.grid_code[:12] != first.grid_code[:12]:
        raise entry.row.error("grid_code", f"leader {entry.staff_code} leads grids in community "
                              f"{first.grid_code[:12]} (line {first.row.line})")


def write_staff_grids(conn: Connection, entries: list[StaffGridEntry]) -> int:
    """Replace the grid attachments with ``entries``; staff must be loaded, with the post that
    matches the role, and grids must exist in the active generation (when there is one)."""
    staff = {code: (id_, post) for code, id_, post in
             conn.execute(text("SELECT code, id, post FROM staff"))}
    _check_active_grids(conn, [(e.row, e.grid_code) for e in entries])
    params = [{"staff_id": _grid_staff_id(staff, e), "grid_code": e.grid_code,
               "role": e.role} for e in entries]
    conn.execute(text("DELETE FROM staff_grid"))
    conn.execute(text("INSERT INTO staff_grid (staff_id, grid_code, role) "
                      "VALUES (:staff_id, :grid_code, :role)"), params)
    return len(entries)


def load_staff_grids(engine: Engine, path: Path = STAFF_GRIDS_CSV) -> int:
    """Replace the grid attachments with the file's (see :func:`write_staff_grids`)."""
    entries = read_staff_grids(path)
    with engine.begin() as conn:
        return write_staff_grids(conn, entries)


def _grid_staff_id(staff: dict[str, tuple[int, str]], entry: StaffGridEntry) -> int:
    if entry.staff_code not in staff:
        raise entry.row.error("staff_code", f"unknown staff {entry.staff_code!r} "
                              "(load staff first)")
    staff_id, post = staff[entry.staff_code]
    if post != POST_OF_ROLE[entry.role]:
        raise entry.row.error("role", f"{entry.staff_code} is a {post}, not a "
                              f"{POST_OF_ROLE[entry.role]}")
    return staff_id


# -- grid area classes ---------------------------------------------------------------------------
def read_area_classes(path: Path = AREA_CLASSES_CSV) -> list[tuple[CsvRow, str, str]]:
    """Read and check (row, grid code, area class) triples."""
    out: list[tuple[CsvRow, str, str]] = []
    seen: dict[object, int] = {}
    for row in read_csv(path, AREA_CLASS_FIELDS):
        code = _grid_code(row)
        check_unique(seen, code, row, "grid_code")
        out.append((row, code, row.choice("area_class", AREA_CLASSES)))
    return out


def write_area_classes(conn: Connection, entries: list[tuple[CsvRow, str, str]]) -> int:
    """Replace the grid area classes with ``entries`` (grids checked as for grid staff)."""
    _check_active_grids(conn, [(row, code) for row, code, _ in entries])
    conn.execute(text("DELETE FROM grid_area_class"))
    conn.execute(text("INSERT INTO grid_area_class (grid_code, area_class) "
                      "VALUES (:g, :a)"), [{"g": g, "a": a} for _, g, a in entries])
    return len(entries)


def load_area_classes(engine: Engine, path: Path = AREA_CLASSES_CSV) -> int:
    """Replace the grid area classes with the file's (grids checked as for grid staff)."""
    entries = read_area_classes(path)
    with engine.begin() as conn:
        return write_area_classes(conn, entries)
