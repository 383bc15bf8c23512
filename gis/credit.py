"""Credit information: identifiers and masking, hashing, list rules, credit levels, queries.

Credit records themselves, in the exchange format (checking, storing, JSON Lines import and
export), are in :mod:`gis.credit_exchange`.

Identifiers are checked by their own check characters: the unified social credit code after
GB 32100-2015, the resident ID number after GB 11643-1999. Personal identifiers are masked
wherever shown (:func:`mask_id_number`, :func:`mask_phone`, :func:`mask_person_name`).

List rules (abnormal operation list 经营异常名录, blacklist 严重违法失信名单) and credit levels
are pure functions of a subject's records (:func:`derive_entries`, :func:`derive_level`);
:func:`refresh` writes their outcome. The rules, in docs/SUPERVISION.md §3:

- abnormal ``no_annual_report``: an enterprise or individual business that has not filed the
  annual report for year Y by 30 June of Y+1 is listed on 1 July of Y+1; filing the report
  removes it on the filing date.
- abnormal ``unreachable``: an inspection that could not find the subject at its registered
  address (outcome ``not_found``) lists it that day; the next contact (a later inspection that
  found it, or an ``address_verified`` record) removes it.
- blacklist ``abnormal_3y``: still on the abnormal list 3 years after entry; removed when the
  abnormal entry is removed (the cause corrected).
- blacklist ``serious_penalty``: a penalty marked serious; removed 5 years later.
- blacklist ``repeat_penalties``: a third penalty within 730 days; removed 5 years later.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Connection, text

# -- identifiers ---------------------------------------------------------------------------------
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code (GB 32100-2015, mod 31)."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def valid_uscc(code: str) -> bool:
    return (len(code) == 18 and all(c in USCC_CHARS for c in code)
            and uscc_check_char(code[:17]) == code[17])


def id_check_char(first17: str) -> str:
    """The 18th character of a resident ID number (GB 11643-1999, ISO 7064 mod 11-2)."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def valid_id_number(code: str) -> bool:
    return (len(code) == 18 and code[:17].isdigit() and code[17] in "0123456789X"
            and id_check_char(code[:17]) == code[17])


def identifier_problem(kind: str, identifier: str) -> str | None:
    """Why ``identifier`` cannot identify a subject of ``kind`` (None when it can)."""
    if kind == "person":
        return None if valid_id_number(identifier) else (
            f"{mask_id_number(identifier)} is not a valid resident ID number")
    return None if valid_uscc(identifier) else (
        f"{identifier!r} is not a valid unified social credit code")


# -- masking -------------------------------------------------------------------------------------
_COMPOUND = ("欧阳司马诸葛上官东方皇甫尉迟公孙慕容长孙宇文司徒夏侯"
             "轩辕令狐钟离端木西门南宫独孤百里呼延万俟闻人澹台公羊太史申屠濮阳")
COMPOUND_SURNAMES = frozenset(_COMPOUND[i:i + 2] for i in range(0, len(_COMPOUND), 2))


def mask_id_number(value: str | None) -> str | None:
    """An 18-digit ID number as its first 6 + ``********`` + last 4 (other lengths: all but the
    first and last characters starred)."""
    if not value:
        return value
    if len(value) == 18:
        return value[:6] + "*" * 8 + value[-4:]
    return value[0] + "*" * max(len(value) - 2, 1) + (value[-1] if len(value) > 1 else "")


def mask_phone(value: str | None) -> str | None:
    """A phone number as its first 3 + ``****`` + last 4 digits (shorter ones: last 2 kept)."""
    if not value:
        return value
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) >= 11:
        return digits[:3] + "****" + digits[-4:]
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def mask_person_name(value: str | None) -> str | None:
    """A person's name as surname + ``*`` (compound surnames such as 欧阳 are kept whole)."""
    if not value:
        return value
    surname = value[:2] if value[:2] in COMPOUND_SURNAMES and len(value) > 2 else value[:1]
    return surname + "*"


def mask_identifier(kind: str, identifier: str) -> str:
    """Organisations' credit codes are public; a person's ID number is masked."""
    return mask_id_number(identifier) if kind == "person" else identifier


def mask_subject_name(kind: str, name: str) -> str:
    return mask_person_name(name) if kind == "person" else name


# -- hashing -------------------------------------------------------------------------------------
def canonical_json(payload: object) -> str:
    """Sorted keys, no spaces, UTF-8 characters as themselves: the text that gets hashed."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# -- list rules ----------------------------------------------------------------------------------
REPORTING_KINDS = frozenset({"enterprise", "individual_business"})
FIRST_REPORT_YEAR = 2013  # annual-report publicity began in 2014 for the year 2013
REPORT_DEADLINE = (6, 30)
ABNORMAL_TO_BLACKLIST_YEARS = 3
BLACKLIST_YEARS = 5
REPEAT_PENALTIES = 3
REPEAT_WINDOW = timedelta(days=730)
LEVEL_C_YEARS = 2
LEVEL_A_YEARS = 3


@dataclass(frozen=True)
class Event:
    """A record reduced to what the rules read."""

    on: date
    kind: str
    record_id: str
    serious: bool = False
    outcome: str | None = None
    year: int | None = None


@dataclass(frozen=True)
class Entry:
    """A list entry as the rules derive it (or a manual one they take into account)."""

    list_name: str
    reason_code: str
    rule_key: str
    reason: str
    entered_on: date
    removed_on: date | None = None
    removal_reason: str = ""

    def active_on(self, day: date) -> bool:
        return self.entered_on <= day and (self.removed_on is None or self.removed_on > day)


@dataclass(frozen=True)
class Facts:
    kind: str
    established_on: date | None
    events: tuple[Event, ...]
    manual: tuple[Entry, ...] = ()


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _entry(list_name: str, reason_code: str, rule_key: str, reason: str, entered_on: date,
           removed_on: date | None, on: date, removal_reason: str) -> Entry:
    """An entry as of ``on``: a removal counts (with its reason) only once its day has come."""
    removed = removed_on if removed_on is not None and removed_on <= on else None
    return Entry(list_name, reason_code, rule_key, reason, entered_on, removed,
                 removal_reason if removed else "")


def report_deadline(year: int) -> date:
    return date(year + 1, *REPORT_DEADLINE)


def required_report_years(facts: Facts, on: date) -> list[int]:
    """The years whose annual report was due by ``on``."""
    if facts.kind not in REPORTING_KINDS or facts.established_on is None:
        return []
    first = max(FIRST_REPORT_YEAR, facts.established_on.year)
    return [y for y in range(first, on.year) if report_deadline(y) < on]


def _no_annual_report(facts: Facts, on: date) -> list[Entry]:
    filed: dict[int, date] = {}
    for e in facts.events:
        if e.kind == "annual_report" and e.year is not None and e.on <= on:
            filed[e.year] = min(e.on, filed.get(e.year, e.on))
    entries = []
    for year in required_report_years(facts, on):
        deadline = report_deadline(year)
        done = filed.get(year)
        if done is not None and done <= deadline:
            continue
        entries.append(_entry(
            "abnormal", "no_annual_report", f"no_annual_report:{year}",
            f"未按规定报送{year}年度年度报告 (no annual report for {year} by {deadline})",
            deadline + timedelta(days=1), done, on, f"{year}年度报告已补报 (report filed)"))
    return entries


def _unreachable(facts: Facts, on: date) -> list[Entry]:
    entries, start = [], None
    for e in sorted(facts.events, key=lambda e: (e.on, e.record_id)):
        if e.on > on:
            break
        lost = e.kind == "inspection" and e.outcome == "not_found"
        found = e.kind == "address_verified" or (e.kind == "inspection" and not lost)
        if lost and start is None:
            start = e
        elif found and start is not None and e.on > start.on:
            entries.append(_unreachable_entry(start, e.on, on))
            start = None
    if start is not None:
        entries.append(_unreachable_entry(start, None, on))
    return entries


def _unreachable_entry(start: Event, removed: date | None, on: date) -> Entry:
    return _entry("abnormal", "unreachable", f"unreachable:{start.record_id}",
                  f"通过登记的住所无法联系 (not found at the registered address: "
                  f"{start.record_id})",
                  start.on, removed, on, "已恢复联系 (contact restored)")


def _abnormal_3y(abnormal: list[Entry], on: date) -> list[Entry]:
    entries = []
    for a in abnormal:
        mark = add_years(a.entered_on, ABNORMAL_TO_BLACKLIST_YEARS)
        if mark <= on and (a.removed_on is None or a.removed_on > mark):
            entries.append(_entry(
                "blacklist", "abnormal_3y", f"abnormal_3y:{a.rule_key}",
                f"列入经营异常名录满三年 (on the abnormal list since {a.entered_on}: {a.reason})",
                mark, a.removed_on, on, "已移出经营异常名录 (removed from the abnormal list)"))
    return entries


def _penalties(facts: Facts, on: date) -> list[Entry]:
    penalties = sorted((e for e in facts.events if e.kind == "penalty" and e.on <= on),
                       key=lambda e: (e.on, e.record_id))
    entries = []
    for p in penalties:
        if p.serious:
            entries.append(_five_years("serious_penalty", p, on,
                                       f"严重违法行政处罚 (serious penalty {p.record_id})"))
    repeat: Entry | None = None
    for i, p in enumerate(penalties):
        within = [q for q in penalties[:i + 1] if q.on > p.on - REPEAT_WINDOW]
        if len(within) >= REPEAT_PENALTIES and (repeat is None or not repeat.active_on(p.on)):
            repeat = _five_years("repeat_penalties", p, on,
                                 f"两年内受到{len(within)}次行政处罚 ({len(within)} penalties "
                                 f"within 730 days, the last {p.record_id})")
            entries.append(repeat)
    return entries


def _five_years(reason_code: str, penalty: Event, on: date, reason: str) -> Entry:
    return _entry("blacklist", reason_code, f"{reason_code}:{penalty.record_id}", reason,
                  penalty.on, add_years(penalty.on, BLACKLIST_YEARS), on,
                  "公示期满五年 (five years elapsed)")


def derive_entries(facts: Facts, on: date) -> list[Entry]:
    """Every list entry the rules give as of ``on`` (removed ones included, with the date)."""
    abnormal = _no_annual_report(facts, on) + _unreachable(facts, on)
    manual_abnormal = [m for m in facts.manual if m.list_name == "abnormal"]
    return abnormal + _abnormal_3y(abnormal + manual_abnormal, on) + _penalties(facts, on)


def derive_level(facts: Facts, entries: Iterable[Entry], on: date) -> tuple[str, str]:
    """Credit level A/B/C/D as of ``on``, with the reason (docs/SUPERVISION.md §3.3)."""
    entries = [*entries, *facts.manual]
    active = [e for e in entries if e.active_on(on)]
    black = [e for e in active if e.list_name == "blacklist"]
    if black:
        return "D", f"on the blacklist: {black[0].reason}"
    past = [e for e in facts.events if e.on <= on]
    c_from = add_years(on, -LEVEL_C_YEARS)
    recent_penalties = [e for e in past if e.kind == "penalty" and e.on > c_from]
    referred = [e for e in past if e.kind == "inspection" and e.outcome == "penalty_referred"
                and e.on > c_from]
    abnormal = [e for e in active if e.list_name == "abnormal"]
    if abnormal:
        return "C", f"on the abnormal list: {abnormal[0].reason}"
    if recent_penalties or referred:
        return "C", (f"{len(recent_penalties)} penalties and {len(referred)} inspections "
                     f"referred for penalty in the last {LEVEL_C_YEARS} years")
    a_from = add_years(on, -LEVEL_A_YEARS)
    if any(e.kind == "penalty" and e.on > a_from for e in past) or any(
            e.entered_on > a_from and e.entered_on <= on for e in entries):
        return "B", f"a penalty or list entry in the last {LEVEL_A_YEARS} years"
    if _good_evidence(facts, on, past, a_from):
        return "A", f"no penalty or list entry in {LEVEL_A_YEARS} years, duties met"
    return "B", "no adverse record, not enough history for A"


def _good_evidence(facts: Facts, on: date, past: list[Event], a_from: date) -> bool:
    if facts.kind in REPORTING_KINDS:
        due = required_report_years(facts, on)[-2:]
        on_time = {e.year for e in past if e.kind == "annual_report" and e.year is not None
                   and e.on <= report_deadline(e.year)}
        return len(due) == 2 and all(y in on_time for y in due)
    return any(e.kind == "inspection" and e.outcome == "compliant" and e.on > a_from
               for e in past)


# -- writing the rules' outcome ------------------------------------------------------------------
@dataclass
class RefreshSummary:
    subjects: int = 0
    entered: int = 0
    changed: int = 0
    levels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def load_facts(conn: Connection, subject_ids: Iterable[int] | None = None) -> dict[int, Facts]:
    """The facts of the given subjects (all when None)."""
    ids = None if subject_ids is None else sorted(set(subject_ids))
    where = "" if ids is None else "WHERE s.id = ANY(:ids)"
    params = {} if ids is None else {"ids": ids}
    subjects = conn.execute(text(
        f"SELECT s.id, s.kind, s.established_on FROM credit_subject s {where}"), params).all()
    events: dict[int, list[Event]] = defaultdict(list)
    for r in conn.execute(text(
            f"""SELECT r.subject_id, r.occurred_on, r.kind, r.record_id, r.serious, r.outcome,
                       r.year FROM credit_record r JOIN credit_subject s ON s.id = r.subject_id
                {where}"""), params):
        events[r.subject_id].append(Event(r.occurred_on, r.kind, r.record_id, r.serious,
                                          r.outcome, r.year))
    manual: dict[int, list[Entry]] = defaultdict(list)
    for r in conn.execute(text(
            f"""SELECT e.* FROM credit_list_entry e JOIN credit_subject s ON s.id = e.subject_id
                {where} {'AND' if where else 'WHERE'} e.origin = 'manual'"""), params):
        manual[r.subject_id].append(Entry(r.list_name, r.reason_code, f"manual:{r.id}",
                                          r.reason, r.entered_on, r.removed_on,
                                          r.removal_reason))
    return {s.id: Facts(s.kind, s.established_on, tuple(events[s.id]), tuple(manual[s.id]))
            for s in subjects}


def refresh(conn: Connection, on: date, subject_ids: Iterable[int] | None = None
            ) -> RefreshSummary:
    """Apply the list rules and the level rule as of ``on`` to the subjects (all when None).

    Rule entries are upserted by ``(subject, list, rule_key)``; one the records no longer
    support is removed on ``on``. Manual entries are left alone (and taken into account)."""
    facts = load_facts(conn, subject_ids)
    stored: dict[tuple[int, str, str], dict] = {
        (r["subject_id"], r["list_name"], r["rule_key"]): dict(r)
        for r in conn.execute(text(
            "SELECT * FROM credit_list_entry WHERE origin = 'rule' AND subject_id = ANY(:ids)"),
            {"ids": list(facts)}).mappings()}
    summary = RefreshSummary(subjects=len(facts))
    levels = []
    for subject_id, subject_facts in facts.items():
        entries = derive_entries(subject_facts, on)
        for entry in entries:
            _write_entry(conn, subject_id, entry, stored.pop(
                (subject_id, entry.list_name, entry.rule_key), None), summary)
        level, reason = derive_level(subject_facts, entries, on)
        summary.levels[level] = summary.levels.get(level, 0) + 1
        levels.append({"id": subject_id, "level": level, "reason": reason, "on": on})
    for gone in stored.values():
        if gone["removed_on"] is None:
            conn.execute(text(
                """UPDATE credit_list_entry SET removed_on = greatest(:on, entered_on),
                       removal_reason = 'no longer supported by the records' WHERE id = :id"""),
                {"on": on, "id": gone["id"]})
            summary.changed += 1
    if levels:
        conn.execute(text(
            """UPDATE credit_subject SET level = :level, level_reason = :reason, level_on = :on
               WHERE id = :id"""), levels)
    return summary


def _write_entry(conn: Connection, subject_id: int, entry: Entry, stored: dict | None,
                 summary: RefreshSummary) -> None:
    values = {"s": subject_id, "l": entry.list_name, "c": entry.reason_code, "k": entry.rule_key,
              "r": entry.reason, "e": entry.entered_on, "x": entry.removed_on,
              "xr": entry.removal_reason}
    if stored is None:
        conn.execute(text(
            """INSERT INTO credit_list_entry (subject_id, list_name, reason_code, reason,
                   entered_on, removed_on, removal_reason, origin, rule_key, decided_by)
               VALUES (:s, :l, :c, :r, :e, :x, :xr, 'rule', :k, 'gridgov list rules')"""), values)
        summary.entered += 1
    elif (stored["entered_on"], stored["removed_on"], stored["reason"]) != (
            entry.entered_on, entry.removed_on, entry.reason):
        conn.execute(text(
            """UPDATE credit_list_entry SET reason = :r, entered_on = :e, removed_on = :x,
                   removal_reason = :xr WHERE id = :id"""), {**values, "id": stored["id"]})
        summary.changed += 1


# -- queries -------------------------------------------------------------------------------------
def find_subjects(conn: Connection, term: str, limit: int = 20) -> list[int]:
    """Subject ids matching an identifier exactly or a name in part."""
    term = term.strip()
    if not term:
        return []
    return list(conn.execute(text(
        """SELECT id FROM credit_subject
           WHERE identifier = upper(:t) OR name ILIKE '%' || :t || '%' OR CAST(id AS text) = :t
           ORDER BY identifier = upper(:t) DESC, name LIMIT :n"""),
        {"t": term, "n": limit}).scalars())


def subject_profile(conn: Connection, subject_id: int, on: date | None = None) -> dict:
    """An API-ready view of one subject with personal identifiers masked: level, list entries
    (active as of ``on``, default today) and records, newest first."""
    on = on or date.today()
    s = conn.execute(text("SELECT * FROM credit_subject WHERE id = :id"),
                     {"id": subject_id}).mappings().one()
    entries = conn.execute(text(
        """SELECT list_name, reason_code, reason, entered_on, removed_on, removal_reason, origin
           FROM credit_list_entry WHERE subject_id = :id ORDER BY entered_on, id"""),
        {"id": subject_id}).mappings().all()
    records = conn.execute(text(
        """SELECT record_id, kind, source, occurred_on, title, department, serious, amount,
                  year, outcome, power_item_code, case_number
           FROM credit_record WHERE subject_id = :id ORDER BY occurred_on DESC, record_id"""),
        {"id": subject_id}).mappings().all()
    return {
        "id": s["id"], "kind": s["kind"],
        "identifier": mask_identifier(s["kind"], s["identifier"]),
        "name": mask_subject_name(s["kind"], s["name"]),
        "legal_representative": mask_person_name(s["legal_representative"]),
        "level": s["level"], "level_reason": s["level_reason"],
        "level_on": _iso(s["level_on"]),
        "lists": [{**{k: _iso(v) for k, v in e.items()},
                   "active": e["entered_on"] <= on and (e["removed_on"] is None
                                                         or e["removed_on"] > on)}
                  for e in entries],
        "records": [{k: (f"{v:.2f}" if isinstance(v, Decimal) else _iso(v))
                     for k, v in r.items()} for r in records],
    }


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def levels_by_identifier(conn: Connection) -> dict[str, str]:
    """Stored credit levels by identifier (for the draw's risk tiers)."""
    return dict(conn.execute(text(
        "SELECT identifier, level FROM credit_subject WHERE level IS NOT NULL")).all())
