"""Time limits per workflow node, as data: ``deadline_rule`` rows loaded from CSV.

A rule is (class code or ``*``, area class A/B/C or ``*``, stage, amount, unit). The most
specific rule wins: class + area, then class, then area, then the catch-all. Stages are the
clocks of :data:`gis.workflow.STAGE_OF_STATE` plus ``total`` (filing to closing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from gis.config import DATA_DIR
from gis.organisation import CsvRow, check_unique, read_csv
from gis.worktime import WorkCalendar

DEADLINES_CSV = DATA_DIR / "catalogues" / "deadlines.csv"
STAGES = ("accept", "file", "dispatch", "handle", "verify", "close", "total")
UNITS = ("work_hours", "work_days", "hours", "days")
AREA_CLASSES = ("A", "B", "C", "*")
RULE_FIELDS = ("class_code", "area_class", "stage", "amount", "unit")
CLASS_CODE = re.compile(r"[CE][0-9]{4}")


@dataclass(frozen=True)
class Rule:
    class_code: str
    area_class: str
    stage: str
    amount: float
    unit: str


class DeadlineBook:
    def __init__(self, rules: list[Rule]) -> None:
        self._rules = {(r.class_code, r.area_class, r.stage): r for r in rules}

    @classmethod
    def load(cls, conn: Connection) -> DeadlineBook:
        rows = conn.execute(text(
            "SELECT class_code, area_class, stage, amount, unit FROM deadline_rule"))
        return cls([Rule(*row) for row in rows])

    def rule(self, class_code: str, area_class: str, stage: str) -> Rule | None:
        for key in ((class_code, area_class), (class_code, "*"), ("*", area_class), ("*", "*")):
            found = self._rules.get((*key, stage))
            if found is not None:
                return found
        return None

    def due(self, calendar: WorkCalendar, class_code: str, area_class: str, stage: str,
            start: datetime) -> datetime | None:
        """The deadline of ``stage`` started at ``start``, or None when no rule applies."""
        rule = self.rule(class_code, area_class, stage)
        return None if rule is None else calendar.add(start, rule.amount, rule.unit)


def read_rule_rows(path: Path = DEADLINES_CSV) -> list[tuple[CsvRow, Rule]]:
    """Read and check the deadline CSV: each rule with its row. A bad row raises ValueError
    naming file, line and field."""
    out: list[tuple[CsvRow, Rule]] = []
    seen: dict[object, int] = {}
    for row in read_csv(path, RULE_FIELDS):
        class_code = row.text("class_code", 5)
        if class_code != "*" and not CLASS_CODE.fullmatch(class_code):
            raise row.error("class_code", f"{class_code!r} is neither a class code nor *")
        area_class = row.choice("area_class", AREA_CLASSES)
        stage = row.choice("stage", STAGES)
        amount_text = row.text("amount", 20)
        try:
            amount = float(amount_text)
        except ValueError:
            raise row.error("amount", f"{amount_text!r} is not a number") from None
        if not 0 < amount < float("inf"):
            raise row.error("amount", f"{amount_text!r} is not a positive number")
        unit = row.choice("unit", UNITS)
        check_unique(seen, (class_code, area_class, stage), row, "stage",
                     f"{class_code}/{area_class}/{stage} already has a rule")
        out.append((row, Rule(class_code, area_class, stage, amount, unit)))
    return out


def read_rules(path: Path = DEADLINES_CSV) -> list[Rule]:
    """Read and check the deadline CSV (see :func:`read_rule_rows`)."""
    return [rule for _, rule in read_rule_rows(path)]


def write_rules(conn: Connection, entries: list[tuple[CsvRow, Rule]]) -> int:
    """Replace the deadline rules with ``entries``; a class other than ``*`` must be loaded."""
    known = set(conn.execute(text("SELECT code FROM incident_class")).scalars())
    for row, rule in entries:
        if rule.class_code != "*" and rule.class_code not in known:
            raise row.error("class_code", f"unknown class {rule.class_code!r} "
                            "(load the classes first)")
    conn.execute(text("DELETE FROM deadline_rule"))
    conn.execute(text(
        """INSERT INTO deadline_rule (class_code, area_class, stage, amount, unit)
           VALUES (:class_code, :area_class, :stage, :amount, :unit)"""),
        [rule.__dict__ for _, rule in entries])
    return len(entries)


def load_rules(engine: Engine, path: Path = DEADLINES_CSV) -> int:
    """Replace the deadline rules with the CSV's (one transaction)."""
    entries = read_rule_rows(path)
    with engine.begin() as conn:
        return write_rules(conn, entries)
