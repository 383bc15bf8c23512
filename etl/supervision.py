"""Supervision data in and out: the spot-check list and registries (CSV), plans (JSON), credit
records (JSON Lines exchange format) and public exports. The demo data generator is
:mod:`etl.supervision_demo`.

Files live in one folder (default ``data/catalogues/supervision``, see its README):
``items.csv``, ``targets.csv``, ``inspectors.csv``, ``relations.csv``, ``plans.json`` and
``credit_records.jsonl``. They are untrusted input: every row is checked and every problem is
reported as ``file line N: field: message``; if there is any, nothing is written. Loading is one
transaction: items, targets and inspectors are upserted by code (those missing from the files
become inactive), relations and plan items are replaced, credit records are upserted by record
id, then the credit rules are applied as of the folder's ``as_of`` date.

Targets are assigned to the grid of the active generation that covers them with
:class:`gis.assign.GridIndex` (the edge rule of ``gridgov_grid_at``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text

from gis.config import DATA_DIR
from gis.credit import canonical_json, refresh, valid_id_number, valid_uscc
from gis.credit_exchange import EXCHANGE_FIELDS, ImportSummary, import_records
from gis.crs import normalise_crs, to_cgcs2000
from gis.models.supervision import CREDIT_LEVELS, TARGET_KINDS
from gis.spotcheck import DEFAULT_MIN_INSPECTORS, DEFAULT_TIERS, SpotCheckError, check_tiers

SUPERVISION_DIR = DATA_DIR / "catalogues" / "supervision"
ITEM_FIELDS = ("code", "name", "legal_basis", "department", "object_type", "line", "ratio",
               "frequency", "method", "qualification", "demo")
TARGET_FIELDS = ("credit_code", "name", "kind", "object_types", "legal_representative",
                 "address", "lon", "lat", "crs", "credit_level", "complaints", "demo")
INSPECTOR_FIELDS = ("code", "name", "id_number", "phone", "certificate", "department",
                    "street_code", "qualifications", "active", "demo")
RELATION_FIELDS = ("inspector_code", "credit_code", "kind", "note")
RELATION_KINDS = ("kinship", "former_employee", "shareholder", "business_partner", "other")

ITEM_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,39}")
WORD = re.compile(r"[a-z][a-z0-9_]{0,39}")
STAFF_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
PHONE = re.compile(r"[0-9+() -]{3,30}")
STREET_CODE = re.compile(r"[0-9]{9}")
TRUE, FALSE = ("true", "t", "yes", "y", "1"), ("false", "f", "no", "n", "0", "")


class SupervisionDataError(ValueError):
    """Problems found in the files; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:50]
        more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s):\n" + "\n".join(shown) + more)
        self.problems = problems


# -- reading CSV rows ----------------------------------------------------------------------------
class Problems(list):
    """Collects ``file line N: field: message`` strings."""

    def add(self, path: Path, line: int, field: str, message: str) -> None:
        self.append(f"{path.name} line {line}: {field}: {message}")


@dataclass
class Row:
    """One data row; each accessor records a problem (and returns None) instead of raising."""

    path: Path
    line: int
    values: dict[str, str]
    problems: Problems

    def bad(self, field: str, message: str) -> None:
        self.problems.add(self.path, self.line, field, message)

    def text(self, field: str, max_length: int = 200, pattern: re.Pattern | None = None,
             required: bool = True) -> str | None:
        value = self.values[field]
        if not value:
            if required:
                self.bad(field, "is empty")
            return None
        if len(value) > max_length:
            self.bad(field, f"longer than {max_length} characters")
        elif pattern is not None and not pattern.fullmatch(value):
            self.bad(field, f"{value!r} is not a valid {field}")
        else:
            return value
        return None

    def choice(self, field: str, choices: Sequence[str], required: bool = True) -> str | None:
        value = self.values[field]
        if not value and not required:
            return None
        if value not in choices:
            self.bad(field, f"{value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def words(self, field: str) -> list[str]:
        values = [v.strip() for v in self.values[field].split(";") if v.strip()]
        if not values:
            self.bad(field, "is empty (codes separated by ;)")
        for v in values:
            if not WORD.fullmatch(v):
                self.bad(field, f"{v!r} is not a lower-case code")
        return sorted(set(values))

    def number(self, field: str, low: float, high: float, required: bool = True,
               integer: bool = False) -> float | None:
        value = self.values[field]
        if not value:
            if required:
                self.bad(field, "is empty")
            return None
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            self.bad(field, f"{value!r} is not {'an integer' if integer else 'a number'}")
            return None
        if not (math.isfinite(number) and low <= number <= high):
            self.bad(field, f"{value} is outside {low}..{high}")
            return None
        return number

    def flag(self, field: str, default: bool) -> bool:
        value = self.values[field].lower()
        if not value:
            return default
        if value not in TRUE + FALSE:
            self.bad(field, f"{self.values[field]!r} is not true or false")
        return value in TRUE


def read_rows(path: Path, fields: Sequence[str], problems: Problems) -> list[Row]:
    """The rows of a UTF-8 CSV with at least ``fields``; structural problems are recorded."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [f for f in fields if f not in (reader.fieldnames or ())]
            if missing:
                problems.add(path, 1, ", ".join(missing), "missing column")
                return []
            rows = []
            for values in reader:
                row = Row(path, reader.line_num, {f: (values.get(f) or "").strip()
                                                  for f in fields}, problems)
                if None in values:
                    row.bad(fields[-1], "more values than columns")
                rows.append(row)
            return rows
    except FileNotFoundError:
        problems.add(path, 0, "file", "not found")
    except UnicodeDecodeError as exc:
        problems.add(path, 0, "file", f"not UTF-8 ({exc.reason} at byte {exc.start})")
    return []


def _unique(rows: Iterable[tuple[Row, str | None]], field: str) -> None:
    seen: dict[str, int] = {}
    for row, key in rows:
        if key is None:
            continue
        if key in seen:
            row.bad(field, f"{key!r} repeats line {seen[key]}")
        seen.setdefault(key, row.line)


# -- the files -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    code: str
    name: str
    legal_basis: str
    department: str
    object_type: str
    line: str | None
    ratio: float | None
    frequency: str
    method: str
    qualification: str
    demo: bool
    row: Row = field(repr=False, compare=False)


@dataclass(frozen=True)
class Target:
    credit_code: str
    name: str
    kind: str
    object_types: list[str]
    legal_representative: str | None
    address: str
    lon: float
    lat: float
    credit_level: str | None
    complaints: int
    demo: bool
    row: Row = field(repr=False, compare=False)


@dataclass(frozen=True)
class InspectorEntry:
    code: str
    name: str
    id_number: str | None
    phone: str | None
    certificate: str | None
    department: str
    street_code: str | None
    qualifications: list[str]
    active: bool
    demo: bool
    row: Row = field(repr=False, compare=False)


@dataclass(frozen=True)
class Relation:
    inspector_code: str
    credit_code: str
    kind: str
    note: str
    row: Row = field(repr=False, compare=False)


@dataclass
class SupervisionData:
    items: list[Item]
    targets: list[Target]
    inspectors: list[InspectorEntry]
    relations: list[Relation]
    plans: list[dict]
    as_of: date | None
    credit_file: Path | None
    problems: Problems


def _item(row: Row) -> Item | None:
    values = (row.text("code", 40, ITEM_CODE), row.text("name", 500),
              row.text("legal_basis", 2000), row.text("department", 40, WORD),
              row.text("object_type", 40, WORD), row.text("line", 40, WORD, required=False),
              row.number("ratio", 0.0001, 1, required=False),
              row.text("frequency", 60, required=False) or "",
              row.text("method", 100, required=False) or "", row.text("qualification", 40, WORD),
              row.flag("demo", False))
    if None in (values[0], values[1], values[2], values[3], values[4], values[9]):
        return None
    return Item(*values, row=row)


def _target(row: Row) -> Target | None:
    code = row.text("credit_code", 18)
    if code is not None and not valid_uscc(code):
        row.bad("credit_code", f"{code!r} is not a valid unified social credit code")
        code = None
    lon, lat = row.number("lon", -180, 180), row.number("lat", -90, 90)
    crs = row.values["crs"] or "cgcs2000"
    try:
        crs = normalise_crs(crs)
    except ValueError as exc:
        row.bad("crs", str(exc))
        lon = None
    if lon is not None and lat is not None:
        x, y = (float(v) for v in to_cgcs2000(lon, lat, crs))
        lon, lat = x, y
    values = (code, row.text("name"), row.choice("kind", TARGET_KINDS), row.words("object_types"),
              row.text("legal_representative", 100, required=False),
              row.text("address", 500, required=False) or "", lon, lat,
              row.choice("credit_level", CREDIT_LEVELS, required=False),
              row.number("complaints", 0, 1_000_000, required=False, integer=True) or 0,
              row.flag("demo", False))
    if None in (values[0], values[1], values[2], values[6], values[7]) or not values[3]:
        return None
    return Target(*values, row=row)


def _inspector(row: Row) -> InspectorEntry | None:
    id_number = row.text("id_number", 18, required=False)
    if id_number is not None and not valid_id_number(id_number):
        row.bad("id_number", "not a valid resident ID number")
    values = (row.text("code", 40, STAFF_CODE), row.text("name", 100), id_number,
              row.text("phone", 30, PHONE, required=False),
              row.text("certificate", 40, required=False), row.text("department", 40, WORD),
              row.text("street_code", 9, STREET_CODE, required=False), row.words("qualifications"),
              row.flag("active", True), row.flag("demo", False))
    if None in (values[0], values[1], values[5]) or not values[7]:
        return None
    return InspectorEntry(*values, row=row)


def _relation(row: Row) -> Relation | None:
    values = (row.text("inspector_code", 40, STAFF_CODE), row.text("credit_code", 18),
              row.choice("kind", RELATION_KINDS), row.text("note", 500, required=False) or "")
    if None in values:
        return None
    return Relation(*values, row=row)


def _read(path: Path, fields: Sequence[str], make: Callable[[Row], object],
          problems: Problems, optional: bool = False) -> list:
    if optional and not path.exists():
        return []
    return [entry for entry in map(make, read_rows(path, fields, problems)) if entry is not None]


def read_plans(path: Path, problems: Problems) -> tuple[list[dict], date | None]:
    """``plans.json``: ``{"as_of": "YYYY-MM-DD", "plans": [{name, title, period, items,
    tiers, min_inspectors}]}``; tiers default to 30/10/2/1 %."""
    if not path.exists():
        return [], None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.add(path, getattr(exc, "lineno", 0), "file", f"not JSON: {exc}")
        return [], None
    as_of = None
    if payload.get("as_of"):
        try:
            as_of = date.fromisoformat(payload["as_of"])
        except ValueError:
            problems.add(path, 0, "as_of", f"{payload['as_of']!r} is not a date")
    plans = []
    for n, plan in enumerate(payload.get("plans", []), start=1):
        checked = _plan(plan, problems, path, n)
        if checked is not None:
            plans.append(checked)
    names = [p["name"] for p in plans]
    for name in {n for n in names if names.count(n) > 1}:
        problems.add(path, 0, "plans", f"plan {name!r} appears twice")
    return plans, as_of


def _plan(plan: object, problems: Problems, path: Path, n: int) -> dict | None:
    where = f"plans[{n}]"
    if not isinstance(plan, dict) or not isinstance(plan.get("name"), str) or not plan["name"]:
        problems.add(path, 0, where, "a plan is an object with a name")
        return None
    items = plan.get("items")
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        problems.add(path, 0, f"{where}.items", "a non-empty list of item codes")
        return None
    try:
        tiers = check_tiers(plan.get("tiers", [dict(t) for t in DEFAULT_TIERS]))
    except SpotCheckError as exc:
        problems.add(path, 0, f"{where}.tiers", str(exc))
        return None
    minimum = plan.get("min_inspectors", DEFAULT_MIN_INSPECTORS)
    if not isinstance(minimum, int) or minimum < 2:
        problems.add(path, 0, f"{where}.min_inspectors", "an integer, at least 2")
        return None
    return {"name": plan["name"][:100], "title": str(plan.get("title", "")),
            "period": plan.get("period"), "items": sorted(set(items)), "tiers": tiers,
            "min_inspectors": minimum}


def read_folder(folder: Path) -> SupervisionData:
    """Read and check every file of a supervision folder; raises SupervisionDataError."""
    data = _read_folder(folder)
    if data.problems:
        raise SupervisionDataError(data.problems)
    return data


def _read_folder(folder: Path) -> SupervisionData:
    """Every file read; bad rows left out and their problems kept in ``problems``."""
    problems = Problems()
    items = _read(folder / "items.csv", ITEM_FIELDS, _item, problems)
    targets = _read(folder / "targets.csv", TARGET_FIELDS, _target, problems)
    inspectors = _read(folder / "inspectors.csv", INSPECTOR_FIELDS, _inspector, problems)
    relations = _read(folder / "relations.csv", RELATION_FIELDS, _relation, problems,
                      optional=True)
    plans, as_of = read_plans(folder / "plans.json", problems)
    _unique(((i.row, i.code) for i in items), "code")
    _unique(((t.row, t.credit_code) for t in targets), "credit_code")
    _unique(((i.row, i.code) for i in inspectors), "code")
    _unique(((r.row, f"{r.inspector_code}/{r.credit_code}") for r in relations), "credit_code")
    known_targets = {t.credit_code for t in targets}
    known_inspectors = {i.code for i in inspectors}
    for r in relations:
        if r.credit_code not in known_targets:
            r.row.bad("credit_code", f"unknown target {r.credit_code!r}")
        if r.inspector_code not in known_inspectors:
            r.row.bad("inspector_code", f"unknown inspector {r.inspector_code!r}")
    codes = {i.code for i in items}
    for plan in plans:
        for code in sorted(set(plan["items"]) - codes):
            problems.add(folder / "plans.json", 0, f"plan {plan['name']}",
                         f"unknown item {code!r}")
    credit = folder / "credit_records.jsonl"
    return SupervisionData(items, targets, inspectors, relations, plans, as_of,
                           credit if credit.exists() else None, problems)


# -- loading -------------------------------------------------------------------------------------
def load_supervision(engine: Engine, folder: Path = SUPERVISION_DIR, *,
                     on: date | None = None) -> dict[str, int]:
    """Load a supervision folder in one transaction; returns counts per kind of row. Every
    problem, in the files or against the database, is reported before anything is written."""
    data = _read_folder(folder)
    with engine.begin() as conn:
        problems = data.problems  # the rows record their problems here too
        departments = dict(conn.execute(text("SELECT code, id FROM department")).all())
        for entry in [*data.items, *data.inspectors]:
            if entry.department not in departments:
                entry.row.bad("department", f"unknown department {entry.department!r} "
                              "(load the organisation catalogue first)")
        grids = _assign_targets(conn, data.targets, problems)
        _check_streets(conn, data.inspectors)
        if problems:
            raise SupervisionDataError(problems)
        _write_items(conn, data.items, departments)
        _write_targets(conn, data.targets, grids)
        _write_inspectors(conn, data.inspectors, departments)
        _write_relations(conn, data.relations)
        _write_plans(conn, data.plans)
        counts = {"items": len(data.items), "targets": len(data.targets),
                  "inspectors": len(data.inspectors), "relations": len(data.relations),
                  "plans": len(data.plans), "credit_records": 0}
        if data.credit_file is not None:
            summary = import_credit_lines(conn, data.credit_file, "local")
            if summary.rejects:
                raise SupervisionDataError([
                    f"{data.credit_file.name} line {r['line']}: {r['field']}: {r['reason']}"
                    for r in summary.rejects])
            counts["credit_records"] = summary.inserted + summary.updated + summary.unchanged
        levels = refresh(conn, on or data.as_of or date.today()).levels
        counts.update({f"level_{k}": v for k, v in sorted(levels.items())})
    return counts


def _assign_targets(conn: Connection, targets: list[Target],
                    problems: Problems) -> list[str | None]:
    """The grid code of each target in the active generation; outside ones are problems."""
    from gis.assign import GridIndex
    from gis.boundaries import read_generation

    if not targets:
        return []
    try:
        grids = read_generation(conn.engine)["grid"]
    except LookupError as exc:
        problems.append(f"targets.csv: {exc}")
        return [None] * len(targets)
    # A few thousand points: a coarse lattice (~4 cells per grid) builds in a blink.
    cell = float(np.sqrt(shapely.area(grids.geometry.to_numpy()).mean()) / 2)
    index = GridIndex.from_geodataframe(grids, cell_size=cell)
    codes = index.assign_codes(np.array([t.lon for t in targets]),
                               np.array([t.lat for t in targets]))
    for target, code in zip(targets, codes, strict=True):
        if code is None:
            target.row.bad("lon", f"({target.lon:.6f}, {target.lat:.6f}) is in no grid of the "
                           "active generation")
    return list(codes)


def _check_streets(conn: Connection, inspectors: list[InspectorEntry]) -> None:
    streets = set(conn.execute(text(
        """SELECT u.code FROM unit u JOIN generation g ON g.id = u.generation_id
           WHERE g.active AND u.level = 'street'""")).scalars())
    for entry in inspectors:
        if streets and entry.street_code and entry.street_code not in streets:
            entry.row.bad("street_code", f"{entry.street_code} is not a street of the active "
                          "generation")


def _write_items(conn: Connection, items: list[Item], departments: dict[str, int]) -> None:
    conn.execute(text(
        """INSERT INTO inspection_item (code, name, legal_basis, department_id, object_type,
               line, ratio, frequency, method, qualification, active, demo)
           VALUES (:code, :name, :legal_basis, :department_id, :object_type, :line, :ratio,
               :frequency, :method, :qualification, true, :demo)
           ON CONFLICT (code) DO UPDATE SET name = excluded.name,
               legal_basis = excluded.legal_basis, department_id = excluded.department_id,
               object_type = excluded.object_type, line = excluded.line,
               ratio = excluded.ratio, frequency = excluded.frequency,
               method = excluded.method, qualification = excluded.qualification,
               active = true, demo = excluded.demo"""),
        [{**_params(i), "department_id": departments[i.department]} for i in items])
    conn.execute(text("UPDATE inspection_item SET active = false WHERE NOT (code = ANY(:c))"),
                 {"c": [i.code for i in items]})


def _write_targets(conn: Connection, targets: list[Target], grids: list[str | None]) -> None:
    if targets:
        conn.execute(text(
            """INSERT INTO inspection_target (credit_code, name, kind, object_types,
                   legal_representative, address, geom, grid_code, street_code, credit_level,
                   complaints, active, demo)
               VALUES (:credit_code, :name, :kind, :object_types, :legal_representative,
                   :address, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :grid, :street,
                   :credit_level, :complaints, true, :demo)
               ON CONFLICT (credit_code) DO UPDATE SET name = excluded.name,
                   kind = excluded.kind, object_types = excluded.object_types,
                   legal_representative = excluded.legal_representative,
                   address = excluded.address, geom = excluded.geom,
                   grid_code = excluded.grid_code, street_code = excluded.street_code,
                   credit_level = excluded.credit_level, complaints = excluded.complaints,
                   active = true, demo = excluded.demo, updated_at = now()"""),
            [{**_params(t), "grid": g, "street": g[:9] if g else None}
             for t, g in zip(targets, grids, strict=True)])
    conn.execute(text(
        "UPDATE inspection_target SET active = false WHERE NOT (credit_code = ANY(:c))"),
        {"c": [t.credit_code for t in targets]})


def _write_inspectors(conn: Connection, inspectors: list[InspectorEntry],
                      departments: dict[str, int]) -> None:
    if inspectors:
        conn.execute(text(
            """INSERT INTO inspector (code, name, id_number, phone, certificate, department_id,
                   street_code, qualifications, active, demo)
               VALUES (:code, :name, :id_number, :phone, :certificate, :department_id,
                   :street_code, :qualifications, :active, :demo)
               ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                   id_number = excluded.id_number, phone = excluded.phone,
                   certificate = excluded.certificate, department_id = excluded.department_id,
                   street_code = excluded.street_code, qualifications = excluded.qualifications,
                   active = excluded.active, demo = excluded.demo"""),
            [{**_params(i), "department_id": departments[i.department]} for i in inspectors])
    conn.execute(text("UPDATE inspector SET active = false WHERE NOT (code = ANY(:c))"),
                 {"c": [i.code for i in inspectors]})


def _write_relations(conn: Connection, relations: list[Relation]) -> None:
    conn.execute(text("DELETE FROM inspector_relation"))
    if relations:
        conn.execute(text(
            """INSERT INTO inspector_relation (inspector_id, target_id, kind, note)
               SELECT i.id, t.id, :kind, :note FROM inspector i, inspection_target t
               WHERE i.code = :inspector_code AND t.credit_code = :credit_code"""),
            [_params(r) for r in relations])


def _write_plans(conn: Connection, plans: list[dict]) -> None:
    for plan in plans:
        plan_id = conn.execute(text(
            """INSERT INTO spot_check_plan (name, title, period, tiers, min_inspectors)
               VALUES (:name, :title, :period, CAST(:tiers AS jsonb), :min_inspectors)
               ON CONFLICT (name) DO UPDATE SET title = excluded.title,
                   period = excluded.period, tiers = excluded.tiers,
                   min_inspectors = excluded.min_inspectors RETURNING id"""),
            {**plan, "tiers": json.dumps(plan["tiers"])}).scalar_one()
        conn.execute(text("DELETE FROM spot_check_plan_item WHERE plan_id = :p"), {"p": plan_id})
        conn.execute(text(
            """INSERT INTO spot_check_plan_item (plan_id, item_id)
               SELECT :p, id FROM inspection_item WHERE code = ANY(:c)"""),
            {"p": plan_id, "c": plan["items"]})


def _params(entry) -> dict:
    values = dict(entry.__dict__)
    values.pop("row", None)
    return values


# -- credit exchange files -----------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _numbered_lines(path: Path) -> Iterable[tuple[int, str]]:
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        yield from enumerate(handle, start=1)


def import_credit_lines(conn: Connection, path: Path, source: str) -> ImportSummary:
    return import_records(conn, _numbered_lines(path), file=str(path),
                          checksum=file_sha256(path), source=source)


def import_credit_file(engine: Engine, path: Path, *, source: str = "city",
                       rejects: Path | None = None, on: date | None = None) -> ImportSummary:
    """Import an exchange file (JSON Lines) in one transaction; rejected lines are kept in the
    database and written to ``rejects`` (default ``FILE.rejects.jsonl``) with line and reason.
    The list and level rules are then applied, as of ``on`` (default today), to the subjects
    the file touched."""
    with engine.begin() as conn:
        summary = import_credit_lines(conn, path, source)
        if summary.subject_ids:
            refresh(conn, on or date.today(), summary.subject_ids)
    rejects = rejects or path.with_name(path.name + ".rejects.jsonl")
    if summary.rejects:
        with open(rejects, "w", encoding="utf-8") as handle:
            for reject in summary.rejects:
                handle.write(json.dumps(reject, ensure_ascii=False) + "\n")
    return summary


def export_credit_file(engine: Engine, path: Path, *, since: date | None = None,
                       sources: tuple[str, ...] | None = None) -> int:
    """Write the records changed since ``since`` as JSON Lines (or CSV for a ``.csv`` path),
    sorted by record id; returns how many."""
    from gis.credit_exchange import export_records
    from gis.models.credit import RECORD_SOURCES

    with engine.connect() as conn:
        records = list(export_records(conn, since, sources or RECORD_SOURCES))
    if path.suffix.lower() == ".csv":
        write_csv(path, EXCHANGE_FIELDS, records)
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(canonical_json({k: v for k, v in record.items()
                                             if v is not None}) + "\n")
    return len(records)


# -- public exports ------------------------------------------------------------------------------
PUBLIC_FIELDS = ("plan", "period", "draw_id", "visit_id", "target", "credit_code",
                 "legal_representative", "address", "grid_code", "item_code", "item",
                 "department", "outcome", "outcome_label", "findings", "inspected_on",
                 "inspectors", "recorded_by")


def write_public_results(rows: list[dict], path: Path) -> int:
    """The public results as JSON (``.json``) or CSV (anything else; inspectors flattened)."""
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
        return len(rows)
    flat = [{**r, "inspectors": "; ".join(
        f"{p['name']}（执法证{p['certificate'] or '-'}）" for p in r["inspectors"])}
        for r in rows]
    write_csv(path, PUBLIC_FIELDS, flat)
    return len(rows)


def write_csv(path: Path, fields: Sequence[str], rows: Iterable[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), lineterminator="\n",
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
