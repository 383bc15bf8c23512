"""Time limits per workflow node, as data: ``deadline_rule`` rows loaded from CSV.

A rule is (class code or ``*``, area class A/B/C or ``*``, stage, amount, unit). The most
specific rule wins: class + area, then class, then area, then the catch-all. Stages are the
clocks of :data:`gis.workflow.STAGE_OF_STATE` plus ``total`` (filing to closing).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from gis.config import DATA_DIR
from gis.worktime import WorkCalendar

DEADLINES_CSV = DATA_DIR / "catalogues" / "deadlines.csv"
STAGES = ("accept", "file", "dispatch", "handle", "verify", "close", "total")
UNITS = ("work_hours", "work_days", "hours", "days")


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


def read_rules(path: Path = DEADLINES_CSV) -> list[Rule]:
    """Read and check the deadline CSV; errors name the line and the field."""
    rules = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                amount = float(row["amount"])
            except (TypeError, ValueError):
                raise ValueError(f"{path} line {number}: amount: not a number") from None
            if row["stage"] not in STAGES:
                raise ValueError(f"{path} line {number}: stage: {row['stage']!r} is not one of "
                                 f"{', '.join(STAGES)}")
            if row["unit"] not in UNITS:
                raise ValueError(f"{path} line {number}: unit: {row['unit']!r}")
            if row["area_class"] not in ("A", "B", "C", "*") or amount <= 0:
                raise ValueError(f"{path} line {number}: area_class or amount out of range")
            rules.append(Rule(row["class_code"], row["area_class"], row["stage"], amount,
                              row["unit"]))
    return rules


def load_rules(engine: Engine, path: Path = DEADLINES_CSV) -> int:
    """Replace the deadline rules with the CSV's (one transaction)."""
    rules = read_rules(path)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM deadline_rule"))
        conn.execute(text(
            """INSERT INTO deadline_rule (class_code, area_class, stage, amount, unit)
               VALUES (:class_code, :area_class, :stage, :amount, :unit)"""),
            [r.__dict__ for r in rules])
    return len(rules)
