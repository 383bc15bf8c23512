"""Credit records in the exchange format (docs/SUPERVISION.md §4): checking, storing, JSON Lines.

One record is one JSON object (:data:`EXCHANGE_FIELDS`); :func:`parse_record` checks it
field by field (:class:`RecordError` names the first bad one), :func:`upsert_records` stores
records by ``record_id`` with their subjects, :func:`import_records` takes JSON Lines (bad lines
kept with their line and reason) and :func:`export_records` writes the stored records back in
the same format. Identifiers, masking, hashing, the list rules and levels are in
:mod:`gis.credit`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, text

from gis.credit import canonical_json, identifier_problem, mask_identifier, sha256_text
from gis.models.credit import RECORD_KINDS, RECORD_SOURCES, SUBJECT_KINDS
from gis.models.supervision import OUTCOMES


# -- records -------------------------------------------------------------------------------------
class RecordError(ValueError):
    """A record that cannot be stored: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


#: The exchange format's fields (docs/SUPERVISION.md §4), in export order.
EXCHANGE_FIELDS = ("record_id", "source", "subject_kind", "subject_id", "subject_name",
                   "subject_legal_representative", "subject_address", "subject_established_on",
                   "kind", "occurred_on", "title", "department", "serious", "amount", "year",
                   "outcome", "power_item_code", "case_number")
REQUIRED_FIELDS = ("record_id", "subject_kind", "subject_id", "subject_name", "kind",
                   "occurred_on")
MAX_LENGTHS = {"record_id": 64, "subject_name": 200, "subject_legal_representative": 100,
               "subject_address": 500, "title": 500, "department": 200, "power_item_code": 40,
               "case_number": 24}
SUBJECT_DETAILS = frozenset({"subject_name", "subject_legal_representative", "subject_address",
                             "subject_established_on"})


@dataclass(frozen=True)
class RecordIn:
    """One credit record in the exchange format, checked."""

    record_id: str
    subject_kind: str
    subject_id: str
    subject_name: str
    kind: str
    occurred_on: date
    source: str = "local"
    subject_legal_representative: str | None = None
    subject_address: str | None = None
    subject_established_on: date | None = None
    title: str = ""
    department: str = ""
    serious: bool = False
    amount: Decimal | None = None
    year: int | None = None
    outcome: str | None = None
    power_item_code: str | None = None
    case_number: str | None = None

    def to_exchange(self) -> dict:
        """The record as an exchange-format object (dates ISO, amount as a string)."""
        out = {}
        for name in EXCHANGE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = f"{value:.2f}"
            out[name] = value
        return out

    def content_sha256(self) -> str:
        """The hash of the record's own fields (the subject's descriptive fields excluded:
        they describe the subject, which is updated separately)."""
        own = {k: v for k, v in self.to_exchange().items() if k not in SUBJECT_DETAILS}
        return sha256_text(canonical_json(own))


def parse_record(obj: object, default_source: str = "local") -> RecordIn:
    """Check one exchange-format object; raises RecordError naming the first bad field."""
    if not isinstance(obj, dict):
        raise RecordError("record", "not a JSON object")
    unknown = sorted(set(obj) - set(EXCHANGE_FIELDS))
    if unknown:
        raise RecordError(unknown[0], "unknown field")
    for name in REQUIRED_FIELDS:
        if obj.get(name) in (None, ""):
            raise RecordError(name, "is required")
    values = {name: _text(obj, name) for name in EXCHANGE_FIELDS
              if name in MAX_LENGTHS or name in REQUIRED_FIELDS}
    subject_kind = _choice(obj, "subject_kind", SUBJECT_KINDS)
    identifier = str(obj["subject_id"]).strip().upper()
    problem = identifier_problem(subject_kind, identifier)
    if problem:
        raise RecordError("subject_id", problem)
    kind = _choice(obj, "kind", RECORD_KINDS)
    source = obj.get("source") or default_source
    if source not in RECORD_SOURCES:
        raise RecordError("source", f"{source!r} is not one of {', '.join(RECORD_SOURCES)}")
    record = RecordIn(
        record_id=values["record_id"], subject_kind=subject_kind, subject_id=identifier,
        subject_name=values["subject_name"], kind=kind, source=source,
        occurred_on=_date(obj, "occurred_on"),
        subject_legal_representative=values.get("subject_legal_representative"),
        subject_address=values.get("subject_address"),
        subject_established_on=_date(obj, "subject_established_on", required=False),
        title=values.get("title") or "", department=values.get("department") or "",
        serious=_bool(obj, "serious"), amount=_amount(obj), year=_year(obj),
        outcome=_choice(obj, "outcome", OUTCOMES, required=False),
        power_item_code=values.get("power_item_code"), case_number=values.get("case_number"))
    _check_kind_fields(record)
    return record


def _text(obj: dict, name: str) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise RecordError(name, "must be a string")
    value = str(value).strip()
    if len(value) > MAX_LENGTHS.get(name, 200):
        raise RecordError(name, f"longer than {MAX_LENGTHS.get(name, 200)} characters")
    return value


def _choice(obj: dict, name: str, choices: tuple[str, ...], required: bool = True) -> str | None:
    value = obj.get(name)
    if value in (None, "") and not required:
        return None
    if value not in choices:
        raise RecordError(name, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _date(obj: dict, name: str, required: bool = True) -> date | None:
    value = obj.get(name)
    if value in (None, ""):
        if required:
            raise RecordError(name, "is required")
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RecordError(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _bool(obj: dict, name: str) -> bool:
    value = obj.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RecordError(name, "must be true or false")
    return value


def _amount(obj: dict) -> Decimal | None:
    value = obj.get("amount")
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise RecordError("amount", "must be a number of yuan")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RecordError("amount", f"{value!r} is not a number of yuan") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise RecordError("amount", f"{value!r} is out of range")
    return amount.quantize(Decimal("0.01"))


def _year(obj: dict) -> int | None:
    value = obj.get("year")
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1990 <= value <= 2100:
        raise RecordError("year", f"{value!r} is not a year")
    return value


def _check_kind_fields(record: RecordIn) -> None:
    if record.kind == "annual_report":
        if record.year is None:
            raise RecordError("year", "an annual report needs the year it reports on")
        if record.occurred_on.year <= record.year:
            raise RecordError("occurred_on", "an annual report is filed after its year")
    if record.kind == "inspection" and record.outcome is None:
        raise RecordError("outcome", "an inspection needs its outcome")
    if record.kind != "inspection" and record.outcome is not None:
        raise RecordError("outcome", "only inspections have an outcome")
    if record.kind != "penalty" and (record.serious or record.amount is not None):
        raise RecordError("serious" if record.serious else "amount", "only for penalties")
    if record.subject_kind == "person" and record.kind == "annual_report":
        raise RecordError("kind", "persons file no annual reports")


def subject_conflicts(conn: Connection, records: list[RecordIn]) -> dict[int, str]:
    """Records (by position) whose subject is registered, or first given, as another kind."""
    kinds = dict(conn.execute(text(
        "SELECT identifier, kind FROM credit_subject WHERE identifier = ANY(:i)"),
        {"i": sorted({r.subject_id for r in records})}).all())
    conflicts = {}
    for n, record in enumerate(records):
        kind = kinds.setdefault(record.subject_id, record.subject_kind)
        if kind != record.subject_kind:
            conflicts[n] = (f"subject {mask_identifier(kind, record.subject_id)} is registered "
                            f"as {kind}")
    return conflicts


def upsert_subjects(conn: Connection, records: list[RecordIn]) -> dict[str, int]:
    """Create or complete the records' subjects (later records win; empty fields keep the
    stored value); returns their ids by identifier."""
    merged: dict[str, dict] = {}
    for r in records:
        old = merged.get(r.subject_id, {})
        merged[r.subject_id] = {
            "i": r.subject_id, "k": r.subject_kind, "n": r.subject_name,
            "r": r.subject_legal_representative or old.get("r"),
            "a": r.subject_address or old.get("a"),
            "e": r.subject_established_on or old.get("e")}
    if merged:
        conn.execute(text(
            """INSERT INTO credit_subject (kind, identifier, name, legal_representative, address,
                   established_on) VALUES (:k, :i, :n, :r, coalesce(:a, ''), :e)
               ON CONFLICT (identifier) DO UPDATE SET name = excluded.name,
                   legal_representative = coalesce(excluded.legal_representative,
                                                   credit_subject.legal_representative),
                   address = CASE WHEN excluded.address = '' THEN credit_subject.address
                                  ELSE excluded.address END,
                   established_on = coalesce(excluded.established_on,
                                             credit_subject.established_on),
                   updated_at = now()"""), list(merged.values()))
    return dict(conn.execute(text(
        "SELECT identifier, id FROM credit_subject WHERE identifier = ANY(:i)"),
        {"i": list(merged)}).all())


_RECORD_COLUMNS = ("record_id", "subject_id", "kind", "source", "occurred_on", "title",
                   "department", "serious", "amount", "year", "outcome", "power_item_code",
                   "power_item_id", "case_number", "case_id", "inspection_result_id",
                   "content_sha256")


def upsert_records(conn: Connection, records: list[RecordIn],
                   inspection_result_id: int | None = None) -> list[str]:
    """Store records by ``record_id`` (a later one with the same id wins): per record
    ``inserted``, ``updated`` (content changed) or ``unchanged``. Penalties are linked to the
    local power item and case when known. Check :func:`subject_conflicts` first."""
    conflicts = subject_conflicts(conn, records)
    if conflicts:
        n, message = next(iter(conflicts.items()))
        raise RecordError("subject_kind", f"record {records[n].record_id}: {message}")
    subjects = upsert_subjects(conn, records)
    powers = dict(conn.execute(text("SELECT code, id FROM power_item WHERE code = ANY(:c)"),
                               {"c": [r.power_item_code for r in records]}).all())
    cases = dict(conn.execute(text("SELECT number, id FROM case_file WHERE number = ANY(:n)"),
                              {"n": [r.case_number for r in records]}).all())
    stored = dict(conn.execute(text(
        "SELECT record_id, content_sha256 FROM credit_record WHERE record_id = ANY(:r)"),
        {"r": [r.record_id for r in records]}).all())
    statuses, inserts, updates = [], {}, {}
    for r in records:
        sha = r.content_sha256()
        if stored.get(r.record_id) == sha:
            statuses.append("unchanged")
            continue
        params = {**asdict(r), "subject_id": subjects[r.subject_id],
                  "power_item_id": powers.get(r.power_item_code),
                  "case_id": cases.get(r.case_number),
                  "inspection_result_id": inspection_result_id, "content_sha256": sha}
        target = inserts if r.record_id not in stored or r.record_id in inserts else updates
        statuses.append("inserted" if r.record_id not in stored else "updated")
        target[r.record_id] = {c: params[c] for c in _RECORD_COLUMNS}
        stored[r.record_id] = sha
    if inserts:
        conn.execute(text(
            f"INSERT INTO credit_record ({', '.join(_RECORD_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in _RECORD_COLUMNS)})"), list(inserts.values()))
    if updates:
        sets = ", ".join(f"{c} = :{c}" for c in _RECORD_COLUMNS
                         if c not in ("record_id", "inspection_result_id"))
        conn.execute(text(
            f"""UPDATE credit_record SET {sets}, updated_at = now(),
                    inspection_result_id = coalesce(:inspection_result_id, inspection_result_id)
                WHERE record_id = :record_id"""), list(updates.values()))
    return statuses


def upsert_record(conn: Connection, record: RecordIn,
                  inspection_result_id: int | None = None) -> str:
    """:func:`upsert_records` for one record."""
    return upsert_records(conn, [record], inspection_result_id)[0]


@dataclass
class ImportSummary:
    import_id: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[dict] = field(default_factory=list)
    subject_ids: set[int] = field(default_factory=set)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def to_dict(self) -> dict:
        return {"import_id": self.import_id, "inserted": self.inserted,
                "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "rejects": self.rejects}


def import_records(conn: Connection, lines: Iterable[tuple[int, str]], *, file: str,
                   checksum: str, source: str) -> ImportSummary:
    """Import JSON Lines ``(line number, text)``: good lines are upserted by record id, bad
    ones kept in ``credit_import_reject`` with their line and reason (in the caller's
    transaction)."""
    import_id = conn.execute(text(
        "INSERT INTO credit_import (file, checksum, source) VALUES (:f, :c, :s) RETURNING id"),
        {"f": file, "c": checksum, "s": source}).scalar_one()
    summary = ImportSummary(import_id)
    good: list[tuple[int, str, RecordIn]] = []
    for number, raw in lines:
        if not raw.strip():
            continue
        try:
            good.append((number, raw, parse_record(_json_line(raw), default_source=source)))
        except RecordError as exc:
            summary.rejects.append(_reject(number, raw, exc.field, exc.message))
    conflicts = subject_conflicts(conn, [g[2] for g in good])
    summary.rejects += [_reject(good[n][0], good[n][1], "subject_kind", message)
                        for n, message in conflicts.items()]
    records = [g[2] for n, g in enumerate(good) if n not in conflicts]
    for status in upsert_records(conn, records):
        setattr(summary, status, getattr(summary, status) + 1)
    if records:
        summary.subject_ids = set(conn.execute(text(
            "SELECT id FROM credit_subject WHERE identifier = ANY(:i)"),
            {"i": sorted({r.subject_id for r in records})}).scalars())
    summary.rejects.sort(key=lambda r: r["line"])
    if summary.rejects:
        conn.execute(text(
            """INSERT INTO credit_import_reject (import_id, line, field, reason, raw)
               VALUES (:i, :line, :field, :reason, :raw)"""),
            [{"i": import_id, **r} for r in summary.rejects])
    conn.execute(text(
        """UPDATE credit_import SET inserted = :ins, updated = :upd, unchanged = :unc,
               rejected = :rej WHERE id = :id"""),
        {"ins": summary.inserted, "upd": summary.updated, "unc": summary.unchanged,
         "rej": summary.rejected, "id": import_id})
    return summary


def _reject(line: int, raw: str, field_name: str, reason: str) -> dict:
    return {"line": line, "field": field_name, "reason": reason, "raw": raw.rstrip("\n")}


def _json_line(raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RecordError("record", f"not JSON ({exc.msg} at column {exc.colno})") from None


def export_records(conn: Connection, since: date | None = None,
                   sources: tuple[str, ...] = RECORD_SOURCES) -> Iterator[dict]:
    """Records changed on or after ``since`` (all when None) in the exchange format, unmasked
    (the exchange is between credit systems; public views use
    :func:`gis.credit.subject_profile`)."""
    rows = conn.execute(text(
        """
        SELECT r.record_id, r.source, s.kind AS subject_kind, s.identifier AS subject_id,
               s.name AS subject_name, s.legal_representative AS subject_legal_representative,
               nullif(s.address, '') AS subject_address,
               s.established_on AS subject_established_on, r.kind, r.occurred_on, r.title,
               r.department, r.serious, r.amount, r.year, r.outcome, r.power_item_code,
               r.case_number
        FROM credit_record r JOIN credit_subject s ON s.id = r.subject_id
        WHERE (CAST(:since AS date) IS NULL OR r.updated_at >= CAST(:since AS date))
          AND r.source = ANY(:sources)
        ORDER BY r.record_id
        """), {"since": since, "sources": list(sources)}).mappings()
    for row in rows:
        yield RecordIn(**row).to_exchange()
